//! The TaskCompleted event that completes a check or agentless job in callback mode
//! (azure-devops.md §2.1).

use serde::Serialize;

use crate::domain::{callback::PlanCallback, policy::ReleaseStatus};

/// api-version used by the task documentation and Microsoft's samples (azure-devops.md §2.1).
pub const EVENTS_API_VERSION: &str = "2.0-preview.1";

/// The body of `POST …/plans/{PlanId}/events`.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskCompleted<'a> {
    /// Always `TaskCompleted`.
    pub name: &'static str,
    /// The `TaskInstanceId` received.
    pub task_id: &'a str,
    /// The `JobId` received.
    pub job_id: &'a str,
    /// `succeeded` or `failed`.
    pub result: &'static str,
}

/// `succeeded` for an approved release, `failed` for a rejected or expired one; `None` while pending.
pub fn task_result(status: ReleaseStatus) -> Option<&'static str> {
    match status {
        ReleaseStatus::Approved => Some("succeeded"),
        ReleaseStatus::Rejected | ReleaseStatus::Expired => Some("failed"),
        ReleaseStatus::Pending => None,
    }
}

/// `{PlanUrl}{ProjectId}/_apis/distributedtask/hubs/{HubName}/plans/{PlanId}/events?api-version=…`,
/// joined without a double slash whether or not `PlanUrl` ends in `/`.
pub fn events_url(target: &PlanCallback) -> String {
    let segment = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{}/{}/_apis/distributedtask/hubs/{}/plans/{}/events?api-version={EVENTS_API_VERSION}",
        target.plan_url.trim_end_matches('/'),
        segment(&target.project_id),
        segment(&target.hub_name),
        segment(&target.plan_id),
    )
}

/// The event for `target` with `result`.
pub fn task_completed<'a>(target: &'a PlanCallback, result: &'static str) -> TaskCompleted<'a> {
    TaskCompleted {
        name: "TaskCompleted",
        task_id: &target.task_instance_id,
        job_id: &target.job_id,
        result,
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
            timeline_id: None,
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
    fn only_an_approved_release_succeeds() {
        assert_eq!(task_result(ReleaseStatus::Approved), Some("succeeded"));
        assert_eq!(task_result(ReleaseStatus::Rejected), Some("failed"));
        assert_eq!(task_result(ReleaseStatus::Expired), Some("failed"));
        assert_eq!(task_result(ReleaseStatus::Pending), None);
    }
}
