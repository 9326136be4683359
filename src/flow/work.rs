//! What the worker's jobs change: approvers found, the deadline reached,
//! reminders due, and the bookkeeping of work done outside.

use uuid::Uuid;

use super::{Flow, notices::Requests};
use crate::{
    domain::{
        approver::ApproverEmail,
        job::{Job, JobKind, Lease, NewJob, Subject},
        policy::{Found, ReleaseStatus, under_policy},
        progress::waiting_line,
        release::AzureApprovalRef,
        snapshot::ReleaseRecord,
    },
    store::StoreError,
};

/// Work a job has done outside (a mail server, Azure DevOps), to record as the
/// job completes.
#[derive(Clone, Copy, Debug)]
pub enum Finished<'a> {
    /// Azure DevOps accepted a TaskCompleted event with `result`.
    CallbackDelivered {
        /// The callback registration.
        callback_id: i64,
        /// `succeeded` or `failed`.
        result: &'a str,
    },
    /// The escalation contact was told.
    Escalated {
        /// The release.
        release_id: i64,
    },
}

impl Flow {
    /// Stores the approvers found for `release` (judged by its policy), queues
    /// their requests, and completes `job_id`; claims the first `lease.most`
    /// of their emails for the caller, each with the release: the worker
    /// that found the approvers sends them without a claim of its own.
    pub async fn approvers_found(
        &self,
        job_id: i64,
        release: &ReleaseRecord,
        found: Found,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        let requester = release
            .requested_for
            .as_deref()
            .and_then(|r| ApproverEmail::parse(r).ok());
        let policies = self.policies.get();
        let resolved = under_policy(
            found,
            &policies,
            policies.for_release(&release.key),
            requester.as_ref(),
            release.required_approvals,
        );
        tracing::info!(
            approvers = resolved.approvers.len(),
            source = %resolved.source,
            "approvers resolved"
        );
        let now = self.clock.now();
        let requests = Requests::of(&resolved, now);
        let emails = JobKind::SendApprovalEmail;
        let new = requests.to_store(release.id);
        // Most rounds have no callback registration (gates poll): then
        // neither the round with its approvers nor a feed line is needed,
        // and one write of the store does it all.
        if let Some(claimed) = (self.store.approvers_found(&new, job_id, emails, lease)).await? {
            self.committed(requests.queue_more_than(lease.most));
            return Ok(claimed);
        }
        let mut change = self.begin_holding(release.id).await?;
        let completing = Some(job_id);
        let open_callbacks = (change.add_approvers(release.id, &resolved, now, completing)).await?;
        if open_callbacks {
            let after = change.tx.read_release(release.id).await?;
            let line = waiting_line(&after, now);
            change.tell_callbacks(release.id, &[line], now).await?;
        }
        self.commit(change).await?;
        let (most, until) = (lease.most, lease.until);
        let claim = (self.store).claim_release_jobs(release.id, emails, most, now, until);
        // The approvers are stored: unclaimed, their emails stay queued for any worker.
        Ok(claim.await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, release.id = release.id, "could not claim the approvers' emails");
            Vec::new()
        }))
    }

    /// At the deadline: queues the release's callbacks and write-back if it is
    /// decided or expired, and completes `job_id`; a deadline not yet due
    /// (the job ran early) postpones the job to it.
    pub async fn deadline_reached(&self, job_id: i64, release_id: i64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin_holding(release_id).await?;
        let snapshot = change.tx.read_release(release_id).await?;
        let status = snapshot.outcome(now).status;
        if now < snapshot.release.deadline && !status.is_final() {
            change
                .tx
                .postpone_job(job_id, snapshot.release.deadline)
                .await?;
            return self.commit(change).await;
        }
        change.queue_decision_notices(&snapshot, now).await?;
        change.tx.complete_job(job_id).await?;
        self.commit(change).await?;
        if status == ReleaseStatus::Expired {
            self.observe_decision(&snapshot, now);
        }
        Ok(())
    }

    /// At a reminder time: queues a reminder for every approver of a pending
    /// release who has not decided (and whose approval counts), and completes `job_id`.
    pub async fn reminders_due(&self, job_id: i64, release_id: i64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin_holding(release_id).await?;
        let snapshot = change.tx.read_release(release_id).await?;
        if !snapshot.outcome(now).status.is_final() {
            let rule = &snapshot.release.rule;
            let reminders: Vec<_> = (snapshot.approvals.iter())
                .filter(|a| a.decided.is_none() && rule.counts(&a.email))
                .map(|approval| NewJob {
                    kind: JobKind::SendReminder,
                    release_id,
                    subject: Subject::Approval(approval.id),
                    run_at: now,
                })
                .collect();
            change.enqueue_all(&reminders).await?;
        }
        change.tx.complete_job(job_id).await?;
        self.commit(change).await
    }

    /// Records a round's decision as written back to one of its Azure DevOps
    /// approvals (the write-back job goes on with the others).
    pub async fn written_back(&self, approval: &AzureApprovalRef) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        change.tx.record_write_back(approval, now).await?;
        self.commit(change).await
    }

    /// Records that the mail server accepted an approval's email with the link
    /// of `link_generation`, and completes its job `job_id`. Nothing else
    /// changes with it: the store records both at once (on PostgreSQL one
    /// statement, where a transaction took four round trips).
    pub async fn email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        link_generation: i64,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        (self.store)
            .record_email_sent(job_id, approval_id, link_generation, now)
            .await
    }

    /// Records what job `job_id` did outside and completes it, in one transaction.
    pub async fn finished(&self, job_id: i64, done: Finished<'_>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        match done {
            Finished::CallbackDelivered {
                callback_id,
                result,
            } => {
                let tx = &mut change.tx;
                tx.record_callback_delivered(callback_id, result, now)
                    .await?;
            }
            Finished::Escalated { release_id } => {
                change.tx.record_escalation(release_id, now).await?;
            }
        }
        change.tx.complete_job(job_id).await?;
        self.commit(change).await
    }
}
