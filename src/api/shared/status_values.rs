//! The parts of the release status body: statuses, decisions, counts and entries.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::domain::policy::{Decision, Outcome, ReleaseStatus};

/// Status of a release.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum StatusValue {
    /// Waiting for decisions.
    Pending,
    /// Enough approvers approved: the release may proceed.
    Approved,
    /// An approver rejected.
    Rejected,
    /// The deadline passed undecided.
    Expired,
}

impl StatusValue {
    /// The public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

impl From<ReleaseStatus> for StatusValue {
    fn from(status: ReleaseStatus) -> Self {
        match status {
            ReleaseStatus::Pending => Self::Pending,
            ReleaseStatus::Approved => Self::Approved,
            ReleaseStatus::Rejected => Self::Rejected,
            ReleaseStatus::Expired => Self::Expired,
        }
    }
}

/// One approver's decision.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum DecisionValue {
    /// Not decided yet.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

impl DecisionValue {
    /// The public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

impl From<Option<Decision>> for DecisionValue {
    fn from(decision: Option<Decision>) -> Self {
        match decision {
            None => Self::Pending,
            Some(Decision::Approve) => Self::Approved,
            Some(Decision::Reject) => Self::Rejected,
        }
    }
}

/// Counts of approvals.
#[derive(Object, Clone, Debug)]
pub struct ApprovalCounts {
    /// Approvals needed for `approved`.
    pub required: u32,
    /// Approvals given.
    pub approved: u32,
    /// Rejections given.
    pub rejected: u32,
    /// Approvers yet to decide.
    pub pending: u32,
}

impl From<&Outcome> for ApprovalCounts {
    fn from(outcome: &Outcome) -> Self {
        Self {
            required: outcome.required,
            approved: outcome.approved,
            rejected: outcome.rejected,
            pending: outcome.pending,
        }
    }
}

/// One approver of a release. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(skip_serializing_if_is_none)]
pub struct ApproverEntry {
    /// The approver's email address.
    pub email: String,
    /// Their decision so far.
    pub decision: DecisionValue,
    /// When they decided; absent while undecided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Their comment; absent when none was given.
    pub comment: Option<String>,
    /// Whether their approval email has been accepted by the mail server.
    pub notified: bool,
    /// False for the requester, whose own approval does not count (unless the policy allows it).
    pub counts: bool,
}

/// One requirement of the release's approval rule and how far it is.
#[derive(Object, Clone, Debug)]
pub struct RequirementEntry {
    /// The group; `approvers` is the release's own approver list.
    pub group: String,
    /// Approvals it needs.
    pub needed: u32,
    /// Approvals it has.
    pub approved: u32,
    /// Whether it is met.
    pub met: bool,
}

/// An operator's cancellation.
#[derive(Object, Clone, Debug)]
#[oai(skip_serializing_if_is_none)]
pub struct CancellationEntry {
    /// When the approval was cancelled.
    pub at: DateTime<Utc>,
    /// Why, as the operator said.
    pub reason: Option<String>,
}
