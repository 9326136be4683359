//! Approval tokens: HS256 JWTs naming one approval of one release.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
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
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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

/// Mints and verifies approval tokens with one HMAC secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Keys from the shared secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs the claims.
    pub fn mint(&self, claims: &ApprovalClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Checks signature (HS256 only), audience, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<ApprovalClaims, TokenError> {
        jsonwebtoken::decode::<ApprovalClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    TokenError::BadSignature
                }
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => TokenError::WrongAudience,
                _ => TokenError::Malformed,
            })
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
