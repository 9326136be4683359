//! The release decision rule, as a pure function of the approvals: who must
//! approve (requirements per group), whose approval counts, and the resulting status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// How many members of a requirement's group must approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Needed {
    /// Every eligible member.
    All,
    /// At least this many (never more than there are eligible members).
    AtLeast(u32),
}

/// One condition of a release's approval: enough approvals from one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// The group's name; [`RELEASE_APPROVERS`] means the release's own approver list.
    pub group: String,
    /// The group's members (lower-cased addresses). For [`RELEASE_APPROVERS`], the
    /// release's own list, read only when the rule also names other groups (whose
    /// members are approvers of the release too); alone, it is every approver.
    #[serde(default)]
    pub members: Vec<String>,
    /// How many of them must approve.
    pub needed: Needed,
}

/// The group name that stands for every approver of the release.
pub const RELEASE_APPROVERS: &str = "approvers";

/// What a release needs to be approved: every requirement met, no rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// All of these must be met.
    pub requirements: Vec<Requirement>,
    /// Who requested the release (lower-cased), if the pipeline said.
    #[serde(default)]
    pub requester: Option<String>,
    /// Whether the requester's own approval counts.
    #[serde(default)]
    pub self_approval: bool,
    /// Whether a decision counts only after the approver signs in (OpenID Connect)
    /// as the approval's approver.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sign_in: bool,
}

impl Rule {
    /// The rule of a release without a policy: `required` approvals from its approvers (all when `None`).
    pub fn from_required(required: Option<u32>) -> Self {
        Self {
            requirements: vec![Requirement {
                group: RELEASE_APPROVERS.to_owned(),
                members: Vec::new(),
                needed: required.map_or(Needed::All, Needed::AtLeast),
            }],
            requester: None,
            self_approval: false,
            sign_in: false,
        }
    }

    /// Whether `email`'s approval counts (the requester's does not, unless allowed).
    pub fn counts(&self, email: &str) -> bool {
        self.self_approval || self.requester.as_deref() != Some(email)
    }

    /// The members of `requirement` whose approval counts, among the release's `approvers`.
    fn eligible<'a>(&self, requirement: &'a Requirement, approvers: &[&'a str]) -> Vec<&'a str> {
        let named_groups = self
            .requirements
            .iter()
            .any(|r| r.group != RELEASE_APPROVERS);
        let members: Vec<&str> = if requirement.group == RELEASE_APPROVERS && !named_groups {
            approvers.to_vec()
        } else {
            requirement.members.iter().map(String::as_str).collect()
        };
        members.into_iter().filter(|m| self.counts(m)).collect()
    }
}

/// One approver's vote on a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote<'a> {
    /// The approver (lower-cased).
    pub email: &'a str,
    /// Their decision, once made.
    pub decided: Option<Decided>,
}

/// Progress of one requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The group.
    pub group: String,
    /// Approvals it needs.
    pub needed: u32,
    /// Approvals it has.
    pub approved: u32,
    /// True once met. A requirement without eligible members can never be met.
    pub met: bool,
}

/// The computed state of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: ReleaseStatus,
    /// Approvals needed, summed over the requirements.
    pub required: u32,
    /// Approvals given that count.
    pub approved: u32,
    /// Rejections given.
    pub rejected: u32,
    /// Approvers yet to decide.
    pub pending: u32,
    /// When the status became final, if it is.
    pub decided_at: Option<DateTime<Utc>>,
    /// Each requirement's progress, in the rule's order.
    pub requirements: Vec<Progress>,
}

/// How a release was ended from outside its approvers' votes: an operator's
/// cancellation (`rejected`), or a decision taken in Azure DevOps itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// `rejected`, or `approved` when Azure DevOps approved it.
    pub status: ReleaseStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether it stands over the approvers' votes: what Azure DevOps decided
    /// does (deploy-gate only learns it later), an operator's cancellation
    /// does not undo a decision made before it.
    pub overrides_votes: bool,
}

