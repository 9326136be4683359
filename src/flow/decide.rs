//! Decisions: an approver's, an operator's cancellation, and a re-sent link.

use uuid::Uuid;

use super::Flow;
use crate::{
    domain::{
        job::{JobKind, Subject},
        policy::Decision,
        progress::{decision_line, waiting_line},
        sign_in::SignedIdentity,
        snapshot::ReleaseSnapshot,
    },
    store::StoreError,
};

/// Result of [`Flow::decide`].
#[derive(Debug)]
pub enum DecisionOutcome {
    /// The decision was stored.
    Recorded(ReleaseSnapshot),
    /// The approver had already made this same decision; nothing changed.
    Unchanged(ReleaseSnapshot),
    /// The approver had already made the other decision.
    Conflicting(Decision),
    /// The release was already decided (or expired) before this decision.
    ReleaseFinal(ReleaseSnapshot),
    /// No such approval.
    UnknownApproval,
}

/// Result of [`Flow::cancel`].
#[derive(Debug)]
pub enum CancelOutcome {
    /// Cancelled: the release is now `rejected`; its callbacks and write-back are queued.
    Cancelled(ReleaseSnapshot),
    /// The release was already decided, expired or cancelled.
    AlreadyFinal(ReleaseSnapshot),
}

/// Result of [`Flow::resend`].
#[derive(Debug)]
pub enum ResendOutcome {
    /// A new link is queued; older links no longer work.
    Queued(ReleaseSnapshot),
    /// The approver has already decided.
    AlreadyDecided(ReleaseSnapshot),
    /// The release is already final.
    ReleaseFinal(ReleaseSnapshot),
    /// The release has no such approver.
    UnknownApprover,
}

impl Flow {
    /// Records an approver's decision (with the identity they signed in as, where the
    /// policy required it) unless the approver or the release has already decided; the
    /// decision that makes the release final queues its callbacks and write-back with it.
    pub async fn decide(
        &self,
        approval_id: Uuid,
        decision: Decision,
        comment: Option<&str>,
        identity: Option<&SignedIdentity>,
    ) -> Result<DecisionOutcome, StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        let Some(approval) = change.tx.approval(approval_id).await? else {
            return Ok(DecisionOutcome::UnknownApproval);
        };
        // Read again under the lock: another decision may have landed meanwhile.
        let before = change.tx.lock_release(approval.release_id).await?;
        let current = before.approval(approval_id);
        if let Some(existing) = current.and_then(|a| a.decided) {
            return Ok(if existing.decision == decision {
                DecisionOutcome::Unchanged(before)
            } else {
                DecisionOutcome::Conflicting(existing.decision)
            });
        }
        if before.outcome(now).status.is_final() {
            return Ok(DecisionOutcome::ReleaseFinal(before));
        }
        change
            .tx
            .record_decision(approval_id, decision, comment, identity, now)
            .await?;
        let after = change.tx.read_release(before.release.id).await?;
        let status = after.outcome(now).status;
        if change.tx.has_open_callbacks(after.release.id).await? {
            let mut lines = vec![decision_line(&approval.email, decision, comment)];
            if !status.is_final() {
                lines.push(waiting_line(&after, now));
            }
            change.tell_callbacks(after.release.id, &lines, now).await?;
        }
        if status.is_final() {
            change.conclude(&after, now).await?;
            change.queue_decision_notices(&after, now).await?;
        }
        self.commit(change).await?;
        tracing::info!(release.key = %after.release.key.display(), approval.id = %approval_id,
            decision = decision.as_str(), release.status = status.as_str(), "decision recorded");
        if status.is_final() {
            // This decision made the release final: only one decision can.
            self.observe_decision(&after, now);
        }
        Ok(DecisionOutcome::Recorded(after))
    }

    /// Cancels a pending release's approval: it becomes `rejected`, every link
    /// stops working, and its callbacks and write-back are queued.
    pub async fn cancel(
        &self,
        release_id: i64,
        reason: Option<&str>,
    ) -> Result<CancelOutcome, StoreError> {
        let now = self.clock.now();
        let mut change = self.begin_holding(release_id).await?;
        let before = change.tx.read_release(release_id).await?;
        if before.outcome(now).status.is_final() {
            return Ok(CancelOutcome::AlreadyFinal(before));
        }
        change
            .tx
            .record_cancellation(release_id, reason, now)
            .await?;
        let after = change.tx.read_release(release_id).await?;
        change.conclude(&after, now).await?;
        change.queue_decision_notices(&after, now).await?;
        self.commit(change).await?;
        self.observe_decision(&after, now);
        tracing::info!(release.key = %after.release.key.display(), "release approval cancelled by an operator");
        Ok(CancelOutcome::Cancelled(after))
    }

    /// Queues a new email for one undecided approver of a pending release;
    /// older links stop working.
    pub async fn resend(&self, release_id: i64, email: &str) -> Result<ResendOutcome, StoreError> {
        let now = self.clock.now();
        let mut change = self.begin_holding(release_id).await?;
        let before = change.tx.read_release(release_id).await?;
        let Some(approval) = before.approvals.iter().find(|a| a.email == email) else {
            return Ok(ResendOutcome::UnknownApprover);
        };
        if before.outcome(now).status.is_final() {
            return Ok(ResendOutcome::ReleaseFinal(before));
        }
        if approval.decided.is_some() {
            return Ok(ResendOutcome::AlreadyDecided(before));
        }
        let approval_id = approval.id;
        change.tx.supersede_links(approval_id).await?;
        // A send still queued (or failing) would mail the superseded link: replace it.
        let kind = JobKind::SendApprovalEmail;
        change.tx.delete_approval_jobs(approval_id, kind).await?;
        let subject = Subject::Approval(approval_id);
        change.enqueue(kind, release_id, subject, now).await?;
        let after = change.tx.read_release(release_id).await?;
        self.commit(change).await?;
        Ok(ResendOutcome::Queued(after))
    }
}
