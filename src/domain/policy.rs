//! The release decision rule, as a pure function of the approvals.

use chrono::{DateTime, Utc};

/// Overall state of a release, as the pipeline sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseStatus {
    /// Waiting for decisions.
    Pending,
    /// Enough approvers approved.
    Approved,
    /// An approver rejected.
    Rejected,
    /// The deadline passed undecided.
    Expired,
}

impl ReleaseStatus {
    /// The public name: `pending`, `approved`, `rejected` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    /// True for every status but `pending`.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// One approver's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Approves the release.
    Approve,
    /// Rejects the release.
    Reject,
}

impl Decision {
    /// Stored and published form: `approved` / `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "approved" => Some(Self::Approve),
            "rejected" => Some(Self::Reject),
            _ => None,
        }
    }
}

/// A decision with its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decided {
    /// What was decided.
    pub decision: Decision,
    /// When.
    pub at: DateTime<Utc>,
}

/// The computed state of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: ReleaseStatus,
    /// Approvals needed.
    pub required: u32,
    /// Approvals given.
    pub approved: u32,
    /// Rejections given.
    pub rejected: u32,
    /// Approvers yet to decide.
    pub pending: u32,
    /// When the status became final, if it is.
    pub decided_at: Option<DateTime<Utc>>,
}

/// Derives the release status: `rejected` at the first rejection, `approved`
/// once `required` approvals are in (all approvers when `None`, never more than
/// there are), `expired` once `deadline` passes undecided, else `pending`.
/// Decisions count in the order they were made; none count after the deadline.
/// A release without approvers stays `pending` until it expires.
pub fn decide(
    required: Option<u32>,
    approvals: &[Option<Decided>],
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Outcome {
    let total = u32::try_from(approvals.len()).unwrap_or(u32::MAX);
    let needed = required.map_or(total, |n| n.min(total));
    let mut decided: Vec<Decided> = approvals
        .iter()
        .flatten()
        .copied()
        .filter(|d| d.at <= deadline)
        .collect();
    decided.sort_by_key(|d| d.at);

    let (mut approved, mut rejected) = (0, 0);
    let mut verdict = None;
    for d in &decided {
        match d.decision {
            Decision::Approve => approved += 1,
            Decision::Reject => rejected += 1,
        }
        if verdict.is_none() {
            if d.decision == Decision::Reject {
                verdict = Some((ReleaseStatus::Rejected, d.at));
            } else if total > 0 && approved >= needed {
                verdict = Some((ReleaseStatus::Approved, d.at));
            }
        }
    }
    let (status, decided_at) = match verdict {
        Some((status, at)) => (status, Some(at)),
        None if now >= deadline => (ReleaseStatus::Expired, Some(deadline)),
        None => (ReleaseStatus::Pending, None),
    };
    Outcome {
        status,
        required: needed,
        approved,
        rejected,
        pending: total - approved - rejected,
        decided_at,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }
    fn approve(m: i64) -> Option<Decided> {
        Some(Decided {
            decision: Decision::Approve,
            at: at(m),
        })
    }
    fn reject(m: i64) -> Option<Decided> {
        Some(Decided {
            decision: Decision::Reject,
            at: at(m),
        })
    }
    fn status(required: Option<u32>, approvals: &[Option<Decided>], now: i64) -> ReleaseStatus {
        decide(required, approvals, at(100), at(now)).status
    }

    #[test]
    fn all_approvers_are_needed_by_default() {
        assert_eq!(status(None, &[approve(1), None], 5), ReleaseStatus::Pending);
        assert_eq!(
            status(None, &[approve(1), approve(2)], 5),
            ReleaseStatus::Approved
        );
    }

    #[test]
    fn one_rejection_rejects_even_after_other_approvals() {
        assert_eq!(
            status(None, &[approve(1), reject(2), None], 5),
            ReleaseStatus::Rejected
        );
    }

    #[test]
    fn a_minimum_smaller_than_the_list_approves_early_and_later_rejections_do_not_count() {
        let approvals = [approve(1), approve(2), reject(3)];
        let outcome = decide(Some(2), &approvals, at(100), at(5));
        assert_eq!(outcome.status, ReleaseStatus::Approved);
        assert_eq!(outcome.decided_at, Some(at(2)));
        assert_eq!(outcome.required, 2);
    }

    #[test]
    fn a_minimum_larger_than_the_list_is_capped_at_the_list() {
        assert_eq!(status(Some(5), &[approve(1)], 5), ReleaseStatus::Approved);
    }

    #[test]
    fn undecided_past_the_deadline_is_expired_but_decided_stays_decided() {
        assert_eq!(
            status(None, &[approve(1), None], 100),
            ReleaseStatus::Expired
        );
        assert_eq!(
            status(None, &[reject(1), None], 200),
            ReleaseStatus::Rejected
        );
    }

    #[test]
    fn decisions_after_the_deadline_do_not_count() {
        assert_eq!(status(None, &[approve(101)], 200), ReleaseStatus::Expired);
    }

    #[test]
    fn no_approvers_never_approves() {
        assert_eq!(status(None, &[], 5), ReleaseStatus::Pending);
        assert_eq!(status(Some(1), &[], 5), ReleaseStatus::Pending);
        assert_eq!(status(None, &[], 100), ReleaseStatus::Expired);
    }

    #[test]
    fn counts_add_up() {
        let o = decide(None, &[approve(1), None, None], at(100), at(5));
        assert_eq!(
            (o.required, o.approved, o.rejected, o.pending),
            (3, 1, 0, 2)
        );
    }
}
