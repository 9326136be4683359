//! Prometheus metrics, shared by the HTTP side and the job workers, exposed by
//! `GET /metrics` in the Prometheus text format. Counters count what this process did;
//! Prometheus sums them over replicas.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of an HTTP request, each from a bounded set: the operation (not the raw path),
/// a standard method or `other`, and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// What a finished job attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done.
    Succeeded,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed for the last time.
    Dead,
    /// Dropped unfinished: its lease could not be renewed in time, so it is
    /// left to run again once the lease ends.
    Abandoned,
}

/// Every metric deploy-gate exposes.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    releases_created: Counter,
    releases_decided: Family<StatusLabels, Counter>,
    jobs: Family<JobLabels, Counter>,
    jobs_due: Gauge,
    emails: Family<OutcomeLabels, Counter>,
    callbacks: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("deploy_gate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by operation, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to ~4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by operation",
            latency.clone(),
        );
        let releases_created = Counter::default();
        registry.register(
            "releases_created",
            "Releases first seen by this process",
            releases_created.clone(),
        );
        let releases_decided = Family::<StatusLabels, Counter>::default();
        registry.register(
            "releases_decided",
            "Releases that became approved, rejected or expired in this process",
            releases_decided.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Job attempts by kind and outcome (succeeded, retried, dead)",
            jobs.clone(),
        );
        let jobs_due = Gauge::default();
        registry.register(
            "jobs_queued",
            "Jobs due now and not dead, in the whole database",
            jobs_due.clone(),
        );
        let emails = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "emails",
            "Approval emails by outcome (sent, failed)",
            emails.clone(),
        );
        let callbacks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "callbacks",
            "Azure DevOps TaskCompleted callbacks by result (succeeded, failed, error)",
            callbacks.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            releases_created,
            releases_decided,
            jobs,
            jobs_due,
            emails,
            callbacks,
        }
    }

    /// Counts one answered request. `route` must come from a fixed set (an operation id,
    /// never the raw path); a method outside the standard ones counts as `other`, as any
    /// caller may send a method of its own making.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method_label(method).to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a release stored for the first time.
    pub fn release_created(&self) {
        self.releases_created.inc();
    }

    /// Counts a release that just became final with `status`.
    pub fn release_decided(&self, status: &str) {
        self.releases_decided
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts one job attempt.
    pub fn job_finished(&self, kind: &str, outcome: JobOutcome) {
        let outcome = match outcome {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Retried => "retried",
            JobOutcome::Dead => "dead",
            JobOutcome::Abandoned => "abandoned",
        };
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts an approval email accepted (`true`) or not by the mail server.
    pub fn email(&self, sent: bool) {
        let outcome = if sent { "sent" } else { "failed" };
        self.emails
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a callback delivered with `result` (`succeeded`/`failed`), or `error` when
    /// Azure DevOps could not be told.
    pub fn callback(&self, result: &str) {
        self.callbacks
            .get_or_create(&OutcomeLabels {
                outcome: result.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with the queue gauge set to `jobs_due` first.
    pub fn render(&self, jobs_due: u64) -> String {
        self.jobs_due
            .set(i64::try_from(jobs_due).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// `method` when it is one of HTTP's standard methods, else `other`.
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|standard| *standard == method)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format_with_their_labels() {
        let metrics = Metrics::new();
        metrics.observe_request("createRelease", "POST", 202, Duration::from_millis(2));
        metrics.release_created();
        metrics.release_decided("approved");
        metrics.job_finished("send_approval_email", JobOutcome::Retried);
        metrics.email(true);
        metrics.callback("succeeded");
        let text = metrics.render(3);
        for line in [
            r#"deploy_gate_http_requests_total{route="createRelease",method="POST",status="202"} 1"#,
            r#"deploy_gate_http_request_duration_seconds_count{route="createRelease"} 1"#,
            "deploy_gate_releases_created_total 1",
            r#"deploy_gate_releases_decided_total{status="approved"} 1"#,
            r#"deploy_gate_jobs_total{kind="send_approval_email",outcome="retried"} 1"#,
            "deploy_gate_jobs_queued 3",
            r#"deploy_gate_emails_total{outcome="sent"} 1"#,
            r#"deploy_gate_callbacks_total{outcome="succeeded"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_method_outside_the_standard_ones_counts_as_other() {
        let metrics = Metrics::new();
        for method in ["BREW", "get", &"X".repeat(5_000)] {
            metrics.observe_request("unmatched", method, 405, Duration::ZERO);
        }
        let text = metrics.render(0);
        assert!(
            text.contains(r#"{route="unmatched",method="other",status="405"} 3"#),
            "{text}"
        );
        assert!(!text.contains("BREW") && !text.contains("XXXX"), "{text}");
    }
}
