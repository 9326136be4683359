//! `POST /release` (create or poll) and `GET /release/{TeamProject}/{ReleaseId}`.

mod callback;
mod check;
mod mode;
mod request;
mod values;

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use self::{
    callback::{CallbackHeader, CallbackHeaders},
    check::Asked,
    mode::Mode,
    request::ReleaseRequestBody,
};
use crate::{
    api::{
        http::{
            auth::Credentials,
            outcome::Outcome,
            problem::{ErrorStatuses, ProblemResponse},
            text::{ModeRule, NameRule, PhaseRule, ReleaseIdRule, StageRule, Text},
        },
        shared::{
            lookup::{RoundParams, attempt_example, find, phase_example, round_key},
            state::{ApiTags, AppState},
            status::{StatusJson, StatusValue},
        },
    },
    flow::Creation,
};

/// Answer to `POST /release`.
#[derive(ApiResponse)]
pub enum CreateReleaseResponse {
    /// The release was new: it is stored and its approvers are being notified. `status` is `pending`.
    #[oai(status = 202)]
    Accepted(
        StatusJson,
        /// Where to poll the release's status.
        #[oai(header = "Location")]
        String,
    ),
    /// The release's current status (a known release; with `failsafe=true`, only when approved).
    #[oai(status = 200)]
    Current(StatusJson),
    /// `failsafe=true` only: not decided yet (also for a release created by this call).
    #[oai(status = 423)]
    NotYetApproved(StatusJson),
    /// `failsafe=true`: an approver rejected the release (the status body). As a problem
    /// document (`cross-site-request`): a browser sent the request from another site
    /// (`Sec-Fetch-Site`, `Origin`); nothing was stored.
    #[oai(status = 403)]
    Rejected(StatusJson),
    /// `failsafe=true` only: the deadline passed undecided.
    #[oai(status = 410)]
    Expired(StatusJson),
}

/// Answer to `GET /release/{TeamProject}/{ReleaseId}`.
#[derive(ApiResponse)]
pub enum GetReleaseResponse {
    /// The release's current status (with `failsafe=true`, only when approved).
    #[oai(status = 200)]
    Current(StatusJson),
    /// `failsafe=true` only: not decided yet.
    #[oai(status = 423)]
    NotYetApproved(StatusJson),
    /// `failsafe=true` only: an approver rejected the release.
    #[oai(status = 403)]
    Rejected(StatusJson),
    /// `failsafe=true` only: the deadline passed undecided.
    #[oai(status = 410)]
    Expired(StatusJson),
}

