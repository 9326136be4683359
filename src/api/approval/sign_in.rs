//! Approvers who must sign in (a policy's `require_sign_in`): `GET /approval/sign-in`
//! sends the browser to the OpenID Connect provider, `GET /approval/signed-in` is where
//! it comes back. The sign-in's state lives in one short-lived cookie signed with the
//! token keys, first as the pending sign-in, then as the identity of the approver;
//! nothing is kept in the process, so any replica serves any step.

use std::sync::Arc;

use chrono::Duration;
use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, OpenApi, param::Query};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authorize;
use crate::{
    api::{
        http::negotiate::wants_html,
        http::problem::{ErrorStatuses, Problem, ProblemCode},
        pages::{Audience, ProblemPage},
        shared::state::{ApiTags, AppState},
    },
    domain::{
        sign_in::{SignedIdentity, identify},
        snapshot::ReleaseSnapshot,
    },
    oidc::{Challenge, OidcError},
};

/// The cookie holding the sign-in, on `/approval` and below only.
const COOKIE: &str = "deploy_gate_sign_in";
/// `aud` of a sign-in waiting for the provider's answer.
const PENDING: &str = "deploy-gate:sign-in";
/// `aud` of a finished sign-in.
const SIGNED_IN: &str = "deploy-gate:signed-in";
/// How long the provider's sign-in page may take.
const PENDING_MINUTES: i64 = 10;
/// How long a sign-in lets its approver decide.
const SIGNED_IN_MINUTES: i64 = 15;

/// A sign-in waiting for the provider's answer.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    aud: String,
    exp: i64,
    /// The approval link the sign-in returns to.
    token: String,
    state: String,
    nonce: String,
    verifier: String,
}

/// The approver of one approval, as the provider vouched for them.
#[derive(Serialize, Deserialize)]
struct SignedIn {
    aud: String,
    exp: i64,
    approval: Uuid,
    iss: String,
    sub: String,
    email: String,
}

/// A redirect that sets the sign-in cookie.
#[derive(ApiResponse)]
pub enum SignInRedirect {
    /// To the identity provider's sign-in page, or back to the approval page once signed in.
    #[oai(status = 303)]
    SeeOther(
        /// Where to go next.
        #[oai(header = "Location")]
        String,
        /// The sign-in's state (short-lived, signed, `HttpOnly`).
        #[oai(header = "Set-Cookie")]
        String,
        /// Never cached.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// Errors of `GET /approval/sign-in`.
pub struct SignInErrors;
impl ErrorStatuses for SignInErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "The token parameter is missing."),
        (
            401,
            "The token is malformed, tampered with, expired, replaced by a re-sent one, or not issued by this service.",
        ),
        (403, "The token does not match the approval it names."),
        (
            404,
            "This approval's policy does not ask approvers to sign in.",
        ),
        (
            410,
            "An operator cancelled the release's approval, or it was decided in Azure DevOps.",
        ),
        (
            502,
            "The identity provider's discovery document could not be read.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Errors of `GET /approval/signed-in`.
pub struct SignedInErrors;
impl ErrorStatuses for SignedInErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "The code or state parameter is missing."),
        (
            401,
            "The approval link the sign-in started from is no longer valid (expired, replaced, tampered with).",
        ),
        (
            403,
            "The state is not this browser's sign-in (tampered, replayed, expired), the ID token is not valid or was issued for another nonce, or the person who signed in is not the approval's approver.",
        ),
        (
            410,
            "An operator cancelled the release's approval, or it was decided in Azure DevOps.",
        ),
        (
            502,
            "The identity provider failed to exchange the code or to publish its keys.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Signing in before deciding, where the release's policy requires it.
pub struct SignInApi;

#[OpenApi(tag = "ApiTags::Approval")]
impl SignInApi {
    /// Sign in to decide.
    ///
    /// Where the release's policy requires approvers to sign in, sends the browser to the
    /// OpenID Connect provider (authorization code flow with PKCE, `state` and `nonce`).
    /// It comes back to `/approval/signed-in`, then to the approval page.
    #[oai(path = "/approval/sign-in", method = "get", operation_id = "signIn")]
    async fn sign_in(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// The token from the approval email.
        token: Query<String>,
    ) -> Result<SignInRedirect, ProblemPage<SignInErrors>> {
        start(&state, &token)
            .await
            .map_err(|p| ProblemPage::new(p, wants_html(req), Audience::Approver))
    }

    /// Come back from the identity provider.
    ///
    /// The provider's redirect after the sign-in (register `<public_url>/approval/signed-in`
    /// as the redirect URI). Checks the `state` against this browser's sign-in, exchanges
    /// the code, verifies the ID token (keys, issuer, audience, expiry, `nonce`) and that
    /// the person is the approval's approver, then returns to the approval page.
    #[oai(
        path = "/approval/signed-in",
        method = "get",
        operation_id = "signedIn"
    )]
    async fn signed_in(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// The authorization code.
        code: Query<Option<String>>,
        /// The state the sign-in was started with.
        #[oai(name = "state")]
        returned_state: Query<Option<String>>,
        /// The provider's error, when the sign-in failed there.
        error: Query<Option<String>>,
    ) -> Result<SignInRedirect, ProblemPage<SignedInErrors>> {
        let returned = Returned {
            code: code.0.as_deref(),
            state: returned_state.0.as_deref(),
            error: error.0.as_deref(),
        };
        finish(&state, cookie(req), returned)
            .await
            .map_err(|p| ProblemPage::new(p, wants_html(req), Audience::Approver))
    }
}

