//! The body of `POST /release`.

use std::borrow::Cow;

use poem_openapi::{
    Object,
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, Type},
};
use serde_json::Value;

use super::{
    callback::CallbackHeaders,
    mode::{Mode, requested_mode},
    values::{ApproversValue, AttemptValue, ReleaseIdValue},
};
use crate::{
    api::http::{
        problem::{Problem, ProblemCode},
        received::Received,
        refusals::Refusals,
        text::{CallbackRule, EmailRule, ModeRule, NameRule, StageRule, Text, UrlRule},
    },
    domain::{
        approver::ApproverEmail,
        link::ReleaseUrl,
        macros::unresolved_macro,
        release::{
            FieldError, NewRelease, Phase, ReleaseKey, check_approver_count, parse_definition_name,
            parse_release_id, parse_release_name, parse_stage,
        },
    },
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

/// What a body that passed every check asks for.
pub struct Asked {
    /// The release, validated.
    pub new: NewRelease,
    /// Poll or callback mode.
    pub mode: Mode,
}

impl ReleaseRequest {
    /// Checks every field in one pass, with the `mode` parameter and the callback
    /// headers: missing, of the wrong type, holding a pipeline macro `$(…)` (callback
    /// fields excepted: only callback mode reads them), or breaking the field's rules;
    /// `Approvers` only where `approvers_allowed` (otherwise whoever can edit a
    /// pipeline could name themselves). Fails with one problem naming every refusal.
    pub fn check(
        &self,
        approvers_allowed: bool,
        mode: Option<&str>,
        headers: &CallbackHeaders,
    ) -> Result<Asked, Problem> {
        let mut refusals = Refusals::default();
        let r = &mut refusals;
        let name = required(r, "ReleaseName", &self.release_name, parse_release_name);
        let release_id = self
            .release_id
            .read(r, "ReleaseId")
            .map(ReleaseIdValue::to_text);
        let release_id = release_id.and_then(|id| {
            r.check("ReleaseId", no_macro("ReleaseId", &id))?;
            r.check("ReleaseId", parse_release_id(&id).map_err(invalid))
        });
        let team_project = required(
            r,
            "TeamProject",
            &self.team_project,
            ReleaseKey::parse_team_project,
        );
        let stage = optional(r, "Stage", &self.stage, |s| parse_stage(s).map_err(invalid));
        let attempt = self.attempt(r);
        let approvers = self.approvers(r, approvers_allowed);
        let requested_for = optional(r, "RequestedFor", &self.requested_for, |text| {
            (!text.trim().is_empty())
                .then(|| {
                    ApproverEmail::parse(text)
                        .map_err(|e| Problem::invalid_field(format!("RequestedFor: {e}")))
                })
                .transpose()
        });
        let release_url = optional(r, "ReleaseUrl", &self.release_url, |url| {
            ReleaseUrl::parse("ReleaseUrl", url).map_err(invalid)
        });
        let definition_name = optional(r, "DefinitionName", &self.definition_name, |name| {
            parse_definition_name(name).map_err(invalid)
        });
        let mode = self.mode(r, mode);
        self.check_callback_lengths(headers, r);
        refusals.finish()?;
        let (
            Some(name),
            Some(release_id),
            Some(team_project),
            Some(stage),
            Some(attempt),
            Some(approvers),
            Some(requested_for),
            Some(release_url),
            Some(definition_name),
            Some(mode),
        ) = (
            name,
            release_id,
            team_project,
            stage,
            attempt,
            approvers,
            requested_for,
            release_url,
            definition_name,
            mode,
        )
        else {
            // Every `None` above recorded a refusal, so `finish` has failed already.
            return Err(Problem::internal());
        };
        let key = ReleaseKey::parse(&team_project, &release_id, &stage.unwrap_or_default())
            .and_then(|key| key.in_round(attempt.unwrap_or(1), Phase::Pre))
            .map_err(invalid)?;
        let mut new = NewRelease::parse(key, &name, approvers).map_err(invalid)?;
        new.requested_for = requested_for.flatten();
        new.release_url = release_url.flatten();
        new.definition_name = definition_name.flatten();
        Ok(Asked { new, mode })
    }

    /// `Attempt`, from 1; `Some(None)` when absent.
    fn attempt(&self, r: &mut Refusals) -> Option<Option<u32>> {
        let Some(attempt) = self.attempt.read(r, "Attempt")? else {
            return Some(None);
        };
        r.check("Attempt", no_macro("Attempt", &attempt.to_text()))?;
        r.check("Attempt", attempt.parse()).map(Some)
    }

    /// `Approvers`, de-duplicated; `Some(None)` when absent.
    fn approvers(&self, r: &mut Refusals, allowed: bool) -> Option<Option<Vec<ApproverEmail>>> {
        let Some(approvers) = self.approvers.read(r, "Approvers")? else {
            return Some(None);
        };
        let names_some = match approvers {
            ApproversValue::Text(text) => !text.trim().is_empty(),
            ApproversValue::List(items) => !items.is_empty(),
        };
        if names_some && !allowed {
            r.refuse(
                "Approvers",
                Problem::new(
                    ProblemCode::RequestApproversDisabled,
                    "Approvers: this service does not take approvers from the request; they come \
                     from its approval policies, approvers API or static list (an operator can \
                     set DEPLOY_GATE_REQUEST_APPROVERS=true to let requests name them)",
                ),
            );
            return None;
        }
        let texts: Vec<&str> = match approvers {
            ApproversValue::Text(text) => vec![text],
            ApproversValue::List(items) => items.iter().map(String::as_str).collect(),
        };
        for text in texts {
            r.check("Approvers", no_macro("Approvers", text))?;
        }
        let list = r.check("Approvers", approvers.parse())?;
        r.check("Approvers", check_approver_count(&list).map_err(invalid))?;
        Some(Some(list))
    }

    /// The mode asked for by the `mode` parameter and the body's `Mode`.
    fn mode(&self, r: &mut Refusals, query: Option<&str>) -> Option<Mode> {
        let body = self.mode.read(r, "Mode")?;
        match requested_mode(query, body.as_deref()) {
            Ok(mode) => Some(mode),
            Err(problem) => {
                let field = if problem.detail.starts_with("mode:") {
                    "mode"
                } else {
                    "Mode"
                };
                r.refuse(field, problem);
                None
            }
        }
    }
}

/// A required text field, read, free of pipeline macros and checked by `rule`.
fn required<R, V>(
    r: &mut Refusals,
    field: &str,
    received: &Received<Text<R>>,
    rule: impl FnOnce(&str) -> Result<V, FieldError>,
) -> Option<V> {
    let text = received.read(r, field)?;
    r.check(field, no_macro(field, text))?;
    r.check(field, rule(text).map_err(invalid))
}

/// An optional text field, read, free of pipeline macros and checked by `rule`;
/// `Some(None)` when absent.
fn optional<R, V>(
    r: &mut Refusals,
    field: &str,
    received: &Received<Option<Text<R>>>,
    rule: impl FnOnce(&str) -> Result<V, Problem>,
) -> Option<Option<V>> {
    let Some(text) = received.read(r, field)? else {
        return Some(None);
    };
    r.check(field, no_macro(field, text))?;
    r.check(field, rule(text)).map(Some)
}

/// Refuses `text` of `field` when it still holds a pipeline macro `$(…)`.
fn no_macro(field: &str, text: &str) -> Result<(), Problem> {
    match unresolved_macro(text) {
        Some(found) => Err(Problem::unresolved_macro(field, found)),
        None => Ok(()),
    }
}

fn invalid(err: FieldError) -> Problem {
    Problem::invalid_field(err.to_string())
}
