//! The calls a check or agentless job in callback mode receives: the TaskStarted
//! and TaskCompleted events (azure-devops.md §2.1) and lines in its timeline feed
//! (§2.2), as Microsoft's server-task sample makes them
//! (azure-pipelines-extensions, `ServerTaskHelper/HttpRequestSampleWithoutHandler/MyApp.cs`).

use chrono::SecondsFormat;
use serde::Serialize;

use crate::domain::{
    callback::{FeedLine, PlanCallback},
    policy::ReleaseStatus,
};

/// api-version used by the task documentation and Microsoft's samples (azure-devops.md §2.1).
pub const EVENTS_API_VERSION: &str = "2.0-preview.1";

/// api-version of the timeline feed in Microsoft's server-task sample.
pub const FEED_API_VERSION: &str = "4.1";

/// The body of `POST …/plans/{PlanId}/events`: TaskStarted or TaskCompleted.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent<'a> {
    /// `TaskStarted` or `TaskCompleted`.
    pub name: &'static str,
    /// The `TaskInstanceId` received.
    pub task_id: &'a str,
    /// The `JobId` received.
    pub job_id: &'a str,
    /// `succeeded` or `failed`, for TaskCompleted only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'static str>,
}

/// The body of `POST …/timelines/{TimelineId}/records/{JobId}/feed`: lines, each
/// stamped with the time what it tells happened, as the sample stamps them.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct FeedLines {
    /// The lines, oldest first.
    pub value: Vec<String>,
    /// How many.
    pub count: usize,
}

/// `succeeded` for an approved release, `failed` for a rejected or expired one; `None` while pending.
pub fn task_result(status: ReleaseStatus) -> Option<&'static str> {
    match status {
        ReleaseStatus::Approved => Some("succeeded"),
        ReleaseStatus::Rejected | ReleaseStatus::Expired => Some("failed"),
        ReleaseStatus::Pending => None,
    }
}

/// `{PlanUrl}{ProjectId}/_apis/distributedtask/hubs/{HubName}/plans/{PlanId}`,
/// joined without a double slash whether or not `PlanUrl` ends in `/`.
fn plan_url(target: &PlanCallback) -> String {
    format!(
        "{}/{}/_apis/distributedtask/hubs/{}/plans/{}",
        target.plan_url.trim_end_matches('/'),
        segment(&target.project_id),
        segment(&target.hub_name),
        segment(&target.plan_id),
    )
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `{PlanUrl}{ProjectId}/_apis/distributedtask/hubs/{HubName}/plans/{PlanId}/events?api-version=…`.
pub fn events_url(target: &PlanCallback) -> String {
    format!(
        "{}/events?api-version={EVENTS_API_VERSION}",
        plan_url(target)
    )
}

/// `…/plans/{PlanId}/timelines/{TimelineId}/records/{JobId}/feed?api-version=4.1`;
/// `None` when Azure sent no `TimelineId`.
pub fn feed_url(target: &PlanCallback) -> Option<String> {
    let timeline_id = target.timeline_id.as_deref()?;
    Some(format!(
        "{}/timelines/{}/records/{}/feed?api-version={FEED_API_VERSION}",
        plan_url(target),
        segment(timeline_id),
        segment(&target.job_id),
    ))
}

/// The TaskStarted event for `target`.
pub fn task_started(target: &PlanCallback) -> TaskEvent<'_> {
    TaskEvent {
        name: "TaskStarted",
        task_id: &target.task_instance_id,
        job_id: &target.job_id,
        result: None,
    }
}

/// The TaskCompleted event for `target` with `result`.
pub fn task_completed<'a>(target: &'a PlanCallback, result: &'static str) -> TaskEvent<'a> {
    TaskEvent {
        name: "TaskCompleted",
        task_id: &target.task_instance_id,
        job_id: &target.job_id,
        result: Some(result),
    }
}

/// The feed body for `lines`, each stamped like `2026-12-06T10:00:00.000Z waiting for …`.
pub fn feed_lines(lines: &[FeedLine]) -> FeedLines {
    let value: Vec<String> = lines
        .iter()
        .map(|line| {
            let stamp = line.at.to_rfc3339_opts(SecondsFormat::Millis, true);
            format!("{stamp} {}", line.text)
        })
        .collect();
    FeedLines {
        count: value.len(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn target(plan_url: &str) -> PlanCallback {
        PlanCallback {
            plan_url: plan_url.into(),
            project_id: "p1".into(),
            hub_name: "checks".into(),
            plan_id: "plan".into(),
            job_id: "job".into(),
            timeline_id: Some("tl".into()),
            task_instance_id: "task".into(),
            auth_token: Secret::new("t"),
        }
    }

    #[test]
    fn the_events_url_has_no_double_slash_whether_or_not_plan_url_ends_in_one() {
        let expected = "https://dev.azure.com/contoso/p1/_apis/distributedtask/hubs/checks/plans/plan/events?api-version=2.0-preview.1";
        assert_eq!(
            events_url(&target("https://dev.azure.com/contoso/")),
            expected
        );
        assert_eq!(
            events_url(&target("https://dev.azure.com/contoso")),
            expected
        );
    }

    #[test]
    fn the_feed_url_names_timeline_and_job_and_needs_a_timeline() {
        let mut target = target("https://dev.azure.com/contoso/");
        assert_eq!(
            feed_url(&target).unwrap(),
            "https://dev.azure.com/contoso/p1/_apis/distributedtask/hubs/checks/plans/plan/timelines/tl/records/job/feed?api-version=4.1"
        );
        target.timeline_id = None;
        assert_eq!(feed_url(&target), None);
    }

    #[test]
    fn only_an_approved_release_succeeds() {
        assert_eq!(task_result(ReleaseStatus::Approved), Some("succeeded"));
        assert_eq!(task_result(ReleaseStatus::Rejected), Some("failed"));
        assert_eq!(task_result(ReleaseStatus::Expired), Some("failed"));
        assert_eq!(task_result(ReleaseStatus::Pending), None);
    }
}
