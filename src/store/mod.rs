//! Persistence: the [`Store`] interface and its implementation on SQLite or
//! PostgreSQL.
//!
//! The logic (`releases`, `notices`, `listing`, `queue`, `rows`) is written once against
//! [`sql::Backend`]; `sqlite` and `postgres` supply the connection, the
//! encoding of times and ids, and the few statements that differ;
//! `sqlite_inline` runs SQLite's statements on the calling thread and
//! `sqlite_checkpoints` its WAL checkpoints in the background, and
//! `sqlite_version` tells from the WAL index whether anything was committed.

mod connections;
mod listing;
mod notices;
mod postgres;
mod queue;
mod releases;
mod rows;
mod sql;
mod sql_store;
mod sqlite;
mod sqlite_checkpoints;
mod sqlite_inline;
mod sqlite_version;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    azure::{CallbackRecord, PlanCallback},
    domain::{
        approver::ApproverEmail,
        policy::{Decided, Decision, Outcome, Rule, Vote, decide},
        release::{NewRelease, ReleaseKey},
    },
    jobs::{Job, JobKind},
    policies::ChannelKind,
    settings::DatabaseConfig,
};

pub use listing::{BadCursor, ListingCursor, ReleasePage, ReleaseQuery, ReleaseSummary};
pub use postgres::PgStore;
pub use sql_store::SqlStore;
pub use sqlite::SqliteStore;

/// A database failure; the cause is logged where it is handled, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or a statement failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement on a connection kept out of the pool (SQLite's) failed.
    #[error("database error: {0}")]
    Inline(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

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
    /// What it takes to approve it.
    pub rule: Rule,
    /// Set when an operator cancelled the approval.
    pub cancelled: Option<Cancellation>,
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
    /// The Azure DevOps release approval to write the decision back to.
    pub azure_approval_id: Option<String>,
    /// When the decision was written back to Azure DevOps.
    pub azure_written_back_at: Option<DateTime<Utc>>,
    /// When the release was first seen.
    pub created_at: DateTime<Utc>,
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
    /// The release's status at `now`.
    pub fn outcome(&self, now: DateTime<Utc>) -> Outcome {
        outcome_of(&self.release, &self.approvals, now)
    }
}

/// The status of `release` with these `approvals` at `now`.
fn outcome_of(
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
    let cancelled = release.cancelled.as_ref().map(|c| c.at);
    decide(&release.rule, &votes, cancelled, release.deadline, now)
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
}

/// Result of [`Store::create_release`].
#[derive(Debug)]
pub enum Creation {
    /// The release was new and its first jobs are queued.
    Created(ReleaseSnapshot),
    /// The release was already known.
    Existing(ReleaseSnapshot),
}

/// Result of [`Store::record_decision`].
#[derive(Debug)]
pub enum DecisionOutcome {
    /// The decision was stored.
    Recorded(ReleaseSnapshot),
    /// The approver had already made this same decision; nothing changed.
    Unchanged(ReleaseSnapshot),
    /// The approver had already made the other decision.
    Conflicting(Decision),
    /// The release was already decided (or expired) before this decision.
    ReleaseFinal(ReleaseSnapshot),
    /// No such approval.
    UnknownApproval,
}

/// How a new release is to be handled, decided when it arrives.
#[derive(Clone, Debug)]
pub struct ReleasePlan {
    /// Approvals needed by default; `None` means all.
    pub required_approvals: Option<u32>,
    /// When it expires if undecided.
    pub deadline: DateTime<Utc>,
    /// Approvers known at once (named in the request); `None` queues their resolution.
    pub approvers: Option<ResolvedApprovers>,
    /// When to remind approvers who have not decided.
    pub reminders: Vec<DateTime<Utc>>,
    /// When to tell the escalation contact, if the release is still undecided.
    pub escalate_at: Option<DateTime<Utc>>,
}

/// Result of [`Store::cancel_release`].
#[derive(Debug)]
pub enum CancelOutcome {
    /// Cancelled: the release is now `rejected`; its callbacks and write-back are queued.
    Cancelled(ReleaseSnapshot),
    /// The release was already decided, expired or cancelled.
    AlreadyFinal(ReleaseSnapshot),
}

/// Result of [`Store::resend_approval`].
#[derive(Debug)]
pub enum ResendOutcome {
    /// A new link is queued; older links no longer work.
    Queued(ReleaseSnapshot),
    /// The approver has already decided.
    AlreadyDecided(ReleaseSnapshot),
    /// The release is already final.
    ReleaseFinal(ReleaseSnapshot),
    /// The release has no such approver.
    UnknownApprover,
}

/// The state of the whole database: equal versions mean nothing was committed
/// between them, by this process or any other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataVersion([u8; 48]);

