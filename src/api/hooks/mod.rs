//! `POST /hooks/azure-devops`: Azure DevOps service hooks (Web Hooks) start the same flow.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi, param::Header, payload::Json, types::Example,
};
use subtle::ConstantTimeEq;

use crate::{
    api::{
        http::{
            auth::Credentials,
            problem::{ErrorStatuses, Problem, ProblemResponse},
            text::{AnyRule, Text},
        },
        shared::{
            state::{ApiTags, AppState},
            status::ReleaseStatusBody,
        },
    },
    azure::{
        assignment::{Assignment, RaisedApproval},
        hooks::{HookEvent, HookRelease, interpret},
    },
    domain::{
        approver::ApproverEmail,
        link::ReleaseUrl,
        release::{
            AzureApprovalKind, AzureApprovalRef, NewRelease, ReleaseKey, parse_definition_name,
        },
        settlement::AzureDecision,
    },
    flow::{Creation, SettleOutcome},
};

/// A service-hook notification (the envelope of azure-devops.md §3.2); other fields are ignored.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct ServiceHookEvent {
    /// Event id (a GUID).
    #[oai(nullable)]
    pub id: Option<Text<AnyRule>>,
    /// e.g. `ms.vss-release.deployment-approval-pending-event`.
    #[oai(rename = "eventType")]
    pub event_type: Text<AnyRule>,
    /// `rm`, `pipelines`, `tfs`…
    #[oai(rename = "publisherId", nullable)]
    pub publisher_id: Option<Text<AnyRule>>,
    /// The event's resource.
    pub resource: Option<serde_json::Value>,
}

/// What deploy-gate did with an event.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum HookOutcome {
    /// A new release: its approval flow started.
    Accepted,
    /// Another Azure approval of a round already under way (a stage with
    /// several approvers): the round's decision will be written back to it too.
    Joined,
    /// A decision taken in Azure DevOps settled the round (`settled_by` `azure`).
    Settled,
    /// The release was already known (a redelivery or a repeated event), or a
    /// decision in Azure was recorded without settling anything yet.
    Known,
    /// Not an event deploy-gate acts on, or an approval assigned to someone else (see `reason`).
    Ignored,
}

/// Answer to a service hook. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(example, skip_serializing_if_is_none)]
pub struct HookAnswer {
    /// `accepted`, `joined`, `settled`, `known` or `ignored`.
    pub outcome: HookOutcome,
    /// The event type received.
    pub event_type: String,
    /// Why an event was ignored, e.g. whose approval it is.
    pub reason: Option<String>,
    /// The release; absent when the event was ignored.
    pub release: Option<ReleaseStatusBody>,
}

impl Example for ServiceHookEvent {
    fn example() -> Self {
        Self {
            id: Some(Text::new("5a9d6e1c-2b4f-4c1e-9a51-0f7c3f1b2d44")),
            event_type: Text::new("ms.vss-release.deployment-approval-pending-event"),
            publisher_id: Some(Text::new("rm")),
            resource: Some(serde_json::json!({
                "approval": {
                    "id": 17,
                    "approvalType": "preDeploy",
                    "status": "pending",
                    "release": {"id": 386, "name": "Desafio-CD"},
                    "releaseEnvironment": {"name": "prod"}
                },
                "project": {"name": "Devx"}
            })),
        }
    }
}

impl Example for HookAnswer {
    fn example() -> Self {
        Self {
            outcome: HookOutcome::Accepted,
            event_type: "ms.vss-release.deployment-approval-pending-event".into(),
            reason: None,
            release: Some(ReleaseStatusBody::example()),
        }
    }
}

/// Answer to `POST /hooks/azure-devops`.
#[derive(ApiResponse)]
pub enum HookResponse {
    /// The event started the approval flow of a new release.
    #[oai(status = 202)]
    Accepted(Json<HookAnswer>),
    /// A known release or round, or an ignored event (2xx so Azure DevOps does not retry it).
    #[oai(status = 200)]
    Done(Json<HookAnswer>),
}

