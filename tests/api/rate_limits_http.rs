//! Rate limits seen over HTTP: recovery once `Retry-After` has passed, clients
//! told apart through the trusted proxy header, and the lock-out after failed
//! authentications spanning `/hooks/azure-devops`, `/releases` and `/release`.
//!
//! The limiter's buckets refill on the real monotonic clock (`Instant`), not on the
//! app's `Clock`, so recovery cannot be reached by moving the clock. These tests
//! honour `Retry-After` literally: they sleep the seconds it names, which can only
//! make the next request later than the refill, never earlier, so they cannot race.
//! Lock-outs are asserted with limits of one or two a minute, so that a lock-out
//! ends early only if the test hangs for half a minute.

use std::time::Duration;

use deploy_gate::{secret::Secret, settings::Settings};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestSmtp, spawn_app_with};

const KEY: &str = "the-right-key-0123456789ab";
const PROXY_HEADER: &str = "x-forwarded-for";

/// A test app behind a trusted proxy, with the API key and limits set by `adjust`.
async fn app_behind_proxy(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(KEY));
        s.client_ip_header = Some(PROXY_HEADER.into());
        adjust(s);
    })
    .await
}

/// `GET /approval` with a guessed token, from `client` per the proxy header.
async fn guess_token(app: &TestApp, client: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/approval?token=guess", app.address))
        .header(PROXY_HEADER, client)
        .send()
        .await
        .unwrap()
}

/// A service-hook delivery of an event type deploy-gate ignores, with `password`.
async fn hook(app: &TestApp, client: &str, password: &str) -> reqwest::Response {
    let push = json!({"id": "e1", "eventType": "git.push", "publisherId": "tfs",
                      "resource": {"refUpdates": []}});
    app.client
        .post(format!("{}/hooks/azure-devops", app.address))
        .basic_auth("azure-devops", Some(password))
        .header(PROXY_HEADER, client)
        .json(&push)
        .send()
        .await
        .unwrap()
}

/// `GET /releases` (the board as JSON) with `key` as Bearer token.
async fn board(app: &TestApp, client: &str, key: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/releases", app.address))
        .bearer_auth(key)
        .header(PROXY_HEADER, client)
        .send()
        .await
        .unwrap()
}

/// Checks a `429` problem document of type `rate-limited`; returns its `Retry-After` seconds.
async fn assert_rate_limited(answer: reqwest::Response, context: &str) -> u64 {
    assert_eq!(answer.status(), 429, "{context}");
    let retry_after: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        answer.headers()["content-type"],
        "application/problem+json",
        "{context}"
    );
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:deploy-gate:problem:rate-limited",
        "{context}: {problem}"
    );
    assert_eq!(problem["status"], 429, "{context}");
    retry_after
}

/// Checks a `401` problem document of type `unauthorized`.
async fn assert_unauthorized(answer: reqwest::Response, context: &str) {
    assert_eq!(answer.status(), 401, "{context}");
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:deploy-gate:problem:unauthorized",
        "{context}: {problem}"
    );
}

/// Sends `request` until it answers `429` (at most `most` times) and returns that answer.
async fn until_limited<F, Fut>(most: usize, mut request: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for _ in 0..most {
        let answer = request().await;
        if answer.status() == 429 {
            return answer;
        }
        assert_eq!(answer.status(), 401, "a guess answers 401 until limited");
    }
    panic!("no 429 after {most} requests");
}

#[tokio::test]
async fn a_client_limited_on_approval_gets_in_again_once_retry_after_has_passed() {
    // 60 a minute: one token a second, so Retry-After is 1 s.
    let app = app_behind_proxy(|s| s.rate_limit_approval = Some(60)).await;
    let limited = until_limited(600, || guess_token(&app, "203.0.113.7")).await;
    let retry_after = assert_rate_limited(limited, "approval").await;
    assert_eq!(retry_after, 1);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let again = guess_token(&app, "203.0.113.7").await;
    assert_eq!(again.status(), 401, "served again (and the guess refused)");
}

#[tokio::test]
async fn the_approval_limit_counts_each_client_apart() {
    let app = app_behind_proxy(|s| s.rate_limit_approval = Some(1)).await;
    assert_eq!(guess_token(&app, "203.0.113.7").await.status(), 401);
    let limited = guess_token(&app, "203.0.113.7").await;
    let retry_after = assert_rate_limited(limited, "the guesser").await;
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // The rightmost address of the proxy header (the one the proxy saw) names the client.
    let other = guess_token(&app, "203.0.113.7, 198.51.100.9").await;
    assert_eq!(other.status(), 401, "another client is not limited");
    let limited = guess_token(&app, "203.0.113.7").await;
    assert_rate_limited(limited, "the guesser, still").await;
}