/// Derives the release status: `rejected` at the first rejection, `approved` once
/// every requirement of `rule` is met, the status it `ended` with if that came
/// first (a cancellation, a decision in Azure DevOps), `expired` once `deadline`
/// passes undecided, else `pending`. Decisions count in the order they were
/// made; none count after the deadline or the end. A requirement with nobody
/// eligible (no approvers) is never met, so such a release expires.
pub fn decide(
    rule: &Rule,
    votes: &[Vote<'_>],
    ended: Option<Ended>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Outcome {
    let approvers: Vec<&str> = votes.iter().map(|v| v.email).collect();
    let eligible: Vec<Vec<&str>> = rule
        .requirements
        .iter()
        .map(|r| rule.eligible(r, &approvers))
        .collect();
    let needed: Vec<u32> = rule
        .requirements
        .iter()
        .zip(&eligible)
        .map(|(r, members)| {
            let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
            match r.needed {
                Needed::All => count,
                Needed::AtLeast(n) => n.min(count),
            }
        })
        .collect();
    let cutoff = ended.map_or(deadline, |e| e.at.min(deadline));
    let mut decided: Vec<(&str, Decided)> = votes
        .iter()
        .filter_map(|v| v.decided.map(|d| (v.email, d)))
        .filter(|(_, d)| d.at <= cutoff)
        .collect();
    decided.sort_by_key(|(_, d)| d.at);

    let mut approvals: Vec<&str> = Vec::new();
    // Approvals so far per requirement: its eligible members who approved.
    let mut given = vec![0_u32; eligible.len()];
    let mut rejected = 0;
    let mut verdict = None;
    for (email, d) in &decided {
        match d.decision {
            Decision::Approve if rule.counts(email) => {
                if !approvals.contains(email) {
                    count_approval(&mut given, &eligible, email);
                }
                approvals.push(email);
            }
            Decision::Approve => {}
            Decision::Reject => rejected += 1,
        }
        if verdict.is_none() {
            if d.decision == Decision::Reject {
                verdict = Some((ReleaseStatus::Rejected, d.at));
            } else if all_met(&needed, &eligible, &given) {
                verdict = Some((ReleaseStatus::Approved, d.at));
            }
        }
    }
    let (status, decided_at) = match (verdict, ended) {
        (_, Some(end)) if end.overrides_votes && end.at < deadline => (end.status, Some(end.at)),
        (Some((status, at)), _) => (status, Some(at)),
        (None, Some(end)) if end.at < deadline => (end.status, Some(end.at)),
        _ if now >= deadline => (ReleaseStatus::Expired, Some(deadline)),
        _ => (ReleaseStatus::Pending, None),
    };
    let requirements = rule
        .requirements
        .iter()
        .zip(&needed)
        .zip(&given)
        .zip(&eligible)
        .map(|(((r, &needed), &approved), members)| Progress {
            group: r.group.clone(),
            needed,
            approved,
            met: !members.is_empty() && approved >= needed,
        })
        .collect();
    let total = u32::try_from(votes.len()).unwrap_or(u32::MAX);
    let undecided = votes.iter().filter(|v| v.decided.is_none()).count();
    Outcome {
        status,
        required: needed.iter().sum(),
        approved: u32::try_from(approvals.len()).unwrap_or(total),
        rejected,
        pending: u32::try_from(undecided).unwrap_or(total),
        decided_at,
        requirements,
    }
}

/// Adds `email`'s first counted approval to each requirement that has it among its members.
fn count_approval(given: &mut [u32], eligible: &[Vec<&str>], email: &str) {
    for (count, members) in given.iter_mut().zip(eligible) {
        let times = members.iter().filter(|m| **m == email).count();
        *count = count.saturating_add(u32::try_from(times).unwrap_or(u32::MAX));
    }
}

fn all_met(needed: &[u32], eligible: &[Vec<&str>], given: &[u32]) -> bool {
    !needed.is_empty()
        && needed
            .iter()
            .zip(eligible)
            .zip(given)
            .all(|((n, members), g)| !members.is_empty() && g >= n)
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
    const EMAILS: [&str; 4] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"];

    /// Votes of approvers a, b, c… in order.
    fn votes(approvals: &[Option<Decided>]) -> Vec<Vote<'static>> {
        approvals
            .iter()
            .zip(EMAILS)
            .map(|(decided, email)| Vote {
                email,
                decided: *decided,
            })
            .collect()
    }
    fn counted(required: Option<u32>, approvals: &[Option<Decided>], now: i64) -> Outcome {
        let rule = Rule::from_required(required);
        decide(&rule, &votes(approvals), None, at(100), at(now))
    }
    fn status(required: Option<u32>, approvals: &[Option<Decided>], now: i64) -> ReleaseStatus {
        counted(required, approvals, now).status
    }
    fn group(name: &str, members: &[&str], needed: Needed) -> Requirement {
        Requirement {
            group: name.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            needed,
        }
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
        let outcome = counted(Some(2), &approvals, 5);
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
        let o = counted(None, &[approve(1), None, None], 5);
        assert_eq!(
            (o.required, o.approved, o.rejected, o.pending),
            (3, 1, 0, 2)
        );
    }

    #[test]
    fn the_requesters_approval_does_not_count_unless_allowed_but_their_rejection_does() {
        let mut rule = Rule::from_required(None);
        rule.requester = Some("a@x.io".into());
        let approvals = [approve(1), None];
        let o = decide(&rule, &votes(&approvals), None, at(100), at(5));
        assert_eq!(
            (o.status, o.required, o.approved),
            (ReleaseStatus::Pending, 1, 0)
        );
        let o = decide(
            &rule,
            &votes(&[approve(1), approve(2)]),
            None,
            at(100),
            at(5),
        );
        assert_eq!(o.status, ReleaseStatus::Approved);
        let o = decide(&rule, &votes(&[reject(1), None]), None, at(100), at(5));
        assert_eq!(o.status, ReleaseStatus::Rejected);
        rule.self_approval = true;
        let o = decide(&rule, &votes(&[approve(1), None]), None, at(100), at(5));
        assert_eq!((o.status, o.approved), (ReleaseStatus::Pending, 1));
    }

    #[test]
    fn any_n_of_one_group_and_all_of_another_must_both_be_met() {
        let rule = Rule {
            requirements: vec![
                group("sre", &["a@x.io", "b@x.io", "c@x.io"], Needed::AtLeast(2)),
                group("owners", &["d@x.io"], Needed::All),
            ],
            requester: None,
            self_approval: false,
            sign_in: false,
        };
        let run =
            |approvals: &[Option<Decided>]| decide(&rule, &votes(approvals), None, at(100), at(5));
        let o = run(&[approve(1), approve(2), None, None]);
        assert_eq!(o.status, ReleaseStatus::Pending);
        assert_eq!(
            o.requirements
                .iter()
                .map(|p| (p.approved, p.needed, p.met))
                .collect::<Vec<_>>(),
            [(2, 2, true), (0, 1, false)]
        );
        let o = run(&[approve(1), None, None, approve(3)]);
        assert_eq!(o.status, ReleaseStatus::Pending);
        let o = run(&[approve(1), None, approve(2), approve(3)]);
        assert_eq!(
            (o.status, o.decided_at),
            (ReleaseStatus::Approved, Some(at(3)))
        );
    }

    #[test]
    fn a_group_of_only_the_requester_can_never_be_met() {
        let rule = Rule {
            requirements: vec![group("owners", &["a@x.io"], Needed::All)],
            requester: Some("a@x.io".into()),
            self_approval: false,
            sign_in: false,
        };
        let o = decide(&rule, &votes(&[approve(1)]), None, at(100), at(5));
        assert_eq!(o.status, ReleaseStatus::Pending);
        assert!(!o.requirements[0].met);
    }

    #[test]
    fn a_cancelled_release_is_rejected_and_later_decisions_do_not_count() {
        let rule = Rule::from_required(None);
        let o = decide(
            &rule,
            &votes(&[approve(1), approve(9)]),
            Some(cancelled(5)),
            at(100),
            at(10),
        );
        assert_eq!(
            (o.status, o.decided_at),
            (ReleaseStatus::Rejected, Some(at(5)))
        );
        let o = decide(
            &rule,
            &votes(&[approve(1), approve(2)]),
            Some(cancelled(5)),
            at(100),
            at(10),
        );
        assert_eq!(
            o.status,
            ReleaseStatus::Approved,
            "decided before the cancellation"
        );
    }

    fn cancelled(t: i64) -> Ended {
        Ended {
            status: ReleaseStatus::Rejected,
            at: at(t),
            overrides_votes: false,
        }
    }

    #[test]
    fn a_release_approved_in_azure_devops_is_approved_from_then_and_later_votes_do_not_count() {
        let rule = Rule::from_required(None);
        let in_azure = Ended {
            status: ReleaseStatus::Approved,
            at: at(5),
            overrides_votes: true,
        };
        let o = decide(
            &rule,
            &votes(&[None, reject(9)]),
            Some(in_azure),
            at(100),
            at(10),
        );
        assert_eq!(
            (o.status, o.decided_at),
            (ReleaseStatus::Approved, Some(at(5)))
        );
        let rejected_in_azure = Ended {
            status: ReleaseStatus::Rejected,
            at: at(7),
            overrides_votes: true,
        };
        let o = decide(
            &rule,
            &votes(&[approve(1)]),
            Some(rejected_in_azure),
            at(100),
            at(10),
        );
        assert_eq!(
            (o.status, o.decided_at),
            (ReleaseStatus::Rejected, Some(at(7))),
            "what Azure decided stands over the votes"
        );
    }

    #[test]
    fn statuses_and_decisions_have_their_public_names_and_only_pending_is_open() {
        let statuses = [
            (ReleaseStatus::Pending, "pending", false),
            (ReleaseStatus::Approved, "approved", true),
            (ReleaseStatus::Rejected, "rejected", true),
            (ReleaseStatus::Expired, "expired", true),
        ];
        for (status, name, is_final) in statuses {
            assert_eq!((status.as_str(), status.is_final()), (name, is_final));
        }
        for (decision, name) in [
            (Decision::Approve, "approved"),
            (Decision::Reject, "rejected"),
        ] {
            assert_eq!(decision.as_str(), name);
            assert_eq!(Decision::from_stored(name), Some(decision));
        }
        assert_eq!(Decision::from_stored("pending"), None);
    }

    #[test]
    fn a_cancellation_at_the_deadline_comes_too_late_and_the_release_expires() {
        let rule = Rule::from_required(None);
        let o = decide(
            &rule,
            &votes(&[None]),
            Some(cancelled(100)),
            at(100),
            at(100),
        );
        assert_eq!(
            (o.status, o.decided_at),
            (ReleaseStatus::Expired, Some(at(100)))
        );
    }

    #[test]
    fn rules_read_back_from_their_stored_form() {
        let rule = Rule {
            requirements: vec![group("sre", &["a@x.io"], Needed::AtLeast(1))],
            requester: Some("b@x.io".into()),
            self_approval: false,
            sign_in: false,
        };
        let text = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&text).unwrap(), rule);
    }
}
