//! Callback mode of `POST /release`: the fields Azure DevOps sends so that it can be told the
//! outcome, as request headers (its default) or as body fields.

use poem_openapi::param::Header;

use super::request::ReleaseRequest;
use crate::{
    api::http::{
        problem::Problem,
        text::{CallbackRule, Text, TextRule},
    },
    domain::callback::PlanCallback,
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

/// The body field as sent, or else the header; both must keep to the length limit, even
/// the one not used, so an oversized header is refused rather than silently ignored.
fn pick(
    name: &'static str,
    body: &Option<Text<CallbackRule>>,
    header: CallbackHeader,
) -> Result<(&'static str, Option<String>), Problem> {
    let max = CallbackRule::MAX_CHARS.unwrap_or(usize::MAX);
    let sent = [body.as_ref(), header.0.as_ref()];
    if sent.iter().flatten().any(|v| v.chars().count() > max) {
        return Err(Problem::invalid_field(format!(
            "{name}: must be at most {max} characters"
        )));
    }
    Ok((name, body.clone().or(header.0).map(Text::into_string)))
}

impl ReleaseRequest {
    /// The callback registration, from body fields or else headers; `None` when the
    /// request is not in callback mode, an error when it is only partly or a field is too long.
    pub fn plan_callback(&self, headers: CallbackHeaders) -> Result<Option<PlanCallback>, Problem> {
        let sent = [
            pick("PlanUrl", &self.plan_url, headers.plan_url)?,
            pick("ProjectId", &self.project_id, headers.project_id)?,
            pick("HubName", &self.hub_name, headers.hub_name)?,
            pick("PlanId", &self.plan_id, headers.plan_id)?,
            pick("JobId", &self.job_id, headers.job_id)?,
            pick("TimelineId", &self.timeline_id, headers.timeline_id)?,
            pick(
                "TaskInstanceId",
                &self.task_instance_id,
                headers.task_instance_id,
            )?,
            pick("AuthToken", &self.auth_token, headers.auth_token)?,
        ];
        let missing: Vec<&str> = sent
            .iter()
            .filter(|(name, v)| {
                *name != "TimelineId" && v.as_ref().is_none_or(|v| v.trim().is_empty())
            })
            .map(|(name, _)| *name)
            .collect();
        if missing.len() == sent.len() - 1 {
            return Ok(None);
        }
        if !missing.is_empty() {
            return Err(Problem::invalid_field(format!(
                "callback mode needs PlanUrl, ProjectId, HubName, PlanId, JobId, TaskInstanceId and AuthToken; missing: {}",
                missing.join(", ")
            )));
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
        ] = sent.map(|(_, v)| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
        let plan_url = plan_url.unwrap_or_default();
        match url::Url::parse(&plan_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(Problem::invalid_field(
                    "PlanUrl: must be an http:// or https:// URL",
                ));
            }
        }
        Ok(Some(PlanCallback {
            plan_url,
            project_id: project_id.unwrap_or_default(),
            hub_name: hub_name.unwrap_or_default(),
            plan_id: plan_id.unwrap_or_default(),
            job_id: job_id.unwrap_or_default(),
            timeline_id,
            task_instance_id: task_instance_id.unwrap_or_default(),
            auth_token: Secret::new(auth_token.unwrap_or_default()),
        }))
    }
}
