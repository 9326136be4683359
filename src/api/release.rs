//! `POST /release` (create or poll) and `GET /release/{TeamProject}/{ReleaseId}`.

use std::sync::Arc;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags, AppState,
    auth::Credentials,
    callback::{CallbackHeader, CallbackHeaders},
    problem::{ErrorStatuses, Problem, ProblemResponse},
    release_request::ReleaseRequestBody,
    status::{ReleaseStatusBody, StatusValue},
    text::{NameRule, ReleaseIdRule, StageRule, Text},
};
use crate::{
    approvers::{Found, under_policy},
    azure::PlanCallback,
    domain::release::{NewRelease, ReleaseKey},
    store::{Creation, ReleasePlan, ReleaseSnapshot},
};

/// Answer to `POST /release`.
#[derive(ApiResponse)]
pub enum CreateReleaseResponse {
    /// The release was new: it is stored and its approvers are being notified. `status` is `pending`.
    #[oai(status = 202)]
    Accepted(
        Json<ReleaseStatusBody>,
        /// Where to poll the release's status.
        #[oai(header = "Location")]
        String,
    ),
    /// The release's current status (a known release; with `failsafe=true`, only when approved).
    #[oai(status = 200)]
    Current(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: not decided yet (also for a release created by this call).
    #[oai(status = 423)]
    NotYetApproved(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: an approver rejected the release.
    #[oai(status = 403)]
    Rejected(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: the deadline passed undecided.
    #[oai(status = 410)]
    Expired(Json<ReleaseStatusBody>),
}

/// Answer to `GET /release/{TeamProject}/{ReleaseId}`.
#[derive(ApiResponse)]
pub enum GetReleaseResponse {
    /// The release's current status (with `failsafe=true`, only when approved).
    #[oai(status = 200)]
    Current(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: not decided yet.
    #[oai(status = 423)]
    NotYetApproved(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: an approver rejected the release.
    #[oai(status = 403)]
    Rejected(Json<ReleaseStatusBody>),
    /// `failsafe=true` only: the deadline passed undecided.
    #[oai(status = 410)]
    Expired(Json<ReleaseStatusBody>),
}

/// Errors of `POST /release`.
pub struct CreateReleaseErrors;
impl ErrorStatuses for CreateReleaseErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "Malformed JSON, or a field missing, empty, too long or of the wrong type, or incomplete callback fields; nothing was stored.",
        ),
        (401, "The API key is required and was missing or wrong."),
        (413, "The body is larger than the configured limit."),
        (415, "The body is not JSON."),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Errors of `GET /release/{TeamProject}/{ReleaseId}`.
pub struct GetReleaseErrors;
impl ErrorStatuses for GetReleaseErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "A path or query parameter is invalid."),
        (401, "The API key is required and was missing or wrong."),
        (404, "No such release."),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Release gate operations.
pub struct ReleaseApi;

#[OpenApi(tag = "ApiTags::Release")]
impl ReleaseApi {
    /// Create a release, or poll a known one.
    ///
    /// An unknown release is stored and its approval flow queued in one transaction: answers `202`
    /// with status `pending` at once, whatever the approvers API or the mail server are doing.
    /// A known release (same `TeamProject`, `ReleaseId` and `Stage`) answers `200` with its
    /// current status, so a gate can call this again and again until it is decided.
    ///
    /// **Callback mode**: with `PlanUrl`, `ProjectId`, `HubName`, `PlanId`, `JobId`,
    /// `TaskInstanceId` and `AuthToken` (as headers, as Azure DevOps sends them, or as body
    /// fields), the registration is stored with the release and the `TaskCompleted` event is
    /// posted to Azure DevOps once the release is decided.
    ///
    /// **Fail-safe form** (`?failsafe=true`): only an approved release answers `200`; pending
    /// answers `423`, rejected `403`, expired `410`, so a gate without success criteria cannot pass
    /// by accident.
    #[oai(path = "/release", method = "post", operation_id = "createRelease")]
    #[expect(
        clippy::too_many_arguments,
        reason = "each callback header is its own documented parameter"
    )]
    async fn create_release(
        &self,
        state: Data<&Arc<AppState>>,
        credentials: Credentials,
        body: Json<ReleaseRequestBody>,
        /// Answer `200` only for an approved release (see above).
        failsafe: Query<Option<bool>>,
        /// Callback mode: `$(system.CollectionUri)`.
        #[oai(name = "PlanUrl")]
        plan_url: CallbackHeader,
        /// Callback mode: `$(system.TeamProjectId)`.
        #[oai(name = "ProjectId")]
        project_id: CallbackHeader,
        /// Callback mode: `$(system.HostType)`.
        #[oai(name = "HubName")]
        hub_name: CallbackHeader,
        /// Callback mode: `$(system.PlanId)`.
        #[oai(name = "PlanId")]
        plan_id: CallbackHeader,
        /// Callback mode: `$(system.JobId)`.
        #[oai(name = "JobId")]
        job_id: CallbackHeader,
        /// Callback mode: `$(system.TimelineId)`.
        #[oai(name = "TimelineId")]
        timeline_id: CallbackHeader,
        /// Callback mode: `$(system.TaskInstanceId)`.
        #[oai(name = "TaskInstanceId")]
        task_instance_id: CallbackHeader,
        /// Callback mode: `$(system.AccessToken)`; used once, never returned or logged.
        #[oai(name = "AuthToken")]
        auth_token: CallbackHeader,
    ) -> Result<CreateReleaseResponse, ProblemResponse<CreateReleaseErrors>> {
        credentials.check(&state)?;
        let Json(ReleaseRequestBody(body)) = body;
        let new = body.parse()?;
        let headers = CallbackHeaders {
            plan_url,
            project_id,
            hub_name,
            plan_id,
            job_id,
            timeline_id,
            task_instance_id,
            auth_token,
        };
        let callback = body.plan_callback(headers)?;
        let creation = create_or_find(&state, &new, callback.as_ref()).await?;
        Ok(creation_response(
            creation,
            failsafe.unwrap_or(false),
            state.clock.now(),
        ))
    }

    /// Current status of a release.
    ///
    /// With `?failsafe=true`, only an approved release answers `200`; pending answers `423`,
    /// rejected `403`, expired `410`.
    #[oai(
        path = "/release/:TeamProject/:ReleaseId",
        method = "get",
        operation_id = "getRelease"
    )]
    async fn get_release(
        &self,
        state: Data<&Arc<AppState>>,
        credentials: Credentials,
        /// The Azure DevOps project.
        #[oai(name = "TeamProject")]
        team_project: Path<Text<NameRule>>,
        /// The release id.
        #[oai(name = "ReleaseId")]
        release_id: Path<Text<ReleaseIdRule>>,
        /// The gated stage, if the release was created with one.
        #[oai(name = "Stage")]
        stage: Query<Option<Text<StageRule>>>,
        /// Answer `200` only for an approved release.
        failsafe: Query<Option<bool>>,
    ) -> Result<GetReleaseResponse, ProblemResponse<GetReleaseErrors>> {
        credentials.check(&state)?;
        let snapshot = find_by_path(&state, &team_project, &release_id, stage.as_deref()).await?;
        let body = Json(ReleaseStatusBody::from_snapshot(
            &snapshot,
            state.clock.now(),
        ));
        Ok(match (failsafe.unwrap_or(false), body.status) {
            (false, _) | (true, StatusValue::Approved) => GetReleaseResponse::Current(body),
            (true, StatusValue::Pending) => GetReleaseResponse::NotYetApproved(body),
            (true, StatusValue::Rejected) => GetReleaseResponse::Rejected(body),
            (true, StatusValue::Expired) => GetReleaseResponse::Expired(body),
        })
    }
}