/// Errors of `POST /hooks/azure-devops`.
pub struct HookErrors;
impl ErrorStatuses for HookErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "Malformed JSON, or a handled event type whose release fields are missing, empty, too long or hold control characters.",
        ),
        (
            401,
            "Missing or wrong credentials (API key as Basic password or Bearer; hook secret header).",
        ),
        (
            403,
            "A browser sent the request from another site (`Sec-Fetch-Site`, `Origin`); nothing changed.",
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
        (
            503,
            "The database, or Azure DevOps (asked whose approval it is), is unavailable; Azure DevOps will retry.",
        ),
    ];
}

/// Service-hook receiver.
pub struct HooksApi;

#[OpenApi(tag = "ApiTags::Hooks")]
impl HooksApi {
    /// Receive an Azure DevOps service hook.
    ///
    /// Subscribe a *Web Hooks* consumer to `ms.vss-release.release-created-event`,
    /// `ms.vss-release.deployment-approval-pending-event` or
    /// `ms.vss-pipelinechecks-events.approval-pending`, with Basic authentication whose password
    /// is `DEPLOY_GATE_API_KEY`. Each starts the approval flow of the release it names (the
    /// approvers come from the policy's Azure DevOps source, such as the approval's assigned
    /// approver, else the approvers API or the static list). Redeliveries are harmless;
    /// other event types answer `200` with outcome `ignored`.
    #[oai(
        path = "/hooks/azure-devops",
        method = "post",
        operation_id = "azureDevOpsHook"
    )]
    async fn receive(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
        /// Must equal `DEPLOY_GATE_HOOK_SECRET` when that is set (add it under "HTTP headers").
        #[oai(name = "X-Deploy-Gate-Hook-Secret")]
        hook_secret: Header<Option<String>>,
        event: Json<ServiceHookEvent>,
    ) -> Result<HookResponse, ProblemResponse<HookErrors>> {
        state.authorize_change(req, &credentials)?;
        check_hook_secret(&state, hook_secret.as_deref())?;
        let resource = event.resource.clone().unwrap_or_default();
        let event_type = event.event_type.to_string();
        let ignored = |reason: Option<String>| {
            HookResponse::Done(Json(HookAnswer {
                outcome: HookOutcome::Ignored,
                event_type: event_type.clone(),
                reason,
                release: None,
            }))
        };
        let release = match interpret(&event.event_type, &resource)
            .map_err(Problem::invalid_field)?
        {
            HookEvent::Ignored => {
                tracing::info!(event_type = %event.event_type, "service hook ignored: event type not handled");
                return Ok(ignored(None));
            }
            HookEvent::Release(release) => *release,
            HookEvent::Settle(decision) => {
                return Ok(settle(&state, event_type, &decision).await?);
            }
        };
        if let Assignment::Theirs(whose) = assignment(&state, &release).await? {
            tracing::info!(event_type = %event.event_type, reason = %whose, "service hook ignored: not deploy-gate's approval");
            return Ok(ignored(Some(whose)));
        }
        let new = new_release(&state, release).await?;
        let creation = state.flow.create_or_find(&new, None).await?;
        let (outcome, snapshot) = match creation {
            Creation::Created(s) => (HookOutcome::Accepted, s),
            Creation::Joined(s) => (HookOutcome::Joined, s),
            Creation::Existing(s) => (HookOutcome::Known, s),
        };
        tracing::info!(event_type = %event.event_type, release.key = %new.key.display(), ?outcome, "service hook received");
        let answer = Json(HookAnswer {
            outcome,
            event_type,
            reason: None,
            release: Some(ReleaseStatusBody::from_snapshot(
                &snapshot,
                state.clock.now(),
            )),
        });
        Ok(match outcome {
            HookOutcome::Accepted => HookResponse::Accepted(answer),
            _ => HookResponse::Done(answer),
        })
    }
}

/// Settles the rounds a decision taken in Azure DevOps concerns.
async fn settle(
    state: &AppState,
    event_type: String,
    decision: &AzureDecision,
) -> Result<HookResponse, Problem> {
    let now = state.clock.now();
    let (outcome, reason, release) = match state.flow.settle(decision).await? {
        SettleOutcome::Settled(rounds) => (
            HookOutcome::Settled,
            None,
            rounds
                .first()
                .map(|round| ReleaseStatusBody::from_snapshot(round, now)),
        ),
        SettleOutcome::Recorded => (HookOutcome::Known, None, None),
        SettleOutcome::Unfollowed => (
            HookOutcome::Ignored,
            Some("deploy-gate follows no round this event concerns".to_owned()),
            None,
        ),
    };
    tracing::info!(
        event_type,
        ?outcome,
        "service hook: decision in Azure DevOps"
    );
    Ok(HookResponse::Done(Json(HookAnswer {
        outcome,
        event_type,
        reason,
        release,
    })))
}

