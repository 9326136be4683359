//! [`Transaction`]: the writes of one lifecycle operation, committed together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    StoreError, approvers, callbacks, changes::Changes, connection::Conn, pending, queue, releases,
};
use crate::domain::{
    callback::{LineKind, PlanCallback},
    job::{JobKind, NewJob},
    policy::{Decision, NewApprovers},
    release::{AzureApprovalRef, NewRelease, ReleaseKey},
    sign_in::SignedIdentity,
    snapshot::{ApprovalRecord, AzureApprovalRecord, ReleaseRecord, ReleaseSnapshot, Settlement},
};

/// One write transaction, in the writers' turn: statements only, no decisions.
/// Dropped without [`Transaction::commit`], it leaves nothing behind.
#[async_trait]
pub trait Transaction: Send {
    /// Inserts a release unless its key is known; its row when inserted.
    async fn insert_release(
        &mut self,
        new: &NewRelease,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ReleaseRecord>, StoreError>;
    /// The internal id of the release with this key.
    async fn release_id(&mut self, key: &ReleaseKey) -> Result<Option<i64>, StoreError>;
    /// Reads a release that exists.
    async fn read_release(&mut self, release_id: i64) -> Result<ReleaseSnapshot, StoreError>;
    /// Locks a release that exists for the rest of the transaction, and reads it.
    async fn lock_release(&mut self, release_id: i64) -> Result<ReleaseSnapshot, StoreError>;
    /// An approval by id.
    async fn approval(&mut self, approval_id: Uuid) -> Result<Option<ApprovalRecord>, StoreError>;
    /// Stores a round's approvers (approvers the release has are skipped),
    /// queues the jobs of each approval stored, records where they came from,
    /// and deletes the finished job `completing`, if any.
    async fn add_approvers(
        &mut self,
        new: &NewApprovers<'_>,
        completing: Option<i64>,
    ) -> Result<AddedApprovers, StoreError>;
    /// Records an approver's decision, with who signed in to make it, if anyone did.
    async fn record_decision(
        &mut self,
        approval_id: Uuid,
        decision: Decision,
        comment: Option<&str>,
        identity: Option<&SignedIdentity>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records an operator's cancellation.
    async fn record_cancellation(
        &mut self,
        release_id: i64,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Makes an approval's earlier links stop working.
    async fn supersede_links(&mut self, approval_id: Uuid) -> Result<(), StoreError>;
    /// Records that the escalation contact was told.
    async fn record_escalation(
        &mut self,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Ties an Azure DevOps approval to the round deciding it, unless it is
    /// tied already; whether it was new.
    async fn attach_azure_approval(
        &mut self,
        release_id: i64,
        approval: &AzureApprovalRef,
        assigned_to: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The Azure DevOps approvals a round decides.
    async fn azure_approvals(
        &mut self,
        release_id: i64,
    ) -> Result<Vec<AzureApprovalRecord>, StoreError>;
    /// Records that Azure DevOps itself decided the round.
    async fn record_settlement(
        &mut self,
        release_id: i64,
        settlement: &Settlement,
    ) -> Result<(), StoreError>;
    /// Records when a round concluded (approved, rejected, cancelled or
    /// settled), unless that is recorded already.
    async fn record_concluded(
        &mut self,
        release_id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records an Azure DevOps approval's decision as taken in Azure itself.
    async fn record_decided_in_azure(
        &mut self,
        approval: &AzureApprovalRef,
        decision: Decision,
    ) -> Result<(), StoreError>;
    /// The round deciding this Azure DevOps approval, if deploy-gate follows it.
    async fn round_of(&mut self, approval: &AzureApprovalRef) -> Result<Option<i64>, StoreError>;
    /// The rounds of a release, of one stage where given, oldest first.
    async fn rounds_of(
        &mut self,
        team_project: &str,
        release_id: &str,
        stage: Option<&str>,
    ) -> Result<Vec<i64>, StoreError>;
    /// Records the round's decision as written back to this Azure DevOps approval.
    async fn record_write_back(
        &mut self,
        approval: &AzureApprovalRef,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Stores a callback registration, or refreshes its token while undelivered;
    /// the registration's id when it is new.
    async fn save_callback(
        &mut self,
        release_id: i64,
        callback: &PlanCallback,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    /// Adds a feed line to each of the release's registrations still open.
    async fn add_feed_line(
        &mut self,
        release_id: i64,
        kind: LineKind,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Adds a progress line to one registration.
    async fn add_feed_line_to(
        &mut self,
        callback_id: i64,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records a registration's TaskStarted event as delivered (or given up).
    async fn record_callback_started(
        &mut self,
        callback_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records a registration's feed lines up to `last_line_id` as posted (or given up).
    async fn record_feed_lines_posted(
        &mut self,
        callback_id: i64,
        last_line_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Whether an undelivered registration has an event or a line left to post.
    async fn callback_has_work(&mut self, callback_id: i64) -> Result<bool, StoreError>;
    /// Whether the release has a callback registration not yet delivered
    /// (whatever feed lines it has): without one, neither a feed line nor a
    /// delivery is due.
    async fn has_open_callbacks(&mut self, release_id: i64) -> Result<bool, StoreError>;
    /// The release's undelivered callback registrations with no delivery queued.
    async fn callbacks_awaiting_delivery(
        &mut self,
        release_id: i64,
    ) -> Result<Vec<i64>, StoreError>;
    /// Records a delivered callback and deletes its token.
    async fn record_callback_delivered(
        &mut self,
        callback_id: i64,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Whether the release has a job of `kind`, in any state.
    async fn has_job(&mut self, release_id: i64, kind: JobKind) -> Result<bool, StoreError>;
    /// Queues jobs.
    async fn enqueue(&mut self, jobs: &[NewJob]) -> Result<(), StoreError>;
    /// Deletes an approval's jobs of `kind`, queued or failing.
    async fn delete_approval_jobs(
        &mut self,
        approval_id: Uuid,
        kind: JobKind,
    ) -> Result<(), StoreError>;
    /// Deletes a finished job.
    async fn complete_job(&mut self, job_id: i64) -> Result<(), StoreError>;
    /// Unlocks a job to run again at `run_at`, without counting a failure.
    async fn postpone_job(&mut self, job_id: i64, run_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Commits every write.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// What [`Transaction::add_approvers`] stored, and what the caller needs to go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedApprovers {
    /// Each approval's id when it was stored, in the approvers' order.
    pub ids: Vec<Option<Uuid>>,
    /// Whether any job was queued.
    pub queued_jobs: bool,
    /// Whether the release has a callback registration not yet delivered.
    pub open_callbacks: bool,
}

/// A connection in a write transaction, in the writers' turn, and on
/// PostgreSQL the version its commit moves on.
pub(super) struct WriteTx<'a>(pub(super) Conn<'a>, pub(super) Option<&'a Changes>);

#[async_trait]
impl Transaction for WriteTx<'_> {
    async fn insert_release(
        &mut self,
        new: &NewRelease,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        releases::insert(&mut self.0, new, required_approvals, deadline, now).await
    }

    async fn release_id(&mut self, key: &ReleaseKey) -> Result<Option<i64>, StoreError> {
        releases::id_of(&mut self.0, key).await
    }

    async fn read_release(&mut self, release_id: i64) -> Result<ReleaseSnapshot, StoreError> {
        releases::read(&mut self.0, release_id).await
    }

    async fn lock_release(&mut self, release_id: i64) -> Result<ReleaseSnapshot, StoreError> {
        releases::lock(&mut self.0, release_id).await
    }

    async fn approval(&mut self, approval_id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        releases::approval(&mut self.0, approval_id).await
    }

    async fn add_approvers(
        &mut self,
        new: &NewApprovers<'_>,
        completing: Option<i64>,
    ) -> Result<AddedApprovers, StoreError> {
        approvers::add(&mut self.0, new, completing).await
    }

    async fn record_decision(
        &mut self,
        approval_id: Uuid,
        decision: Decision,
        comment: Option<&str>,
        identity: Option<&SignedIdentity>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = releases::decided(approval_id, decision, comment, identity, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_cancellation(
        &mut self,
        release_id: i64,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = releases::cancelled(release_id, reason, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn supersede_links(&mut self, approval_id: Uuid) -> Result<(), StoreError> {
        let sql = releases::links_superseded(approval_id);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_escalation(
        &mut self,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = releases::escalated(release_id, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn attach_azure_approval(
        &mut self,
        release_id: i64,
        approval: &AzureApprovalRef,
        assigned_to: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        releases::attach_azure_approval(&mut self.0, release_id, approval, assigned_to, now).await
    }

    async fn azure_approvals(
        &mut self,
        release_id: i64,
    ) -> Result<Vec<AzureApprovalRecord>, StoreError> {
        releases::azure_approvals(&mut self.0, release_id).await
    }

    async fn record_settlement(
        &mut self,
        release_id: i64,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        let sql = releases::settled(release_id, settlement);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_concluded(
        &mut self,
        release_id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = pending::concluded(release_id, at);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_decided_in_azure(
        &mut self,
        approval: &AzureApprovalRef,
        decision: Decision,
    ) -> Result<(), StoreError> {
        let sql = releases::decided_in_azure(approval, decision);
        self.0.execute(sql).await.map(drop)
    }

    async fn round_of(&mut self, approval: &AzureApprovalRef) -> Result<Option<i64>, StoreError> {
        releases::round_of(&mut self.0, approval).await
    }

    async fn rounds_of(
        &mut self,
        team_project: &str,
        release_id: &str,
        stage: Option<&str>,
    ) -> Result<Vec<i64>, StoreError> {
        releases::rounds_of(&mut self.0, team_project, release_id, stage).await
    }

    async fn record_write_back(
        &mut self,
        approval: &AzureApprovalRef,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = releases::written_back(approval, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn save_callback(
        &mut self,
        release_id: i64,
        callback: &PlanCallback,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        callbacks::save(&mut self.0, release_id, callback, now).await
    }

    async fn add_feed_line(
        &mut self,
        release_id: i64,
        kind: LineKind,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = callbacks::line_added(release_id, kind, text, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn add_feed_line_to(
        &mut self,
        callback_id: i64,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = callbacks::line_added_to(callback_id, text, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_callback_started(
        &mut self,
        callback_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = callbacks::started(callback_id, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn record_feed_lines_posted(
        &mut self,
        callback_id: i64,
        last_line_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = callbacks::lines_posted(callback_id, last_line_id, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn callback_has_work(&mut self, callback_id: i64) -> Result<bool, StoreError> {
        callbacks::has_work(&mut self.0, callback_id).await
    }

    async fn has_open_callbacks(&mut self, release_id: i64) -> Result<bool, StoreError> {
        callbacks::has_open(&mut self.0, release_id).await
    }

    async fn callbacks_awaiting_delivery(
        &mut self,
        release_id: i64,
    ) -> Result<Vec<i64>, StoreError> {
        callbacks::awaiting_delivery(&mut self.0, release_id).await
    }

    async fn record_callback_delivered(
        &mut self,
        callback_id: i64,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = callbacks::callback_delivered(callback_id, result, now);
        self.0.execute(sql).await.map(drop)
    }

    async fn has_job(&mut self, release_id: i64, kind: JobKind) -> Result<bool, StoreError> {
        queue::has_job(&mut self.0, release_id, kind).await
    }

    async fn enqueue(&mut self, jobs: &[NewJob]) -> Result<(), StoreError> {
        queue::enqueue(&mut self.0, jobs).await
    }

    async fn delete_approval_jobs(
        &mut self,
        approval_id: Uuid,
        kind: JobKind,
    ) -> Result<(), StoreError> {
        let sql = queue::approval_jobs_deleted(approval_id, kind);
        self.0.execute(sql).await.map(drop)
    }

    async fn complete_job(&mut self, job_id: i64) -> Result<(), StoreError> {
        queue::complete(&mut self.0, job_id).await
    }

    async fn postpone_job(&mut self, job_id: i64, run_at: DateTime<Utc>) -> Result<(), StoreError> {
        queue::postpone(&mut self.0, job_id, run_at).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let mut this = *self;
        let committed = this.0.commit().await;
        // Moved even when the commit failed: it may have been applied
        // before the connection broke, and one version too many costs a read.
        if let Some(changes) = this.1 {
            changes.moved();
        }
        committed
    }
}
