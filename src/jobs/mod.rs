//! Durable background work: jobs live in the database, workers claim and run them.

mod kinds;
mod worker;

use std::{str::FromStr, time::Duration};

use uuid::Uuid;

use crate::policies::ChannelKind;

pub use kinds::JobContext;
pub use worker::{JobThread, Worker};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Find a release's approvers and create their approvals.
    ResolveApprovers,
    /// Email one approver their signed link.
    SendApprovalEmail,
    /// At the deadline: if still undecided, tell Azure DevOps the release expired.
    ExpireRelease,
    /// Post the TaskCompleted event of one callback registration.
    PostCallback,
    /// Approve or reject the release's Azure DevOps approval.
    WriteBackApproval,
    /// Post one approver's request to one channel besides email (Teams, Slack, webhook).
    NotifyChannel,
    /// At a reminder time: queue a reminder for each approver who has not decided.
    RemindApprovers,
    /// Email one approver a reminder with a fresh link.
    SendReminder,
    /// Tell the escalation contact that the release is still undecided.
    Escalate,
}

/// Every job kind, for exhaustive tests.
pub const ALL_JOB_KINDS: [JobKind; 9] = [
    JobKind::ResolveApprovers,
    JobKind::SendApprovalEmail,
    JobKind::ExpireRelease,
    JobKind::PostCallback,
    JobKind::WriteBackApproval,
    JobKind::NotifyChannel,
    JobKind::RemindApprovers,
    JobKind::SendReminder,
    JobKind::Escalate,
];

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResolveApprovers => "resolve_approvers",
            Self::SendApprovalEmail => "send_approval_email",
            Self::ExpireRelease => "expire_release",
            Self::PostCallback => "post_callback",
            Self::WriteBackApproval => "write_back_approval",
            Self::NotifyChannel => "notify_channel",
            Self::RemindApprovers => "remind_approvers",
            Self::SendReminder => "send_reminder",
            Self::Escalate => "escalate",
        }
    }
}

impl FromStr for JobKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        ALL_JOB_KINDS
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(())
    }
}

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// What to do.
    pub kind: JobKind,
    /// The release concerned.
    pub release_id: i64,
    /// The approval concerned, for email jobs.
    pub approval_id: Option<Uuid>,
    /// The callback registration concerned, for callback jobs.
    pub callback_id: Option<i64>,
    /// The channel, for channel notifications.
    pub channel: Option<ChannelKind>,
    /// Failed attempts before this one.
    pub attempts: u32,
}

/// Delay before retry number `failures` (1 for the first retry): `base · 2^(failures-1)`, at most `cap`.
pub fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let delays: Vec<u64> = (1..=11).map(|n| backoff(base, cap, n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(base, cap, 1000), cap);
    }

    #[test]
    fn job_kinds_round_trip_through_their_stored_names() {
        for kind in ALL_JOB_KINDS {
            assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        }
    }
}