/// Stores a release (and its callback registration) or finds the known one; wakes the worker.
/// The policy of its project and stage sets its deadline, reminders and escalation.
pub async fn create_or_find(
    state: &AppState,
    new: &NewRelease,
    callback: Option<&PlanCallback>,
) -> Result<Creation, Problem> {
    let now = state.clock.now();
    let policy = state.policies.for_release(&new.key);
    let after = |d: std::time::Duration| {
        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    };
    let deadline = after(
        policy
            .and_then(|p| p.deadline)
            .unwrap_or(state.approval_deadline),
    );
    let listed = new.approvers.as_ref().map(|approvers| Found {
        approvers: approvers.clone(),
        source: "request".to_owned(),
        problem: None,
        groups: BTreeMap::new(),
    });
    let plan = ReleasePlan {
        required_approvals: state.required_approvals,
        deadline,
        approvers: listed.map(|found| {
            under_policy(
                found,
                &state.policies,
                policy,
                new.requested_for.as_ref(),
                state.required_approvals,
            )
        }),
        reminders: policy
            .map(|p| {
                p.reminders
                    .iter()
                    .map(|r| after(*r))
                    .filter(|at| *at < deadline)
                    .collect()
            })
            .unwrap_or_default(),
        escalate_at: policy
            .and_then(|p| p.escalation.as_ref())
            .map(|e| after(e.after))
            .filter(|at| *at < deadline),
    };
    let creation = state
        .store
        .create_release(new, &plan, callback, now)
        .await
        .map_err(|err| database_problem(&err))?;
    // Only a new release or a callback registration queues jobs. One idle worker
    // is enough: waking all of them on every call would have each try to claim.
    if matches!(creation, Creation::Created(_)) || callback.is_some() {
        state.wake_worker.notify_one();
    }
    if let Creation::Created(_) = creation {
        state.metrics.release_created();
        tracing::info!(release.key = %new.key.display(), callback = callback.is_some(), "release received");
    }
    Ok(creation)
}

