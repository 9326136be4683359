//! The OpenID Connect provider approvers sign in with: its discovery document, the
//! authorization request (code flow with PKCE S256, `state` and `nonce`), the code
//! exchange, and the ID token verified with the provider's JWKS.
//!
//! Unlike the other outbound clients this one is called during a request: the code
//! must be exchanged while the approver's browser waits for the answer.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{domain::sign_in::IdentityClaims, settings::SignIn};

/// How long a call to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Clock difference tolerated on `exp`, `nbf` and `iat` of ID tokens.
const LEEWAY_SECONDS: u64 = 60;

/// Why a sign-in failed at or with the provider.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered something unusable.
    #[error("the identity provider: {0}")]
    Provider(String),
    /// The provider refused the code: used already, expired, or issued to another client or
    /// for another PKCE challenge.
    #[error("the identity provider refused the sign-in's code: {0}")]
    CodeRefused(String),
    /// The ID token failed verification (signature, issuer, audience, expiry).
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    /// The ID token was issued for another sign-in (its `nonce` differs).
    #[error("the ID token was issued for another sign-in")]
    WrongNonce,
}

/// The endpoints of the provider's discovery document that the code flow uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    /// The issuer ID tokens name; Entra ID's multi-tenant documents hold `{tenantid}`.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
}

/// One sign-in's secrets: `state` (against forged callbacks), `nonce` (binds the ID
/// token to this sign-in) and the PKCE verifier (binds the code to this client).
#[derive(Clone, Debug)]
pub struct Challenge {
    /// Echoed by the provider to the callback.
    pub state: String,
    /// Echoed inside the ID token.
    pub nonce: String,
    /// Sent with the code exchange; its SHA-256 goes with the authorization request.
    pub verifier: String,
}

impl Challenge {
    /// Fresh random values, 256 bits each.
    pub fn new() -> Self {
        Self {
            state: random(),
            nonce: random(),
            verifier: random(),
        }
    }
}

impl Default for Challenge {
    fn default() -> Self {
        Self::new()
    }
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE `code_challenge` of a verifier (method `S256`).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

#[derive(Deserialize)]
struct VerifiedClaims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(flatten)]
    identity: IdentityClaims,
}

/// The configured provider and an HTTP client to reach it.
#[derive(Clone, Debug)]
pub struct Provider {
    settings: SignIn,
    http: reqwest::Client,
}

impl Provider {
    /// A client for the configured provider; fails only if the HTTP client cannot be built.
    pub fn new(settings: SignIn) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("deploy-gate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { settings, http })
    }

    /// Entra ID tenants trusted without `email_verified`.
    pub fn tenants(&self) -> &[String] {
        &self.settings.tenants
    }

    /// Reads `<issuer>/.well-known/openid-configuration`.
    pub async fn discover(&self) -> Result<Discovery, OidcError> {
        let base = self.settings.issuer.as_str().trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        self.get_json(&url).await
    }

    /// The provider's page the browser is sent to, asking for a code for `challenge`.
    pub fn authorization_url(
        &self,
        discovery: &Discovery,
        redirect_uri: &str,
        challenge: &Challenge,
    ) -> Result<String, OidcError> {
        let mut url = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &challenge.state)
            .append_pair("nonce", &challenge.nonce)
            .append_pair("code_challenge", &code_challenge(&challenge.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code for an ID token and verifies it: the provider's key, issuer,
    /// audience (this client), expiry, and the `nonce` of this sign-in.
    pub async fn sign_in(
        &self,
        discovery: &Discovery,
        code: &str,
        redirect_uri: &str,
        challenge: &Challenge,
    ) -> Result<IdentityClaims, OidcError> {
        let id_token = self
            .exchange(discovery, code, redirect_uri, challenge)
            .await?;
        let keys: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let claims = self.verify(discovery, &keys, &id_token)?;
        let nonce_matches = claims.nonce.as_deref().is_some_and(|n| {
            subtle::ConstantTimeEq::ct_eq(n.as_bytes(), challenge.nonce.as_bytes()).into()
        });
        if !nonce_matches {
            return Err(OidcError::WrongNonce);
        }
        Ok(claims.identity)
    }

    async fn exchange(
        &self,
        discovery: &Discovery,
        code: &str,
        redirect_uri: &str,
        challenge: &Challenge,
    ) -> Result<String, OidcError> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("code_verifier", &challenge.verifier);
            if let Some(secret) = &self.settings.client_secret {
                form.append_pair("client_secret", secret.expose());
            }
            form.finish()
        };
        let answer = self
            .http
            .post(&discovery.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            let cause = format!("token endpoint answered {status}: {body}");
            return Err(if status.is_client_error() {
                OidcError::CodeRefused(cause)
            } else {
                OidcError::Provider(cause)
            });
        }
        let token: TokenAnswer = answer
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        Ok(token.id_token)
    }

    fn verify(
        &self,
        discovery: &Discovery,
        keys: &JwkSet,
        id_token: &str,
    ) -> Result<VerifiedClaims, OidcError> {
        let invalid = |e: &dyn std::fmt::Display| OidcError::InvalidToken(e.to_string());
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| invalid(&e))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(invalid(&"symmetric signatures are not accepted"));
        }
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| invalid(&"signed with a key the provider does not publish"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(&e))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<VerifiedClaims>(id_token, &key, &validation)
            .map_err(|e| invalid(&e))?
            .claims;
        let tid = claims.identity.tid.as_deref().unwrap_or_default();
        let expected = discovery.issuer.replace("{tenantid}", tid);
        if claims.identity.iss != expected {
            return Err(invalid(&format_args!(
                "issued by {}, not {expected}",
                claims.identity.iss
            )));
        }
        Ok(claims)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let failed = |e: reqwest::Error| OidcError::Provider(format!("{url}: {e}"));
        self.http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)
    }
}
