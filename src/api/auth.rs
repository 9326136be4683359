//! The API key guarding `/release` and `/hooks/*`: Bearer, or Basic with the key as password.

use poem_openapi::{
    SecurityScheme,
    auth::{Basic, Bearer},
};
use subtle::ConstantTimeEq;

use super::{AppState, problem::Problem};

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
    pub fn check(&self, state: &AppState) -> Result<(), Problem> {
        let Some(expected) = &state.api_key else {
            return Ok(());
        };
        let presented = match self {
            Credentials::Bearer(BearerKey(bearer)) => bearer.token.as_str(),
            Credentials::Basic(BasicKey(basic)) => basic.password.as_str(),
            Credentials::Missing => {
                return Err(Problem::unauthorized(
                    "send the API key as a Bearer token, or as the password of Basic credentials",
                ));
            }
        };
        if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(())
        } else {
            Err(Problem::unauthorized("the API key is not valid"))
        }
    }
}