/// Everything the service stores. Implementations keep each method atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// The database's version, where it can be read without a round trip:
    /// SQLite files in WAL mode. `None` on PostgreSQL (other replicas commit
    /// unseen), on an in-memory database, or while a commit is being written.
    fn data_version(&self) -> Option<DataVersion>;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Returns the stored token secret, storing `candidate` first if there is none.
    async fn token_secret(&self, candidate: &str, now: DateTime<Utc>)
    -> Result<String, StoreError>;

    /// Stores a new release with its first jobs in one transaction, or returns the known one;
    /// in the same transaction registers `callback` (a repeated registration refreshes its token).
    async fn create_release(
        &self,
        new: &NewRelease,
        plan: &ReleasePlan,
        callback: Option<&PlanCallback>,
        now: DateTime<Utc>,
    ) -> Result<Creation, StoreError>;
    /// Cancels a pending release's approval: it becomes `rejected`, every link stops
    /// working, and its callbacks and write-back are queued, in one transaction.
    async fn cancel_release(
        &self,
        release_id: i64,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome, StoreError>;
    /// Queues a new email for one undecided approver of a pending release; older links stop working.
    async fn resend_approval(
        &self,
        release_id: i64,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<ResendOutcome, StoreError>;
    /// Queues a reminder email for every approver of a pending release who has not
    /// decided (and whose approval counts), and completes `job_id`.
    async fn queue_reminders(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records that the escalation contact was told, and completes `job_id`.
    async fn mark_escalated(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A release by its public identity.
    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError>;
    /// A release with its callback registrations, for its timeline.
    async fn release_history(&self, key: &ReleaseKey)
    -> Result<Option<ReleaseHistory>, StoreError>;
    /// A page of releases, newest first, matching `query` with their statuses at `now`.
    async fn list_releases(
        &self,
        query: &ReleaseQuery,
        now: DateTime<Utc>,
    ) -> Result<ReleasePage, StoreError>;
    /// A release by internal id.
    async fn release_by_id(&self, id: i64) -> Result<Option<ReleaseSnapshot>, StoreError>;
    /// An approval by id.
    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError>;
    /// Records an approver's decision unless the release is already final; a decision
    /// that makes it final queues its callbacks and write-back in the same transaction.
    async fn record_decision(
        &self,
        approval_id: Uuid,
        decision: Decision,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DecisionOutcome, StoreError>;

    /// Stores resolved approvers (one approval and one email job each) and completes `job_id`.
    async fn store_approvers(
        &self,
        job_id: i64,
        release_id: i64,
        resolved: &ResolvedApprovers,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// At the deadline: queues the release's callbacks and write-back if it expired
    /// (or postpones `job_id` to the deadline if it is not due yet), and completes `job_id`.
    async fn expire_release(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A callback registration.
    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError>;
    /// Records a delivered callback, deletes its token, and completes `job_id`.
    async fn complete_callback(
        &self,
        job_id: i64,
        callback_id: i64,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records the decision as written back to Azure DevOps and completes `job_id`.
    async fn mark_written_back(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Marks an approval's email (with the link of `link_generation`) as accepted by the
    /// mail server and completes `job_id`.
    async fn mark_email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        link_generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Locks the next due job until `lease_until`; `None` when nothing is due.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError>;
    /// Extends the lock of a job still running, so no other worker takes it over.
    async fn extend_lease(&self, job_id: i64, lease_until: DateTime<Utc>)
    -> Result<(), StoreError>;
    /// Deletes a finished job.
    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError>;
    /// Records a failed attempt; `retry_at` `None` marks the job dead.
    async fn fail_job(
        &self,
        job_id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Jobs due by `now`, neither finished nor dead.
    async fn due_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Jobs neither finished nor dead that are due by `now` or wait to retry:
    /// zero once the queue is idle, whatever is scheduled for later.
    async fn outstanding_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The approvers found for a release, and what was wrong on the way.
#[derive(Clone, Debug)]
pub struct ResolvedApprovers {
    /// Valid, de-duplicated approvers.
    pub approvers: Vec<ApproverEmail>,
    /// Where they came from: `request`, `approvers_url` or `static`.
    pub source: String,
    /// A note shown on the release (no approvers, skipped invalid addresses).
    pub problem: Option<String>,
    /// The rule their decisions are judged by.
    pub rule: Rule,
    /// Channels besides email that each approver's request is posted to.
    pub channels: Vec<ChannelKind>,
}

/// Opens the database named by the configured URL: `sqlite:` for SQLite,
/// `postgres://` or `postgresql://` for PostgreSQL.
pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.url.expose();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(config).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(config).await?))
    } else {
        anyhow::bail!("the database URL must start with sqlite:, postgres:// or postgresql://")
    }
}
