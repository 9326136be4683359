//! Approval tokens: HS256 JWTs naming one approval of one release.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::release::{Phase, ReleaseKey};

/// The `aud` of approval tokens; a JWT made for anything else is refused.
pub const AUDIENCE: &str = "deploy-gate:approval";
/// The `iss` of approval tokens.
pub const ISSUER: &str = "deploy-gate";

/// What an approval token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// The approver's email address.
    pub sub: String,
    /// The approval this token decides.
    pub jti: Uuid,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch: the release's deadline.
    pub exp: i64,
    /// `TeamProject` of the release.
    pub project: String,
    /// `ReleaseId` of the release.
    pub release: String,
    /// `Stage` of the release.
    pub stage: String,
    /// `ReleaseName`, for display.
    pub name: String,
    /// The round's deployment attempt; left out for the first.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    /// The round's phase, `post` after a deployment; left out before one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The approval's link generation when minted; a re-sent email raises it, retiring older links.
    #[serde(default)]
    pub generation: i64,
}

impl ApprovalClaims {
    /// Claims for one approval of `key` (link generation `generation`), valid until `deadline`.
    pub fn new(
        approval_id: Uuid,
        generation: i64,
        approver: &str,
        key: &ReleaseKey,
        name: &str,
        issued: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Self {
        Self {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: approver.to_owned(),
            jti: approval_id,
            iat: issued.timestamp(),
            exp: deadline.timestamp(),
            project: key.team_project.clone(),
            release: key.release_id.clone(),
            stage: key.stage.clone(),
            name: name.to_owned(),
            attempt: key.attempt,
            phase: (key.phase != Phase::Pre).then(|| key.phase.as_str().to_owned()),
            generation,
        }
    }

    /// The release this token belongs to.
    pub fn release_key(&self) -> ReleaseKey {
        ReleaseKey {
            team_project: self.project.clone(),
            release_id: self.release.clone(),
            stage: self.stage.clone(),
            attempt: self.attempt,
            // Signed claims hold only what `new` wrote.
            phase: self
                .phase
                .as_deref()
                .and_then(Phase::parse)
                .unwrap_or_default(),
        }
    }
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(attempt: &u32) -> bool {
    *attempt == 1
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT at all, or claims of the wrong shape.
    #[error("the token is malformed")]
    Malformed,
    /// Signed with another key, altered, or using another algorithm.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Made for another audience or issuer.
    #[error("the token was not issued for approvals")]
    WrongAudience,
}

/// The id of a token key, carried as `kid` in the header of the tokens it signs:
/// the first 8 bytes of the key's SHA-256, in hex. It names the key without
/// revealing it, and its first 8 digits are the key's log fingerprint.
pub fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One HMAC key and its id.
#[derive(Clone)]
struct VerifyingKey {
    id: String,
    key: DecodingKey,
}

/// Mints and verifies approval tokens: the first key signs (its id in the
/// header's `kid`), and every key verifies, so that a rotation keeps the links
/// signed by the keys still listed.
#[derive(Clone)]
pub struct TokenKeys {
    signing_id: String,
    encoding: EncodingKey,
    verifying: Vec<VerifyingKey>,
    validation: Validation,
}

impl TokenKeys {
    /// Keys from one shared secret, which signs and verifies.
    pub fn new(secret: &[u8]) -> Self {
        Self::rotating(secret, &[])
    }

    /// Keys that sign with `signing` and verify with it and each of `also_verifying`.
    pub fn rotating(signing: &[u8], also_verifying: &[&[u8]]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        let verifying = std::iter::once(signing)
            .chain(also_verifying.iter().copied())
            .map(|secret| VerifyingKey {
                id: key_id(secret),
                key: DecodingKey::from_secret(secret),
            })
            .collect();
        Self {
            signing_id: key_id(signing),
            encoding: EncodingKey::from_secret(signing),
            verifying,
            validation,
        }
    }

    /// The ids of the keys, the signing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.verifying.iter().map(|k| k.id.as_str()).collect()
    }

    /// Signs the claims with the first key, naming it in the header's `kid`.
    pub fn mint(&self, claims: &ApprovalClaims) -> String {
        let header = Header {
            kid: Some(self.signing_id.clone()),
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Checks signature (HS256 only), audience, issuer and expiry. A token
    /// naming a key (`kid`) is checked with that key alone, and one naming no
    /// listed key is refused as a foreign signature; a token without `kid`
    /// (minted before keys had ids) is checked with each key in turn.
    pub fn verify(&self, token: &str) -> Result<ApprovalClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        match header.kid {
            Some(kid) => {
                let key = self
                    .verifying
                    .iter()
                    .find(|k| k.id == kid)
                    .ok_or(TokenError::BadSignature)?;
                self.verify_with(token, &key.key)
            }
            None => {
                let mut outcome = Err(TokenError::BadSignature);
                for key in &self.verifying {
                    outcome = self.verify_with(token, &key.key);
                    // Any other answer means the signature matched this key.
                    if outcome != Err(TokenError::BadSignature) {
                        break;
                    }
                }
                outcome
            }
        }
    }

    /// Signs other claims with the first key, e.g. the short-lived state of a sign-in kept
    /// in a cookie; their `aud` must be their own, so that no approval token opens as them
    /// and none of them verifies as an approval token.
    pub fn seal<T: Serialize>(&self, claims: &T) -> String {
        let header = Header {
            kid: Some(self.signing_id.clone()),
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Verifies claims made by [`TokenKeys::seal`]: the key its `kid` names, the
    /// `audience`, and the expiry.
    pub fn open<T: serde::de::DeserializeOwned>(
        &self,
        sealed: &str,
        audience: &str,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(sealed).map_err(|_| TokenError::Malformed)?;
        let key = self
            .verifying
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.id.as_str()))
            .ok_or(TokenError::BadSignature)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<T>(sealed, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(token_error)
    }

    fn verify_with(&self, token: &str, key: &DecodingKey) -> Result<ApprovalClaims, TokenError> {
        jsonwebtoken::decode::<ApprovalClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(token_error)
    }
}

fn token_error(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
        ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => TokenError::WrongAudience,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use chrono::Duration;

    use super::*;

    fn claims(deadline: DateTime<Utc>) -> ApprovalClaims {
        let key = ReleaseKey::parse("Devx", "386", "").unwrap();
        ApprovalClaims::new(
            Uuid::new_v4(),
            0,
            "ana@example.com",
            &key,
            "Desafio-CD",
            Utc::now(),
            deadline,
        )
    }

    #[test]
    fn a_minted_token_verifies_to_its_claims() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        let c = claims(Utc::now() + Duration::hours(1));
        assert_eq!(keys.verify(&keys.mint(&c)).unwrap(), c);
    }

    #[test]
    fn a_token_from_another_secret_is_refused() {
        let c = claims(Utc::now() + Duration::hours(1));
        let token = TokenKeys::new(b"another-secret-entirely").mint(&c);
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        assert_eq!(keys.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        let token = keys.mint(&claims(Utc::now() - Duration::seconds(5)));
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        let signed = keys.mint(&claims(Utc::now() + Duration::hours(1)));
        let payload = signed.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_refused_as_such() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        let good = claims(Utc::now() + Duration::hours(1));
        let other_audience = ApprovalClaims {
            aud: "someone-else".into(),
            ..good.clone()
        };
        let other_issuer = ApprovalClaims {
            iss: "someone-else".into(),
            ..good
        };
        for claims in [other_audience, other_issuer] {
            assert_eq!(
                keys.verify(&keys.mint(&claims)),
                Err(TokenError::WrongAudience)
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        assert_eq!(keys.verify("not-a-token"), Err(TokenError::Malformed));
    }
}

#[cfg(test)]
mod rotation {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    fn claims() -> ApprovalClaims {
        let key = ReleaseKey::parse("Devx", "386", "").unwrap();
        let now = Utc::now();
        ApprovalClaims::new(
            Uuid::new_v4(),
            0,
            "ana@example.com",
            &key,
            "Desafio-CD",
            now,
            now + Duration::hours(1),
        )
    }

    /// A token as minted before keys had ids: no `kid` in the header.
    fn legacy_token(secret: &[u8], claims: &ApprovalClaims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn header_kid(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    /// Distinct keys of 16 characters or more.
    fn keys() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set("[a-zA-Z0-9]{16,40}", 2..5)
            .prop_map(|set| set.into_iter().collect())
    }

    #[test]
    fn the_signing_key_is_named_in_the_header() {
        let keys = TokenKeys::rotating(b"new-key-0123456789", &[b"old-key-0123456789"]);
        let token = keys.mint(&claims());
        assert_eq!(header_kid(&token), Some(key_id(b"new-key-0123456789")));
        assert_eq!(key_id(b"new-key-0123456789").len(), 16);
        assert_eq!(
            keys.key_ids(),
            [key_id(b"new-key-0123456789"), key_id(b"old-key-0123456789")]
        );
    }

    #[test]
    fn a_kid_that_no_listed_key_has_is_refused_like_a_foreign_signature() {
        let keys = TokenKeys::new(b"0123456789abcdef0123");
        let c = claims();
        let header = Header {
            kid: Some("0000000000000000".into()),
            ..Header::new(Algorithm::HS256)
        };
        // Signed with the listed key, but naming another: the header is part of
        // what is signed, so the name cannot be swapped either.
        let token = jsonwebtoken::encode(
            &header,
            &c,
            &EncodingKey::from_secret(b"0123456789abcdef0123"),
        )
        .unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_expired_legacy_token_is_expired_not_foreign() {
        let keys = TokenKeys::rotating(b"new-key-0123456789", &[b"old-key-0123456789"]);
        let c = ApprovalClaims {
            exp: Utc::now().timestamp() - 5,
            ..claims()
        };
        let token = legacy_token(b"old-key-0123456789", &c);
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    proptest! {
        #[test]
        fn every_listed_key_verifies_what_it_signed_and_a_removed_one_does_not(
            keys in keys(), signer in 0usize..4, removed in 0usize..4,
        ) {
            let signer = signer % keys.len();
            let removed = removed % keys.len();
            let c = claims();
            let signed_then = TokenKeys::new(keys[signer].as_bytes()).mint(&c);
            let legacy = legacy_token(keys[signer].as_bytes(), &c);
            let all: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            let listed = TokenKeys::rotating(all[0], &all[1..]);
            prop_assert_eq!(listed.verify(&signed_then), Ok(c.clone()));
            prop_assert_eq!(listed.verify(&legacy), Ok(c.clone()));
            prop_assert_eq!(listed.verify(&listed.mint(&c)), Ok(c.clone()));

            let kept: Vec<&[u8]> = all
                .iter()
                .enumerate()
                .filter(|(at, _)| *at != removed)
                .map(|(_, k)| *k)
                .collect();
            let after = TokenKeys::rotating(kept[0], &kept[1..]);
            let expected = if signer == removed {
                Err(TokenError::BadSignature)
            } else {
                Ok(c.clone())
            };
            prop_assert_eq!(after.verify(&signed_then), expected.clone());
            prop_assert_eq!(after.verify(&legacy), expected);
        }
    }
}
