//! The body of `POST /release` and the callback fields that come with it.

use std::borrow::Cow;

use poem_openapi::{
    Object, Union,
    param::Header,
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, Type},
};
use serde_json::Value;

use super::problem::Problem;
use crate::{
    azure::PlanCallback,
    config::Secret,
    domain::{
        approver::{ApproverEmail, dedup, parse_approver_list},
        release::{NewRelease, ReleaseKey},
    },
};

/// Longest accepted callback field (the job token is the long one).
const MAX_CALLBACK_FIELD_CHARS: usize = 8192;

/// `ReleaseId` as sent: Azure substitutes `$(Release.ReleaseId)` as text, scripts may send a number.
#[derive(Union, Clone, Debug)]
pub enum ReleaseIdValue {
    /// As text, e.g. `"386"`.
    Text(String),
    /// As a number, e.g. `386`.
    Number(i64),
}

impl ReleaseIdValue {
    fn to_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// Approvers as sent: a list of addresses, or one string separated by `;` or `,`.
#[derive(Union, Clone, Debug)]
pub enum ApproversValue {
    /// `["ana@example.com", "bo@example.com"]`.
    List(Vec<String>),
    /// `"ana@example.com; bo@example.com"`.
    Text(String),
}

impl ApproversValue {
    fn parse(&self) -> Result<Vec<ApproverEmail>, Problem> {
        let parsed = match self {
            Self::Text(text) => parse_approver_list(text),
            Self::List(items) => items
                .iter()
                .map(|item| ApproverEmail::parse(item))
                .collect::<Result<Vec<_>, _>>()
                .map(dedup),
        };
        parsed.map_err(|err| Problem::invalid_field(format!("Approvers: {err}")))
    }
}

/// A release to gate. Unknown fields are ignored.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct ReleaseRequest {
    /// Human-readable release name, e.g. `$(Release.ReleaseName)`.
    #[oai(rename = "ReleaseName")]
    pub release_name: String,
    /// Release id, text or number, e.g. `$(Release.ReleaseId)`.
    #[oai(rename = "ReleaseId")]
    pub release_id: ReleaseIdValue,
    /// Azure DevOps project, e.g. `$(System.TeamProject)`.
    #[oai(rename = "TeamProject")]
    pub team_project: String,
    /// Stage or environment being gated; part of the release's identity. Default empty.
    #[oai(rename = "Stage")]
    pub stage: Option<String>,
    /// Approvers for this release; overrides the approvers API and the static list.
    #[oai(rename = "Approvers")]
    pub approvers: Option<ApproversValue>,
    /// Callback mode: `$(system.CollectionUri)`. Also accepted as a header.
    #[oai(rename = "PlanUrl")]
    pub plan_url: Option<String>,
    /// Callback mode: `$(system.TeamProjectId)`. Also accepted as a header.
    #[oai(rename = "ProjectId")]
    pub project_id: Option<String>,
    /// Callback mode: `$(system.HostType)`. Also accepted as a header.
    #[oai(rename = "HubName")]
    pub hub_name: Option<String>,
    /// Callback mode: `$(system.PlanId)`. Also accepted as a header.
    #[oai(rename = "PlanId")]
    pub plan_id: Option<String>,
    /// Callback mode: `$(system.JobId)`. Also accepted as a header.
    #[oai(rename = "JobId")]
    pub job_id: Option<String>,
    /// Callback mode: `$(system.TimelineId)`. Also accepted as a header.
    #[oai(rename = "TimelineId")]
    pub timeline_id: Option<String>,
    /// Callback mode: `$(system.TaskInstanceId)`. Also accepted as a header.
    #[oai(rename = "TaskInstanceId")]
    pub task_instance_id: Option<String>,
    /// Callback mode: `$(system.AccessToken)`; used once for the callback, never returned or logged.
    #[oai(rename = "AuthToken", write_only)]
    pub auth_token: Option<String>,
}

