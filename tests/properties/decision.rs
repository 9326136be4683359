//! The release decision rule against the rule as documented (DESIGN.md "The flow"
//! point 4, README "Approval policies"), stated per requirement rather than replayed
//! decision by decision, and every count of the status body's `approvals`.

use chrono::{DateTime, Duration, Utc};
use deploy_gate::domain::policy::{
    Decided, Decision, Ended, Needed, Outcome, Progress, RELEASE_APPROVERS, ReleaseStatus,
    Requirement, Rule, Vote, decide,
};
use proptest::{prelude::*, sample::Index};

use crate::addresses::share;

/// The people of the generated releases; groups, lists, requester and votes overlap.
pub const POOL: [&str; 6] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"];
/// The deadline of every generated release, in minutes.
pub const DEADLINE: i64 = 15;

/// One generated release, shaped as `policies::resolve` shapes them.
#[derive(Clone, Debug)]
pub struct Case {
    /// The release's own approver list (the `approvers` group).
    pub listed: Vec<&'static str>,
    /// The rule its decisions are judged by.
    pub rule: Rule,
    /// One vote per approver (the union of the groups), each decided at a distinct minute.
    pub votes: Vec<(&'static str, Option<(Decision, i64)>)>,
    /// A minute no vote was decided at, for a decision a property adds.
    pub free_minute: i64,
    /// The minute an operator cancelled it, if one did.
    pub cancelled: Option<i64>,
    /// The minute it is looked at.
    pub now: i64,
}

/// The time `m` minutes into the generated releases' lives.
pub fn minute(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(m)
}

impl Case {
    /// The release's status as `decide` computes it.
    pub fn decide(&self) -> Outcome {
        let votes: Vec<Vote<'_>> = self
            .votes
            .iter()
            .map(|&(email, decided)| Vote {
                email,
                decided: decided.map(|(decision, at)| Decided {
                    decision,
                    at: minute(at),
                }),
            })
            .collect();
        decide(
            &self.rule,
            &votes,
            self.cancelled.map(|at| Ended {
                status: ReleaseStatus::Rejected,
                at: minute(at),
                overrides_votes: false,
            }),
            minute(DEADLINE),
            minute(self.now),
        )
    }

