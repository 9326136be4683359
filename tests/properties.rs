//! Property-based tests (proptest) of the parsers that take untrusted input: approval
//! tokens, release identities and approver lists. Whatever the input, they answer with
//! a value or an error, never a panic, and what they accept keeps their promises.

use chrono::{Duration, Utc};
use deploy_gate::{
    domain::{
        approver::{ApproverEmail, MAX_EMAIL_LEN, parse_approver_list},
        release::{MAX_RELEASE_ID_CHARS, MAX_TEXT_CHARS, ReleaseKey},
    },
    token::{ApprovalClaims, TokenKeys},
};
use proptest::prelude::*;
use uuid::Uuid;

const SECRET: &[u8] = b"property-secret-0123456789";

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
}
