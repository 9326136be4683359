//! Approval tokens: whatever the text, verifying answers with the minted claims or an
//! error, never a panic and never other claims.

use chrono::{Duration, Utc};
use deploy_gate::{
    domain::release::ReleaseKey,
    token::{ApprovalClaims, TokenKeys},
};
use proptest::prelude::*;
use uuid::Uuid;

const SECRET: &[u8] = b"property-secret-0123456789";

/// Claims over arbitrary (valid) release identities and names, with their key.
fn claims() -> impl Strategy<Value = (ReleaseKey, ApprovalClaims)> {
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
                let claims = ApprovalClaims::new(
                    Uuid::from_u128(uuid),
                    0,
                    "ana@example.com",
                    &key,
                    &name,
                    now,
                    now + Duration::seconds(ttl),
                );
                Some((key, claims))
            },
        )
}

/// The claims as JSON, to compare them whole.
fn json(claims: &ApprovalClaims) -> serde_json::Value {
    serde_json::to_value(claims).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_minted_token_verifies_to_the_same_claims_and_release((key, claims) in claims()) {
        let keys = TokenKeys::new(SECRET);
        let verified = keys.verify(&keys.mint(&claims)).expect("a fresh token verifies");
        prop_assert_eq!(json(&verified), json(&claims));
        prop_assert_eq!(verified.release_key(), key);
    }

    #[test]
    fn a_token_changed_anywhere_is_refused_or_means_exactly_the_same(
        (_, claims) in claims(),
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
    fn a_token_of_another_secret_is_refused((_, claims) in claims(), other in "[a-z0-9]{16,40}") {
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
}
