//! Rounds concluded by a release that did not record when (before migration
//! 0010): found and recorded at start, so the pending rounds that operators
//! watch are right from the first scrape after an upgrade.

use super::Flow;
use crate::store::StoreError;

impl Flow {
    /// Records the conclusion of every round that is final but not recorded as
    /// concluded; how many there were. Idempotent, cheap once done: only
    /// rounds with a vote, a cancellation or a settlement are read.
    pub async fn record_unrecorded_conclusions(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut recorded = 0;
        for round in self.store.possibly_concluded_rounds(now).await? {
            let mut change = self.begin_holding(round).await?;
            let snapshot = change.tx.read_release(round).await?;
            if snapshot.outcome(now).status.is_final() {
                change.conclude(&snapshot, now).await?;
                self.commit(change).await?;
                recorded += 1;
            }
        }
        Ok(recorded)
    }
}
