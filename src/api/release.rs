//! `POST /release` (create or poll) and `GET /release/{TeamProject}/{ReleaseId}`.

use std::sync::Arc;

use chrono::Utc;
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi, Union,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags, AppState,
    auth::Credentials,
    problem::{ErrorStatuses, Problem, ProblemResponse},
    status::ReleaseStatusBody,
};
use crate::{
    domain::{
        approver::{ApproverEmail, dedup, parse_approver_list},
        release::{NewRelease, ReleaseKey},
    },
    store::Creation,
};

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
        }
    }
}

impl ReleaseRequest {
    fn parse(&self) -> Result<NewRelease, Problem> {
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

/// Answer to `POST /release`.
#[derive(ApiResponse)]
pub enum CreateReleaseResponse {
    /// The release was new: it is stored and its approvers are being notified. `status` is `pending`.
    #[oai(status = 202)]
    Accepted(
        Json<ReleaseStatusBody>,
        /// Where to poll the release's status.
        #[oai(header = "Location")]
        String,
    ),
    /// The release was already known: its current status.
    #[oai(status = 200)]
    Known(Json<ReleaseStatusBody>),
}

/// Answer to `GET /release/{TeamProject}/{ReleaseId}`.
#[derive(ApiResponse)]
pub enum GetReleaseResponse {
    /// The release's current status.
    #[oai(status = 200)]
    Found(Json<ReleaseStatusBody>),
}

/// Errors of `POST /release`.
pub struct CreateReleaseErrors;
impl ErrorStatuses for CreateReleaseErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "Malformed JSON, or a field missing, empty, too long or of the wrong type; nothing was stored.",
        ),
        (401, "The API key is required and was missing or wrong."),
        (413, "The body is larger than the configured limit."),
        (415, "The body is not JSON."),
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
    #[oai(path = "/release", method = "post", operation_id = "createRelease")]
    async fn create_release(
        &self,
        state: Data<&Arc<AppState>>,
        credentials: Credentials,
        body: Json<ReleaseRequest>,
    ) -> Result<CreateReleaseResponse, ProblemResponse<CreateReleaseErrors>> {
        credentials.check(&state)?;
        let new = body.parse()?;
        let now = Utc::now();
        let deadline = now
            + chrono::Duration::from_std(state.approval_deadline).unwrap_or(chrono::Duration::MAX);
        let creation = state
            .store
            .create_release(&new, state.required_approvals, deadline, now)
            .await
            .map_err(|err| database_problem(&err))?;
        Ok(match creation {
            Creation::Created(snapshot) => {
                state.wake_worker.notify_waiters();
                tracing::info!(release.key = %new.key.display(), "release received");
                let location = location_of(&new.key);
                CreateReleaseResponse::Accepted(
                    Json(ReleaseStatusBody::from_snapshot(&snapshot, now)),
                    location,
                )
            }
            Creation::Existing(snapshot) => {
                CreateReleaseResponse::Known(Json(ReleaseStatusBody::from_snapshot(&snapshot, now)))
            }
        })
    }

    /// Current status of a release.
    #[oai(
        path = "/release/:team_project/:release_id",
        method = "get",
        operation_id = "getRelease"
    )]
    async fn get_release(
        &self,
        state: Data<&Arc<AppState>>,
        credentials: Credentials,
        /// The Azure DevOps project.
        #[oai(name = "TeamProject")]
        team_project: Path<String>,
        /// The release id.
        #[oai(name = "ReleaseId")]
        release_id: Path<String>,
        /// The gated stage, if the release was created with one.
        #[oai(name = "Stage")]
        stage: Query<Option<String>>,
    ) -> Result<GetReleaseResponse, ProblemResponse<GetReleaseErrors>> {
        credentials.check(&state)?;
        let key = ReleaseKey::parse(
            &team_project,
            &release_id,
            stage.as_deref().unwrap_or_default(),
        )
        .map_err(|e| Problem::invalid_field(e.to_string()))?;
        let snapshot = state
            .store
            .find_release(&key)
            .await
            .map_err(|err| database_problem(&err))?
            .ok_or_else(|| Problem::not_found(format!("no release {}", key.display())))?;
        Ok(GetReleaseResponse::Found(Json(
            ReleaseStatusBody::from_snapshot(&snapshot, Utc::now()),
        )))
    }
}

/// Path of a release's status, with `Stage` as a query parameter when set.
fn location_of(key: &ReleaseKey) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let mut location = format!(
        "/release/{}/{}",
        enc(&key.team_project),
        enc(&key.release_id)
    );
    if !key.stage.is_empty() {
        location.push_str(&format!("?Stage={}", enc(&key.stage)));
    }
    location
}

/// Logs a database failure and turns it into a 503 problem.
pub fn database_problem(err: &crate::store::StoreError) -> Problem {
    tracing::error!(error = %err, cause = ?err, "database request failed");
    Problem::unavailable("the database is unavailable; try again")
}
