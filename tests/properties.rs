//! Property-based tests (proptest) of the parsers that take untrusted input: approval
//! tokens, release identities and approver lists. Whatever the input, they answer with
//! a value or an error, never a panic, and what they accept keeps their promises.
//! Also the release decision rule, against a recount from scratch after every decision.

use chrono::{DateTime, Duration, Utc};
use deploy_gate::{
    domain::{
        approver::{ApproverEmail, MAX_EMAIL_LEN, parse_approver_list},
        policy::{
            Decided, Decision, Needed, RELEASE_APPROVERS, ReleaseStatus, Requirement, Rule, Vote,
            decide,
        },
        release::{MAX_RELEASE_ID_CHARS, MAX_TEXT_CHARS, ReleaseKey},
    },
    token::{ApprovalClaims, TokenKeys},
};
use proptest::prelude::*;
use uuid::Uuid;

const SECRET: &[u8] = b"property-secret-0123456789";

/// The addresses the decision rule's cases draw from, so that groups, votes and
/// the requester overlap (and repeat).
const ADDRESSES: [&str; 5] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"];

fn minute(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(m)
}

/// Rules of one to three requirements, on the release's approvers or on groups
/// of (possibly repeated) addresses, with or without a requester.
fn rules() -> impl Strategy<Value = Rule> {
    let needed = prop_oneof![Just(Needed::All), (0_u32..4).prop_map(Needed::AtLeast)];
    let requirement = (
        any::<bool>(),
        prop::collection::vec(0..ADDRESSES.len(), 0..5),
        needed,
    )
        .prop_map(|(own, members, needed)| Requirement {
            group: if own { RELEASE_APPROVERS } else { "group" }.to_owned(),
            members: members
                .into_iter()
                .map(|i| ADDRESSES[i].to_owned())
                .collect(),
            needed,
        });
    (
        prop::collection::vec(requirement, 1..4),
        prop::option::of(0..ADDRESSES.len()),
        any::<bool>(),
    )
        .prop_map(|(requirements, requester, self_approval)| Rule {
            requirements,
            requester: requester.map(|i| ADDRESSES[i].to_owned()),
            self_approval,
        })
}

/// Votes (an address may appear twice), each undecided or decided at a minute 0-19.
fn votes() -> impl Strategy<Value = Vec<(usize, Option<(bool, i64)>)>> {
    let decided = prop::option::of((any::<bool>(), 0_i64..20));
    prop::collection::vec((0..ADDRESSES.len(), decided), 0..7)
}

