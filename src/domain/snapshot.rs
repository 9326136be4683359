//! A stored release as the lifecycle reads it: the release, its approvals,
//! its failing jobs and its callback registrations, and its status at a time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    job::JobKind,
    policy::{Decided, Decision, Ended, Outcome, ReleaseStatus, Rule, Vote, decide},
    release::{AzureApprovalRef, ReleaseKey},
    sign_in::SignedIdentity,
};

/// A stored release.
#[derive(Clone, Debug)]
pub struct ReleaseRecord {
    /// Internal row id.
    pub id: i64,
    /// Public identity.
    pub key: ReleaseKey,
    /// `ReleaseName`.
    pub name: String,
    /// Approvals needed when no policy says otherwise; `None` means all approvers.
    pub required_approvals: Option<u32>,
    /// Who requested the release, if the pipeline said.
    pub requested_for: Option<String>,
    /// The release's or run's page in Azure DevOps (`ReleaseUrl`).
    pub release_url: Option<String>,
    /// The release definition or pipeline name (`DefinitionName`).
    pub definition_name: Option<String>,
    /// What it takes to approve it.
    pub rule: Rule,
    /// Set when an operator cancelled the approval.
    pub cancelled: Option<Cancellation>,
    /// Set when the round was decided in Azure DevOps itself.
    pub settled: Option<Settlement>,
    /// When the escalation contact was told that the release is still undecided.
    pub escalated_at: Option<DateTime<Utc>>,
    /// When the release expires if undecided.
    pub deadline: DateTime<Utc>,
    /// Where the approvers came from (`request`, `approvers_url`, `static`); `None` while unresolved.
    pub approvers_source: Option<String>,
    /// When the approvers were stored; `None` while unresolved.
    pub approvers_resolved_at: Option<DateTime<Utc>>,
    /// A plain-language note when approvers were missing or invalid.
    pub approver_problem: Option<String>,
    /// When the release was first seen.
    pub created_at: DateTime<Utc>,
}

/// A round decided in Azure DevOps itself: an approval approved or rejected
/// there, the release abandoned, its deployment cancelled.
#[derive(Clone, Debug)]
pub struct Settlement {
    /// `approved` or `rejected`.
    pub status: ReleaseStatus,
    /// When deploy-gate learned of it.
    pub at: DateTime<Utc>,
    /// What happened, e.g. `rejected in Azure DevOps by Chuck Reinhart`.
    pub reason: String,
}

/// An Azure DevOps approval that a round decides.
#[derive(Clone, Debug)]
pub struct AzureApprovalRecord {
    /// Which approval.
    pub approval: AzureApprovalRef,
    /// The round deciding it.
    pub release_id: i64,
    /// When the round's decision was written back to it.
    pub written_back_at: Option<DateTime<Utc>>,
    /// Its decision as taken in Azure DevOps itself, when it was.
    pub decided_in_azure: Option<Decision>,
    /// The identity ids the service-hook event says it is assigned to.
    pub assigned_to: Vec<String>,
}

/// An operator's cancellation of a release's approval.
#[derive(Clone, Debug)]
pub struct Cancellation {
    /// When.
    pub at: DateTime<Utc>,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

/// A stored approval: one approver of one release.
#[derive(Clone, Debug)]
pub struct ApprovalRecord {
    /// The approval's id, also the token's `jti`.
    pub id: Uuid,
    /// The release it belongs to.
    pub release_id: i64,
    /// The approver.
    pub email: String,
    /// The decision, once made.
    pub decided: Option<Decided>,
    /// The approver's comment.
    pub comment: Option<String>,
    /// When the SMTP server (or mail folder) accepted the email.
    pub email_sent_at: Option<DateTime<Utc>>,
    /// Raised each time the email is re-sent; links of older generations no longer work.
    pub link_generation: i64,
    /// Who signed in to make the decision, where the policy required it.
    pub signed_in: Option<SignedIdentity>,
}

/// A job that has failed at least once, as shown on its release.
#[derive(Clone, Debug)]
pub struct JobTrouble {
    /// What the job does.
    pub kind: JobKind,
    /// The approver concerned, for email jobs.
    pub approver: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The latest failure.
    pub last_error: String,
    /// When it runs again; `None` once it is dead.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A release with everything needed to show its status.
#[derive(Clone, Debug)]
pub struct ReleaseSnapshot {
    /// The release.
    pub release: ReleaseRecord,
    /// Its approvals, in creation order.
    pub approvals: Vec<ApprovalRecord>,
    /// Its failing jobs.
    pub troubles: Vec<JobTrouble>,
}

impl ReleaseSnapshot {
    /// The round of a release just stored: no approvals, no troubles yet.
    pub fn new(release: ReleaseRecord) -> Self {
        Self {
            release,
            approvals: Vec::new(),
            troubles: Vec::new(),
        }
    }

    /// The release's status at `now`.
    pub fn outcome(&self, now: DateTime<Utc>) -> Outcome {
        outcome_of(&self.release, &self.approvals, now)
    }

    /// Its approval `id`, if it has one.
    pub fn approval(&self, id: Uuid) -> Option<&ApprovalRecord> {
        self.approvals.iter().find(|a| a.id == id)
    }
}

/// The status of `release` with these `approvals` at `now`.
pub fn outcome_of(
    release: &ReleaseRecord,
    approvals: &[ApprovalRecord],
    now: DateTime<Utc>,
) -> Outcome {
    let votes: Vec<Vote<'_>> = approvals
        .iter()
        .map(|a| Vote {
            email: &a.email,
            decided: a.decided,
        })
        .collect();
    let cancelled = release.cancelled.as_ref().map(|c| Ended {
        status: ReleaseStatus::Rejected,
        at: c.at,
        overrides_votes: false,
    });
    let settled = release.settled.as_ref().map(|s| Ended {
        status: s.status,
        at: s.at,
        overrides_votes: true,
    });
    // The earlier end counts; the lifecycle ends a round only while it is open.
    let ended = cancelled.into_iter().chain(settled).min_by_key(|e| e.at);
    decide(&release.rule, &votes, ended, release.deadline, now)
}

/// A callback registration as its release's timeline shows it (without its token).
#[derive(Clone, Debug)]
pub struct CallbackEntry {
    /// `HubName` of the registration (`checks`, `build`, `release`…).
    pub hub_name: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// The TaskCompleted result sent (`succeeded`/`failed`), once delivered.
    pub result: Option<String>,
    /// When Azure DevOps accepted the TaskCompleted event.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A release with what its timeline shows.
#[derive(Clone, Debug)]
pub struct ReleaseHistory {
    /// The release, its approvals and failing jobs.
    pub snapshot: ReleaseSnapshot,
    /// Its callback registrations, oldest first.
    pub callbacks: Vec<CallbackEntry>,
    /// The Azure DevOps approvals it decides, in the order they arrived.
    pub azure_approvals: Vec<AzureApprovalRecord>,
}