/// Errors of `POST /release`.
pub struct CreateReleaseErrors;
impl ErrorStatuses for CreateReleaseErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "Malformed JSON, or a field missing, empty, too long, of the wrong type or not in its form (an approver's address, `mode`/`Mode`), a field holding an unresolved pipeline macro `$(…)` (`unresolved-macro`), or in callback mode a callback field missing or a `PlanUrl` not on `DEPLOY_GATE_CALLBACK_HOSTS`; nothing was stored.",
        ),
        (401, "The API key is required and was missing or wrong."),
        (
            403,
            "A browser sent the request from another site; nothing was stored (listed with the fail-safe 403).",
        ),
        (
            408,
            "The body did not arrive within `DEPLOY_GATE_HTTP_BODY_TIMEOUT`; the connection is closed.",
        ),
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
    /// **Callback mode** (`?mode=callback`, or the body field `Mode: "callback"`): `PlanUrl`,
    /// `ProjectId`, `HubName`, `PlanId`, `JobId`, `TaskInstanceId` and `AuthToken` (as
    /// headers, as Azure DevOps sends them, or as body fields) are required, `PlanUrl` on a
    /// host of `DEPLOY_GATE_CALLBACK_HOSTS`; the registration is stored with the release, the
    /// task is sent `TaskStarted`, its timeline feed (given `TimelineId`) shows what the
    /// release waits for, each decision and the outcome, and one `TaskCompleted` event is
    /// posted once the release is decided (at once if it already is). Without it (poll mode,
    /// the default) those headers, which Azure sends in every mode, are ignored.
    ///
    /// A field still holding a pipeline macro `$(…)` that Azure left unresolved is refused
    /// (`unresolved-macro`), naming the variable and its YAML equivalent.
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
        req: &Request,
        credentials: Credentials,
        body: Json<ReleaseRequestBody>,
        /// Answer `200` only for an approved release (see above).
        failsafe: Query<Option<bool>>,
        /// `callback` for callback mode; `poll` (the default) ignores the callback headers.
        #[oai(example = "mode_example")]
        mode: Query<Option<Text<ModeRule>>>,
        /// Read in callback mode only: `$(system.CollectionUri)`.
        #[oai(name = "PlanUrl")]
        plan_url: CallbackHeader,
        /// Read in callback mode only: `$(system.TeamProjectId)`.
        #[oai(name = "ProjectId")]
        project_id: CallbackHeader,
        /// Read in callback mode only: `$(system.HostType)`.
        #[oai(name = "HubName")]
        hub_name: CallbackHeader,
        /// Read in callback mode only: `$(system.PlanId)`.
        #[oai(name = "PlanId")]
        plan_id: CallbackHeader,
        /// Read in callback mode only: `$(system.JobId)`.
        #[oai(name = "JobId")]
        job_id: CallbackHeader,
        /// Read in callback mode only: `$(system.TimelineId)`.
        #[oai(name = "TimelineId")]
        timeline_id: CallbackHeader,
        /// Read in callback mode only: `$(system.TaskInstanceId)`.
        #[oai(name = "TaskInstanceId")]
        task_instance_id: CallbackHeader,
        /// Read in callback mode only: `$(system.AccessToken)`; used once, never returned or logged.
        #[oai(name = "AuthToken")]
        auth_token: CallbackHeader,
    ) -> Outcome<CreateReleaseResponse, CreateReleaseErrors> {
        let answered: Result<CreateReleaseResponse, ProblemResponse<CreateReleaseErrors>> = async {
            state.authorize_change(req, &credentials)?;
            let Json(ReleaseRequestBody(body)) = body;
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
            let Asked { new, mode } =
                body.check(state.request_approvers, mode.as_deref(), &headers)?;
            let callback = match mode {
                Mode::Callback => Some(body.plan_callback(headers, &state.callback_hosts)?),
                Mode::Poll => None,
            };
            let failsafe = failsafe.unwrap_or(false);
            // A poll (no callback to register) of a release known and unchanged
            // since the last poll is answered from the poll cache.
            let read_at = match callback {
                Some(_) => None,
                None => match state
                    .poll_cache
                    .answer(&*state.store, &new.key, state.clock.now())
                {
                    Ok(kept) => return Ok(known_release_response(kept, failsafe)),
                    Err(read_at) => Some(read_at),
                },
            };
            let creation = state.flow.create_or_find(&new, callback.as_ref()).await?;
            let now = state.clock.now();
            Ok(match (creation, read_at) {
                (Creation::Created(snapshot), _) if !failsafe => CreateReleaseResponse::Accepted(
                    StatusJson::of(&snapshot, now),
                    snapshot.release.key.status_path(),
                ),
                (Creation::Created(snapshot), _) => {
                    known_release_response(StatusJson::of(&snapshot, now), failsafe)
                }
                (Creation::Existing(snapshot) | Creation::Joined(snapshot), Some(read_at)) => {
                    known_release_response(state.poll_cache.keep(read_at, &snapshot, now), failsafe)
                }
                (Creation::Existing(snapshot) | Creation::Joined(snapshot), None) => {
                    known_release_response(StatusJson::of(&snapshot, now), failsafe)
                }
            })
        }
        .await;
        Outcome(answered)
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
    #[expect(
        clippy::too_many_arguments,
        reason = "each path and query parameter is its own documented parameter"
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
        /// The stage's deployment attempt (`$(Release.AttemptNumber)`, `$(System.StageAttempt)`); without it, the latest round.
        #[oai(
            name = "Attempt",
            validator(minimum(value = "1"), maximum(value = "10000")),
            example = "attempt_example"
        )]
        attempt: Query<Option<u32>>,
        /// `pre` (before the deployment) or `post`; without it, the latest round.
        #[oai(name = "Phase", example = "phase_example")]
        phase: Query<Option<Text<PhaseRule>>>,
        /// Answer `200` only for an approved release.
        failsafe: Query<Option<bool>>,
    ) -> Result<GetReleaseResponse, ProblemResponse<GetReleaseErrors>> {
        state.api_keys.read(|keys| credentials.check(keys))?;
        let key = round_key(
            &state,
            &team_project,
            &release_id,
            stage.as_deref(),
            RoundParams {
                attempt: attempt.0,
                phase: phase.as_deref(),
            },
        )
        .await?;
        let now = state.clock.now();
        let json = match state.poll_cache.answer(&*state.store, &key, now) {
            Ok(kept) => kept,
            Err(read_at) => {
                let snapshot = find(&state, &key).await?;
                state.poll_cache.keep(read_at, &snapshot, now)
            }
        };
        Ok(match (failsafe.unwrap_or(false), json.status) {
            (false, _) | (true, StatusValue::Approved) => GetReleaseResponse::Current(json),
            (true, StatusValue::Pending) => GetReleaseResponse::NotYetApproved(json),
            (true, StatusValue::Rejected) => GetReleaseResponse::Rejected(json),
            (true, StatusValue::Expired) => GetReleaseResponse::Expired(json),
        })
    }
}

/// The example of the `mode` parameter.
fn mode_example() -> Option<Text<ModeRule>> {
    Some(Text::new("callback"))
}

/// `POST /release`'s answer but `202`: `200` with the release's status, or with
/// `failsafe`, `200` only when approved.
fn known_release_response(json: StatusJson, failsafe: bool) -> CreateReleaseResponse {
    match (failsafe, json.status) {
        (false, _) | (true, StatusValue::Approved) => CreateReleaseResponse::Current(json),
        (true, StatusValue::Pending) => CreateReleaseResponse::NotYetApproved(json),
        (true, StatusValue::Rejected) => CreateReleaseResponse::Rejected(json),
        (true, StatusValue::Expired) => CreateReleaseResponse::Expired(json),
    }
}