/// The decision rule as its documentation states it, recounting every
/// requirement from scratch after each decision: the status, when it was
/// decided, and each requirement's counted approvals.
fn recount(
    rule: &Rule,
    votes: &[Vote<'_>],
    cancelled: Option<DateTime<Utc>>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (ReleaseStatus, Option<DateTime<Utc>>, Vec<u32>) {
    let eligible: Vec<Vec<&str>> = rule
        .requirements
        .iter()
        .map(|r| {
            let members: Vec<&str> = if r.group == RELEASE_APPROVERS {
                votes.iter().map(|v| v.email).collect()
            } else {
                r.members.iter().map(String::as_str).collect()
            };
            members.into_iter().filter(|m| rule.counts(m)).collect()
        })
        .collect();
    let approved_of = |approvers: &[&str]| -> Vec<u32> {
        eligible
            .iter()
            .map(|members| members.iter().filter(|m| approvers.contains(m)).count() as u32)
            .collect()
    };
    let met =
        |approved: &[u32]| {
            rule.requirements.iter().zip(&eligible).zip(approved).all(
                |((r, members), &approved)| {
                    let needed = match r.needed {
                        Needed::All => members.len() as u32,
                        Needed::AtLeast(n) => n.min(members.len() as u32),
                    };
                    !members.is_empty() && approved >= needed
                },
            )
        };
    let cutoff = cancelled.map_or(deadline, |c| c.min(deadline));
    let mut decided: Vec<(&str, Decided)> = votes
        .iter()
        .filter_map(|v| Some((v.email, v.decided?)))
        .filter(|(_, d)| d.at <= cutoff)
        .collect();
    decided.sort_by_key(|(_, d)| d.at);
    let mut approvers = Vec::new();
    let mut verdict = None;
    for (email, d) in decided {
        if d.decision == Decision::Approve && rule.counts(email) {
            approvers.push(email);
        }
        if verdict.is_none() {
            if d.decision == Decision::Reject {
                verdict = Some((ReleaseStatus::Rejected, d.at));
            } else if met(&approved_of(&approvers)) {
                verdict = Some((ReleaseStatus::Approved, d.at));
            }
        }
    }
    let (status, at) = match (verdict, cancelled) {
        (Some((status, at)), _) => (status, Some(at)),
        (None, Some(at)) if at < deadline => (ReleaseStatus::Rejected, Some(at)),
        _ if now >= deadline => (ReleaseStatus::Expired, Some(deadline)),
        _ => (ReleaseStatus::Pending, None),
    };
    (status, at, approved_of(&approvers))
}

/// Claims over arbitrary (valid) release identities and names.
fn claims() -> impl Strategy<Value = ApprovalClaims> {
    (
        "\\PC{1,40}",
        "[0-9a-zA-Z-]{1,20}",
        "\\PC{0,20}",
        "\\PC{0,80}",
        any::<u128>(),
        1i64..100_000,
    )
        .prop_filter_map(
            "a valid release key",
            |(project, id, stage, name, uuid, ttl)| {
                let key = ReleaseKey::parse(&project, &id, &stage).ok()?;
                let now = Utc::now();
                Some(ApprovalClaims::new(
                    Uuid::from_u128(uuid),
                    0,
                    "ana@example.com",
                    &key,
                    &name,
                    now,
                    now + Duration::seconds(ttl),
                ))
            },
        )
}

fn json(claims: &ApprovalClaims) -> serde_json::Value {
    serde_json::to_value(claims).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_minted_token_verifies_to_the_same_claims(claims in claims()) {
        let keys = TokenKeys::new(SECRET);
        let verified = keys.verify(&keys.mint(&claims)).expect("a fresh token verifies");
        prop_assert_eq!(json(&verified), json(&claims));
    }

    #[test]
    fn a_token_changed_anywhere_is_refused_or_means_exactly_the_same(
        claims in claims(),
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.-]",
    ) {
        let keys = TokenKeys::new(SECRET);
        let token = keys.mint(&claims);
        let at = position.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(at..=at, &replacement);
        prop_assume!(changed != token);
        // Base64's last character carries unused bits, so a few edits decode to the
        // same bytes: such a token is the same token, never a different claim.
        if let Ok(verified) = keys.verify(&changed) {
            prop_assert_eq!(json(&verified), json(&claims));
        }
    }

    #[test]
    fn a_token_of_another_secret_is_refused(claims in claims(), other in "[a-z0-9]{16,40}") {
        prop_assume!(other.as_bytes() != SECRET);
        let token = TokenKeys::new(other.as_bytes()).mint(&claims);
        prop_assert!(TokenKeys::new(SECRET).verify(&token).is_err());
    }

    #[test]
    fn any_text_as_a_token_is_an_error_not_a_panic(text in "\\PC{0,300}") {
        prop_assert!(TokenKeys::new(SECRET).verify(&text).is_err());
    }

    #[test]
    fn three_segments_of_garbage_are_an_error_not_a_panic(
        a in "[A-Za-z0-9_-]{0,60}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,60}",
    ) {
        let token = [a, b, c].join(".");
        prop_assert!(TokenKeys::new(SECRET).verify(&token).is_err());
    }

    #[test]
    fn an_accepted_release_key_keeps_its_promises(
        project in any::<String>(), id in any::<String>(), stage in any::<String>(),
    ) {
        if let Ok(key) = ReleaseKey::parse(&project, &id, &stage) {
            for (part, max) in [
                (&key.team_project, MAX_TEXT_CHARS),
                (&key.release_id, MAX_RELEASE_ID_CHARS),
                (&key.stage, MAX_TEXT_CHARS),
            ] {
                prop_assert!(part.chars().count() <= max);
                prop_assert!(!part.chars().any(char::is_control));
                prop_assert_eq!(part.trim(), part.as_str());
            }
            prop_assert!(!key.team_project.is_empty() && !key.release_id.is_empty());
        }
    }

    #[test]
    fn an_accepted_approver_is_one_plain_address(text in any::<String>()) {
        if let Ok(address) = ApproverEmail::parse(&text) {
            let address = address.as_str();
            prop_assert!(address.len() <= MAX_EMAIL_LEN);
            prop_assert_eq!(address.matches('@').count(), 1);
            prop_assert!(!address.chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(!address.contains(['<', '>', ',', ';', '\r', '\n']));
        }
    }

    #[test]
    fn an_approver_list_parses_each_entry_or_refuses(
        entries in prop::collection::vec("[a-z]{1,8}@[a-z]{1,8}\\.(com|org)|\\PC{0,12}", 0..8),
        separator in prop::sample::select(vec![",", ";", " ; ", ", "]),
    ) {
        let text = entries.join(separator);
        if let Ok(list) = parse_approver_list(&text) {
            for address in &list {
                prop_assert!(ApproverEmail::parse(address.as_str()).is_ok());
            }
        }
    }

    #[test]
    fn a_release_is_decided_as_a_recount_after_every_decision_would_decide_it(
        rule in rules(),
        votes in votes(),
        cancelled in prop::option::of(0_i64..25),
        now in 0_i64..30,
    ) {
        let votes: Vec<Vote<'_>> = votes
            .into_iter()
            .map(|(who, decided)| Vote {
                email: ADDRESSES[who],
                decided: decided.map(|(approve, at)| Decided {
                    decision: if approve { Decision::Approve } else { Decision::Reject },
                    at: minute(at),
                }),
            })
            .collect();
        let (cancelled, deadline, now) = (cancelled.map(minute), minute(15), minute(now));
        let outcome = decide(&rule, &votes, cancelled, deadline, now);
        let (status, decided_at, approved) = recount(&rule, &votes, cancelled, deadline, now);
        prop_assert_eq!(outcome.status, status);
        prop_assert_eq!(outcome.decided_at, decided_at);
        let counted: Vec<u32> = outcome.requirements.iter().map(|r| r.approved).collect();
        prop_assert_eq!(counted, approved);
    }
}
