//! The JSON body of `GET /releases`: a page of the release board.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, types::Example};

use crate::{
    api::{
        http::negotiate::PageBody,
        shared::{
            status::{ApprovalCounts, StatusValue},
            troubles::problems,
        },
    },
    domain::{policy::ReleaseStatus, snapshot::ReleaseSnapshot},
    store::{ReleasePage, ReleaseQuery},
};

/// Path of the board; a release's timeline is below it.
pub const BOARD_PATH: &str = "/releases";

/// Which releases the board lists by status.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Every release.
    Any,
    /// Waiting for decisions.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Expired undecided.
    Expired,
}

impl StatusFilter {
    /// The status to match; `None` for any.
    pub fn status(self) -> Option<ReleaseStatus> {
        match self {
            Self::Any => None,
            Self::Pending => Some(ReleaseStatus::Pending),
            Self::Approved => Some(ReleaseStatus::Approved),
            Self::Rejected => Some(ReleaseStatus::Rejected),
            Self::Expired => Some(ReleaseStatus::Expired),
        }
    }

    /// The public name.
    pub fn as_str(self) -> &'static str {
        self.status().map_or("any", ReleaseStatus::as_str)
    }
}

impl From<Option<ReleaseStatus>> for StatusFilter {
    fn from(status: Option<ReleaseStatus>) -> Self {
        match status {
            None => Self::Any,
            Some(ReleaseStatus::Pending) => Self::Pending,
            Some(ReleaseStatus::Approved) => Self::Approved,
            Some(ReleaseStatus::Rejected) => Self::Rejected,
            Some(ReleaseStatus::Expired) => Self::Expired,
        }
    }
}

/// One release on the board. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(rename = "BoardRelease", skip_serializing_if_is_none)]
pub struct BoardEntry {
    /// The release id, always as text.
    #[oai(rename = "ReleaseId")]
    pub release_id: String,
    /// The release name.
    #[oai(rename = "ReleaseName")]
    pub release_name: String,
    /// The Azure DevOps project.
    #[oai(rename = "TeamProject")]
    pub team_project: String,
    /// The gated stage; empty when not given.
    #[oai(rename = "Stage")]
    pub stage: String,
    /// The stage's deployment attempt this round approves, from 1.
    #[oai(rename = "Attempt")]
    pub attempt: u32,
    /// `pre` for the round before the deployment, `post` for the one after it.
    #[oai(rename = "Phase")]
    pub phase: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub status: StatusValue,
    /// What keeps the release from progressing, if anything: work given up (e.g. a
    /// write-back Azure DevOps refused), else why it has no approvers, else work still
    /// being retried (e.g. an approvers API that keeps failing); the status body and the
    /// timeline list every problem.
    pub problem: Option<String>,
    /// When the release was first received.
    pub created_at: DateTime<Utc>,
    /// Seconds since it was received.
    pub age_seconds: u64,
    /// When it expires if still undecided.
    pub deadline: DateTime<Utc>,
    /// When its status became final; absent while pending.
    pub decided_at: Option<DateTime<Utc>>,
    /// Approval counts.
    pub approvals: ApprovalCounts,
    /// Emails of the approvers yet to decide while the release is pending; empty once decided.
    pub pending_approvers: Vec<String>,
    /// Path of its status (`GET /release/{TeamProject}/{ReleaseId}`).
    pub status_url: String,
    /// Path of its timeline (`GET /releases/{TeamProject}/{ReleaseId}`).
    pub timeline_url: String,
}

