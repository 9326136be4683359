//! The plan of a new release: its deadline, reminders, escalation and, when
//! the request named them, its approvers under the rule they are judged by.

use chrono::{DateTime, Utc};

use super::{approver::ApproverEmail, channel::ChannelKind, policy::Rule};

/// How a new release is to be handled, decided when it arrives.
#[derive(Clone, Debug)]
pub struct ReleasePlan {
    /// Approvals needed by default; `None` means all.
    pub required_approvals: Option<u32>,
    /// When it expires if undecided.
    pub deadline: DateTime<Utc>,
    /// Approvers known at once (named in the request); `None` queues their resolution.
    pub approvers: Option<ResolvedApprovers>,
    /// When to remind approvers who have not decided.
    pub reminders: Vec<DateTime<Utc>>,
    /// When to tell the escalation contact, if the release is still undecided.
    pub escalate_at: Option<DateTime<Utc>>,
}

/// The approvers found for a release, and what was wrong on the way.
#[derive(Clone, Debug)]
pub struct ResolvedApprovers {
    /// Valid, de-duplicated approvers.
    pub approvers: Vec<ApproverEmail>,
    /// Where they came from: `request`, `approvers_url` or `static`.
    pub source: String,
    /// A note shown on the release (no approvers, skipped invalid addresses).
    pub problem: Option<String>,
    /// The rule their decisions are judged by.
    pub rule: Rule,
    /// Channels besides email that each approver's request is posted to.
    pub channels: Vec<ChannelKind>,
}
