//! Retention: a background task deleting the rounds decided longer ago than
//! `DEPLOY_GATE_RETENTION`, in small batches with a pause between them, so
//! that pruning a backlog never holds up polls or the job queue.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    flow::{Flow, PRUNE_BATCH},
    store::{Pruned, StoreError},
};

/// Wait after start before the first pass, so that start-up work goes first.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);

/// Time between passes: rounds become old enough at the pace they were
/// decided, and an hour late is nothing against a retention of days.
const PASS_EVERY: Duration = Duration::from_secs(3600);

/// Pause between two batches of one pass, leaving the database to others.
const PAUSE: Duration = Duration::from_millis(100);

/// Deletes decided rounds past the retention; cheap to clone.
#[derive(Clone)]
pub struct Retention {
    flow: Arc<Flow>,
    keep: Option<Duration>,
}

impl Retention {
    /// Retention of decided rounds for `keep`; `None` keeps every round.
    pub fn new(flow: Arc<Flow>, keep: Option<Duration>) -> Self {
        Self { flow, keep }
    }

    /// Deletes one batch of rounds decided before the retention; nothing when
    /// no retention is set.
    pub async fn prune_batch(&self) -> Result<Pruned, StoreError> {
        match self.keep {
            Some(keep) => self.flow.prune_decided(keep).await,
            None => Ok(Pruned::default()),
        }
    }

    /// Deletes batches, pausing between them, until one comes back short (the
    /// backlog is gone) or `stop` is cancelled; what was deleted in all.
    pub async fn prune(&self, stop: &CancellationToken) -> Result<Pruned, StoreError> {
        let mut total = Pruned::default();
        loop {
            let batch = self.prune_batch().await?;
            total.releases += batch.releases;
            total.approvals += batch.approvals;
            let short = usize::try_from(batch.releases).is_ok_and(|n| n < PRUNE_BATCH);
            if short || pause(stop, PAUSE).await.is_err() {
                return Ok(total);
            }
        }
    }

    /// Runs a pass a minute after start and then every hour, until `stop` is
    /// cancelled; `None` (no task) when no retention is set.
    pub fn start(self, stop: CancellationToken) -> Option<JoinHandle<()>> {
        let keep = self.keep?;
        Some(tokio::spawn(async move {
            let mut wait = FIRST_PASS_AFTER;
            while pause(&stop, wait).await.is_ok() {
                wait = PASS_EVERY;
                match self.prune(&stop).await {
                    Ok(pruned) if pruned.releases > 0 => tracing::info!(
                        releases = pruned.releases,
                        approvals = pruned.approvals,
                        retention = %humantime::format_duration(keep),
                        "deleted the rounds decided longer ago than the retention"
                    ),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(
                        error = %err,
                        "deleting rounds past the retention failed; trying again at the next pass"
                    ),
                }
            }
        }))
    }
}

/// Sleeps for `wait`; `Err` when `stop` is cancelled first.
async fn pause(stop: &CancellationToken, wait: Duration) -> Result<(), ()> {
    tokio::select! {
        () = stop.cancelled() => Err(()),
        () = tokio::time::sleep(wait) => Ok(()),
    }
}
