//! The release status body shared by `/release`, `/approval`, the board and the hooks.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::{IntoResponse, Response};
use poem_openapi::{
    Object,
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::{Example, ToJSON, Type},
};

pub use super::status_values::{
    ApprovalCounts, ApproverEntry, CancellationEntry, DecisionValue, RequirementEntry, StatusValue,
};
use super::troubles::{ReleaseProblem, problems};
use crate::{
    domain::policy::{RELEASE_APPROVERS, ReleaseStatus},
    domain::snapshot::ReleaseSnapshot,
};

/// The state of a release. Azure success criteria: `eq(root['status'], 'approved')`.
/// Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(rename = "ReleaseStatus", example, skip_serializing_if_is_none)]
pub struct ReleaseStatusBody {
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
    /// The release's or run's page in Azure DevOps (`ReleaseUrl`, or the service hook's
    /// `_links.web`), in its normalised form.
    #[oai(rename = "ReleaseUrl")]
    pub release_url: Option<String>,
    /// The release definition or pipeline name (`DefinitionName`, or the service hook's).
    #[oai(rename = "DefinitionName")]
    pub definition_name: Option<String>,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub status: StatusValue,
    /// True exactly when `status` is `approved`.
    pub approved: bool,
    /// Approval counts.
    pub approvals: ApprovalCounts,
    /// Every approver and their decision.
    pub approvers: Vec<ApproverEntry>,
    /// Where the approvers came from: `request`, `approvers_url`, `static`, `none`; absent while being resolved.
    pub approvers_source: Option<String>,
    /// When the release was first received.
    pub created_at: DateTime<Utc>,
    /// When it expires if still undecided.
    pub deadline: DateTime<Utc>,
    /// When its status became final; absent while pending.
    pub decided_at: Option<DateTime<Utc>>,
    /// Once final: `deploy-gate` (its approvers, an operator or the deadline) or
    /// `azure` (decided in Azure DevOps itself, see `settled_reason`).
    pub settled_by: Option<String>,
    /// What Azure DevOps decided, when `settled_by` is `azure`.
    pub settled_reason: Option<String>,
    /// What is keeping it from progressing, if anything.
    pub problems: Vec<ReleaseProblem>,
    /// Every requirement of the approval rule and its progress.
    pub requirements: Vec<RequirementEntry>,
    /// While pending: what is still missing, in plain words, e.g. `1 more approval from group sre`.
    pub waiting_for: Vec<String>,
    /// Who requested the release, when the pipeline said (`RequestedFor`).
    pub requested_for: Option<String>,
    /// Set when an operator cancelled the approval; the status is then `rejected`.
    pub cancelled: Option<CancellationEntry>,
    /// When the escalation contact was told the release is still undecided.
    pub escalated_at: Option<DateTime<Utc>>,
}

impl ReleaseStatusBody {
    /// The status body of a release at `now`.
    pub fn from_snapshot(snapshot: &ReleaseSnapshot, now: DateTime<Utc>) -> Self {
        let outcome = snapshot.outcome(now);
        let release = &snapshot.release;
        let approvers = snapshot
            .approvals
            .iter()
            .map(|a| ApproverEntry {
                email: a.email.clone(),
                decision: a.decided.map(|d| d.decision).into(),
                decided_at: a.decided.map(|d| d.at),
                comment: a.comment.clone(),
                notified: a.email_sent_at.is_some(),
                counts: release.rule.counts(&a.email),
            })
            .collect();
        let requirements: Vec<RequirementEntry> = outcome
            .requirements
            .iter()
            .map(|p| RequirementEntry {
                group: p.group.clone(),
                needed: p.needed,
                approved: p.approved,
                met: p.met,
            })
            .collect();
        let waiting_for = if outcome.status != ReleaseStatus::Pending {
            Vec::new()
        } else if release.approvers_source.is_none() {
            // Not "nobody": who must approve is not known yet (or its look-up fails,
            // which `problems` says).
            vec!["the approvers, not known yet".to_owned()]
        } else {
            requirements
                .iter()
                .filter(|r| !r.met)
                .map(missing)
                .collect()
        };
        Self {
            release_id: release.key.release_id.clone(),
            release_name: release.name.clone(),
            team_project: release.key.team_project.clone(),
            stage: release.key.stage.clone(),
            attempt: release.key.attempt,
            phase: release.key.phase.as_str().to_owned(),
            release_url: release.release_url.clone(),
            definition_name: release.definition_name.clone(),
            status: outcome.status.into(),
            approved: outcome.status == ReleaseStatus::Approved,
            approvals: ApprovalCounts::from(&outcome),
            approvers,
            approvers_source: release.approvers_source.clone(),
            created_at: release.created_at,
            deadline: release.deadline,
            decided_at: outcome.decided_at,
            settled_by: outcome.status.is_final().then(|| {
                match release.settled {
                    Some(_) => "azure",
                    None => "deploy-gate",
                }
                .to_owned()
            }),
            settled_reason: release.settled.as_ref().map(|s| s.reason.clone()),
            problems: problems(snapshot, outcome.status.is_final()),
            requirements,
            waiting_for,
            requested_for: release.requested_for.clone(),
            cancelled: release.cancelled.as_ref().map(|c| CancellationEntry {
                at: c.at,
                reason: c.reason.clone(),
            }),
            escalated_at: release.escalated_at,
        }
    }
}