impl BoardEntry {
    fn of(summary: &ReleaseSnapshot, now: DateTime<Utc>) -> Self {
        let outcome = summary.outcome(now);
        let problems = problems(summary, outcome.status.is_final());
        let release = &summary.release;
        let pending_approvers = if outcome.status.is_final() {
            Vec::new()
        } else {
            summary
                .approvals
                .iter()
                .filter(|a| a.decided.is_none())
                .map(|a| a.email.clone())
                .collect()
        };
        Self {
            release_id: release.key.release_id.clone(),
            release_name: release.name.clone(),
            team_project: release.key.team_project.clone(),
            stage: release.key.stage.clone(),
            attempt: release.key.attempt,
            phase: release.key.phase.as_str().to_owned(),
            status: outcome.status.into(),
            // Work given up will not right itself, so it comes first; the list has the
            // approvers' problem before the failing jobs.
            problem: problems
                .iter()
                .find(|p| p.code == "job_dead")
                .or(problems.first())
                .map(|p| p.detail.clone()),
            created_at: release.created_at,
            age_seconds: u64::try_from((now - release.created_at).num_seconds()).unwrap_or(0),
            deadline: release.deadline,
            decided_at: outcome.decided_at,
            approvals: ApprovalCounts::from(&outcome),
            pending_approvers,
            status_url: release.key.status_path(),
            timeline_url: release.key.path_under(BOARD_PATH),
        }
    }
}

/// A page of the release board, newest first. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(rename = "ReleaseBoard", example, skip_serializing_if_is_none)]
pub struct ReleaseBoard {
    /// The releases on this page.
    pub releases: Vec<BoardEntry>,
    /// The project filter applied; absent for every project.
    #[oai(rename = "TeamProject")]
    pub team_project: Option<String>,
    /// The status filter applied.
    pub status: StatusFilter,
    /// Most releases on a page.
    pub limit: u32,
    /// `cursor` of the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Path and query of the next page (same filters and limit); absent on the last page.
    pub next: Option<String>,
}

impl PageBody for ReleaseBoard {
    const DESCRIPTION: &'static str = "A page of the board: JSON for API clients, an HTML page when the client accepts `text/html` before `application/json`.";
}

impl ReleaseBoard {
    /// The board of `page`, listed for `query`, with ages and statuses at `now`.
    pub fn new(query: &ReleaseQuery, page: ReleasePage, now: DateTime<Utc>) -> Self {
        let mut board = Self {
            releases: page
                .releases
                .iter()
                .map(|s| BoardEntry::of(s, now))
                .collect(),
            team_project: query.team_project.clone(),
            status: query.status.into(),
            limit: query.limit,
            next_cursor: page.next.map(|cursor| cursor.to_string()),
            next: None,
        };
        board.next = board
            .next_cursor
            .as_deref()
            .map(|cursor| board.path_with(Some(cursor)));
        board
    }

    /// The board's path and query with these filters and limit, starting at `cursor`.
    pub fn path_with(&self, cursor: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(project) = &self.team_project {
            query.append_pair("TeamProject", project);
        }
        if self.status != StatusFilter::Any {
            query.append_pair("status", self.status.as_str());
        }
        query.append_pair("limit", &self.limit.to_string());
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        format!("{BOARD_PATH}?{}", query.finish())
    }
}

impl Example for ReleaseBoard {
    fn example() -> Self {
        let created_at = DateTime::parse_from_rfc3339("2026-11-23T09:00:00Z")
            .map(|t| t.to_utc())
            .unwrap_or_default();
        Self {
            releases: vec![BoardEntry {
                release_id: "386".into(),
                release_name: "Desafio-CD".into(),
                team_project: "Devx".into(),
                stage: "prod".into(),
                attempt: 1,
                phase: "pre".into(),
                status: StatusValue::Pending,
                problem: None,
                created_at,
                age_seconds: 420,
                deadline: created_at + chrono::Duration::hours(48),
                decided_at: None,
                approvals: ApprovalCounts {
                    required: 2,
                    approved: 1,
                    rejected: 0,
                    pending: 1,
                },
                pending_approvers: vec!["bo@example.com".into()],
                status_url: "/release/Devx/386?Stage=prod".into(),
                timeline_url: "/releases/Devx/386?Stage=prod".into(),
            }],
            team_project: Some("Devx".into()),
            status: StatusFilter::Pending,
            limit: 1,
            next_cursor: Some("1795424400000.41".into()),
            next: Some(
                "/releases?TeamProject=Devx&status=pending&limit=1&cursor=1795424400000.41".into(),
            ),
        }
    }
}
