//! The public error codes: every problem document's `type`, with its status and title.
//! Clients match on the `type` URNs, so they never change; `docs/problems.md` lists them.

use poem::http::StatusCode;

/// Declares [`ProblemCode`] once: each variant's doc comment is also its meaning in
/// `docs/problems.md`, so the two cannot say different things.
macro_rules! problem_codes {
    ($(
        $(#[doc = $meaning:literal])+
        $variant:ident = ($code:literal, $status:ident, $title:literal),
    )+) => {
        /// The kind of a problem document; its `type` is `urn:deploy-gate:problem:` and the code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ProblemCode {
            $( $(#[doc = $meaning])+ $variant, )+
        }

        impl ProblemCode {
            /// Every code, in the order `docs/problems.md` lists them.
            #[cfg(test)]
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The problem document's `type`.
            pub fn urn(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!("urn:deploy-gate:problem:", $code),)+
                }
            }

            /// The HTTP status every problem of this kind is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$variant => StatusCode::$status,)+
                }
            }

            /// The problem document's `title`.
            pub fn title(self) -> &'static str {
                match self {
                    $(Self::$variant => $title,)+
                }
            }

            /// What the code means, as its doc comment says.
            #[cfg(test)]
            fn meaning(self) -> String {
                match self {
                    $(Self::$variant => [$($meaning),+].map(str::trim).join(" "),)+
                }
            }
        }
    };
}

