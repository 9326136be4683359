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
    azure::hooks::{HookEvent, HookRelease, interpret},
    domain::{
        approver::ApproverEmail,
        release::{NewRelease, ReleaseKey},
    },
    flow::Creation,
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
    /// The release was already known (a redelivery or a repeated event): nothing changed.
    Known,
    /// Not an event deploy-gate acts on.
    Ignored,
}

/// Answer to a service hook. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(example, skip_serializing_if_is_none)]
pub struct HookAnswer {
    /// `accepted`, `known` or `ignored`.
    pub outcome: HookOutcome,
    /// The event type received.
    pub event_type: String,
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
    /// A known release, or an ignored event type (2xx so Azure DevOps does not retry it).
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
        (503, "The database is unavailable; Azure DevOps will retry."),
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
    /// approvers come from the approvers API or the static list). Redeliveries are harmless;
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
        let release = match interpret(&event.event_type, &resource)
            .map_err(Problem::invalid_field)?
        {
            HookEvent::Ignored => {
                tracing::info!(event_type = %event.event_type, "service hook ignored: event type not handled");
                return Ok(HookResponse::Done(Json(HookAnswer {
                    outcome: HookOutcome::Ignored,
                    event_type: event.event_type.to_string(),
                    release: None,
                })));
            }
            HookEvent::Release(release) => release,
        };
        let new = new_release(release)?;
        let creation = state.flow.create_or_find(&new, None).await?;
        let (outcome, snapshot) = match creation {
            Creation::Created(s) => (HookOutcome::Accepted, s),
            Creation::Existing(s) => (HookOutcome::Known, s),
        };
        tracing::info!(event_type = %event.event_type, release.key = %new.key.display(), ?outcome, "service hook received");
        let answer = Json(HookAnswer {
            outcome,
            event_type: event.event_type.to_string(),
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

fn check_hook_secret(state: &AppState, presented: Option<&str>) -> Result<(), Problem> {
    let Some(expected) = &state.hook_secret else {
        return Ok(());
    };
    match presented {
        Some(value) if bool::from(value.as_bytes().ct_eq(expected.expose().as_bytes())) => Ok(()),
        _ => Err(Problem::unauthorized(
            "the X-Deploy-Gate-Hook-Secret header is missing or wrong",
        )),
    }
}

fn new_release(release: HookRelease) -> Result<NewRelease, Problem> {
    let invalid = |e: crate::domain::release::FieldError| Problem::invalid_field(e.to_string());
    let key = ReleaseKey::parse(&release.team_project, &release.release_id, &release.stage)
        .map_err(invalid)?;
    let mut new = NewRelease::parse(key, &release.release_name, None).map_err(invalid)?;
    new.azure_approval_id = release.azure_approval_id;
    // A creator that is not an email address names nobody who could approve.
    new.requested_for = release
        .requested_for
        .and_then(|r| ApproverEmail::parse(&r).ok());
    Ok(new)
}
