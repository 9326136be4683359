//! Operator actions on a release, guarded like `/release`: cancel its approval,
//! or re-send one approver's email. Both refuse cross-site requests.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    api::{
        http::{
            auth::Credentials,
            problem::{ErrorStatuses, Problem, ProblemCode, ProblemResponse},
            text::{
                ApproverRule, CommentRule, NameRule, PhaseRule, ReleaseIdRule, StageRule, Text,
            },
        },
        shared::{
            lookup::{RoundParams, attempt_example, find_by_path, phase_example},
            state::{ApiTags, AppState},
            status::ReleaseStatusBody,
        },
    },
    domain::approver::ApproverEmail,
    domain::snapshot::ReleaseSnapshot,
    flow::{CancelOutcome, ResendOutcome},
};

/// Answer to a cancellation.
#[derive(ApiResponse)]
pub enum CancelResponse {
    /// Cancelled: the release is `rejected`, its approval links no longer work, and Azure DevOps is told.
    #[oai(status = 200)]
    Cancelled(Json<ReleaseStatusBody>),
}

/// Answer to a re-send.
#[derive(ApiResponse)]
pub enum ResendResponse {
    /// A new email is queued; the approver's earlier links no longer work.
    #[oai(status = 202)]
    Queued(Json<ReleaseStatusBody>),
}

/// Errors of the operator actions.
pub struct ActionErrors;
impl ErrorStatuses for ActionErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "A parameter is invalid; nothing changed."),
        (401, "The API key is required and was missing or wrong."),
        (
            403,
            "A browser sent the request from another site (`Sec-Fetch-Site`, `Origin`); nothing changed.",
        ),
        (404, "No such release, or no such approver of it."),
        (
            409,
            "The release is already decided, expired or cancelled, or the approver already decided.",
        ),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Operator actions.
pub struct OperatorApi;

#[OpenApi(tag = "ApiTags::Release")]
impl OperatorApi {
    /// Cancel a release's approval.
    ///
    /// For a pending release: it becomes `rejected` (with `cancelled` set), every approval link
    /// stops working, and callbacks and the Azure DevOps write-back report the rejection.
    #[oai(
        path = "/release/:TeamProject/:ReleaseId/cancel",
        method = "post",
        operation_id = "cancelRelease"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "each path and query parameter is its own documented parameter"
    )]
    async fn cancel(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
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
        /// Why; shown on the release and to approvers who open their link. At most 2000 characters.
        reason: Query<Option<Text<CommentRule>>>,
    ) -> Result<CancelResponse, ProblemResponse<ActionErrors>> {
        state.authorize_change(req, &credentials)?;
        let snapshot = find_by_path(
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
        let reason = reason
            .0
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let outcome = state
            .flow
            .cancel(snapshot.release.id, reason.as_deref())
            .await?;
        let now = state.clock.now();
        match outcome {
            CancelOutcome::Cancelled(snapshot) => Ok(CancelResponse::Cancelled(Json(
                ReleaseStatusBody::from_snapshot(&snapshot, now),
            ))),
            CancelOutcome::AlreadyFinal(snapshot) => Err(final_problem(&snapshot, now).into()),
        }
    }

    /// Re-send one approver's email.
    ///
    /// Mints a new link for an approver who has not decided yet and emails it; the approver's
    /// earlier links stop working (use it when an email was lost or forwarded by mistake).
    #[oai(
        path = "/release/:TeamProject/:ReleaseId/approvers/:email/resend",
        method = "post",
        operation_id = "resendApproval"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "each path and query parameter is its own documented parameter"
    )]
    async fn resend(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
        /// The Azure DevOps project.
        #[oai(name = "TeamProject")]
        team_project: Path<Text<NameRule>>,
        /// The release id.
        #[oai(name = "ReleaseId")]
        release_id: Path<Text<ReleaseIdRule>>,
        /// The approver's email address.
        email: Path<Text<ApproverRule>>,
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
    ) -> Result<ResendResponse, ProblemResponse<ActionErrors>> {
        state.authorize_change(req, &credentials)?;
        // Text that is not an address names no approver.
        let approver = ApproverEmail::parse(&email)
            .map_err(|e| Problem::not_found(format!("no approver {}", e.address)))?;
        let snapshot = find_by_path(
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
        let outcome = state
            .flow
            .resend(snapshot.release.id, approver.as_str())
            .await?;
        let now = state.clock.now();
        match outcome {
            ResendOutcome::Queued(snapshot) => {
                tracing::info!(release.key = %snapshot.release.key.display(), to = %approver.masked(),
                    "approval email re-sent by an operator");
                Ok(ResendResponse::Queued(Json(
                    ReleaseStatusBody::from_snapshot(&snapshot, now),
                )))
            }
            ResendOutcome::AlreadyDecided(_) => Err(Problem::new(
                ProblemCode::ApproverDecided,
                format!("{approver} already decided; there is nothing to re-send"),
            )
            .into()),
            ResendOutcome::ReleaseFinal(snapshot) => Err(final_problem(&snapshot, now).into()),
            ResendOutcome::UnknownApprover => Err(Problem::not_found(format!(
                "{approver} is not an approver of release {}",
                snapshot.release.key.display()
            ))
            .into()),
        }
    }
}

fn final_problem(snapshot: &ReleaseSnapshot, now: chrono::DateTime<chrono::Utc>) -> Problem {
    let status = snapshot.outcome(now).status;
    let how = if snapshot.release.cancelled.is_some() {
        "cancelled"
    } else {
        status.as_str()
    };
    Problem::new(
        ProblemCode::ReleaseFinal,
        format!("the release is already {how}; nothing changed"),
    )
}
