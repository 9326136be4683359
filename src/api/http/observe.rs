//! Request ids, request spans and request metrics, around every route.

use std::{sync::Arc, time::Instant};

use poem::{Endpoint, IntoResponse, Request, Response, http::HeaderValue};
use poem_openapi::OperationId;
use tracing::Instrument;
use uuid::Uuid;

use super::problem;
use crate::metrics::Metrics;

/// The header carrying the request id, taken from the caller when sensible, else made up.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest request id taken over from a caller.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// Gives each request an id (the caller's `X-Request-Id` if it is short, visible ASCII,
/// else a new UUID) and a `request` span carrying it; answers with the same header; and
/// counts the request by operation, method and status.
pub async fn observe<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    metrics: Arc<Metrics>,
) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_CHARS
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    let method = req.method().to_string();
    // The path only: the query may hold an approval token.
    let path = req.uri().path().to_owned();
    // `problem`: the type of the problem document answered, if any (recorded
    // where the problem is made), for the access log below.
    let span = tracing::info_span!("request", request_id = %request_id, %method, %path,
        problem = tracing::field::Empty);
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await.map_or_else(
        |err| span.in_scope(|| problem_keeping_operation(err)),
        IntoResponse::into_response,
    );
    let took = started.elapsed();
    let route = response
        .data::<OperationId>()
        .map_or_else(|| route_of_unnamed(&path), |op| op.0);
    let status = response.status();
    metrics.observe_request(route, &method, status.as_u16(), took);
    // Successes at debug (gate polls come by the dozen a second); a refusal
    // or a failure always leaves a trace.
    let took_ms = took.as_secs_f64() * 1e3;
    span.in_scope(|| match status.as_u16() {
        500.. => tracing::error!(
            status = status.as_u16(),
            route,
            took_ms,
            "answered with a server error"
        ),
        400..500 => tracing::info!(
            status = status.as_u16(),
            route,
            took_ms,
            "answered with a client error"
        ),
        _ => tracing::debug!(status = status.as_u16(), route, took_ms, "answered"),
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// The problem document for `err`, still naming the operation that failed.
pub fn problem_keeping_operation(err: poem::Error) -> Response {
    let operation = err.data::<OperationId>().copied();
    let mut response = problem::problem_for_error(err);
    if let Some(operation) = operation {
        response.set_data(operation);
    }
    response
}

/// A bounded label for routes outside the OpenAPI operations.
fn route_of_unnamed(path: &str) -> &'static str {
    match path {
        "/metrics" => "metrics",
        "/openapi.json" => "openapi",
        p if p == "/docs" || p.starts_with("/docs/") => "docs",
        _ => "unmatched",
    }
}