#[tokio::test]
async fn failed_hook_authentications_lock_the_client_out_of_hooks_board_and_release() {
    let app = app_behind_proxy(|s| s.rate_limit_auth_failures = Some(2)).await;
    let guesser = "203.0.113.7";
    for _ in 0..2 {
        assert_unauthorized(hook(&app, guesser, "wrong-key").await, "wrong hook key").await;
    }
    let locked = hook(&app, guesser, "wrong-key").await;
    let retry_after = assert_rate_limited(locked, "hook with a wrong key").await;
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_rate_limited(board(&app, guesser, "wrong-key").await, "board").await;
    let release = |key: &'static str| {
        app.client
            .post(format!("{}/release", app.address))
            .bearer_auth(key)
            .header(PROXY_HEADER, guesser)
            .json(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"}))
            .send()
    };
    assert_rate_limited(release("wrong-key").await.unwrap(), "release").await;

    // The right key from the same address is never refused by the failure limit.
    let delivered = hook(&app, guesser, KEY).await;
    assert_eq!(delivered.status(), 200, "the right key's hook is delivered");
    assert_eq!(board(&app, guesser, KEY).await.status(), 200);
    assert_eq!(release(KEY).await.unwrap().status(), 202);

    let other = hook(&app, "198.51.100.9", KEY).await;
    assert_eq!(other.status(), 200, "another client's hook is delivered");
    assert_eq!(other.json::<Value>().await.unwrap()["outcome"], "ignored");
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .header(PROXY_HEADER, guesser)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the probes are not guarded");
}

#[tokio::test]
async fn failed_board_authentications_lock_the_client_out_of_the_board_and_the_hooks() {
    let app = app_behind_proxy(|s| s.rate_limit_auth_failures = Some(2)).await;
    let guesser = "203.0.113.7";
    for _ in 0..2 {
        assert_unauthorized(board(&app, guesser, "wrong-key").await, "wrong board key").await;
    }
    let locked = board(&app, guesser, "wrong-key").await;
    let retry_after = assert_rate_limited(locked, "board with a wrong key").await;
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_rate_limited(hook(&app, guesser, "wrong-key").await, "hook").await;
    assert_eq!(board(&app, guesser, KEY).await.status(), 200, "right key");

    let other = board(&app, "198.51.100.9", KEY).await;
    assert_eq!(other.status(), 200, "another client sees the board");
}

#[tokio::test]
async fn a_client_locked_out_after_failed_authentications_gets_in_once_retry_after_has_passed() {
    // 60 a minute: one failure forgiven a second, so Retry-After is 1 s.
    let app = app_behind_proxy(|s| s.rate_limit_auth_failures = Some(60)).await;
    let guesser = "203.0.113.7";
    let limited = until_limited(600, || board(&app, guesser, "wrong-key")).await;
    let retry_after = assert_rate_limited(limited, "board").await;
    assert_eq!(retry_after, 1);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let again = board(&app, guesser, "wrong-key").await;
    assert_unauthorized(again, "served again (and the wrong key refused)").await;
}

#[tokio::test]
async fn rotating_the_leftmost_forwarded_address_does_not_escape_the_approval_limit() {
    let app = app_behind_proxy(|s| s.rate_limit_approval = Some(2)).await;
    // The proxy appends the address it saw; everything left of it is the caller's own.
    for spoofed in ["10.0.0.1", "10.0.0.2"] {
        let answer = guess_token(&app, &format!("{spoofed}, 203.0.113.7")).await;
        assert_eq!(answer.status(), 401, "{spoofed}");
    }
    let limited = guess_token(&app, "10.0.0.3, 203.0.113.7").await;
    assert_rate_limited(limited, "a third spoofed address, same client").await;
}

#[tokio::test]
async fn naming_a_victims_address_in_the_forwarded_header_does_not_lock_the_victim_out() {
    let app = app_behind_proxy(|s| s.rate_limit_auth_failures = Some(2)).await;
    let victim = "198.51.100.9";
    let framing = format!("{victim}, 203.0.113.66");
    for _ in 0..2 {
        assert_unauthorized(board(&app, &framing, "wrong-key").await, "attacker").await;
    }
    assert_rate_limited(board(&app, &framing, "wrong-key").await, "attacker").await;
    let answer = board(&app, victim, KEY).await;
    assert_eq!(answer.status(), 200, "the victim is not locked out");
}

#[tokio::test]
async fn with_two_trusted_proxies_the_second_address_from_the_right_names_the_client() {
    let app = app_behind_proxy(|s| {
        s.rate_limit_approval = Some(1);
        s.trusted_proxy_hops = Some(2);
    })
    .await;
    // client -> proxy 192.0.2.10 -> proxy -> deploy-gate: "…, client, 192.0.2.10".
    let first = guess_token(&app, "10.0.0.1, 203.0.113.7, 192.0.2.10").await;
    assert_eq!(first.status(), 401);
    let again = guess_token(&app, "10.0.0.2, 203.0.113.7, 192.0.2.10").await;
    assert_rate_limited(again, "the same client behind two proxies").await;
    let other = guess_token(&app, "203.0.113.8, 192.0.2.10").await;
    assert_eq!(
        other.status(),
        401,
        "another client behind the same proxies"
    );
}
