//! The HTTP API: OpenAPI operations, pages, and the middleware around them.

mod approval;
mod board;
mod health;
mod hooks;
mod http;
mod mail;
mod pages;
mod release;
mod shared;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Response, Route, http::HeaderValue};
use poem_openapi::OpenApiService;

pub use http::{
    body_limit::BodyLimits,
    cross_site::origin_of,
    problem::{PROBLEM_JSON, Problem},
};
pub use shared::{poll_cache::PollCache, state::AppState};

use crate::settings::RateLimitSettings;
use http::{allow, body_limit, docs_headers, observe, problem, rate_limit};

/// Every group of operations, in the order the OpenAPI document lists them.
type Operations = (
    release::ReleaseApi,
    approval::ApprovalApi,
    approval::SignInApi,
    board::BoardApi,
    hooks::HooksApi,
    health::HealthApi,
    board::operator::OperatorApi,
    mail::MailApi,
);

/// The OpenAPI service with every operation; also used by `deploy-gate openapi`.
pub fn openapi_service() -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        (
            release::ReleaseApi,
            approval::ApprovalApi,
            approval::SignInApi,
            board::BoardApi,
            hooks::HooksApi,
            health::HealthApi,
            board::operator::OperatorApi,
            mail::MailApi,
        ),
        "deploy-gate",
        env!("CARGO_PKG_VERSION"),
    )
    .description(include_str!("openapi_description.md"))
}

/// The generated OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    openapi_service().spec()
}

/// All routes with their middleware: problem documents for every error (405s with `Allow`),
/// a body size and time limit, and headers that keep tokens out of `Referer`.
pub fn routes(
    state: Arc<AppState>,
    body_limits: BodyLimits,
    rate_limits: RateLimitSettings,
) -> impl Endpoint {
    let limits = Arc::new(rate_limit::RateLimits {
        approval: rate_limit::RateLimiter::per_minute(rate_limits.approval),
        auth_failures: rate_limit::RateLimiter::per_minute(rate_limits.auth_failures),
        client_ip_header: rate_limits.client_ip_header,
        trusted_proxy_hops: rate_limits.trusted_proxy_hops,
        api_keys: state.api_keys.clone(),
    });
    let api = openapi_service();
    let docs_policies = docs_headers::DocsPolicies::default();
    let docs = api
        .swagger_ui()
        .around(move |next, req| docs_headers::with_docs_headers(next, req, docs_policies.clone()));
    let spec = api.spec_endpoint();
    let allowed = Arc::new(allow::AllowedMethods::from_spec(&api.spec()));
    let enum_values = Arc::new(pages::readable::EnumValues::from_spec(&api.spec()));
    let metrics = state.metrics.clone();
    let mail_preview = state.mailbox.is_some();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/metrics", poem::get(health::metrics_endpoint))
        .around(move |next, req| {
            pages::readable::readable(next, req, enum_values.clone(), mail_preview)
        })
        .around(move |next, req| body_limit::limit_body(next, req, body_limits))
        .around(move |next, req| allow::add_allow(next, req, allowed.clone()))
        .around(move |next, req| rate_limit::limit(next, req, limits.clone()))
        .around(move |next, req| observe::observe(next, req, metrics.clone()))
        .after(|result| async move { Ok(with_security_headers(result)) })
        .data(state)
        .into_endpoint()
}

fn with_security_headers(result: poem::Result<Response>) -> Response {
    let mut response = result.unwrap_or_else(problem::problem_for_error);
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}
