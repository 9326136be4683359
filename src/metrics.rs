//! Prometheus metrics, shared by the HTTP side and the job workers, exposed by
//! `GET /metrics` in the Prometheus text format. Counters count what this process did;
//! Prometheus sums them over replicas. Gauges of the database (queued jobs, pending
//! releases) are read from it at each scrape, so every replica shows the same value,
//! right after restarts: take their `max` over replicas, never their sum.

use std::{sync::atomic::AtomicU64, time::Duration};

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

/// What the database holds at the moment of a scrape, shown by the gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DatabaseGauges {
    /// Jobs due now and not dead.
    pub jobs_due: u64,
    /// Rounds neither decided nor past their deadline.
    pub pending_releases: u64,
    /// How long the oldest of them has waited; zero when none waits.
    pub oldest_pending_age: Duration,
}

/// Every metric deploy-gate exposes.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    releases_created: Counter,
    releases_decided: Family<StatusLabels, Counter>,
    time_to_decision: Family<StatusLabels, Histogram>,
    releases_pruned: Counter,
    approvals_pruned: Counter,
    pending_releases: Gauge,
    oldest_pending_age: Gauge<f64, AtomicU64>,
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
        let time_to_decision = Family::<StatusLabels, Histogram>::new_with_constructor(|| {
            // A minute to a week: a round waits for people.
            Histogram::new(TIME_TO_DECISION_BUCKETS)
        });
        registry.register(
            "time_to_decision_seconds",
            "Seconds from a round's creation to its decision, by the status it ended with, \
             observed once per round by the process that decided it",
            time_to_decision.clone(),
        );
        let releases_pruned = Counter::default();
        registry.register(
            "releases_pruned",
            "Decided rounds deleted by this process because they were older than \
             DEPLOY_GATE_RETENTION, with everything that belonged to them",
            releases_pruned.clone(),
        );
        let approvals_pruned = Counter::default();
        registry.register(
            "approvals_pruned",
            "Approvals (with their decisions) deleted with those rounds by this process",
            approvals_pruned.clone(),
        );
        let pending_releases = Gauge::default();
        registry.register(
            "pending_releases",
            "Rounds neither decided nor past their deadline, in the whole database",
            pending_releases.clone(),
        );
        let oldest_pending_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_pending_release_age_seconds",
            "Seconds the oldest pending round has waited (0 when none), in the whole database",
            oldest_pending_age.clone(),
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
            time_to_decision,
            releases_pruned,
            approvals_pruned,
            pending_releases,
            oldest_pending_age,
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

    /// Counts a round that just became final with `status`, `took` after its creation.
    pub fn release_decided(&self, status: &str, took: Duration) {
        let labels = StatusLabels {
            status: status.to_owned(),
        };
        self.releases_decided.get_or_create(&labels).inc();
        self.time_to_decision
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts decided rounds and their approvals deleted by retention.
    pub fn pruned(&self, releases: u64, approvals: u64) {
        self.releases_pruned.inc_by(releases);
        self.approvals_pruned.inc_by(approvals);
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

    /// The text exposition, with the database's gauges set to `gauges` first.
    pub fn render(&self, gauges: DatabaseGauges) -> String {
        self.jobs_due
            .set(i64::try_from(gauges.jobs_due).unwrap_or(i64::MAX));
        self.pending_releases
            .set(i64::try_from(gauges.pending_releases).unwrap_or(i64::MAX));
        self.oldest_pending_age
            .set(gauges.oldest_pending_age.as_secs_f64());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Upper bounds of the time-to-decision buckets: 1, 5, 15 and 30 minutes; 1, 2, 4, 8, 12
/// hours; 1, 2 and 7 days.
const TIME_TO_DECISION_BUCKETS: [f64; 12] = [
    60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0, 43_200.0, 86_400.0,
    172_800.0, 604_800.0,
];

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
        metrics.release_decided("approved", Duration::from_secs(600));
        metrics.job_finished("send_approval_email", JobOutcome::Retried);
        metrics.email(true);
        metrics.callback("succeeded");
        metrics.pruned(4, 7);
        let text = metrics.render(DatabaseGauges {
            jobs_due: 3,
            pending_releases: 2,
            oldest_pending_age: Duration::from_millis(90_500),
        });
        for line in [
            r#"deploy_gate_http_requests_total{route="createRelease",method="POST",status="202"} 1"#,
            r#"deploy_gate_http_request_duration_seconds_count{route="createRelease"} 1"#,
            "deploy_gate_releases_created_total 1",
            r#"deploy_gate_releases_decided_total{status="approved"} 1"#,
            r#"deploy_gate_jobs_total{kind="send_approval_email",outcome="retried"} 1"#,
            "deploy_gate_jobs_queued 3",
            "deploy_gate_pending_releases 2",
            "deploy_gate_oldest_pending_release_age_seconds 90.5",
            r#"deploy_gate_time_to_decision_seconds_bucket{le="300.0",status="approved"} 0"#,
            r#"deploy_gate_time_to_decision_seconds_bucket{le="900.0",status="approved"} 1"#,
            r#"deploy_gate_time_to_decision_seconds_sum{status="approved"} 600.0"#,
            r#"deploy_gate_emails_total{outcome="sent"} 1"#,
            r#"deploy_gate_callbacks_total{outcome="succeeded"} 1"#,
            "deploy_gate_releases_pruned_total 4",
            "deploy_gate_approvals_pruned_total 7",
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
        let text = metrics.render(DatabaseGauges::default());
        assert!(
            text.contains(r#"{route="unmatched",method="other",status="405"} 3"#),
            "{text}"
        );
        assert!(!text.contains("BREW") && !text.contains("XXXX"), "{text}");
    }
}
