//! [`Cached`]: a [`Store`] that keeps the reads of gate polls and approval
//! views while the database stays as it was.
//!
//! Gate polls and approval links ask for the same rows again and again, and
//! between two commits the rows cannot change. A read is kept with the
//! database's version taken before it, and given again only while the version
//! is the same: nothing committed since, by this process or any other
//! ([`Store::data_version`]: SQLite's WAL index, PostgreSQL's notifications).
//! A read that began before a commit is kept at the version before it, which
//! the commit has left behind, so it is never given again. Without a version
//! (PostgreSQL while nobody listens) every read goes to the database.
//! Everything else, and every write, goes straight through.

use std::{hash::Hash, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    DataVersion, PendingRounds, Pruned, ReleasePage, ReleaseQuery, Store, StoreError, Transaction,
    kept::Kept,
};
use crate::domain::{
    callback::{CallbackRecord, FeedLine},
    job::{Job, JobKind, Lease, ReleaseJob},
    policy::NewApprovers,
    release::{NewRelease, Phase, ReleaseKey},
    snapshot::{
        ApprovalRecord, AzureApprovalRecord, ReleaseHistory, ReleaseRecord, ReleaseSnapshot,
    },
};

/// The most releases and rounds kept. 20,000 releases of three approvers are
/// about 20 MB.
const MOST_RELEASES: usize = 20_000;

/// The most approvals whose release is kept: an approval id and a release id,
/// a few megabytes for 100,000.
const MOST_APPROVALS: usize = 100_000;

/// A [`Store`] keeping the reads of [`latest_round`](Store::latest_round),
/// [`release_by_id`](Store::release_by_id) and [`approval`](Store::approval)
/// for as long as the database's version stays.
pub struct Cached {
    inner: Arc<dyn Store>,
    rounds: Kept<(ReleaseKey, Option<u32>, Option<Phase>), Option<ReleaseKey>>,
    releases: Kept<i64, Option<ReleaseSnapshot>>,
    /// The release each approval belongs to: an approval is read from its
    /// release's snapshot, so that the many approvals of the kept releases
    /// take no room of their own.
    approvals: Kept<Uuid, i64>,
}

impl Cached {
    /// `inner`, its reads kept.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            rounds: Kept::holding(MOST_RELEASES),
            releases: Kept::holding(MOST_RELEASES),
            approvals: Kept::holding(MOST_APPROVALS),
        }
    }

    /// The value kept for `key` in `kept` at the current version, or else
    /// `read`'s, kept for the next asker.
    async fn through<K, V, F>(&self, kept: &Kept<K, V>, key: K, read: F) -> Result<V, StoreError>
    where
        K: Hash + Eq,
        V: Clone,
        F: Future<Output = Result<V, StoreError>>,
    {
        let Some(version) = self.inner.data_version() else {
            return read.await;
        };
        if let Some(value) = kept.get(&version, &key) {
            return Ok(value);
        }
        let value = read.await?;
        kept.keep(version, key, value.clone());
        Ok(value)
    }
}

#[async_trait]
impl Store for Cached {
    fn data_version(&self) -> Option<DataVersion> {
        self.inner.data_version()
    }

    fn follow_changes(&self, stop: CancellationToken) {
        self.inner.follow_changes(stop);
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn token_secret(
        &self,
        candidate: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.inner.token_secret(candidate, now).await
    }

    async fn stored_token_secret(&self) -> Result<Option<String>, StoreError> {
        self.inner.stored_token_secret().await
    }

    async fn forget_token_secret(&self) -> Result<bool, StoreError> {
        self.inner.forget_token_secret().await
    }

    async fn insert_release_with_jobs(
        &self,
        new: &NewRelease,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
        jobs: &[ReleaseJob],
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        (self.inner)
            .insert_release_with_jobs(new, required_approvals, deadline, now, jobs)
            .await
    }

    async fn approvers_found(
        &self,
        new: &NewApprovers<'_>,
        completing: i64,
        claim: JobKind,
        lease: Lease,
    ) -> Result<Option<Vec<Job>>, StoreError> {
        (self.inner)
            .approvers_found(new, completing, claim, lease)
            .await
    }

    async fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        self.inner.begin().await
    }

