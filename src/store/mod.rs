//! Persistence: the [`Store`] interface and its implementation on SQLite or
//! PostgreSQL.
//!
//! The store only runs statements and returns the model's types; what a change
//! means and which job follows it is decided by the lifecycle (`flow`).
//! The statements (`releases`, `callbacks`, `listing`, `queue`, `rows`) are
//! written once (`sql`) and run on a [`connection`] of either database, each
//! through one driver: `sqlite` on rusqlite, `postgres` on sqlx. `database`
//! implements [`Store`] with them, `transaction` the writes of one operation.

mod approvers;
mod cached;
mod callbacks;
mod changes;
mod connection;
mod database;
mod grouped;
mod kept;
mod listing;
mod pending;
mod postgres;
mod queue;
mod releases;
mod retention;
mod rows;
mod sql;
mod sqlite;
mod transaction;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        callback::{CallbackRecord, FeedLine},
        job::{Job, JobKind, Lease, ReleaseJob},
        policy::NewApprovers,
        release::{NewRelease, Phase, ReleaseKey},
        snapshot::{
            ApprovalRecord, AzureApprovalRecord, ReleaseHistory, ReleaseRecord, ReleaseSnapshot,
        },
    },
    settings::DatabaseConfig,
};

pub use cached::Cached;
pub use kept::Kept;
pub use listing::{BadCursor, ListingCursor, ReleasePage, ReleaseQuery};
pub use pending::PendingRounds;
pub use retention::Pruned;
pub use transaction::{AddedApprovers, Transaction};

/// How many rounds [`Store::known_rounds`] returns at most.
pub const MAX_ROUNDS_SHOWN: usize = 20;

use database::Database;
use postgres::Postgres;
use sqlite::Sqlite;

/// A database failure; the cause is logged where it is handled, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL could not be reached or a statement failed; or, on either
    /// database, the connection for migrations.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite's file could not be opened or a statement on it failed.
    #[error("database error: {0}")]
    Sqlite(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A write grouped with others into one statement failed with the
    /// group's error (`grouped`).
    #[error(transparent)]
    Grouped(Arc<StoreError>),
    /// A write's group was dropped on its way (its caller stopped waiting):
    /// whether it was made is not known.
    #[error("database write dropped with its group")]
    GroupDropped,
}

/// The state of the whole database: equal versions mean nothing was committed
/// between them, by this process or any other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataVersion([u8; 48]);

impl DataVersion {
    /// The version numbered `count` by a counter of this process's own.
    fn counted(count: u64) -> Self {
        let mut bytes = [0; 48];
        bytes[..8].copy_from_slice(&count.to_le_bytes());
        Self(bytes)
    }
}

