//! The HTTP API: OpenAPI operations, pages, and the middleware around them.

mod approval;
mod board;
mod health;
mod hooks;
mod http;
mod pages;
mod release;
mod shared;

use std::sync::Arc;

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route,
    http::{HeaderValue, header},
};
use poem_openapi::OpenApiService;

pub use http::{
    cross_site::origin_of,
    problem::{PROBLEM_JSON, Problem},
};
pub use shared::{poll_cache::PollCache, state::AppState};

use crate::settings::RateLimitSettings;
use http::{allow, docs_headers, json_keys, observe, problem, rate_limit};

/// The OpenAPI service with every operation; also used by `deploy-gate openapi`.
pub fn openapi_service() -> OpenApiService<
    (
        release::ReleaseApi,
        approval::ApprovalApi,
        board::BoardApi,
        hooks::HooksApi,
        health::HealthApi,
        board::operator::OperatorApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            release::ReleaseApi,
            approval::ApprovalApi,
            board::BoardApi,
            hooks::HooksApi,
            health::HealthApi,
            board::operator::OperatorApi,
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
/// a body size limit, and headers that keep tokens out of `Referer`.
pub fn routes(
    state: Arc<AppState>,
    max_body_bytes: usize,
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
    let metrics = state.metrics.clone();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/metrics", poem::get(health::metrics_endpoint))
        .around(move |next, req| limit_body(next, req, max_body_bytes))
        .around(move |next, req| allow::add_allow(next, req, allowed.clone()))
        .around(move |next, req| rate_limit::limit(next, req, limits.clone()))
        .around(move |next, req| observe::observe(next, req, metrics.clone()))
        .after(|result| async move { Ok(with_security_headers(result)) })
        .data(state)
        .into_endpoint()
}

/// Refuses bodies over `limit` bytes with 413, whether or not Content-Length is sent,
/// and JSON bodies in which one object repeats a key with 400.
async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    limit: usize,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Problem::too_large(limit).into());
    }
    let body = req.take_body();
    let bytes = body
        .into_bytes_limit(limit)
        .await
        .map_err(|_| Problem::too_large(limit))?;
    if is_json(&req)
        && let Some(key) = json_keys::repeated_key(&bytes)
    {
        let key: String = key.chars().take(64).collect();
        return Err(Problem::invalid_request(format!(
            "the JSON body repeats the key `{}` in one object; send each field once",
            key.escape_debug()
        ))
        .into());
    }
    req.set_body(bytes);
    Ok(next.call(req).await.map_or_else(
        observe::problem_keeping_operation,
        IntoResponse::into_response,
    ))
}

/// Whether the request says its body is JSON (`application/json` or `…+json`).
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
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
