//! Callback registrations: where a decision is reported to a check or an
//! agentless job in callback mode.

use crate::secret::Secret;

/// Where and how to report a decision to a check or agentless job in callback mode
/// (the "predefined variables for callback mode", azure-devops.md §1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanCallback {
    /// `PlanUrl`: the organization URL, e.g. `https://dev.azure.com/contoso/`.
    pub plan_url: String,
    /// `ProjectId`: the project GUID.
    pub project_id: String,
    /// `HubName`: `build`, `release`, `gates`, `checks`…; passed through as given.
    pub hub_name: String,
    /// `PlanId`.
    pub plan_id: String,
    /// `JobId`.
    pub job_id: String,
    /// `TimelineId`, if sent.
    pub timeline_id: Option<String>,
    /// `TaskInstanceId`: becomes `taskId` in the TaskCompleted event.
    pub task_instance_id: String,
    /// `AuthToken`: the job access token, used once for the callback and then deleted.
    pub auth_token: Secret,
}

/// A stored callback registration.
#[derive(Clone, Debug)]
pub struct CallbackRecord {
    /// Row id.
    pub id: i64,
    /// The release it reports on.
    pub release_id: i64,
    /// The target; its token is empty once delivered.
    pub target: PlanCallback,
    /// Whether the TaskCompleted event was delivered.
    pub delivered: bool,
}
