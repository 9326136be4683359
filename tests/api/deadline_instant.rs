//! The exact deadline instant. A release is "expired when its deadline passes
//! undecided": the policy says `expired` once `now >= deadline`, the board's SQL
//! pre-filter `deadline <= now`, the poll cache keeps a pending answer while
//! `now < deadline`, the expiry job is due at `run_at <= now` with `run_at` the
//! deadline, and decisions count while `decided_at <= deadline`. With the app's
//! clock stopped, these tests put "now" one millisecond (the stored precision)
//! before the deadline, exactly on it and one after, and check that the status
//! body, the fail-safe form, the board's filters, the expiry job (the TaskCompleted
//! it posts to Azure DevOps) and the approval link all agree.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, method, path},
};

use crate::{
    fakes::{EVENTS_PATH, accept_progress, callback_headers, post_callback_mode, task_completions},
    helpers::{TestApp, board_ids, get_json, spawn_app_stopped_at},
};

const DEADLINE_AFTER: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_millis(1);

/// A whole second near the real time, where the tests stop the app's clock.
fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// Azure DevOps accepting TaskCompleted events, recording them.
async fn azure() -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(body_partial_json(json!({"name": "TaskCompleted"})))
        .respond_with(ResponseTemplate::new(204))
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    azure
}

/// Creates release 7 of Devx for ana, in callback mode when `azure` is given
/// (so that the deadline is watched by the expiry job); returns ana's token.
async fn create(app: &TestApp, azure: Option<&MockServer>) -> String {
    let body = json!({"ReleaseName": "R7", "ReleaseId": "7", "TeamProject": "Devx",
                      "Approvers": ["ana@example.com"]});
    let answer = match azure {
        Some(azure) => post_callback_mode(app, &body, &callback_headers(azure)).await,
        None => app.post_release(&body).await,
    };
    assert_eq!(answer.status(), 202);
    let token = app.smtp.wait_for(1).await[0].token();
    app.drain_jobs().await;
    token
}

/// The `ReleaseId`s that `GET /releases?status={status}` lists.
async fn listed_ids(app: &TestApp, status: &str) -> Vec<String> {
    let board = get_json(app, &format!("/releases?status={status}")).await;
    board_ids(&board).into_iter().map(str::to_owned).collect()
}

/// The status code of `GET /release/Devx/7?failsafe=true`.
async fn failsafe_status(app: &TestApp) -> u16 {
    let url = format!("{}/release/Devx/7?failsafe=true", app.address);
    app.client.get(url).send().await.unwrap().status().as_u16()
}

/// Checks that the status body, the fail-safe form and the board's filters all say `status`.
async fn everyone_says(app: &TestApp, status: &str, failsafe: u16, context: &str) {
    let body = app.release_status("Devx", "7").await;
    assert_eq!(body["status"], status, "{context}: {body}");
    assert_eq!(failsafe_status(app).await, failsafe, "{context}: fail-safe");
    for filter in ["pending", "approved", "expired"] {
        let expected: Vec<String> = if filter == status {
            vec!["7".into()]
        } else {
            Vec::new()
        };
        assert_eq!(
            listed_ids(app, filter).await,
            expected,
            "{context}: the board's {filter} filter"
        );
    }
}

/// The TaskCompleted events Azure DevOps received, by result, once every due job has run.
async fn task_completed_results(app: &TestApp, azure: &MockServer) -> Vec<String> {
    app.drain_jobs().await;
    app.wait_until_idle().await;
    task_completions(azure)
        .await
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["result"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_release_is_expired_exactly_at_its_deadline_everywhere_and_not_a_millisecond_before() {
    let start = start_time();
    let app = spawn_app_stopped_at(start, |s| s.approval_deadline = Some(DEADLINE_AFTER)).await;
    let azure = azure().await;
    let token = create(&app, Some(&azure)).await;
    let deadline: DateTime<Utc> = app.release_status("Devx", "7").await["deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(deadline, start + TimeDelta::hours(1));

    app.advance_clock(DEADLINE_AFTER - TICK).await;
    everyone_says(&app, "pending", 423, "one tick before the deadline").await;
    assert_eq!(
        task_completed_results(&app, &azure).await,
        Vec::<String>::new(),
        "the expiry job has not fired one tick before the deadline"
    );

    app.advance_clock(TICK).await;
    everyone_says(&app, "expired", 410, "at the deadline").await;
    assert_eq!(
        task_completed_results(&app, &azure).await,
        ["failed"],
        "the expiry job fires at the deadline"
    );
    let late = app.decide(&token, "approve", None).await;
    assert_eq!(late.status(), 401, "a decision at the deadline is too late");
    let problem: Value = late.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:token-expired");

    app.advance_clock(TICK).await;
    everyone_says(&app, "expired", 410, "one tick after the deadline").await;
    assert_eq!(
        task_completed_results(&app, &azure).await,
        ["failed"],
        "told once"
    );
}

#[tokio::test]
async fn a_decision_one_millisecond_before_the_deadline_counts_after_it() {
    let start = start_time();
    let app = spawn_app_stopped_at(start, |s| s.approval_deadline = Some(DEADLINE_AFTER)).await;
    let azure = azure().await;
    let token = create(&app, Some(&azure)).await;

    app.advance_clock(DEADLINE_AFTER - TICK).await;
    assert_eq!(app.decide(&token, "approve", None).await.status(), 200);
    everyone_says(
        &app,
        "approved",
        200,
        "decided one tick before the deadline",
    )
    .await;
    assert_eq!(task_completed_results(&app, &azure).await, ["succeeded"]);

    app.advance_clock(TICK).await;
    everyone_says(&app, "approved", 200, "at the deadline").await;
    app.advance_clock(TICK).await;
    everyone_says(&app, "approved", 200, "one tick after the deadline").await;
    assert_eq!(
        task_completed_results(&app, &azure).await,
        ["succeeded"],
        "the expiry job does not report a decided release again"
    );
}