    /// Whether the rule has a named group besides (or instead of) `approvers`.
    fn has_named_groups(&self) -> bool {
        self.rule
            .requirements
            .iter()
            .any(|r| r.group != RELEASE_APPROVERS)
    }
}

/// Requirements: the release's own list or a named group (possibly empty), each
/// needing all or at least one to three members.
fn requirements() -> impl Strategy<Value = Vec<(Option<Vec<&'static str>>, Needed)>> {
    let needed = prop_oneof![
        1 => Just(Needed::All),
        2 => (1_u32..=3).prop_map(Needed::AtLeast),
    ];
    let group = prop_oneof![
        1 => Just(None),
        2 => prop::sample::subsequence(POOL.to_vec(), 0..=4).prop_map(Some),
    ];
    prop::collection::vec((group, needed), 1..=3)
}

/// Undecided, approved or (less often, so that approvals can complete) rejected.
fn decision() -> impl Strategy<Value = Option<Decision>> {
    prop_oneof![
        3 => Just(None),
        5 => Just(Some(Decision::Approve)),
        1 => Just(Some(Decision::Reject)),
    ]
}

/// Releases with and without policies, requesters inside and outside the
/// approvers, cancellations before and after the deadline, looked at before and after it.
pub fn cases() -> impl Strategy<Value = Case> {
    (
        prop::sample::subsequence(POOL.to_vec(), 0..=5),
        requirements(),
        prop::option::weighted(0.6, 0..POOL.len()),
        prop::bool::weighted(0.25),
        prop::collection::vec(decision(), POOL.len()),
        Just((0_i64..21).collect::<Vec<_>>()).prop_shuffle(),
        prop::option::weighted(0.2, 0_i64..25),
        0_i64..30,
    )
        .prop_map(
            |(listed, specs, requester, self_approval, decisions, minutes, cancelled, now)| {
                let mut voters: Vec<&'static str> = Vec::new();
                let mut requirements = Vec::new();
                for (i, (members, needed)) in specs.into_iter().enumerate() {
                    let (group, members) = match members {
                        None => (RELEASE_APPROVERS.to_owned(), listed.clone()),
                        Some(members) => (format!("g{i}"), members),
                    };
                    voters.extend(
                        members
                            .iter()
                            .filter(|m| !voters.contains(m))
                            .collect::<Vec<_>>(),
                    );
                    requirements.push(Requirement {
                        group,
                        members: members.iter().map(|m| (*m).to_owned()).collect(),
                        needed,
                    });
                }
                let mut case = Case {
                    listed,
                    rule: Rule {
                        requirements,
                        requester: requester.map(|i| POOL[i].to_owned()),
                        self_approval,
                        sign_in: false,
                    },
                    votes: voters
                        .iter()
                        .zip(decisions.into_iter().zip(&minutes))
                        .map(|(&email, (decision, &at))| (email, decision.map(|d| (d, at))))
                        .collect(),
                    free_minute: minutes[POOL.len()],
                    cancelled,
                    now,
                };
                // Without named groups the stored rule names no members: the
                // approvers are the release's own list.
                if !case.has_named_groups() {
                    for requirement in &mut case.rule.requirements {
                        requirement.members.clear();
                    }
                }
                case
            },
        )
}

/// The outcome as the documentation states the rule. A requirement is met once
/// its minimum of distinct counted members approved (the minimum never exceeds
/// them; a requirement with nobody who counts is never met); the release is
/// approved when the last requirement is met, rejected at the first rejection by
/// anyone, whichever comes first; decisions after the deadline or a cancellation
/// do not count; a cancellation rejects; else it expires at the deadline, or is
/// pending before it.
fn as_documented(case: &Case) -> Outcome {
    let cutoff = case.cancelled.map_or(DEADLINE, |c| c.min(DEADLINE));
    let counts =
        |email: &str| case.rule.self_approval || case.rule.requester.as_deref() != Some(email);
    let given = |wanted: Decision| {
        case.votes
            .iter()
            .filter_map(move |&(email, decided)| match decided {
                Some((decision, at)) if decision == wanted && at <= cutoff => Some((email, at)),
                _ => None,
            })
    };
    let approvals: Vec<(&str, i64)> = given(Decision::Approve)
        .filter(|(e, _)| counts(e))
        .collect();
    let mut met_at = Vec::new();
    let requirements: Vec<Progress> = case
        .rule
        .requirements
        .iter()
        .map(|r| {
            let members: Vec<&str> = if r.group == RELEASE_APPROVERS {
                case.listed.clone()
            } else {
                r.members.iter().map(String::as_str).collect()
            };
            let eligible: Vec<&str> = members.into_iter().filter(|m| counts(m)).collect();
            let needed = match r.needed {
                Needed::All => eligible.len(),
                Needed::AtLeast(n) => (n as usize).min(eligible.len()),
            };
            let mut times: Vec<i64> = approvals
                .iter()
                .filter(|(email, _)| eligible.contains(email))
                .map(|&(_, at)| at)
                .collect();
            times.sort_unstable();
            let met = !eligible.is_empty() && times.len() >= needed;
            met_at.push(met.then(|| times[needed - 1]));
            Progress {
                group: r.group.clone(),
                needed: needed as u32,
                approved: times.len() as u32,
                met,
            }
        })
        .collect();
    let approved_at = met_at
        .into_iter()
        .collect::<Option<Vec<i64>>>()
        .and_then(|t| t.into_iter().max());
    let rejected_at = given(Decision::Reject).map(|(_, at)| at).min();
    let (status, decided_at) = match (approved_at, rejected_at, case.cancelled) {
        (Some(a), Some(r), _) if r < a => (ReleaseStatus::Rejected, Some(r)),
        (Some(a), _, _) => (ReleaseStatus::Approved, Some(a)),
        (None, Some(r), _) => (ReleaseStatus::Rejected, Some(r)),
        (None, None, Some(c)) if c < DEADLINE => (ReleaseStatus::Rejected, Some(c)),
        _ if case.now >= DEADLINE => (ReleaseStatus::Expired, Some(DEADLINE)),
        _ => (ReleaseStatus::Pending, None),
    };
    Outcome {
        status,
        required: requirements.iter().map(|p| p.needed).sum(),
        approved: approvals.len() as u32,
        rejected: given(Decision::Reject).count() as u32,
        pending: case.votes.iter().filter(|(_, d)| d.is_none()).count() as u32,
        decided_at: decided_at.map(minute),
        requirements,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn a_release_is_decided_and_counted_as_the_rule_is_documented(case in cases()) {
        prop_assert_eq!(case.decide(), as_documented(&case));
    }

    #[test]
    fn the_requesters_own_approval_never_counts_but_their_rejection_does(
        mut case in cases(),
        who in any::<Index>(),
    ) {
        prop_assume!(!case.votes.is_empty());
        let who = who.index(case.votes.len());
        let (requester, decided) = case.votes[who];
        let at = decided.map_or(case.free_minute, |(_, at)| at);
        case.rule.requester = Some(requester.to_owned());
        case.rule.self_approval = false;
        case.votes[who].1 = None;
        let undecided = case.decide();
        case.votes[who].1 = Some((Decision::Approve, at));
        let approving = case.decide();
        prop_assert_eq!(approving.pending + 1, undecided.pending);
        prop_assert_eq!(
            Outcome { pending: undecided.pending, ..approving },
            undecided.clone()
        );
        case.votes[who].1 = Some((Decision::Reject, at));
        let rejecting = case.decide();
        if at <= DEADLINE.min(case.cancelled.unwrap_or(DEADLINE)) && !undecided.status.is_final() {
            prop_assert_eq!(rejecting.status, ReleaseStatus::Rejected);
            prop_assert_eq!(rejecting.rejected, undecided.rejected + 1);
        }
    }

    #[test]
    fn one_more_approval_never_undoes_an_approval_nor_rejects(
        mut case in cases(),
        who in any::<Index>(),
    ) {
        prop_assume!(!case.votes.is_empty());
        let who = who.index(case.votes.len());
        case.votes[who].1 = None;
        let before = case.decide();
        case.votes[who].1 = Some((Decision::Approve, case.free_minute));
        let after = case.decide();
        match before.status {
            ReleaseStatus::Approved => {
                prop_assert_eq!(after.status, ReleaseStatus::Approved);
                prop_assert!(after.decided_at <= before.decided_at);
            }
            ReleaseStatus::Pending => prop_assert!(matches!(
                after.status,
                ReleaseStatus::Pending | ReleaseStatus::Approved
            )),
            _ => {}
        }
        prop_assert!(after.approved >= before.approved);
        prop_assert_eq!(after.pending + 1, before.pending);
        for (a, b) in after.requirements.iter().zip(&before.requirements) {
            prop_assert!(a.approved >= b.approved && (a.met || !b.met));
        }
    }

    #[test]
    fn the_order_of_the_votes_does_not_matter(
        (case, shuffled) in cases().prop_flat_map(|case| {
            let votes = Just(case.votes.clone()).prop_shuffle();
            (Just(case), votes)
        }),
    ) {
        let reordered = Case { votes: shuffled, ..case.clone() };
        prop_assert_eq!(reordered.decide(), case.decide());
    }
}

#[test]
fn the_release_generator_reaches_every_status_and_every_kind_of_rule() {
    let cases = cases();
    for status in [
        ReleaseStatus::Pending,
        ReleaseStatus::Approved,
        ReleaseStatus::Rejected,
        ReleaseStatus::Expired,
    ] {
        let hits = share(&cases, 2000, |c| as_documented(c).status == status);
        assert!(hits >= 8, "{status:?} in {hits}% of cases");
    }
    let mixed = |c: &Case| {
        c.has_named_groups()
            && c.rule
                .requirements
                .iter()
                .any(|r| r.group == RELEASE_APPROVERS)
    };
    assert!(share(&cases, 2000, mixed) >= 10);
    let requester_votes = |c: &Case| {
        c.votes.iter().any(|(e, d)| {
            c.rule.requester.as_deref() == Some(*e)
                && d.is_some_and(|(d, _)| d == Decision::Approve)
        })
    };
    assert!(share(&cases, 2000, requester_votes) >= 10);
    let unmet_but_approving = |c: &Case| {
        let o = as_documented(c);
        o.requirements.iter().any(|p| !p.met && p.approved > 0)
    };
    assert!(share(&cases, 2000, unmet_but_approving) >= 10);
}
