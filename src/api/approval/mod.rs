//! `GET /approval?token=…` (view, never changes state) and `POST /approval` (decide).

mod page;
mod sign_in;
mod view;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    OpenApi,
    param::Query,
    payload::{Form, Json},
};

pub use self::sign_in::SignInApi;
use self::view::{ApprovalView, DecisionBody, DecisionInput, DecisionRequest, SignedInBody};
use crate::api::{
    http::{
        negotiate::{Negotiated, wants_html},
        problem::{ErrorStatuses, Problem, ProblemCode},
        refusals::Refusals,
        text::{CommentRule, TextRule},
    },
    pages::{Audience, ProblemPage},
    shared::{
        state::{ApiTags, AppState},
        status::{ReleaseStatusBody, StatusValue},
    },
};
use crate::{
    domain::policy::Decision,
    domain::snapshot::{ApprovalRecord, ReleaseSnapshot},
    flow::DecisionOutcome,
    token::{ApprovalClaims, TokenError},
};

/// Errors of `GET /approval`.
pub struct ViewErrors;
impl ErrorStatuses for ViewErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "The token parameter is missing."),
        (
            401,
            "The token is malformed, tampered with, expired, replaced by a re-sent one, or not issued by this service.",
        ),
        (403, "The token does not match the approval it names."),
        (
            410,
            "An operator cancelled the release's approval, or it was decided in Azure DevOps.",
        ),
        (
            429,
            "Too many approval requests from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Errors of `POST /approval`.
pub struct DecideErrors;
impl ErrorStatuses for DecideErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "Malformed body, or an unknown decision, or a comment that is too long or holds control characters other than line breaks and tabs; nothing was stored.",
        ),
        (
            401,
            "The token is malformed, tampered with, expired, replaced by a re-sent one, or not issued by this service.",
        ),
        (
            403,
            "The token does not match the approval it names, or the release's policy requires a sign-in that this browser has not made.",
        ),
        (
            409,
            "This approver already made the other decision, or the release is already decided or expired.",
        ),
        (
            410,
            "An operator cancelled the release's approval, or it was decided in Azure DevOps.",
        ),
        (
            408,
            "The body did not arrive within `DEPLOY_GATE_HTTP_BODY_TIMEOUT`; the connection is closed.",
        ),
        (413, "The body is larger than the configured limit."),
        (415, "The body is neither JSON nor a form."),
        (
            429,
            "Too many approval requests from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Approver operations, guarded by the approval token alone.
pub struct ApprovalApi;

#[OpenApi(tag = "ApiTags::Approval")]
impl ApprovalApi {
    /// View an approval.
    ///
    /// Browsers (`Accept: text/html`) get a page with the release, the decisions so far, and
    /// Approve / Reject buttons; API clients get JSON. Never changes anything, so mail scanners
    /// that prefetch links cannot decide a release.
    #[oai(path = "/approval", method = "get", operation_id = "viewApproval")]
    async fn view(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// The token from the approval email.
        token: Query<String>,
    ) -> Result<Negotiated<ApprovalView>, ProblemPage<ViewErrors>> {
        let html = wants_html(req);
        let (approval, snapshot) = authorize(&state, &token)
            .await
            .map_err(|p| ProblemPage::new(p, html, Audience::Approver))?;
        let view = approval_view(&approval, &snapshot, state.clock.now());
        Ok(if html {
            let signed_in = sign_in::signed_in_identity(&state, req, approval.id);
            let email = signed_in.as_ref().map(|i| i.email.as_str());
            Negotiated::Html(page::approval_page(&view, &token, email))
        } else {
            Negotiated::Json(view)
        })
    }

    /// Approve or reject.
    ///
    /// Records who decided what, when, and why. Repeating the same decision changes nothing and
    /// answers `200`; the opposite decision, or any decision once the release is decided or
    /// expired, answers `409`.
    #[oai(path = "/approval", method = "post", operation_id = "decideApproval")]
    async fn decide(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: DecisionBody,
    ) -> Result<Negotiated<ApprovalView>, ProblemPage<DecideErrors>> {
        let html = wants_html(req);
        let input = match body {
            DecisionBody::Json(Json(input)) | DecisionBody::Form(Form(input)) => input,
        };
        decide(&state, req, &input)
            .await
            .map(|view| {
                if html {
                    Negotiated::Html(page::result_page(&view))
                } else {
                    Negotiated::Json(view)
                }
            })
            .map_err(|p| ProblemPage::new(p, html, Audience::Approver))
    }
}

async fn decide(
    state: &AppState,
    req: &Request,
    input: &DecisionRequest,
) -> Result<ApprovalView, Problem> {
    let (token, decision, comment) = check_decision(input)?;
    let (approval, snapshot) = authorize(state, token).await?;
    let identity = if sign_in::required(&snapshot) {
        let identity = sign_in::signed_in_identity(state, req, approval.id).ok_or_else(|| {
            Problem::new(
                ProblemCode::SignInRequired,
                "this release's policy asks approvers to sign in before deciding: open the \
                 approval link in a browser and sign in",
            )
        })?;
        Some(identity)
    } else {
        None
    };
    let outcome = state
        .flow
        .decide(approval.id, decision, comment.as_deref(), identity.as_ref())
        .await?;
    let snapshot = match outcome {
        DecisionOutcome::Recorded(snapshot) | DecisionOutcome::Unchanged(snapshot) => snapshot,
        DecisionOutcome::Conflicting(existing) => {
            return Err(Problem::new(
                ProblemCode::AlreadyDecided,
                format!(
                    "you already {} this release; a decision cannot be changed",
                    existing.as_str()
                ),
            ));
        }
        DecisionOutcome::ReleaseFinal(snapshot) => {
            let status = snapshot.outcome(state.clock.now()).status;
            return Err(Problem::new(
                ProblemCode::ReleaseFinal,
                format!(
                    "the release is already {}; no more decisions are taken",
                    status.as_str()
                ),
            ));
        }
        DecisionOutcome::UnknownApproval => return Err(unknown_approval()),
    };
    let approval = snapshot.approval(approval.id).cloned().unwrap_or(approval);
    Ok(approval_view(&approval, &snapshot, state.clock.now()))
}

/// The token, the decision and the comment of a decision, every refused field named at once.
fn check_decision(input: &DecisionRequest) -> Result<(&str, Decision, Option<String>), Problem> {
    let mut refusals = Refusals::default();
    let token = input.token.read(&mut refusals, "token");
    let decision = input
        .decision
        .read(&mut refusals, "decision")
        .map(|d| match d {
            DecisionInput::Approve => Decision::Approve,
            DecisionInput::Reject => Decision::Reject,
        });
    let comment = input
        .comment
        .read(&mut refusals, "comment")
        .and_then(|c| refusals.check("comment", clean_comment(c.as_deref().unwrap_or_default())));
    refusals.finish()?;
    match (token, decision, comment) {
        (Some(token), Some(decision), Some(comment)) => Ok((token, decision, comment)),
        // Every `None` above recorded a refusal, so `finish` has failed already.
        _ => Err(Problem::internal()),
    }
}

/// The comment without surrounding spaces (`None` if blank), judged as sent like the schema says.
fn clean_comment(text: &str) -> Result<Option<String>, Problem> {
    let max = CommentRule::MAX_CHARS.unwrap_or(usize::MAX);
    if text.chars().count() > max {
        return Err(Problem::invalid_field(format!(
            "comment: must be at most {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(Problem::invalid_field(
            "comment: must not contain control characters",
        ));
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Verifies the token and loads the approval it names and its release.
async fn authorize(
    state: &AppState,
    token: &str,
) -> Result<(ApprovalRecord, ReleaseSnapshot), Problem> {
    let claims = state
        .tokens
        .get()
        .verify(token.trim())
        .map_err(token_problem)?;
    let approval = state
        .store
        .approval(claims.jti)
        .await?
        .ok_or_else(unknown_approval)?;
    let snapshot = state
        .store
        .release_by_id(approval.release_id)
        .await?
        .ok_or_else(unknown_approval)?;
    if let Some(cancellation) = &snapshot.release.cancelled {
        let reason = cancellation
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Err(Problem::new(
            ProblemCode::ApprovalCancelled,
            format!("an operator cancelled the approval of this release{reason}"),
        ));
    }
    if let Some(settlement) = &snapshot.release.settled {
        return Err(Problem::new(
            ProblemCode::DecidedInAzure,
            format!(
                "this release was decided in Azure DevOps, not here: {}",
                settlement.reason
            ),
        ));
    }
    // The token's whole-second `exp` may outlive the deadline by a fraction of a second.
    if state.clock.now() >= snapshot.release.deadline {
        return Err(token_problem(TokenError::Expired));
    }
    if claims.generation != approval.link_generation {
        return Err(Problem::new(
            ProblemCode::TokenSuperseded,
            "a newer approval email was sent to you; use the link in the latest one",
        ));
    }
    if !token_matches(&claims, &approval, &snapshot) {
        tracing::warn!(approval.id = %approval.id, "token claims do not match the approval they name");
        return Err(Problem::new(
            ProblemCode::TokenMismatch,
            "this token does not belong to that approval or release",
        ));
    }
    Ok((approval, snapshot))
}

fn token_matches(
    claims: &ApprovalClaims,
    approval: &ApprovalRecord,
    snapshot: &ReleaseSnapshot,
) -> bool {
    claims.sub == approval.email && claims.release_key() == snapshot.release.key
}

fn token_problem(err: TokenError) -> Problem {
    let (code, detail) = match err {
        TokenError::Expired => (
            ProblemCode::TokenExpired,
            "the approval deadline has passed",
        ),
        TokenError::Malformed => (ProblemCode::TokenInvalid, "the token is malformed"),
        TokenError::BadSignature | TokenError::WrongAudience => (
            ProblemCode::TokenInvalid,
            "the token was altered or was not issued by this service",
        ),
    };
    Problem::new(code, detail)
}

fn unknown_approval() -> Problem {
    Problem::new(
        ProblemCode::TokenUnknown,
        "the approval this token names does not exist here",
    )
}

fn approval_view(
    approval: &ApprovalRecord,
    snapshot: &ReleaseSnapshot,
    now: DateTime<Utc>,
) -> ApprovalView {
    let release = ReleaseStatusBody::from_snapshot(snapshot, now);
    let status = release.status;
    ApprovalView {
        approver: approval.email.clone(),
        decision: approval.decided.map(|d| d.decision).into(),
        decided_at: approval.decided.map(|d| d.at),
        comment: approval.comment.clone(),
        can_decide: approval.decided.is_none() && status == StatusValue::Pending,
        sign_in_required: snapshot.release.rule.sign_in,
        signed_in: approval.signed_in.as_ref().map(|i| SignedInBody {
            issuer: i.issuer.clone(),
            subject: i.subject.clone(),
            email: i.email.clone(),
        }),
        status,
        release,
    }
}