/// Everything the service stores. Implementations keep each method atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// The database's version, where it can be read without a round trip:
    /// SQLite's file in WAL mode, or PostgreSQL's notifications while a
    /// connection listens for them ([`follow_changes`](Self::follow_changes)).
    /// `None` while a commit is being written on SQLite, and on PostgreSQL
    /// while nobody listens (before `follow_changes`, or after the listening
    /// connection was lost and until it is back).
    fn data_version(&self) -> Option<DataVersion>;
    /// Starts following the commits of other processes on the same database
    /// until `stop` is cancelled; needed on PostgreSQL for
    /// [`data_version`](Self::data_version), nothing to do on SQLite.
    fn follow_changes(&self, stop: CancellationToken);
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Returns the stored token secret, storing `candidate` first if there is none.
    async fn token_secret(&self, candidate: &str, now: DateTime<Utc>)
    -> Result<String, StoreError>;
    /// The stored token secret, if there is one; stores none.
    async fn stored_token_secret(&self) -> Result<Option<String>, StoreError>;
    /// Deletes the stored token secret; `false` when there was none.
    async fn forget_token_secret(&self) -> Result<bool, StoreError>;

    /// Inserts a release with its first jobs, each about the release as a
    /// whole (its kind and when it is due), unless its key is known: its row
    /// when inserted. One statement on PostgreSQL, where a transaction takes
    /// four round trips.
    async fn insert_release_with_jobs(
        &self,
        new: &NewRelease,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
        jobs: &[ReleaseJob],
    ) -> Result<Option<ReleaseRecord>, StoreError>;
    /// Stores a round's approvers `new`, found by job `completing`, and
    /// completes that job; claims the release's first `lease.most` due jobs of
    /// `claim` (the approvers' emails) until `lease.until`, each with the
    /// release as it is then. One write, on PostgreSQL one round trip where a
    /// transaction and a claim took four. `None`, and nothing written, when
    /// the release has a callback registration not yet delivered (its feed
    /// needs a line in the same transaction) or is gone.
    async fn approvers_found(
        &self,
        new: &NewApprovers<'_>,
        completing: i64,
        claim: JobKind,
        lease: Lease,
    ) -> Result<Option<Vec<Job>>, StoreError>;
    /// Begins a write transaction, in the writers' turn.
    async fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;
    /// Begins a write transaction, in the writers' turn, that holds release
    /// `release_id`'s lock from the start, as [`Transaction::lock_release`]
    /// takes it: on PostgreSQL in the round trip that begins it.
    async fn begin_holding(&self, release_id: i64)
    -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// A release by its public identity.
    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError>;
    /// A release with its callback registrations, for its timeline.
    async fn release_history(&self, key: &ReleaseKey)
    -> Result<Option<ReleaseHistory>, StoreError>;
    /// The key of the latest round of `key`'s release and stage, of `attempt`
    /// and `phase` where given; `None` when there is none.
    async fn latest_round(
        &self,
        key: &ReleaseKey,
        attempt: Option<u32>,
        phase: Option<Phase>,
    ) -> Result<Option<ReleaseKey>, StoreError>;
    /// The rounds of a project's release id in every stage, ordered by stage, attempt and
    /// phase, at most [`MAX_ROUNDS_SHOWN`]; for a `404` that says where the release is.
    async fn known_rounds(
        &self,
        team_project: &str,
        release_id: &str,
    ) -> Result<Vec<ReleaseKey>, StoreError>;
    /// The Azure DevOps approvals a round decides.
    async fn azure_approvals(
        &self,
        release_id: i64,
    ) -> Result<Vec<AzureApprovalRecord>, StoreError>;
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
    /// A callback registration.
    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError>;
    /// A callback registration's feed lines not yet posted, in order.
    async fn unposted_feed_lines(&self, callback_id: i64) -> Result<Vec<FeedLine>, StoreError>;

    /// Locks the next due job until `lease_until`; `None` when nothing is due.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError>;
    /// Locks release `release_id`'s first `most` due jobs of `kind` until
    /// `lease_until`, each with the release as read with the claim; those
    /// another worker holds are left to it.
    async fn claim_release_jobs(
        &self,
        release_id: i64,
        kind: JobKind,
        most: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError>;
    /// Extends the lock of a job still running, so no other worker takes it over.
    async fn extend_lease(&self, job_id: i64, lease_until: DateTime<Utc>)
    -> Result<(), StoreError>;
    /// Deletes a finished job.
    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError>;
    /// Records an approval's email (with the link of `link_generation`) as
    /// accepted, unless its link was superseded meanwhile, and deletes its
    /// job `job_id`, both or neither.
    async fn record_email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        link_generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
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

    /// The rounds pending at `now` in the whole database: how many, and the oldest's creation.
    async fn pending_rounds(&self, now: DateTime<Utc>) -> Result<PendingRounds, StoreError>;
    /// Rounds not recorded as concluded, deadline ahead of `now`, that have a
    /// vote, a cancellation or a settlement: candidates for
    /// [`Transaction::record_concluded`] that an older release did not record.
    async fn possibly_concluded_rounds(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;

    /// Deletes, in one transaction, up to `limit` rounds decided before `cutoff`
    /// (concluded then, or expired: deadline before it) with everything that
    /// belongs to them; a round with a job still queued or retrying is kept.
    async fn prune_decided(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Pruned, StoreError>;
}

/// Opens the database named by the configured URL: `sqlite:` for SQLite,
/// `postgres://` or `postgresql://` for PostgreSQL.
pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.url.expose();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(Database::Sqlite(Sqlite::connect(config).await?)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let postgres = Postgres::connect(config).await.with_context(|| {
            format!(
                "could not connect to PostgreSQL at {} within {:?} (DEPLOY_GATE_DATABASE_CONNECT_TIMEOUT)",
                postgres::location(url),
                config.connect_timeout
            )
        })?;
        Ok(Arc::new(Database::Postgres(postgres)))
    } else {
        anyhow::bail!("the database URL must start with sqlite:, postgres:// or postgresql://")
    }
}
