//! The release lifecycle: every state change of a release, from its creation
//! to its decision and the reports that follow.
//!
//! HTTP handlers and job bodies call these operations; neither decides which
//! job comes next. Each operation makes its writes and queues the jobs that
//! follow in one transaction (or one write of the store), and once it has
//! committed wakes the worker, in one place ([`Flow::committed`]).

mod callbacks;
mod concluded;
mod create;
mod decide;
mod notices;
mod retention;
mod settle;
mod work;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::{
    clock::Clock,
    domain::{
        job::{JobKind, NewJob, Subject},
        policy::{Defaults, Policies},
        snapshot::ReleaseSnapshot,
    },
    live::Live,
    metrics::Metrics,
    store::{Store, StoreError, Transaction},
};

pub use create::Creation;
pub use decide::{CancelOutcome, DecisionOutcome, ResendOutcome};
pub use retention::PRUNE_BATCH;
pub use settle::SettleOutcome;
pub use work::Finished;

/// The lifecycle's operations, over the store, the clock and the worker's wake-up.
pub struct Flow {
    store: Arc<dyn Store>,
    wake_worker: Arc<Notify>,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Replaced by a configuration reload; read as each release is planned.
    policies: Live<Policies>,
    defaults: Defaults,
}

/// The writes of one operation in flight, and whether they queued a job.
struct Change<'a> {
    tx: Box<dyn Transaction + 'a>,
    queued: bool,
}

impl Change<'_> {
    /// Queues a job in this change's transaction.
    async fn enqueue(
        &mut self,
        kind: JobKind,
        release_id: i64,
        subject: Subject,
        run_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = NewJob {
            kind,
            release_id,
            subject,
            run_at,
        };
        self.enqueue_all(&[job]).await
    }

    /// Queues jobs in this change's transaction, together.
    async fn enqueue_all(&mut self, jobs: &[NewJob]) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.tx.enqueue(jobs).await?;
        self.queued = true;
        Ok(())
    }

    /// Records when `round`, final at `now`, was decided: the pending rounds
    /// that operators watch are the rounds without it.
    async fn conclude(
        &mut self,
        round: &ReleaseSnapshot,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = round.outcome(now).decided_at.unwrap_or(now);
        self.tx.record_concluded(round.release.id, at).await
    }
}

impl Flow {
    /// The lifecycle over `store`; `wake_worker` is notified after every
    /// commit that queued a job.
    pub fn new(
        store: Arc<dyn Store>,
        wake_worker: Arc<Notify>,
        clock: Clock,
        metrics: Arc<Metrics>,
        policies: Live<Policies>,
        defaults: Defaults,
    ) -> Self {
        Self {
            store,
            wake_worker,
            clock,
            metrics,
            policies,
            defaults,
        }
    }

    /// Begins an operation's transaction.
    async fn begin(&self) -> Result<Change<'_>, StoreError> {
        Ok(Change {
            tx: self.store.begin().await?,
            queued: false,
        })
    }

    /// Begins an operation's transaction holding release `release_id`'s lock
    /// from the start (one round trip less on PostgreSQL than taking it after).
    async fn begin_holding(&self, release_id: i64) -> Result<Change<'_>, StoreError> {
        Ok(Change {
            tx: self.store.begin_holding(release_id).await?,
            queued: false,
        })
    }

    /// Counts `round`, which became final by an operation just committed: its
    /// status and how long it took from creation to decision.
    fn observe_decision(&self, round: &ReleaseSnapshot, now: DateTime<Utc>) {
        let outcome = round.outcome(now);
        let decided_at = outcome.decided_at.unwrap_or(now);
        let took = (decided_at - round.release.created_at)
            .to_std()
            .unwrap_or_default();
        self.metrics.release_decided(outcome.status.as_str(), took);
    }

    /// Commits an operation, then [`Flow::committed`].
    async fn commit(&self, change: Change<'_>) -> Result<(), StoreError> {
        change.tx.commit().await?;
        self.committed(change.queued);
        Ok(())
    }

    /// After an operation's writes are committed: if they queued a job, wakes
    /// one idle worker (one is enough: waking all of them would have each try
    /// to claim).
    fn committed(&self, queued: bool) {
        if queued {
            self.wake_worker.notify_one();
        }
    }
}
