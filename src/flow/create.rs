//! A release arrives: it is stored with its plan and first jobs, or the known
//! one is found; a callback registration is stored either way.

use chrono::{DateTime, Utc};

use super::{Change, Flow};
use crate::{
    domain::{
        callback::PlanCallback,
        job::{JobKind, Subject},
        policy::{ReleasePlan, plan_release},
        release::NewRelease,
        snapshot::ReleaseSnapshot,
    },
    store::StoreError,
};

/// Result of [`Flow::create_or_find`].
#[derive(Debug)]
pub enum Creation {
    /// The release was new and its first jobs are queued.
    Created(ReleaseSnapshot),
    /// The release was already known.
    Existing(ReleaseSnapshot),
}

impl Flow {
    /// Stores a new release with its first jobs, or finds the known one; stores
    /// `callback` either way. Concurrent calls for one release (two replicas, or
    /// one pipeline polling twice) store it once.
    pub async fn create_or_find(
        &self,
        new: &NewRelease,
        callback: Option<&PlanCallback>,
    ) -> Result<Creation, StoreError> {
        // Gates poll a known release again and again: answer those from a read,
        // without taking SQLite's only write lock (or a row lock on PostgreSQL).
        if callback.is_none()
            && let Some(known) = self.store.find_release(&new.key).await?
        {
            return Ok(Creation::Existing(known));
        }
        let now = self.clock.now();
        let plan = plan_release(&self.policies, self.defaults, new, now);
        let mut change = self.begin().await?;
        let inserted = change
            .tx
            .insert_release(new, plan.required_approvals, plan.deadline, now)
            .await?;
        let release_id = match inserted {
            Some(release_id) => {
                queue_first_jobs(&mut change, release_id, &plan, now).await?;
                release_id
            }
            // Inserted by another transaction that has committed since.
            None => change.tx.release_id(&new.key).await?.ok_or_else(|| {
                StoreError::Corrupt("release vanished inside its transaction".into())
            })?,
        };
        // A poll only reads, so polls never queue on the lock; registering a
        // callback writes, so it takes the lock.
        let snapshot = match (inserted, callback) {
            (None, None) => change.tx.read_release(release_id).await?,
            _ => change.tx.lock_release(release_id).await?,
        };
        if let Some(callback) = callback {
            change.register_callback(&snapshot, callback, now).await?;
        }
        if inserted.is_some() && new.azure_approval_id.is_some() {
            change.watch_deadline(&snapshot).await?;
        }
        self.commit(change).await?;
        if inserted.is_some() {
            self.metrics.release_created();
            tracing::info!(release.key = %new.key.display(), callback = callback.is_some(), "release received");
            return Ok(Creation::Created(snapshot));
        }
        Ok(Creation::Existing(snapshot))
    }
}

/// Approvers known at once are stored now, else a job resolves them; reminders
/// and the escalation are queued for their times.
async fn queue_first_jobs(
    change: &mut Change<'_>,
    release_id: i64,
    plan: &ReleasePlan,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match &plan.approvers {
        Some(resolved) => change.add_approvers(release_id, resolved, now).await?,
        None => {
            let kind = JobKind::ResolveApprovers;
            change
                .enqueue(kind, release_id, Subject::Release, now)
                .await?;
        }
    }
    for at in &plan.reminders {
        let kind = JobKind::RemindApprovers;
        change
            .enqueue(kind, release_id, Subject::Release, *at)
            .await?;
    }
    if let Some(at) = plan.escalate_at {
        let kind = JobKind::Escalate;
        change
            .enqueue(kind, release_id, Subject::Release, at)
            .await?;
    }
    Ok(())
}