fn creation_response(
    creation: Creation,
    failsafe: bool,
    now: DateTime<Utc>,
) -> CreateReleaseResponse {
    let (snapshot, created): (ReleaseSnapshot, bool) = match creation {
        Creation::Created(s) => (s, true),
        Creation::Existing(s) => (s, false),
    };
    let body = Json(ReleaseStatusBody::from_snapshot(&snapshot, now));
    match (failsafe, body.status, created) {
        (false, _, true) => {
            CreateReleaseResponse::Accepted(body, snapshot.release.key.status_path())
        }
        (false, _, false) | (true, StatusValue::Approved, _) => {
            CreateReleaseResponse::Current(body)
        }
        (true, StatusValue::Pending, _) => CreateReleaseResponse::NotYetApproved(body),
        (true, StatusValue::Rejected, _) => CreateReleaseResponse::Rejected(body),
        (true, StatusValue::Expired, _) => CreateReleaseResponse::Expired(body),
    }
}

/// The key named by a release's path parameters and `Stage`; `400` if invalid.
pub fn path_key(
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
) -> Result<ReleaseKey, Problem> {
    ReleaseKey::parse(team_project, release_id, stage.unwrap_or_default())
        .map_err(|e| Problem::invalid_field(e.to_string()))
}

/// The release named by its path parameters and `Stage`; `404` if unknown.
pub async fn find_by_path(
    state: &AppState,
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
) -> Result<ReleaseSnapshot, Problem> {
    let key = path_key(team_project, release_id, stage)?;
    state
        .store
        .find_release(&key)
        .await
        .map_err(|err| database_problem(&err))?
        .ok_or_else(|| unknown_release(&key))
}

/// `404` for a release that is not known.
pub fn unknown_release(key: &ReleaseKey) -> Problem {
    Problem::not_found(format!("no release {}", key.display()))
}

/// Logs a database failure and turns it into a 503 problem.
pub fn database_problem(err: &crate::store::StoreError) -> Problem {
    tracing::error!(error = %err, cause = ?err, "database request failed");
    Problem::unavailable("the database is unavailable; try again")
}
