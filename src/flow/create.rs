//! A release arrives: it is stored with its plan and first jobs, or the known
//! one is found; a callback registration is stored either way.

use chrono::{DateTime, Utc};

use super::{Change, Flow};
use crate::{
    domain::{
        callback::PlanCallback,
        job::{JobKind, ReleaseJob},
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
    /// The release was known, and the Azure DevOps approval of the request
    /// joined it: the round's decision will be written back to it too.
    Joined(ReleaseSnapshot),
    /// The release was already known.
    Existing(ReleaseSnapshot),
}

impl Flow {
    /// Stores a new release with its first jobs, or finds the known one; ties
    /// the request's Azure DevOps approval to it and stores `callback` either
    /// way. Concurrent calls for one release (two replicas, or one pipeline
    /// polling twice) store it once.
    pub async fn create_or_find(
        &self,
        new: &NewRelease,
        callback: Option<&PlanCallback>,
    ) -> Result<Creation, StoreError> {
        // Gates poll a known release again and again: answer those from a read,
        // without taking SQLite's only write lock (or a row lock on PostgreSQL).
        if callback.is_none()
            && new.azure_approval.is_none()
            && let Some(known) = self.store.find_release(&new.key).await?
        {
            return Ok(Creation::Existing(known));
        }
        let now = self.clock.now();
        let plan = plan_release(&self.policies.get(), self.defaults, new, now);
        // A gate's first poll: nothing to store but the release and its jobs,
        // in one write. Known meanwhile (another replica or poll stored it),
        // it is read below like any known release.
        if callback.is_none() && new.azure_approval.is_none() && plan.approvers.is_none() {
            let jobs = release_jobs(&plan, now);
            let (required, deadline) = (plan.required_approvals, plan.deadline);
            let inserted = (self.store)
                .insert_release_with_jobs(new, required, deadline, now, &jobs)
                .await?;
            if let Some(release) = inserted {
                self.committed(!jobs.is_empty());
                return Ok(self.created(new, false, ReleaseSnapshot::new(release)));
            }
        }
        let mut change = self.begin().await?;
        let inserted = change
            .tx
            .insert_release(new, plan.required_approvals, plan.deadline, now)
            .await?;
        let created = inserted.is_some();
        let (release_id, fresh) = match inserted {
            Some(release) => {
                let release_id = release.id;
                queue_first_jobs(&mut change, release_id, &plan, now).await?;
                // Without approvers known at once, the round is the row just
                // inserted: no statement to read it back.
                let fresh = (plan.approvers.is_none()).then(|| ReleaseSnapshot::new(release));
                (release_id, fresh)
            }
            // Inserted by another transaction that has committed since.
            None => {
                let known = change.tx.release_id(&new.key).await?;
                let known = known.ok_or_else(|| {
                    StoreError::Corrupt("release vanished inside its transaction".into())
                })?;
                (known, None)
            }
        };
        // A poll only reads, so polls never queue on the lock; registering a
        // callback or an Azure approval writes to a known release, so it takes
        // the lock. A release inserted here is this transaction's alone until
        // it commits.
        let writes = callback.is_some() || new.azure_approval.is_some();
        let snapshot = match fresh {
            Some(fresh) => fresh,
            None if !created && writes => change.tx.lock_release(release_id).await?,
            None => change.tx.read_release(release_id).await?,
        };
        if let Some(callback) = callback {
            change.register_callback(&snapshot, callback, now).await?;
        }
        let joined = match &new.azure_approval {
            Some(approval) => {
                let attached = change
                    .tx
                    .attach_azure_approval(release_id, approval, &new.azure_assigned_to, now)
                    .await?;
                if attached {
                    follow_azure_approval(&mut change, &snapshot, now).await?;
                }
                attached && !created
            }
            None => false,
        };
        self.commit(change).await?;
        if created {
            return Ok(self.created(new, callback.is_some(), snapshot));
        }
        if joined {
            tracing::info!(release.key = %new.key.display(), "Azure DevOps approval joined its round");
            return Ok(Creation::Joined(snapshot));
        }
        Ok(Creation::Existing(snapshot))
    }

    /// Counts and logs a release just stored.
    fn created(&self, new: &NewRelease, callback: bool, snapshot: ReleaseSnapshot) -> Creation {
        self.metrics.release_created();
        tracing::info!(release.key = %new.key.display(), callback, "release received");
        Creation::Created(snapshot)
    }
}

/// The jobs of a new release as a whole, each with when it is due: its
/// approvers' resolution unless they are known at once, its reminders and
/// its escalation.
fn release_jobs(plan: &ReleasePlan, now: DateTime<Utc>) -> Vec<ReleaseJob> {
    let job = |kind, run_at| ReleaseJob { kind, run_at };
    let resolve = (plan.approvers.is_none()).then(|| job(JobKind::ResolveApprovers, now));
    let reminders = (plan.reminders.iter()).map(|at| job(JobKind::RemindApprovers, *at));
    let escalate = plan.escalate_at.map(|at| job(JobKind::Escalate, at));
    resolve
        .into_iter()
        .chain(reminders)
        .chain(escalate)
        .collect()
}

/// A round that gained an Azure DevOps approval writes its decision back to it
/// at once if it is decided, else at its decision or deadline.
async fn follow_azure_approval(
    change: &mut Change<'_>,
    snapshot: &ReleaseSnapshot,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if snapshot.outcome(now).status.is_final() {
        change.queue_decision_notices(snapshot, now).await
    } else {
        change.watch_deadline(snapshot).await
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
    if let Some(resolved) = &plan.approvers {
        // A new release's callback is registered after its approvers, and
        // told the round as it is then.
        change
            .add_approvers(release_id, resolved, now, None)
            .await?;
    }
    let jobs: Vec<_> = (release_jobs(plan, now).into_iter())
        .map(|job| job.of(release_id))
        .collect();
    change.enqueue_all(&jobs).await
}
