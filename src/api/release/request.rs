//! The body of `POST /release`.

use std::borrow::Cow;

use poem_openapi::{
    Object,
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, Type},
};
use serde_json::Value;

use super::values::{ApproversValue, AttemptValue, ReleaseIdValue};
use crate::{
    api::http::{
        problem::{Problem, ProblemCode},
        text::{CallbackRule, EmailRule, ModeRule, NameRule, StageRule, Text, UrlRule},
    },
    domain::{
        approver::ApproverEmail,
        link::ReleaseUrl,
        macros::unresolved_macro,
        release::{FieldError, NewRelease, Phase, ReleaseKey, parse_definition_name},
    },
};

/// A release to gate. Unknown fields are ignored; `null` is the same as an absent optional field.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct ReleaseRequest {
    /// Human-readable release name, e.g. `$(Release.ReleaseName)`.
    #[oai(rename = "ReleaseName")]
    pub release_name: Text<NameRule>,
    /// Release id, text or number, e.g. `$(Release.ReleaseId)`.
    #[oai(rename = "ReleaseId")]
    pub release_id: ReleaseIdValue,
    /// Azure DevOps project, e.g. `$(System.TeamProject)`.
    #[oai(rename = "TeamProject")]
    pub team_project: Text<NameRule>,
    /// Stage or environment being gated; part of the release's identity. Default empty.
    #[oai(rename = "Stage", nullable)]
    pub stage: Option<Text<StageRule>>,
    /// Deployment attempt of the stage, from 1 (default): `$(Release.AttemptNumber)`
    /// in classic pipelines, `$(System.StageAttempt)` in YAML. A redeploy is a new
    /// round of approval; part of the release's identity.
    #[oai(rename = "Attempt", nullable)]
    pub attempt: Option<AttemptValue>,
    /// Approvers for this release; overrides the approvers API and the static list. Taken
    /// only where the service sets `DEPLOY_GATE_REQUEST_APPROVERS=true`; elsewhere a request
    /// naming approvers is refused (`400`, `request-approvers-disabled`).
    #[oai(rename = "Approvers", nullable)]
    pub approvers: Option<ApproversValue>,
    /// Email of who requested the release, e.g. `$(Release.RequestedForEmail)`: their own approval
    /// does not count unless the project's policy allows it. Empty is the same as absent.
    #[oai(rename = "RequestedFor", nullable)]
    pub requested_for: Option<Text<EmailRule>>,
    /// The release's or run's page in Azure DevOps, linked from the emails and the approval
    /// page, e.g. `$(Release.ReleaseWebURL)`; an absolute `http` or `https` address without
    /// credentials, at most 2048 characters. Empty is the same as absent.
    #[oai(rename = "ReleaseUrl", nullable)]
    pub release_url: Option<Text<UrlRule>>,
    /// The release definition or pipeline name shown to approvers, e.g.
    /// `$(Release.DefinitionName)` or `$(Build.DefinitionName)`. Empty is the same as absent.
    #[oai(rename = "DefinitionName", nullable)]
    pub definition_name: Option<Text<StageRule>>,
    /// `callback` asks for callback mode, as `?mode=callback` does; `poll` (the default)
    /// ignores the callback fields. If both are given they must agree.
    #[oai(rename = "Mode", nullable)]
    pub mode: Option<Text<ModeRule>>,
    /// Read in callback mode only: `$(system.CollectionUri)`. Also accepted as a header.
    #[oai(rename = "PlanUrl", nullable)]
    pub plan_url: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.TeamProjectId)`. Also accepted as a header.
    #[oai(rename = "ProjectId", nullable)]
    pub project_id: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.HostType)`. Also accepted as a header.
    #[oai(rename = "HubName", nullable)]
    pub hub_name: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.PlanId)`. Also accepted as a header.
    #[oai(rename = "PlanId", nullable)]
    pub plan_id: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.JobId)`. Also accepted as a header.
    #[oai(rename = "JobId", nullable)]
    pub job_id: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.TimelineId)`. Also accepted as a header.
    #[oai(rename = "TimelineId", nullable)]
    pub timeline_id: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.TaskInstanceId)`. Also accepted as a header.
    #[oai(rename = "TaskInstanceId", nullable)]
    pub task_instance_id: Option<Text<CallbackRule>>,
    /// Read in callback mode only: `$(system.AccessToken)`; used once for the callback, never returned or logged.
    #[oai(rename = "AuthToken", write_only, nullable)]
    pub auth_token: Option<Text<CallbackRule>>,
}

/// The body of `POST /release` as received, documented as [`ReleaseRequest`].
///
/// poem-openapi names no field when one is missing or of the wrong JSON type, so the types are
/// checked here first: `"ReleaseName": true` or `"ReleaseId": 1.5` is refused by name.
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
        check_json_types(&value).map_err(ParseError::custom)?;
        ReleaseRequest::parse_from_json(Some(value))
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

/// Optional text fields of [`ReleaseRequest`].
const OPTIONAL_TEXT_FIELDS: [&str; 13] = [
    "Stage",
    "RequestedFor",
    "ReleaseUrl",
    "DefinitionName",
    "Mode",
    "PlanUrl",
    "ProjectId",
    "HubName",
    "PlanId",
    "JobId",
    "TimelineId",
    "TaskInstanceId",
    "AuthToken",
];

