// Per-client rate limits on the approval endpoints and on failed authentication.

use serde_json::json;

use crate::helpers::{TestSmtp, assert_problem, spawn_app_with};

#[tokio::test]
async fn a_client_hammering_the_approval_endpoint_gets_429_with_retry_after() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.rate_limit_approval = Some(5);
    })
    .await;
    let url = format!("{}/approval?token=guess", app.address);
    for _ in 0..5 {
        let answer = app.client.get(&url).send().await.unwrap();
        assert_problem(answer, 401, "token-invalid").await;
    }
    let limited = app.client.get(&url).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    assert_problem(limited, 429, "rate-limited").await;

    // Other endpoints, and other clients, are not affected.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn failed_authentications_lock_out_wrong_keys_but_never_the_right_one() {
    const RIGHT: &str = "right-key-0123456789abcdef";
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(deploy_gate::secret::Secret::new(RIGHT));
        s.rate_limit_auth_failures = Some(3);
        s.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    let release = json!({"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx"});
    let post = |key: &'static str, client: &'static str| {
        app.client
            .post(format!("{}/release", app.address))
            .bearer_auth(key)
            .header("X-Forwarded-For", client)
            .json(&release)
            .send()
    };
    for _ in 0..3 {
        let refused = post("wrong-key", "203.0.113.7").await.unwrap();
        assert_problem(refused, 401, "unauthorized").await;
    }
    // A guesser cannot go on guessing.
    let locked = post("another-wrong-key", "203.0.113.7").await.unwrap();
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429, "rate-limited").await;
    let bare = app
        .client
        .get(format!("{}/release/Devx/1", app.address))
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_problem(bare, 429, "rate-limited").await;
    // The pipeline sharing the guesser's address, with the right key, is served.
    let pipeline = post(RIGHT, "203.0.113.7").await.unwrap();
    assert_eq!(pipeline.status(), 202);
    let answer = app
        .client
        .get(format!("{}/release/Devx/1", app.address))
        .basic_auth("azure-devops", Some(RIGHT))
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
