//! The bodies of `/approval`: one approver's view of a release, and a decision.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiRequest, Enum, Object,
    payload::{Form, Json},
    types::{Example, ParseFromJSON},
};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{
    http::{
        negotiate::PageBody,
        received::{Expected, Received},
        text::{AnyRule, CommentRule, Text},
    },
    shared::status::{DecisionValue, ReleaseStatusBody, StatusValue},
};

/// One approver's view of a release. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ApprovalView {
    /// The release and every approver's decision.
    pub release: ReleaseStatusBody,
    /// The approver this token belongs to.
    pub approver: String,
    /// This approver's decision.
    pub decision: DecisionValue,
    /// When this approver decided; absent while undecided.
    pub decided_at: Option<DateTime<Utc>>,
    /// This approver's comment; absent when none was given.
    pub comment: Option<String>,
    /// The release status (same as `release.status`).
    pub status: StatusValue,
    /// Whether this approver can still decide.
    pub can_decide: bool,
    /// Whether a decision counts only after the approver signs in (the release's policy
    /// sets `require_sign_in`; see `GET /approval/sign-in`).
    pub sign_in_required: bool,
    /// Who signed in to make this approver's decision; absent for a decision by link alone.
    pub signed_in: Option<SignedInBody>,
}

/// The identity an approver signed in as to decide.
#[derive(Object, Clone, Debug)]
pub struct SignedInBody {
    /// The identity provider (`iss` of the ID token).
    pub issuer: String,
    /// The person at that provider (`sub`).
    pub subject: String,
    /// The address that matched the approver, in canonical form.
    pub email: String,
}

impl PageBody for ApprovalView {
    const DESCRIPTION: &'static str = "The approval: JSON for API clients, an HTML page when the client accepts `text/html` before `application/json`.";
}

/// A decision.
#[derive(Enum, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DecisionInput {
    /// Approve the release.
    Approve,
    /// Reject the release.
    Reject,
}

impl Expected for DecisionInput {
    fn expected() -> Cow<'static, str> {
        "must be `approve` or `reject`".into()
    }
}

/// An approver's decision, as JSON or as a form. Unknown fields are ignored; a `null` comment is
/// the same as none.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct DecisionRequest {
    /// The token from the approval email.
    pub token: Received<Text<AnyRule>>,
    /// `approve` or `reject`.
    pub decision: Received<DecisionInput>,
    /// Optional reason, at most 2000 characters; line breaks and tabs are the only control
    /// characters allowed.
    #[oai(nullable)]
    pub comment: Received<Option<Text<CommentRule>>>,
}

/// A form reads as the JSON object of its fields, so both are checked by the same rules;
/// one of its fields given twice is refused rather than read last-wins, and other fields
/// (the submit button's, say) are ignored however often they come.
impl<'de> Deserialize<'de> for DecisionRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const FIELDS: [&str; 3] = ["token", "decision", "comment"];
        let pairs = Vec::<(String, String)>::deserialize(deserializer)?;
        let mut object = serde_json::Map::new();
        for (key, value) in pairs {
            if !FIELDS.contains(&key.as_str()) {
                continue;
            }
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("`{key}` is given twice")));
            }
            object.insert(key, Value::String(value));
        }
        Self::parse_from_json(Some(Value::Object(object)))
            .map_err(|e| serde::de::Error::custom(e.into_message()))
    }
}

impl Example for ApprovalView {
    fn example() -> Self {
        let release = ReleaseStatusBody::example();
        let mine = release.approvers[1].clone();
        Self {
            approver: mine.email,
            decision: mine.decision,
            decided_at: mine.decided_at,
            comment: mine.comment,
            status: release.status,
            can_decide: true,
            sign_in_required: false,
            signed_in: None,
            release,
        }
    }
}

impl Example for DecisionRequest {
    fn example() -> Self {
        Self {
            token: Received::new(Text::new(
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmFAZXhhbXBsZS5jb20ifQ.c2lnbmF0dXJl",
            )),
            decision: Received::new(DecisionInput::Approve),
            comment: Received::new(Some(Text::new("ship it"))),
        }
    }
}

/// Body of `POST /approval`.
#[derive(ApiRequest)]
pub enum DecisionBody {
    /// JSON, for API clients.
    Json(Json<DecisionRequest>),
    /// A form, as the approval page posts it.
    Form(Form<DecisionRequest>),
}
