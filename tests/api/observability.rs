// What operators see: Prometheus metrics that move with the flow, and request ids.

use std::time::Duration;

use serde_json::json;
use wiremock::ResponseTemplate;

use crate::{
    fakes::{
        azure_events_answering, post_in_callback_mode, sample, scrape, task_completed,
        wait_for_task_completions,
    },
    helpers::{spawn_app, spawn_app_stopped_at},
};

#[tokio::test]
async fn metrics_count_requests_releases_emails_jobs_and_decisions() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, "deploy_gate_releases_created_total"), 0.0);

    let release = json!({
        "ReleaseName": "R", "ReleaseId": "5", "TeamProject": "Devx",
        "Approvers": ["ana@example.com", "bo@example.com"]
    });
    assert_eq!(app.post_release(&release).await.status(), 202);
    assert_eq!(app.post_release(&release).await.status(), 200);
    let mails = app.smtp.wait_for(2).await;
    app.wait_until_idle().await;
    for mail in &mails {
        assert_eq!(
            app.decide(&mail.token(), "approve", None).await.status(),
            200
        );
    }
    app.get_release("Devx", "404").await;

    let after = scrape(&app).await;
    let expectations = [
        ("deploy_gate_releases_created_total", 1.0),
        (
            r#"deploy_gate_releases_decided_total{status="approved"}"#,
            1.0,
        ),
        (r#"deploy_gate_emails_total{outcome="sent"}"#, 2.0),
        (
            r#"deploy_gate_jobs_total{kind="send_approval_email",outcome="succeeded"}"#,
            2.0,
        ),
        (
            r#"deploy_gate_http_requests_total{route="createRelease",method="POST",status="202"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_http_requests_total{route="createRelease",method="POST",status="200"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_http_requests_total{route="decideApproval",method="POST",status="200"}"#,
            2.0,
        ),
        (
            r#"deploy_gate_http_requests_total{route="getRelease",method="GET",status="404"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_http_request_duration_seconds_count{route="createRelease"}"#,
            2.0,
        ),
    ];
    for (series, expected) in expectations {
        assert_eq!(sample(&after, series), expected, "{series} in\n{after}");
    }
    assert!(after.contains("deploy_gate_jobs_queued "), "{after}");
    // Tokens and addresses never become labels.
    assert!(!after.contains("ana@example.com") && !after.contains(&mails[0].token()));
}

#[tokio::test]
async fn a_release_reaching_its_deadline_undecided_is_counted_once_as_decided_expired() {
    let deadline = Duration::from_secs(3600);
    let app = spawn_app_stopped_at(chrono::Utc::now(), |s| {
        s.approval_deadline = Some(deadline);
    })
    .await;
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    // Callback mode, so that a job watches the deadline and reports the expiry.
    post_in_callback_mode(&app, &azure, "8", "ana@example.com").await;
    app.smtp.wait_for(1).await;

    app.advance_clock(deadline).await;
    app.drain_jobs().await;
    let posted = wait_for_task_completions(&azure, 1).await;
    let event: serde_json::Value = posted[0].body_json().unwrap();
    let expected = task_completed("failed");
    assert_eq!(
        (&event["name"], &event["result"]),
        (&expected["name"], &expected["result"])
    );
    app.advance_clock(deadline).await;
    app.drain_jobs().await;

    let after = scrape(&app).await;
    for (series, expected) in [
        (
            r#"deploy_gate_releases_decided_total{status="expired"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_count{status="expired"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_sum{status="expired"}"#,
            3600.0,
        ),
    ] {
        assert_eq!(sample(&after, series), expected, "{series} in\n{after}");
    }
}

#[tokio::test]
async fn request_ids_are_taken_from_the_caller_or_made_up_and_always_answered() {
    let app = spawn_app().await;
    let url = format!("{}/healthz", app.address);
    let given = app
        .client
        .get(&url)
        .header("X-Request-Id", "pipeline-run-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "pipeline-run-42");

    let made_up = app.client.get(&url).send().await.unwrap();
    let id = made_up.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    for unusable in ["has spaces in it", &"x".repeat(200)] {
        let replaced = app
            .client
            .get(&url)
            .header("X-Request-Id", unusable)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{unusable:?} became {id}"
        );
    }

    // Problems carry it too.
    let problem = app
        .client
        .get(format!("{}/release/Devx/missing", app.address))
        .header("X-Request-Id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(problem.status(), 404);
    assert_eq!(problem.headers()["x-request-id"], "trace-me");
}

#[tokio::test]
async fn requests_with_many_made_up_methods_leave_metrics_small_and_count_as_other() {
    let app = spawn_app().await;
    let before = scrape(&app).await.len();
    for i in 0..200 {
        // Each a distinct, 1,000-character extension method.
        let method = format!("X{i:04}{}", "M".repeat(995));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for path in ["/release/Devx/1", &format!("/made/up/path/{i}")] {
            let answer = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_client_error(), "{}", answer.status());
        }
    }
    let after = scrape(&app).await;
    assert!(
        after.len() < before + 4_000,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(after.contains(r#"method="other""#), "{after}");
    assert!(!after.contains("/made/up/path"), "{after}");
}