    async fn begin_holding(
        &self,
        release_id: i64,
    ) -> Result<Box<dyn Transaction + '_>, StoreError> {
        self.inner.begin_holding(release_id).await
    }

    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError> {
        self.inner.find_release(key).await
    }

    async fn release_history(
        &self,
        key: &ReleaseKey,
    ) -> Result<Option<ReleaseHistory>, StoreError> {
        self.inner.release_history(key).await
    }

    async fn latest_round(
        &self,
        key: &ReleaseKey,
        attempt: Option<u32>,
        phase: Option<Phase>,
    ) -> Result<Option<ReleaseKey>, StoreError> {
        let read = self.inner.latest_round(key, attempt, phase);
        self.through(&self.rounds, (key.clone(), attempt, phase), read)
            .await
    }

    async fn known_rounds(
        &self,
        team_project: &str,
        release_id: &str,
    ) -> Result<Vec<ReleaseKey>, StoreError> {
        self.inner.known_rounds(team_project, release_id).await
    }

    async fn azure_approvals(
        &self,
        release_id: i64,
    ) -> Result<Vec<AzureApprovalRecord>, StoreError> {
        self.inner.azure_approvals(release_id).await
    }

    async fn list_releases(
        &self,
        query: &ReleaseQuery,
        now: DateTime<Utc>,
    ) -> Result<ReleasePage, StoreError> {
        self.inner.list_releases(query, now).await
    }

    async fn release_by_id(&self, id: i64) -> Result<Option<ReleaseSnapshot>, StoreError> {
        self.through(&self.releases, id, self.inner.release_by_id(id))
            .await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        let Some(version) = self.inner.data_version() else {
            return self.inner.approval(id).await;
        };
        if let Some(release_id) = self.approvals.get(&version, &id)
            && let Some(snapshot) = self.release_by_id(release_id).await?
            && let Some(approval) = snapshot.approval(id)
        {
            return Ok(Some(approval.clone()));
        }
        let approval = self.inner.approval(id).await?;
        if let Some(approval) = &approval {
            self.approvals.keep(version, id, approval.release_id);
        }
        Ok(approval)
    }

    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        self.inner.callback(callback_id).await
    }

    async fn unposted_feed_lines(&self, callback_id: i64) -> Result<Vec<FeedLine>, StoreError> {
        self.inner.unposted_feed_lines(callback_id).await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        self.inner.claim_job(now, lease_until).await
    }

    async fn claim_release_jobs(
        &self,
        release_id: i64,
        kind: JobKind,
        most: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        (self.inner)
            .claim_release_jobs(release_id, kind, most, now, lease_until)
            .await
    }

    async fn extend_lease(
        &self,
        job_id: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.extend_lease(job_id, lease_until).await
    }

    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError> {
        self.inner.complete_job(job_id).await
    }

    async fn record_email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        link_generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .record_email_sent(job_id, approval_id, link_generation, now)
            .await
    }

    async fn prune_decided(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Pruned, StoreError> {
        self.inner.prune_decided(cutoff, limit).await
    }

    async fn fail_job(
        &self,
        job_id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.fail_job(job_id, error, retry_at, now).await
    }

    async fn due_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.due_job_count(now).await
    }

    async fn outstanding_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.outstanding_job_count(now).await
    }

    async fn pending_rounds(&self, now: DateTime<Utc>) -> Result<PendingRounds, StoreError> {
        self.inner.pending_rounds(now).await
    }

    async fn possibly_concluded_rounds(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        self.inner.possibly_concluded_rounds(now).await
    }
}
