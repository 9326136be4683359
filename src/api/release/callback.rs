//! Callback mode of `POST /release`: the fields Azure DevOps sends so that it can be told the
//! outcome, as request headers (its default) or as body fields.

use poem_openapi::param::Header;

use super::request::ReleaseRequest;
use crate::{
    api::http::{
        problem::Problem,
        received::Received,
        refusals::Refusals,
        text::{CallbackRule, Text, TextRule},
    },
    domain::{
        callback::{CallbackHosts, PlanCallback},
        macros::unresolved_macro,
    },
    secret::Secret,
};

/// A callback field as a header, if sent.
pub type CallbackHeader = Header<Option<Text<CallbackRule>>>;

/// Callback-mode fields sent as HTTP headers, the default of the Invoke REST API task and check.
pub struct CallbackHeaders {
    /// `PlanUrl`.
    pub plan_url: CallbackHeader,
    /// `ProjectId`.
    pub project_id: CallbackHeader,
    /// `HubName`.
    pub hub_name: CallbackHeader,
    /// `PlanId`.
    pub plan_id: CallbackHeader,
    /// `JobId`.
    pub job_id: CallbackHeader,
    /// `TimelineId`.
    pub timeline_id: CallbackHeader,
    /// `TaskInstanceId`.
    pub task_instance_id: CallbackHeader,
    /// `AuthToken`.
    pub auth_token: CallbackHeader,
}

/// A callback field as received: its name, where it came from, and its value.
struct Sent {
    name: &'static str,
    origin: &'static str,
    value: Option<String>,
}

/// The body field as sent, or else the header (both kept to the length limit in
/// every mode by `check_callback_lengths`).
fn pick(
    name: &'static str,
    body: &Received<Option<Text<CallbackRule>>>,
    header: CallbackHeader,
) -> Sent {
    let (origin, value) = match (body.value().and_then(Option::as_ref), header.0) {
        (Some(value), _) => ("body field", Some(value.clone())),
        (None, value) => ("header", value),
    };
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Sent {
        name,
        origin,
        value,
    }
}

/// Refuses a callback field longer than its published limit.
fn check_length(name: &str, value: &str) -> Result<(), Problem> {
    let max = CallbackRule::MAX_CHARS.unwrap_or(usize::MAX);
    if value.chars().count() > max {
        return Err(Problem::invalid_field(format!(
            "{name}: must be at most {max} characters"
        )));
    }
    Ok(())
}

impl ReleaseRequest {
    /// Refuses a callback body field of the wrong type, and a callback field, body field or
    /// header, longer than the published limit, in every mode: the OpenAPI document states
    /// the limit whether or not the mode reads the field.
    pub fn check_callback_lengths(&self, headers: &CallbackHeaders, refusals: &mut Refusals) {
        let fields = [
            ("PlanUrl", &self.plan_url, &headers.plan_url),
            ("ProjectId", &self.project_id, &headers.project_id),
            ("HubName", &self.hub_name, &headers.hub_name),
            ("PlanId", &self.plan_id, &headers.plan_id),
            ("JobId", &self.job_id, &headers.job_id),
            ("TimelineId", &self.timeline_id, &headers.timeline_id),
            (
                "TaskInstanceId",
                &self.task_instance_id,
                &headers.task_instance_id,
            ),
            ("AuthToken", &self.auth_token, &headers.auth_token),
        ];
        for (name, body, header) in fields {
            let body = body.read(refusals, name).and_then(Option::as_ref);
            for value in [body, header.0.as_ref()].into_iter().flatten() {
                if refusals.check(name, check_length(name, value)).is_none() {
                    break;
                }
            }
        }
    }

    /// The callback registration of a request in callback mode, from body fields or else
    /// headers. Fails when a field is missing, too long or holds a pipeline macro, or when
    /// `PlanUrl` is not an http(s) URL on one of `hosts`.
    pub fn plan_callback(
        &self,
        headers: CallbackHeaders,
        hosts: &CallbackHosts,
    ) -> Result<PlanCallback, Problem> {
        let sent = [
            pick("PlanUrl", &self.plan_url, headers.plan_url),
            pick("ProjectId", &self.project_id, headers.project_id),
            pick("HubName", &self.hub_name, headers.hub_name),
            pick("PlanId", &self.plan_id, headers.plan_id),
            pick("JobId", &self.job_id, headers.job_id),
            pick("TimelineId", &self.timeline_id, headers.timeline_id),
            pick(
                "TaskInstanceId",
                &self.task_instance_id,
                headers.task_instance_id,
            ),
            pick("AuthToken", &self.auth_token, headers.auth_token),
        ];
        let missing: Vec<&str> = sent
            .iter()
            .filter(|s| s.name != "TimelineId" && s.value.is_none())
            .map(|s| s.name)
            .collect();
        if !missing.is_empty() {
            return Err(Problem::invalid_field(format!(
                "callback mode needs PlanUrl, ProjectId, HubName, PlanId, JobId, TaskInstanceId and AuthToken (as headers or body fields); missing: {}",
                missing.join(", ")
            )));
        }
        for s in &sent {
            if let Some(found) = s.value.as_deref().and_then(unresolved_macro) {
                let field = format!("{} ({})", s.name, s.origin);
                return Err(Problem::unresolved_macro(&field, found));
            }
        }
        let [
            plan_url,
            project_id,
            hub_name,
            plan_id,
            job_id,
            timeline_id,
            task_instance_id,
            auth_token,
        ] = sent.map(|s| s.value);
        let plan_url = plan_url.unwrap_or_default();
        check_plan_url(&plan_url, hosts)?;
        Ok(PlanCallback {
            plan_url,
            project_id: project_id.unwrap_or_default(),
            hub_name: hub_name.unwrap_or_default(),
            plan_id: plan_id.unwrap_or_default(),
            job_id: job_id.unwrap_or_default(),
            timeline_id,
            task_instance_id: task_instance_id.unwrap_or_default(),
            auth_token: Secret::new(auth_token.unwrap_or_default()),
        })
    }
}

/// `PlanUrl` must be an http(s) URL on a host the job token may go to.
fn check_plan_url(plan_url: &str, hosts: &CallbackHosts) -> Result<(), Problem> {
    match url::Url::parse(plan_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if hosts.allow(&url) {
                Ok(())
            } else {
                Err(Problem::invalid_field(format!(
                    "PlanUrl: {} is not an Azure DevOps host this service sends job tokens to (DEPLOY_GATE_CALLBACK_HOSTS; subdomain patterns need https)",
                    url.host_str().unwrap_or_default()
                )))
            }
        }
        _ => Err(Problem::invalid_field(
            "PlanUrl: must be an http:// or https:// URL",
        )),
    }
}