/// Whether the event's approval is deploy-gate's to decide; `503` when Azure
/// DevOps cannot say (it retries the event).
async fn assignment(state: &AppState, release: &HookRelease) -> Result<Assignment, Problem> {
    let Some(approval) = &release.azure_approval else {
        return Ok(Assignment::Ours);
    };
    let raised = RaisedApproval {
        project: &release.team_project,
        release_id: &release.release_id,
        approval_id: &approval.id,
        approver: release.approver.as_deref(),
        step_approvers: release.step_approvers.as_deref(),
    };
    let azure = state.azure.get();
    let asked = match approval.kind {
        AzureApprovalKind::Classic => azure.assignments.classic(&raised).await,
        AzureApprovalKind::Yaml => azure.assignments.yaml(&raised).await,
    };
    asked.map_err(|e| {
        tracing::warn!(
            error = format!("{e:#}"),
            "could not ask Azure DevOps whose approval this is"
        );
        Problem::unavailable("Azure DevOps could not say whose approval this is; retry later")
    })
}

fn check_hook_secret(state: &AppState, presented: Option<&str>) -> Result<(), Problem> {
    state.hook_secret.read(|expected| {
        let Some(expected) = expected else {
            return Ok(());
        };
        match presented {
            Some(value) if bool::from(value.as_bytes().ct_eq(expected.expose().as_bytes())) => {
                Ok(())
            }
            _ => Err(Problem::unauthorized(
                "the X-Deploy-Gate-Hook-Secret header is missing or wrong",
            )),
        }
    })
}

/// The round the event's approval belongs to. A YAML event does not name its
/// attempt: an approval arriving for a decided round it is not part of starts
/// the next attempt (a stage run again).
async fn new_release(state: &AppState, release: HookRelease) -> Result<NewRelease, Problem> {
    let invalid = |e: crate::domain::release::FieldError| Problem::invalid_field(e.to_string());
    let key = ReleaseKey::parse(&release.team_project, &release.release_id, &release.stage)
        .map_err(invalid)?;
    let attempt = match release.attempt {
        Some(attempt) => attempt,
        None => next_yaml_attempt(state, &key, release.azure_approval.as_ref()).await?,
    };
    let key = key.in_round(attempt, release.phase).map_err(invalid)?;
    let mut new = NewRelease::parse(key, &release.release_name, None).map_err(invalid)?;
    new.azure_approval = release.azure_approval;
    new.azure_assigned_to = release.assigned_to;
    // A creator that is not an email address names nobody who could approve.
    new.requested_for = release
        .requested_for
        .and_then(|r| ApproverEmail::parse(&r).ok());
    // The link and the definition name only describe the release: one Azure sends
    // in a form deploy-gate would refuse from a pipeline is left out, not the event.
    new.release_url = release
        .release_url
        .and_then(|url| ReleaseUrl::parse("_links.web", &url).ok().flatten());
    new.definition_name = release
        .definition_name
        .and_then(|name| parse_definition_name(&name).ok().flatten());
    Ok(new)
}

/// The attempt of the latest round of `key`'s stage, or the one after it when
/// that round is decided and `approval` is not one of its own.
async fn next_yaml_attempt(
    state: &AppState,
    key: &ReleaseKey,
    approval: Option<&AzureApprovalRef>,
) -> Result<u32, Problem> {
    let Some(latest) = state.store.latest_round(key, None, Some(key.phase)).await? else {
        return Ok(1);
    };
    let Some(snapshot) = state.store.find_release(&latest).await? else {
        return Ok(latest.attempt);
    };
    if !snapshot.outcome(state.clock.now()).status.is_final() {
        return Ok(latest.attempt);
    }
    let own = state.store.azure_approvals(snapshot.release.id).await?;
    if own.iter().any(|a| Some(&a.approval) == approval) {
        return Ok(latest.attempt);
    }
    Ok(latest.attempt.saturating_add(1))
}