/// The query of the provider's redirect.
struct Returned<'a> {
    code: Option<&'a str>,
    state: Option<&'a str>,
    error: Option<&'a str>,
}

async fn start(state: &AppState, token: &str) -> Result<SignInRedirect, Problem> {
    let (_, snapshot) = authorize(state, token).await?;
    let provider = match &state.sign_in {
        Some(provider) if snapshot.release.rule.sign_in => provider,
        _ => {
            return Err(Problem::new(
                ProblemCode::NotFound,
                "this approval does not ask you to sign in; decide on its page",
            ));
        }
    };
    let discovery = provider.discover().await.map_err(provider_problem)?;
    let challenge = Challenge::new();
    let location = provider
        .authorization_url(&discovery, &redirect_uri(state), &challenge)
        .map_err(provider_problem)?;
    let pending = PendingSignIn {
        aud: PENDING.to_owned(),
        exp: (state.clock.now() + Duration::minutes(PENDING_MINUTES)).timestamp(),
        token: token.trim().to_owned(),
        state: challenge.state,
        nonce: challenge.nonce,
        verifier: challenge.verifier,
    };
    let sealed = state.tokens.get().seal(&pending);
    Ok(redirect(state, location, &sealed, PENDING_MINUTES))
}

async fn finish(
    state: &AppState,
    cookie: Option<String>,
    returned: Returned<'_>,
) -> Result<SignInRedirect, Problem> {
    let refused = |detail: &str| Problem::new(ProblemCode::SignInRefused, detail.to_owned());
    let pending: PendingSignIn = cookie
        .and_then(|c| state.tokens.get().open(&c, PENDING).ok())
        .ok_or_else(|| {
            refused("no sign-in was started in this browser, or it expired or was used; start again from the approval link")
        })?;
    if let Some(error) = returned.error {
        let error: String = error.chars().take(80).collect();
        return Err(refused(&format!(
            "the identity provider did not sign you in ({error})"
        )));
    }
    let same_state = returned.state.is_some_and(|s| {
        subtle::ConstantTimeEq::ct_eq(s.as_bytes(), pending.state.as_bytes()).into()
    });
    if !same_state {
        tracing::warn!("sign-in callback with a state that is not this browser's");
        return Err(refused(
            "the sign-in's state does not match the one this browser started; start again from the approval link",
        ));
    }
    let code = returned
        .code
        .ok_or_else(|| Problem::invalid_request("code: is required"))?;
    let (approval, snapshot) = authorize(state, &pending.token).await?;
    let provider = state
        .sign_in
        .as_ref()
        .filter(|_| snapshot.release.rule.sign_in)
        .ok_or_else(|| refused("this approval does not ask you to sign in"))?;
    let discovery = provider.discover().await.map_err(provider_problem)?;
    let challenge = Challenge {
        state: pending.state,
        nonce: pending.nonce,
        verifier: pending.verifier,
    };
    let claims = provider
        .sign_in(&discovery, code, &redirect_uri(state), &challenge)
        .await
        .map_err(provider_problem)?;
    let identity = identify(&claims, &approval.email, provider.tenants()).map_err(|m| {
        tracing::warn!(approval.id = %approval.id, "someone other than the approver signed in");
        Problem::new(
            ProblemCode::WrongApprover,
            format!("{m}; sign in as {} to decide", approval.email),
        )
    })?;
    let signed_in = SignedIn {
        aud: SIGNED_IN.to_owned(),
        exp: (state.clock.now() + Duration::minutes(SIGNED_IN_MINUTES)).timestamp(),
        approval: approval.id,
        iss: identity.issuer,
        sub: identity.subject,
        email: identity.email,
    };
    let sealed = state.tokens.get().seal(&signed_in);
    let back = format!(
        "{}/approval?token={}",
        state.public_url,
        urlencode(&pending.token)
    );
    Ok(redirect(state, back, &sealed, SIGNED_IN_MINUTES))
}

/// The identity this browser signed in as for `approval`, if it did and it has not expired.
pub(super) fn signed_in_identity(
    state: &AppState,
    req: &Request,
    approval: Uuid,
) -> Option<SignedIdentity> {
    let signed: SignedIn = state.tokens.get().open(&cookie(req)?, SIGNED_IN).ok()?;
    (signed.approval == approval).then_some(SignedIdentity {
        issuer: signed.iss,
        subject: signed.sub,
        email: signed.email,
    })
}

/// Whether deciding on this release needs a sign-in.
pub(super) fn required(snapshot: &ReleaseSnapshot) -> bool {
    snapshot.release.rule.sign_in
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/approval/signed-in", state.public_url)
}

fn redirect(state: &AppState, location: String, value: &str, minutes: i64) -> SignInRedirect {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={value}; Path=/approval; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        minutes * 60
    );
    SignInRedirect::SeeOther(location, cookie, "no-store".to_owned())
}

/// The sign-in cookie of the request, if it sent one.
fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn provider_problem(err: OidcError) -> Problem {
    match err {
        OidcError::Provider(cause) => {
            tracing::warn!(error = %cause, "the identity provider failed");
            Problem::new(
                ProblemCode::SignInUnavailable,
                "the identity provider could not be reached or failed; try signing in again",
            )
        }
        refused => {
            tracing::warn!(error = %refused, "sign-in refused");
            Problem::new(ProblemCode::SignInRefused, refused.to_string())
        }
    }
}
