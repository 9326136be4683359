//! The end of a round's life: once decided for longer than the retention, it
//! is deleted with everything that belongs to it.

use std::time::Duration;

use super::Flow;
use crate::store::{Pruned, StoreError};

/// Rounds deleted per transaction: small, so that the writer is held for a few
/// milliseconds at a time (SQLite has one) and a poll never waits behind it.
pub const PRUNE_BATCH: usize = 100;

impl Flow {
    /// Deletes one batch (at most [`PRUNE_BATCH`]) of the rounds decided longer
    /// than `keep` ago, counting them; pending rounds are never deleted.
    pub async fn prune_decided(&self, keep: Duration) -> Result<Pruned, StoreError> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = self.clock.now().checked_sub_signed(keep) else {
            return Ok(Pruned::default());
        };
        let pruned = self.store.prune_decided(cutoff, PRUNE_BATCH).await?;
        self.metrics.pruned(pruned.releases, pruned.approvals);
        Ok(pruned)
    }
}