problem_codes! {
    /// A body field or a parameter failed validation: empty, too long, with control
    /// characters, not an address or URL where one is needed, or an incomplete set of
    /// callback fields. Nothing was stored.
    InvalidField = ("invalid-field", BAD_REQUEST, "A field is invalid"),
    /// The body or a parameter could not be parsed: malformed JSON, a wrong type, a
    /// required field or parameter missing; a parameter with a fixed set of values lists
    /// them. Nothing was stored.
    InvalidRequest = ("invalid-request", BAD_REQUEST, "The request is malformed"),
    /// A body field, the `mode` parameter or, in callback mode, a callback field still
    /// holds an Azure Pipelines macro `$(…)` that Azure DevOps left unresolved (usually a
    /// classic-release variable in a YAML pipeline); the detail names the field, the
    /// variable and the YAML equivalent where there is one. Nothing was stored.
    UnresolvedMacro = ("unresolved-macro", BAD_REQUEST, "A pipeline variable was not resolved"),
    /// The body names `Approvers`, but this service takes approvers only from its
    /// policies, approvers API or static list (`DEPLOY_GATE_REQUEST_APPROVERS` is not
    /// `true`). Nothing was stored.
    RequestApproversDisabled = (
        "request-approvers-disabled",
        BAD_REQUEST,
        "Approvers may not be named in the request"
    ),
    /// The API key (a Bearer token, or the password of Basic credentials) is missing or
    /// wrong, or the service hook's secret header is. The answer names the accepted schemes
    /// in `WWW-Authenticate`.
    Unauthorized = ("unauthorized", UNAUTHORIZED, "Credentials are missing or wrong"),
    /// The approval token is malformed, was altered, or was not issued by this service.
    TokenInvalid = ("token-invalid", UNAUTHORIZED, "The approval link is not valid"),
    /// The approval token's release is past its deadline.
    TokenExpired = ("token-expired", UNAUTHORIZED, "The approval link has expired"),
    /// The approval the token names does not exist in this service's database.
    TokenUnknown = ("token-unknown", UNAUTHORIZED, "The approval link is not valid"),
    /// An operator re-sent the approval email; only the link of the latest one works.
    TokenSuperseded = ("token-superseded", UNAUTHORIZED, "This approval link was replaced"),
    /// The token's approver or release is not those of the approval it names.
    TokenMismatch = ("token-mismatch", FORBIDDEN, "The token does not match its approval"),
    /// A browser sent a state change (`POST /release`, the service hook, cancel, re-send) from
    /// another site's page (`Sec-Fetch-Site` `cross-site`/`same-site`, or an `Origin` not this
    /// service's); nothing changed. Requests without either header are not affected.
    CrossSiteRequest = ("cross-site-request", FORBIDDEN, "Cross-site request refused"),
    /// The release's policy requires approvers to sign in (`require_sign_in`): the
    /// decision counts only after its approver signed in, in this browser, at
    /// `GET /approval/sign-in`. Nothing was stored.
    SignInRequired = ("sign-in-required", FORBIDDEN, "Sign in to decide"),
    /// The person who signed in is not the approval's approver: the provider vouched for
    /// another address, or for none (no `email_verified`, and no configured tenant).
    /// Nothing was stored.
    WrongApprover = ("wrong-approver", FORBIDDEN, "You signed in as someone else"),
    /// The sign-in's callback was refused: its `state` is not the one this browser was
    /// sent with (tampered, replayed, or the sign-in expired), or the ID token is not
    /// valid (signature, issuer, audience, expiry) or was issued for another `nonce`.
    SignInRefused = ("sign-in-refused", FORBIDDEN, "The sign-in was refused"),
    /// No such release, approver of a release, or path. A release asked for in the wrong
    /// stage or round names the stages, or the rounds of its stage, that do exist.
    NotFound = ("not-found", NOT_FOUND, "Not found"),
    /// The path exists but not with this method; `Allow` lists the methods it takes.
    MethodNotAllowed = ("method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed"),
    /// The body did not arrive within `DEPLOY_GATE_HTTP_BODY_TIMEOUT` of the request's head;
    /// the connection is closed.
    RequestTimeout = ("request-timeout", REQUEST_TIMEOUT, "The request body came too slowly"),
    /// This approver already made the other decision, which cannot be changed.
    AlreadyDecided = ("already-decided", CONFLICT, "You already decided"),
    /// The release is already approved, rejected, expired or cancelled; nothing changed.
    ReleaseFinal = ("release-final", CONFLICT, "The release is already decided"),
    /// The approver already decided, so there is no approval email to re-send.
    ApproverDecided = ("approver-decided", CONFLICT, "The approver already decided"),
    /// An operator cancelled the release's approval; its links no longer work.
    ApprovalCancelled = ("approval-cancelled", GONE, "This approval was cancelled"),
    /// The round was decided in Azure DevOps itself; its links no longer work.
    DecidedInAzure = ("decided-in-azure", GONE, "This release was decided in Azure DevOps"),
    /// The body is larger than `DEPLOY_GATE_MAX_BODY_BYTES`.
    BodyTooLarge = ("body-too-large", PAYLOAD_TOO_LARGE, "The request body is too large"),
    /// The body is neither JSON nor, where the operation takes one, a form.
    UnsupportedMediaType = ("unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Unsupported content type"),
    /// Too many approval requests, or failed authentications, from this client; retry after
    /// `Retry-After` seconds.
    RateLimited = ("rate-limited", TOO_MANY_REQUESTS, "Too many requests"),
    /// The service failed; the cause is logged, never returned.
    Internal = ("internal", INTERNAL_SERVER_ERROR, "Internal error"),
    /// The OpenID Connect provider could not be reached, or answered the discovery, code
    /// exchange or key request with an error; try signing in again.
    SignInUnavailable = ("sign-in-unavailable", BAD_GATEWAY, "The identity provider failed"),
    /// The database is unavailable; try again.
    Unavailable = ("unavailable", SERVICE_UNAVAILABLE, "Service unavailable"),
    /// The service holds `DEPLOY_GATE_HTTP_MAX_CONNECTIONS` connections already; this one is
    /// closed. Retry after `Retry-After` seconds.
    TooManyConnections = ("too-many-connections", SERVICE_UNAVAILABLE, "Too many connections"),
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBLEMS_MD: &str = include_str!("../../../docs/problems.md");

    /// The table `docs/problems.md` must hold, made from the enum.
    fn table() -> String {
        let mut table = "| `type` | status | title | meaning |\n|---|---|---|---|\n".to_owned();
        for code in ProblemCode::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                code.urn(),
                code.status().as_u16(),
                code.title(),
                code.meaning()
            ));
        }
        table
    }

    #[test]
    fn docs_problems_md_lists_every_code_as_the_enum_defines_it() {
        let table = table();
        assert!(
            PROBLEMS_MD.contains(&table),
            "docs/problems.md is out of date; its table must read:\n\n{table}"
        );
    }

    #[test]
    fn every_code_has_its_own_type_in_the_contract_namespace() {
        let mut urns: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.urn()).collect();
        assert!(
            urns.iter()
                .all(|urn| urn.starts_with("urn:deploy-gate:problem:"))
        );
        urns.sort_unstable();
        urns.dedup();
        assert_eq!(urns.len(), ProblemCode::ALL.len());
    }
}
