//! The API key guarding `/release`, `/releases` and `/hooks/*`: Bearer, or Basic with the key as password.

use poem::{
    http::HeaderMap,
    web::headers::{self, Authorization, HeaderMapExt},
};
use poem_openapi::{
    SecurityScheme,
    auth::{Basic, Bearer},
};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::problem::Problem;
use crate::secret::Secret;

/// `Authorization: Bearer <DEPLOY_GATE_API_KEY>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct BearerKey(Bearer);

/// `Authorization: Basic` with any user name and `DEPLOY_GATE_API_KEY` as the password
/// (what an Azure DevOps Generic service connection sends).
#[derive(SecurityScheme)]
#[oai(ty = "basic")]
pub struct BasicKey(Basic);

/// The credentials a request carried, if any. Only checked when an API key is configured.
#[derive(SecurityScheme)]
pub enum Credentials {
    /// A bearer token.
    Bearer(BearerKey),
    /// Basic credentials.
    Basic(BasicKey),
    /// No (recognisable) credentials.
    #[oai(fallback)]
    Missing,
}

impl Credentials {
    /// Accepts the request when no key is configured or the presented key matches.
    pub fn check(&self, api_keys: &[Secret]) -> Result<(), Problem> {
        if api_keys.is_empty() {
            return Ok(());
        }
        let presented = match self {
            Credentials::Bearer(BearerKey(bearer)) => bearer.token.as_str(),
            Credentials::Basic(BasicKey(basic)) => basic.password.as_str(),
            Credentials::Missing => {
                return Err(Problem::unauthorized(
                    "send the API key as a Bearer token, or as the password of Basic credentials",
                ));
            }
        };
        if is_one_of(presented, api_keys) {
            Ok(())
        } else {
            tracing::warn!(
                presented = %Secret::new(presented).fingerprint(),
                "refused an API key"
            );
            Err(Problem::unauthorized("the API key is not valid"))
        }
    }
}

/// Whether the request's `Authorization` carries one of `api_keys` (as a Bearer token or
/// the password of Basic credentials); never when no key is configured.
pub fn carries_valid_key(headers: &HeaderMap, api_keys: &[Secret]) -> bool {
    let presented = if let Some(Authorization(bearer)) =
        headers.typed_get::<Authorization<headers::authorization::Bearer>>()
    {
        bearer.token().to_owned()
    } else if let Some(Authorization(basic)) =
        headers.typed_get::<Authorization<headers::authorization::Basic>>()
    {
        basic.password().to_owned()
    } else {
        return false;
    };
    !api_keys.is_empty() && is_one_of(&presented, api_keys)
}

/// Whether `presented` is one of `api_keys`.
fn is_one_of(presented: &str, api_keys: &[Secret]) -> bool {
    // Compare digests, so neither the keys' contents nor their lengths shape the timing,
    // and compare with every key, so the position of the matching one does not either.
    let digest = Sha256::digest(presented.as_bytes());
    let matched = api_keys.iter().fold(Choice::from(0), |found, key| {
        found | Sha256::digest(key.expose().as_bytes()).ct_eq(&digest)
    });
    bool::from(matched)
}
