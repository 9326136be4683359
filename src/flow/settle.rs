//! Decisions taken in Azure DevOps itself settle the rounds they concern: a
//! rejection there (or the release abandoned, its deployment cancelled) ends
//! a round `rejected`; approval there of every Azure approval of a round ends
//! it `approved`. A settled round's links stop working, its reminders and
//! escalation stop, and nothing is written back for it.

use chrono::{DateTime, Utc};

use super::{Change, Flow};
use crate::{
    domain::{
        policy::{Decision, ReleaseStatus},
        release::AzureApprovalRef,
        settlement::AzureDecision,
        snapshot::{ReleaseSnapshot, Settlement},
    },
    store::StoreError,
};

/// Result of [`Flow::settle`].
#[derive(Debug)]
pub enum SettleOutcome {
    /// These rounds were open and are now settled as Azure decided.
    Settled(Vec<ReleaseSnapshot>),
    /// Followed, but nothing ends yet (another approval of the round is still
    /// open in Azure), or the rounds were decided already.
    Recorded,
    /// deploy-gate follows no round the decision concerns.
    Unfollowed,
}

impl Flow {
    /// Settles the rounds a decision taken in Azure DevOps concerns.
    pub async fn settle(&self, decision: &AzureDecision) -> Result<SettleOutcome, StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        let settled = match decision {
            AzureDecision::Approval {
                approval,
                decision,
                by,
            } => {
                let Some(round) = change.tx.round_of(approval).await? else {
                    return Ok(SettleOutcome::Unfollowed);
                };
                settle_approval(&mut change, round, approval, *decision, by.as_deref(), now).await?
            }
            AzureDecision::Abandoned {
                team_project,
                release_id,
            } => {
                let rounds = change.tx.rounds_of(team_project, release_id, None).await?;
                if rounds.is_empty() {
                    return Ok(SettleOutcome::Unfollowed);
                }
                let reason = "release abandoned in Azure DevOps";
                reject_rounds(&mut change, &rounds, reason, now).await?
            }
            AzureDecision::DeploymentStopped {
                team_project,
                release_id,
                stage,
                status,
            } => {
                let rounds = change
                    .tx
                    .rounds_of(team_project, release_id, Some(stage))
                    .await?;
                if rounds.is_empty() {
                    return Ok(SettleOutcome::Unfollowed);
                }
                let reason = format!("deployment {status} in Azure DevOps");
                reject_rounds(&mut change, &rounds, &reason, now).await?
            }
        };
        self.commit(change).await?;
        if settled.is_empty() {
            return Ok(SettleOutcome::Recorded);
        }
        for round in &settled {
            let status = round.outcome(now).status;
            self.observe_decision(round, now);
            tracing::info!(release.key = %round.release.key.display(), status = status.as_str(), "round settled in Azure DevOps");
        }
        Ok(SettleOutcome::Settled(settled))
    }
}

impl Flow {
    /// Azure refused the write-back of `approval` because it was decided in
    /// Azure DevOps already: that decision settles the round instead (it
    /// stands over the votes), and nothing more is written back for it.
    pub async fn already_decided_in_azure(
        &self,
        round: i64,
        approval: &AzureApprovalRef,
        decision: Decision,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin_holding(round).await?;
        let before = change.tx.read_release(round).await?;
        change
            .tx
            .record_decided_in_azure(approval, decision)
            .await?;
        if before.release.settled.is_none() {
            let status = match decision {
                Decision::Approve => ReleaseStatus::Approved,
                Decision::Reject => ReleaseStatus::Rejected,
            };
            let reason = format!(
                "{} in Azure DevOps before deploy-gate wrote its decision back (approval {})",
                status.as_str(),
                approval.id
            );
            let settled = settle_round(&mut change, round, status, reason, now).await?;
            tracing::info!(release.key = %settled.release.key.display(), status = status.as_str(), "round settled: decided in Azure DevOps already");
        }
        self.commit(change).await
    }
}

/// Records an approval's decision in Azure; the round settles `rejected` on a
/// rejection, `approved` once all its Azure approvals were approved there.
async fn settle_approval(
    change: &mut Change<'_>,
    round: i64,
    approval: &AzureApprovalRef,
    decision: Decision,
    by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ReleaseSnapshot>, StoreError> {
    let before = change.tx.lock_release(round).await?;
    if before.outcome(now).status.is_final() {
        // Among others, Azure's own report of deploy-gate's write-back.
        return Ok(Vec::new());
    }
    change
        .tx
        .record_decided_in_azure(approval, decision)
        .await?;
    let by = by.map(|who| format!(" by {who}")).unwrap_or_default();
    let status = match decision {
        Decision::Reject => ReleaseStatus::Rejected,
        Decision::Approve => {
            let all = change.tx.azure_approvals(round).await?;
            if !all
                .iter()
                .all(|a| a.decided_in_azure == Some(Decision::Approve))
            {
                return Ok(Vec::new());
            }
            ReleaseStatus::Approved
        }
    };
    let reason = format!(
        "{} in Azure DevOps{by} (approval {})",
        status.as_str(),
        approval.id
    );
    Ok(vec![
        settle_round(change, round, status, reason, now).await?,
    ])
}

/// Settles the open ones of `rounds` as `rejected`.
async fn reject_rounds(
    change: &mut Change<'_>,
    rounds: &[i64],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<ReleaseSnapshot>, StoreError> {
    let mut settled = Vec::new();
    for &round in rounds {
        let before = change.tx.lock_release(round).await?;
        if before.outcome(now).status.is_final() {
            continue;
        }
        let status = ReleaseStatus::Rejected;
        settled.push(settle_round(change, round, status, reason.to_owned(), now).await?);
    }
    Ok(settled)
}

/// Records the settlement and tells the round's callbacks.
async fn settle_round(
    change: &mut Change<'_>,
    round: i64,
    status: ReleaseStatus,
    reason: String,
    now: DateTime<Utc>,
) -> Result<ReleaseSnapshot, StoreError> {
    let settlement = Settlement {
        status,
        at: now,
        reason,
    };
    change.tx.record_settlement(round, &settlement).await?;
    let after = change.tx.read_release(round).await?;
    change.conclude(&after, now).await?;
    change.queue_decision_notices(&after, now).await?;
    Ok(after)
}