/// The body of `POST /release` as received, documented as [`ReleaseRequest`].
///
/// poem-openapi turns a JSON number or boolean into a string and names no field when one is
/// missing, so the JSON types are checked here first: `"ReleaseName": true` or
/// `"ReleaseId": 1.5` is refused by name instead of becoming a release named `"true"` or
/// numbered `"1.5"`.
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
const OPTIONAL_TEXT_FIELDS: [&str; 9] = [
    "Stage",
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
            release_name: "Desafio-CD".into(),
            release_id: ReleaseIdValue::Text("386".into()),
            team_project: "Devx".into(),
            stage: Some("production".into()),
            approvers: Some(ApproversValue::List(vec![
                "ana@example.com".into(),
                "bo@example.com".into(),
            ])),
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
    /// Validates the release fields.
    pub fn parse(&self) -> Result<NewRelease, Problem> {
        let key = ReleaseKey::parse(
            &self.team_project,
            &self.release_id.to_text(),
            self.stage.as_deref().unwrap_or_default(),
        )
        .map_err(|e| Problem::invalid_field(e.to_string()))?;
        let approvers = self
            .approvers
            .as_ref()
            .map(ApproversValue::parse)
            .transpose()?;
        NewRelease::parse(key, &self.release_name, approvers)
            .map_err(|e| Problem::invalid_field(e.to_string()))
    }
}

/// Callback-mode fields sent as HTTP headers, the default of the Invoke REST API task and check.
pub struct CallbackHeaders {
    /// `PlanUrl`.
    pub plan_url: Header<Option<String>>,
    /// `ProjectId`.
    pub project_id: Header<Option<String>>,
    /// `HubName`.
    pub hub_name: Header<Option<String>>,
    /// `PlanId`.
    pub plan_id: Header<Option<String>>,
    /// `JobId`.
    pub job_id: Header<Option<String>>,
    /// `TimelineId`.
    pub timeline_id: Header<Option<String>>,
    /// `TaskInstanceId`.
    pub task_instance_id: Header<Option<String>>,
    /// `AuthToken`.
    pub auth_token: Header<Option<String>>,
}

impl ReleaseRequest {
    /// The callback registration, from body fields or else headers; `None` when the
    /// request is not in callback mode, an error when it is only partly.
    pub fn plan_callback(&self, headers: CallbackHeaders) -> Result<Option<PlanCallback>, Problem> {
        let pick = |body: &Option<String>, header: Header<Option<String>>| {
            body.clone()
                .or(header.0)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let fields = [
            ("PlanUrl", pick(&self.plan_url, headers.plan_url)),
            ("ProjectId", pick(&self.project_id, headers.project_id)),
            ("HubName", pick(&self.hub_name, headers.hub_name)),
            ("PlanId", pick(&self.plan_id, headers.plan_id)),
            ("JobId", pick(&self.job_id, headers.job_id)),
            (
                "TaskInstanceId",
                pick(&self.task_instance_id, headers.task_instance_id),
            ),
            ("AuthToken", pick(&self.auth_token, headers.auth_token)),
        ];
        let timeline_id = pick(&self.timeline_id, headers.timeline_id);
        let missing: Vec<&str> = fields
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if missing.len() == fields.len() {
            return Ok(None);
        }
        if !missing.is_empty() {
            return Err(Problem::invalid_field(format!(
                "callback mode needs PlanUrl, ProjectId, HubName, PlanId, JobId, TaskInstanceId and AuthToken; missing: {}",
                missing.join(", ")
            )));
        }
        if let Some((name, _)) = fields.iter().find(|(_, v)| {
            v.as_ref()
                .is_some_and(|v| v.chars().count() > MAX_CALLBACK_FIELD_CHARS)
        }) {
            return Err(Problem::invalid_field(format!(
                "{name}: must be at most {MAX_CALLBACK_FIELD_CHARS} characters"
            )));
        }
        let [
            plan_url,
            project_id,
            hub_name,
            plan_id,
            job_id,
            task_instance_id,
            auth_token,
        ] = fields.map(|(_, v)| v.unwrap_or_default());
        match url::Url::parse(&plan_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(Problem::invalid_field(
                    "PlanUrl: must be an http:// or https:// URL",
                ));
            }
        }
        Ok(Some(PlanCallback {
            plan_url,
            project_id,
            hub_name,
            plan_id,
            job_id,
            timeline_id,
            task_instance_id,
            auth_token: Secret::new(auth_token),
        }))
    }
}
