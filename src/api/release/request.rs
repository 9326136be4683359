//! The body of `POST /release`.

use std::borrow::Cow;

use poem_openapi::{
    Object,
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, Type},
};
use serde_json::Value;

use super::values::{ApproversValue, AttemptValue, ReleaseIdValue};
use crate::api::http::{
    received::Received,
    text::{CallbackRule, EmailRule, ModeRule, NameRule, StageRule, Text, UrlRule},
};

/// A release to gate. Unknown fields are ignored; `null` is the same as an absent optional field.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct ReleaseRequest {
    /// Human-readable release name, e.g. `$(Release.ReleaseName)`.
    #[oai(rename = "ReleaseName")]
    pub release_name: Received<Text<NameRule>>,
    /// Release id, text or number, e.g. `$(Release.ReleaseId)`.
    #[oai(rename = "ReleaseId")]
    pub release_id: Received<ReleaseIdValue>,
    /// Azure DevOps project, e.g. `$(System.TeamProject)`.
    #[oai(rename = "TeamProject")]
    pub team_project: Received<Text<NameRule>>,
    /// Stage or environment being gated; part of the release's identity. Default empty.
    #[oai(rename = "Stage", nullable)]
    pub stage: Received<Option<Text<StageRule>>>,
    /// Deployment attempt of the stage, from 1 (default): `$(Release.AttemptNumber)`
    /// in classic pipelines, `$(System.StageAttempt)` in YAML. A redeploy is a new
    /// round of approval; part of the release's identity.
    #[oai(rename = "Attempt", nullable)]
    pub attempt: Received<Option<AttemptValue>>,
    /// Approvers for this release; overrides the approvers API and the static list. Taken
    /// only where the service sets `DEPLOY_GATE_REQUEST_APPROVERS=true`; elsewhere a request
    /// naming approvers is refused (`400`, `request-approvers-disabled`).
    #[oai(rename = "Approvers", nullable)]
    pub approvers: Received<Option<ApproversValue>>,
    /// Email of who requested the release, e.g. `$(Release.RequestedForEmail)`: their own approval
    /// does not count unless the project's policy allows it. Empty is the same as absent.
    #[oai(rename = "RequestedFor", nullable)]
    pub requested_for: Received<Option<Text<EmailRule>>>,
    /// The release's or run's page in Azure DevOps, linked from the emails and the approval
    /// page, e.g. `$(Release.ReleaseWebURL)`; an absolute `http` or `https` address without
    /// credentials, at most 2048 characters. Empty is the same as absent.
    #[oai(rename = "ReleaseUrl", nullable)]
    pub release_url: Received<Option<Text<UrlRule>>>,
    /// The release definition or pipeline name shown to approvers, e.g.
    /// `$(Release.DefinitionName)` or `$(Build.DefinitionName)`. Empty is the same as absent.
    #[oai(rename = "DefinitionName", nullable)]
    pub definition_name: Received<Option<Text<StageRule>>>,
    /// `callback` asks for callback mode, as `?mode=callback` does; `poll` (the default)
    /// ignores the callback fields. If both are given they must agree.
    #[oai(rename = "Mode", nullable)]
    pub mode: Received<Option<Text<ModeRule>>>,
    /// Read in callback mode only: `$(system.CollectionUri)`. Also accepted as a header.
    #[oai(rename = "PlanUrl", nullable)]
    pub plan_url: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.TeamProjectId)`. Also accepted as a header.
    #[oai(rename = "ProjectId", nullable)]
    pub project_id: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.HostType)`. Also accepted as a header.
    #[oai(rename = "HubName", nullable)]
    pub hub_name: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.PlanId)`. Also accepted as a header.
    #[oai(rename = "PlanId", nullable)]
    pub plan_id: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.JobId)`. Also accepted as a header.
    #[oai(rename = "JobId", nullable)]
    pub job_id: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.TimelineId)`. Also accepted as a header.
    #[oai(rename = "TimelineId", nullable)]
    pub timeline_id: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.TaskInstanceId)`. Also accepted as a header.
    #[oai(rename = "TaskInstanceId", nullable)]
    pub task_instance_id: Received<Option<Text<CallbackRule>>>,
    /// Read in callback mode only: `$(system.AccessToken)`; used once for the callback, never returned or logged.
    #[oai(rename = "AuthToken", write_only, nullable)]
    pub auth_token: Received<Option<Text<CallbackRule>>>,
}

/// The body of `POST /release` as received, documented as [`ReleaseRequest`]: any JSON
/// object, its fields checked all at once by [`ReleaseRequest::check`].
pub struct ReleaseRequestBody(pub ReleaseRequest);

impl Type for ReleaseRequestBody {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        ReleaseRequest::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        ReleaseRequest::schema_ref()
    }

    fn register(registry: &mut Registry) {
        ReleaseRequest::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromJSON for ReleaseRequestBody {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        if !value.is_object() {
            return Err(ParseError::custom("the body must be a JSON object"));
        }
        ReleaseRequest::parse_from_json(Some(value))
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

impl poem_openapi::types::Example for ReleaseRequest {
    fn example() -> Self {
        Self {
            release_name: Received::new(Text::new("Desafio-CD")),
            release_id: Received::new(ReleaseIdValue::Text(Text::new("386"))),
            team_project: Received::new(Text::new("Devx")),
            stage: Received::new(Some(Text::new("production"))),
            attempt: Received::new(Some(AttemptValue::Text("1".into()))),
            approvers: Received::new(Some(ApproversValue::List(vec![
                "ana@example.com".into(),
                "bo@example.com".into(),
            ]))),
            requested_for: Received::new(Some(Text::new("cy@example.com"))),
            release_url: Received::new(Some(Text::new(
                "https://dev.azure.com/contoso/Devx/_releaseProgress?_a=release-pipeline-progress&releaseId=386",
            ))),
            definition_name: Received::new(Some(Text::new("Desafio.CD"))),
            mode: Received::new(Some(Text::new("poll"))),
            plan_url: Received::new(None),
            project_id: Received::new(None),
            hub_name: Received::new(None),
            plan_id: Received::new(None),
            job_id: Received::new(None),
            timeline_id: Received::new(None),
            task_instance_id: Received::new(None),
            auth_token: Received::new(None),
        }
    }
}
