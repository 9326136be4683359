//! Per-client rate limits: on the approval endpoints (guessing tokens, hammering links) and
//! on failed authentication to the API-key endpoints (guessing keys). A token bucket per
//! client address, refilled continuously; a client over a limit gets `429` with
//! `Retry-After`.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderName, HeaderValue, StatusCode, header},
};

use super::{
    auth::carries_valid_key,
    problem::{Problem, ProblemCode},
};
use crate::{live::Live, secret::Secret};

/// Buckets kept before full (idle) ones are dropped.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// A token bucket per client: `per_minute` tokens, refilled evenly over a minute.
pub struct RateLimiter {
    per_minute: f64,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` events per client; `None` when 0 (no limit).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            per_minute: f64::from(per_minute),
            clients: Mutex::default(),
        })
    }

    /// The client's bucket refilled up to `now` (a full one if unknown).
    fn refilled(&self, bucket: Option<Bucket>, now: Instant) -> Bucket {
        match bucket {
            Some(b) => {
                let earned = now.duration_since(b.updated).as_secs_f64() * self.per_minute / 60.0;
                Bucket {
                    tokens: (b.tokens + earned).min(self.per_minute),
                    updated: now,
                }
            }
            None => Bucket {
                tokens: self.per_minute,
                updated: now,
            },
        }
    }

    fn wait_for_one(&self, bucket: Bucket) -> Duration {
        Duration::from_secs_f64(((1.0 - bucket.tokens) * 60.0 / self.per_minute).max(0.0))
    }

    /// Takes one token for `client`, or says how long until one is available.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let mut bucket = self.refilled(clients.get(&client).copied(), now);
        let result = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait_for_one(bucket))
        };
        if clients.len() >= MAX_TRACKED_CLIENTS {
            let per_minute = self.per_minute;
            clients.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * per_minute / 60.0
                    < per_minute
            });
        }
        clients.insert(client, bucket);
        result
    }

    /// How long `client` must wait when it has no token left, without taking one.
    pub fn exhausted(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = self.refilled(clients.get(&client).copied(), now);
        (bucket.tokens < 1.0).then(|| self.wait_for_one(bucket))
    }
}

/// The limits in force, and how to tell clients apart.
pub struct RateLimits {
    /// Requests to `/approval` per client and minute.
    pub approval: Option<RateLimiter>,
    /// Failed authentications to `/release*` (the board too) and `/hooks/*` per client and minute.
    pub auth_failures: Option<RateLimiter>,
    /// A header naming the client, appended to by trusted proxies.
    pub client_ip_header: Option<HeaderName>,
    /// How many trusted proxies append to that header (at least 1).
    pub trusted_proxy_hops: usize,
    /// The API keys: a request carrying one is never refused by the failure limit.
    pub api_keys: Live<Vec<Secret>>,
}

impl RateLimits {
    /// The client: from the proxy header when one is configured and names an address,
    /// else the connection's peer.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        self.client_ip_header
            .as_ref()
            .and_then(|name| forwarded_client(req, name, self.trusted_proxy_hops))
            .or_else(|| req.remote_addr().as_socket_addr().map(|addr| addr.ip()))
    }
}

/// The address `hops` entries from the right end of the header `name` (every copy of
/// it, in order): each trusted proxy appends the address it saw, so the entries left
/// of those are whatever the caller wrote. With fewer entries than `hops`, the
/// leftmost, as only trusted proxies wrote them.
fn forwarded_client(req: &Request, name: &HeaderName, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = req
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let entry = entries.get(entries.len().checked_sub(1)?.saturating_sub(hops - 1))?;
    entry.parse().ok().or_else(|| {
        // Some proxies add the port: `203.0.113.7:5100`, `[2001:db8::1]:5100`.
        entry.parse::<SocketAddr>().ok().map(|addr| addr.ip())
    })
}

fn guarded_by_api_key(path: &str) -> bool {
    ["/release", "/releases"].iter().any(|base| {
        path.strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }) || path.starts_with("/hooks/")
}

fn too_many(wait: Duration, detail: &str) -> Response {
    let mut response =
        poem::Error::from(Problem::new(ProblemCode::RateLimited, detail)).into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Applies the limits around every request.
pub async fn limit<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    limits: Arc<RateLimits>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let client = limits.client(&req);
    let now = Instant::now();
    if let (Some(client), Some(approval)) = (client, &limits.approval)
        && path == "/approval"
        && let Err(wait) = approval.take(client, now)
    {
        tracing::warn!(%client, "rate limit: too many approval requests");
        return Ok(too_many(
            wait,
            "too many approval requests from this client; retry later",
        ));
    }
    let failures = limits
        .auth_failures
        .as_ref()
        .filter(|_| guarded_by_api_key(&path));
    // Callers sharing an address (Azure DevOps calls from shared ranges) must not be
    // locked out by someone guessing from it: only requests without a valid key wait.
    if let (Some(client), Some(failures)) = (client, failures)
        && let Some(wait) = failures.exhausted(client, now)
        && !limits
            .api_keys
            .read(|keys| carries_valid_key(req.headers(), keys))
    {
        tracing::warn!(%client, "rate limit: too many failed authentications");
        return Ok(too_many(
            wait,
            "too many failed authentications from this client; retry later",
        ));
    }
    let response = next.call(req).await?.into_response();
    if let (Some(client), Some(failures)) = (client, failures)
        && response.status() == StatusCode::UNAUTHORIZED
    {
        let _ = failures.take(client, Instant::now());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_evenly() {
        let limiter = RateLimiter::per_minute(3).unwrap();
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(client, start).is_ok());
        }
        let wait = limiter.take(client, start).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(limiter.exhausted(client, start).is_some());
        assert!(limiter.take(other, start).is_ok(), "clients are apart");
        // One token every 20 s.
        assert!(
            limiter
                .take(client, start + Duration::from_secs(21))
                .is_ok()
        );
        assert!(
            limiter
                .take(client, start + Duration::from_secs(22))
                .is_err()
        );
        assert!(
            limiter
                .exhausted(client, start + Duration::from_secs(60))
                .is_none()
        );
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimiter::per_minute(0).is_none());
    }
}
