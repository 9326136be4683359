//! The jobs that follow a change: approval requests for new approvers, the
//! deadline watch, and the reports of a decided release to Azure DevOps.

use chrono::{DateTime, TimeDelta, Utc};

use super::Change;
use crate::{
    domain::{
        approver::ApproverEmail,
        job::{ApprovalJob, JobKind, Subject},
        policy::{NewApprovers, ResolvedApprovers},
        snapshot::ReleaseSnapshot,
    },
    store::StoreError,
};

/// The requests of a round's approvers: each approver with its approval's
/// creation time (their order), and the jobs each approval needs: an email,
/// and a notification on each of the round's channels.
pub(super) struct Requests<'a> {
    approvers: Vec<(&'a ApproverEmail, DateTime<Utc>)>,
    jobs: Vec<ApprovalJob>,
    resolved: &'a ResolvedApprovers,
    now: DateTime<Utc>,
}

impl<'a> Requests<'a> {
    /// The requests of `resolved`'s approvers, found at `now`.
    pub(super) fn of(resolved: &'a ResolvedApprovers, now: DateTime<Utc>) -> Self {
        // The position keeps the approvers in their given order.
        let approvers = (0..)
            .zip(&resolved.approvers)
            .map(|(position, email)| (email, now + TimeDelta::milliseconds(position)))
            .collect();
        let email = ApprovalJob {
            kind: JobKind::SendApprovalEmail,
            channel: None,
        };
        let channels = resolved.channels.iter().map(|channel| ApprovalJob {
            kind: JobKind::NotifyChannel,
            channel: Some(*channel),
        });
        Self {
            approvers,
            jobs: std::iter::once(email).chain(channels).collect(),
            resolved,
            now,
        }
    }

    /// What the store writes for release `release_id`.
    pub(super) fn to_store(&self, release_id: i64) -> NewApprovers<'_> {
        NewApprovers {
            release_id,
            approvers: &self.approvers,
            jobs: &self.jobs,
            resolved: self.resolved,
            now: self.now,
        }
    }

    /// Whether storing them queues jobs besides the first `most` emails.
    pub(super) fn queue_more_than(&self, most: usize) -> bool {
        self.jobs.len() > 1 || self.approvers.len() > most
    }
}

impl Change<'_> {
    /// Stores approvals with an email job (and a job per channel) each,
    /// skipping approvers already present, records the rule and where the
    /// approvers came from, and deletes the finished job `completing`, if any;
    /// whether the release has a callback registration not yet delivered.
    pub(super) async fn add_approvers(
        &mut self,
        release_id: i64,
        resolved: &ResolvedApprovers,
        now: DateTime<Utc>,
        completing: Option<i64>,
    ) -> Result<bool, StoreError> {
        let requests = Requests::of(resolved, now);
        let new = requests.to_store(release_id);
        let added = self.tx.add_approvers(&new, completing).await?;
        self.queued |= added.queued_jobs;
        Ok(added.open_callbacks)
    }

    /// Makes sure one job fires at the release's deadline.
    pub(super) async fn watch_deadline(
        &mut self,
        snapshot: &ReleaseSnapshot,
    ) -> Result<(), StoreError> {
        let release = &snapshot.release;
        if self.tx.has_job(release.id, JobKind::ExpireRelease).await? {
            return Ok(());
        }
        let kind = JobKind::ExpireRelease;
        self.enqueue(kind, release.id, Subject::Release, release.deadline)
            .await
    }

    /// Queues the outcome and TaskCompleted of the callbacks and the Azure
    /// write-back of a decided round (one job for all its Azure approvals),
    /// skipping what is done or already queued.
    pub(super) async fn queue_decision_notices(
        &mut self,
        snapshot: &ReleaseSnapshot,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tell_callbacks_outcome(snapshot, now).await?;
        let release = &snapshot.release;
        // A round Azure DevOps decided itself has nothing to write back.
        let kind = JobKind::WriteBackApproval;
        let azure_approvals = self.tx.azure_approvals(release.id).await?;
        if release.settled.is_none()
            && azure_approvals.iter().any(|a| a.written_back_at.is_none())
            && !self.tx.has_job(release.id, kind).await?
        {
            self.enqueue(kind, release.id, Subject::Release, now)
                .await?;
        }
        Ok(())
    }
}
