//! The body size limit: `413` for a body over the limit, whether or not `Content-Length` is
//! sent, read and discarded first (up to a bound) so that a client that sends its whole body
//! before reading (no `Expect: 100-continue`) reads the `413` instead of a reset connection;
//! `408` for a body that does not arrive in time; and `400` for a JSON body in which one
//! object repeats a key.

use std::{sync::Arc, time::Duration};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::ResponseError,
    http::{HeaderValue, header},
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{json_keys, observe, problem::Problem};

/// Most bytes of a refused body read and discarded before answering; a longer body gets
/// its `413` at once and the connection is closed.
const DISCARD_BYTES: u64 = 16 * 1024 * 1024;

/// Longest time spent discarding a refused body.
const DISCARD_TIME: Duration = Duration::from_secs(10);

/// How much of a body is accepted, and how quickly it must arrive.
#[derive(Clone, Copy)]
pub struct BodyLimits {
    /// Largest body in bytes.
    pub max_bytes: usize,
    /// Time for the whole body to arrive once the head has.
    pub timeout: Duration,
}

/// Refuses bodies over the limit with 413, bodies that come too slowly with 408 and JSON
/// bodies that repeat a key with 400; passes the others on, read into memory.
pub async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    limits: BodyLimits,
) -> poem::Result<Response> {
    let BodyLimits {
        max_bytes: limit,
        timeout,
    } = limits;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.take_body().into_async_read();
    if declared.is_some_and(|len| len > limit as u64) {
        // A client waiting for `100 Continue` has sent no body: tell it at once.
        let drained = !expects_continue(&req)
            && declared.is_some_and(|len| len <= DISCARD_BYTES)
            && discard(body).await;
        return Ok(too_large(limit, drained));
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    let mut head_of_body = (&mut body).take(limit as u64 + 1);
    let reading = head_of_body.read_to_end(&mut bytes);
    let Ok(read) = tokio::time::timeout(timeout, reading).await else {
        return Ok(closing(Problem::body_too_slow(timeout).as_response()));
    };
    // Read errors (a connection cut, broken chunks) end the request like an oversized body.
    if read.is_err() || bytes.len() > limit {
        let drained = read.is_ok() && discard(body).await;
        return Ok(too_large(limit, drained));
    }
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

/// Reads the rest of a refused body and drops it; whether it ended within the bounds.
async fn discard(body: impl AsyncRead + Unpin) -> bool {
    let mut rest = body.take(DISCARD_BYTES);
    let copied = tokio::time::timeout(
        DISCARD_TIME,
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
    matches!(copied, Ok(Ok(n)) if n < DISCARD_BYTES)
}

/// The `413` problem; unless the body was read to its end, the connection is closed after it.
fn too_large(limit: usize, drained: bool) -> Response {
    let response = Problem::too_large(limit).as_response();
    if drained { response } else { closing(response) }
}

/// `response`, after which the connection is closed.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(req: &Request) -> bool {
    req.headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
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
