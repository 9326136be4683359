//! Jobs: the kinds of durable background work and the jobs queued and claimed.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{channel::ChannelKind, snapshot::ReleaseSnapshot};

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
    /// Its release as read with the claim, where the database reads it in the
    /// same statement (PostgreSQL); `None` when the job must read it.
    pub release: Option<ReleaseSnapshot>,
}

/// A lease on jobs for the worker that asks, taken where the jobs are
/// written: at most `most` of them, locked until `until`.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    /// How many jobs at most.
    pub most: usize,
    /// When the lease ends unless the worker renews it.
    pub until: DateTime<Utc>,
}

impl JobKind {
    /// The code of the problem a failing job of this kind puts on its release,
    /// and what the job was doing, for the problem's detail.
    pub fn failing(self, approver: Option<&str>) -> (&'static str, String) {
        match self {
            Self::ResolveApprovers => ("approvers_failing", "resolving approvers".to_owned()),
            Self::SendApprovalEmail => (
                "email_failing",
                match approver {
                    Some(to) => format!("sending the approval email to {to}"),
                    None => "sending an approval email".to_owned(),
                },
            ),
            Self::ExpireRelease => ("expiry_failing", "handling the deadline".to_owned()),
            Self::PostCallback => (
                "callback_failing",
                "reporting the decision to Azure DevOps".to_owned(),
            ),
            Self::WriteBackApproval => (
                "write_back_failing",
                "writing the decision back to the Azure DevOps approval".to_owned(),
            ),
            Self::NotifyChannel => (
                "channel_failing",
                match approver {
                    Some(to) => format!("posting the approval request for {to} to a channel"),
                    None => "posting an approval request to a channel".to_owned(),
                },
            ),
            Self::RemindApprovers | Self::SendReminder => {
                ("reminder_failing", "sending reminders".to_owned())
            }
            Self::Escalate => ("escalation_failing", "sending the escalation".to_owned()),
        }
    }

    /// Whether the job asks approvers for a decision: once the release is
    /// final its failures no longer matter, unlike those of reporting jobs.
    pub fn asks_for_decisions(self) -> bool {
        match self {
            Self::ResolveApprovers
            | Self::SendApprovalEmail
            | Self::NotifyChannel
            | Self::RemindApprovers
            | Self::SendReminder
            | Self::Escalate => true,
            Self::ExpireRelease | Self::PostCallback | Self::WriteBackApproval => false,
        }
    }
}

/// What a new job is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The release as a whole.
    Release,
    /// One approval.
    Approval(Uuid),
    /// One callback registration.
    Callback(i64),
    /// One approval, on one channel.
    Channel(Uuid, ChannelKind),
}

/// A job to queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// What to do.
    pub kind: JobKind,
    /// The release concerned.
    pub release_id: i64,
    /// What within the release.
    pub subject: Subject,
    /// When it is due.
    pub run_at: DateTime<Utc>,
}

/// A job about a new release as a whole, queued as it is stored: its kind and
/// when it is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseJob {
    /// What to do.
    pub kind: JobKind,
    /// When it is due.
    pub run_at: DateTime<Utc>,
}

impl ReleaseJob {
    /// This job for release `release_id`.
    pub fn of(self, release_id: i64) -> NewJob {
        NewJob {
            kind: self.kind,
            release_id,
            subject: Subject::Release,
            run_at: self.run_at,
        }
    }
}

/// A job queued for each approval of a round as it is stored: its kind, and
/// for a channel job its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApprovalJob {
    /// What to do.
    pub kind: JobKind,
    /// The channel, for a [`JobKind::NotifyChannel`] job.
    pub channel: Option<ChannelKind>,
}

impl ApprovalJob {
    /// This job for approval `approval_id` of release `release_id`, due at `run_at`.
    pub fn of(self, release_id: i64, approval_id: Uuid, run_at: DateTime<Utc>) -> NewJob {
        let subject = match self.channel {
            Some(channel) => Subject::Channel(approval_id, channel),
            None => Subject::Approval(approval_id),
        };
        NewJob {
            kind: self.kind,
            release_id,
            subject,
            run_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_kinds_round_trip_through_their_stored_names() {
        for kind in ALL_JOB_KINDS {
            assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        }
    }
}