/// A [`ReleaseStatusBody`] serialized once, with its status: what `/release`
/// answers, whether built for this request or kept by the poll cache.
#[derive(Clone, Debug)]
pub struct StatusJson {
    /// The body's `status`.
    pub status: StatusValue,
    body: Bytes,
}

impl StatusJson {
    /// The status body of a release at `now`, serialized.
    pub fn of(snapshot: &ReleaseSnapshot, now: DateTime<Utc>) -> Self {
        let body = ReleaseStatusBody::from_snapshot(snapshot, now);
        Self {
            status: body.status,
            body: Bytes::from(body.to_json_string()),
        }
    }
}

/// In the OpenAPI document it is the `ReleaseStatus` schema, as `Json<ReleaseStatusBody>` is.
impl Payload for StatusJson {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        ReleaseStatusBody::schema_ref()
    }

    fn register(registry: &mut Registry) {
        ReleaseStatusBody::register(registry);
    }
}

impl IntoResponse for StatusJson {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.body)
    }
}

/// What an unmet requirement still needs, in words.
fn missing(r: &RequirementEntry) -> String {
    if r.needed == 0 {
        return if r.group == RELEASE_APPROVERS {
            "no approver whose approval counts".to_owned()
        } else {
            format!("group {} has nobody whose approval counts", r.group)
        };
    }
    let whom = if r.group == RELEASE_APPROVERS {
        "the approvers".to_owned()
    } else {
        format!("group {}", r.group)
    };
    let more = r.needed.saturating_sub(r.approved);
    let noun = if more == 1 { "approval" } else { "approvals" };
    format!("{more} more {noun} from {whom}")
}

impl Example for ReleaseStatusBody {
    fn example() -> Self {
        let created_at = DateTime::parse_from_rfc3339("2026-11-23T09:00:00Z")
            .map(|t| t.to_utc())
            .unwrap_or_default();
        Self {
            release_id: "386".into(),
            release_name: "Desafio-CD".into(),
            team_project: "Devx".into(),
            stage: String::new(),
            attempt: 1,
            phase: "pre".into(),
            release_url: Some(
                "https://dev.azure.com/contoso/Devx/_releaseProgress?_a=release-pipeline-progress&releaseId=386"
                    .into(),
            ),
            definition_name: Some("Desafio.CD".into()),
            status: StatusValue::Pending,
            approved: false,
            approvals: ApprovalCounts {
                required: 2,
                approved: 1,
                rejected: 0,
                pending: 1,
            },
            approvers: vec![
                ApproverEntry {
                    email: "ana@example.com".into(),
                    decision: DecisionValue::Approved,
                    decided_at: Some(created_at + chrono::Duration::minutes(7)),
                    comment: Some("ship it".into()),
                    notified: true,
                    counts: true,
                },
                ApproverEntry {
                    email: "bo@example.com".into(),
                    decision: DecisionValue::Pending,
                    decided_at: None,
                    comment: None,
                    notified: true,
                    counts: true,
                },
            ],
            approvers_source: Some("request".into()),
            created_at,
            deadline: created_at + chrono::Duration::hours(48),
            decided_at: None,
            settled_by: None,
            settled_reason: None,
            problems: Vec::new(),
            requirements: vec![RequirementEntry {
                group: RELEASE_APPROVERS.into(),
                needed: 2,
                approved: 1,
                met: false,
            }],
            waiting_for: vec!["1 more approval from the approvers".into()],
            requested_for: Some("cy@example.com".into()),
            cancelled: None,
            escalated_at: None,
        }
    }
}