/// Refuses, by field name, a body whose fields are missing or of the wrong JSON type.
fn check_json_types(body: &Value) -> Result<(), String> {
    let Value::Object(fields) = body else {
        return Err("the body must be a JSON object".to_owned());
    };
    let present = |name: &str| fields.get(name).filter(|v| !v.is_null());
    for name in ["ReleaseName", "ReleaseId", "TeamProject"] {
        if present(name).is_none() {
            return Err(format!("{name}: is required"));
        }
    }
    for name in ["ReleaseName", "TeamProject"] {
        if !present(name).is_some_and(Value::is_string) {
            return Err(format!("{name}: must be a string"));
        }
    }
    if !present("ReleaseId").is_some_and(|v| v.is_string() || v.is_i64()) {
        return Err("ReleaseId: must be a string or a whole number".to_owned());
    }
    if let Some(name) = OPTIONAL_TEXT_FIELDS
        .into_iter()
        .find(|name| present(name).is_some_and(|v| !v.is_string()))
    {
        return Err(format!("{name}: must be a string"));
    }
    match present("Approvers") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(
            "Approvers: must be a list of email addresses, or one string of them separated by `;` or `,`"
                .to_owned(),
        ),
    }
}

impl poem_openapi::types::Example for ReleaseRequest {
    fn example() -> Self {
        Self {
            release_name: Text::new("Desafio-CD"),
            release_id: ReleaseIdValue::Text(Text::new("386")),
            team_project: Text::new("Devx"),
            stage: Some(Text::new("production")),
            attempt: Some(AttemptValue::Text("1".into())),
            approvers: Some(ApproversValue::List(vec![
                "ana@example.com".into(),
                "bo@example.com".into(),
            ])),
            requested_for: Some(Text::new("cy@example.com")),
            release_url: Some(Text::new(
                "https://dev.azure.com/contoso/Devx/_releaseProgress?_a=release-pipeline-progress&releaseId=386",
            )),
            definition_name: Some(Text::new("Desafio.CD")),
            mode: Some(Text::new("poll")),
            plan_url: None,
            project_id: None,
            hub_name: None,
            plan_id: None,
            job_id: None,
            timeline_id: None,
            task_instance_id: None,
            auth_token: None,
        }
    }
}

impl ReleaseRequest {
    /// Refuses a release field (any but the callback fields, which only callback mode
    /// reads) that still holds a pipeline macro `$(…)`.
    pub fn refuse_unresolved_macros(&self) -> Result<(), Problem> {
        let release_id = self.release_id.to_text();
        let mut fields: Vec<(&str, &str)> = vec![
            ("ReleaseName", &self.release_name),
            ("ReleaseId", &release_id),
            ("TeamProject", &self.team_project),
        ];
        fields.extend(self.stage.as_deref().map(|v| ("Stage", v)));
        let attempt = self.attempt.as_ref().map(AttemptValue::to_text);
        fields.extend(attempt.as_deref().map(|v| ("Attempt", v)));
        fields.extend(self.requested_for.as_deref().map(|v| ("RequestedFor", v)));
        fields.extend(self.release_url.as_deref().map(|v| ("ReleaseUrl", v)));
        fields.extend(
            self.definition_name
                .as_deref()
                .map(|v| ("DefinitionName", v)),
        );
        fields.extend(self.mode.as_deref().map(|v| ("Mode", v)));
        match &self.approvers {
            Some(ApproversValue::Text(text)) => fields.push(("Approvers", text)),
            Some(ApproversValue::List(items)) => {
                fields.extend(items.iter().map(|item| ("Approvers", item.as_str())));
            }
            None => {}
        }
        match fields
            .into_iter()
            .find_map(|(name, value)| Some((name, unresolved_macro(value)?)))
        {
            Some((name, found)) => Err(Problem::unresolved_macro(name, found)),
            None => Ok(()),
        }
    }

    /// Refuses a request naming approvers unless `DEPLOY_GATE_REQUEST_APPROVERS`
    /// allows it: otherwise whoever can edit a pipeline could name themselves.
    /// An empty `Approvers` names nobody and is let through.
    pub fn refuse_approvers_unless(&self, allowed: bool) -> Result<(), Problem> {
        let names_some = match &self.approvers {
            Some(ApproversValue::Text(text)) => !text.trim().is_empty(),
            Some(ApproversValue::List(items)) => !items.is_empty(),
            None => false,
        };
        if names_some && !allowed {
            return Err(Problem::new(
                ProblemCode::RequestApproversDisabled,
                "Approvers: this service does not take approvers from the request; they come \
                 from its approval policies, approvers API or static list (an operator can \
                 set DEPLOY_GATE_REQUEST_APPROVERS=true to let requests name them)",
            ));
        }
        Ok(())
    }

    /// Validates the release fields.
    pub fn parse(&self) -> Result<NewRelease, Problem> {
        let invalid = |e: FieldError| Problem::invalid_field(e.to_string());
        let key = ReleaseKey::parse(
            &self.team_project,
            &self.release_id.to_text(),
            self.stage.as_deref().unwrap_or_default(),
        )
        .map_err(invalid)?;
        let attempt = self.attempt.as_ref().map(AttemptValue::parse).transpose()?;
        let key = key
            .in_round(attempt.unwrap_or(1), Phase::Pre)
            .map_err(|e| Problem::invalid_field(e.to_string()))?;
        let approvers = self
            .approvers
            .as_ref()
            .map(ApproversValue::parse)
            .transpose()?;
        let requested_for = self
            .requested_for
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(|r| {
                ApproverEmail::parse(r)
                    .map_err(|e| Problem::invalid_field(format!("RequestedFor: {e}")))
            })
            .transpose()?;
        let mut new = NewRelease::parse(key, &self.release_name, approvers).map_err(invalid)?;
        new.requested_for = requested_for;
        new.release_url = self
            .release_url
            .as_deref()
            .map(|url| ReleaseUrl::parse("ReleaseUrl", url))
            .transpose()
            .map_err(invalid)?
            .flatten();
        new.definition_name = self
            .definition_name
            .as_deref()
            .map(parse_definition_name)
            .transpose()
            .map_err(invalid)?
            .flatten();
        Ok(new)
    }
}
