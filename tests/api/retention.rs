// Retention (`DEPLOY_GATE_RETENTION`): rounds decided longer ago than it are
// deleted with every row that belongs to them, a batch at a time; younger
// rounds, pending rounds of any age, and everything when it is unset, stay.
// The app's clock is moved forward past the retention; the pruning that the
// background task runs every hour is run here by the test.

use std::time::Duration;

use deploy_gate::{flow::PRUNE_BATCH, settings::Settings};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wiremock::ResponseTemplate;

use crate::{
    fakes::{azure_events_answering, post_in_callback_mode, sample, scrape},
    helpers::{TestApp, TestSmtp, spawn_app_with, wait_until},
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Every table that holds a round's rows.
const TABLES: [&str; 6] = [
    "release",
    "approval",
    "job",
    "callback",
    "callback_line",
    "azure_approval",
];

async fn app_keeping(retention: Option<Duration>, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.retention = retention;
        adjust(s);
    })
    .await
}

/// Creates release `Devx/{id}` named `R{id}` for `approver`; returns the token of the email.
async fn create(app: &TestApp, id: &str, approver: &str) -> String {
    let body = json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx",
                      "Approvers": [approver]});
    assert_eq!(app.post_release(&body).await.status(), 202);
    email_to(app, approver).await
}

/// The token of the email `approver` received.
async fn email_to(app: &TestApp, approver: &str) -> String {
    let what = format!("the email to {approver}");
    let mail = wait_until(&what, || async {
        app.smtp.received().into_iter().find(|m| m.to == [approver])
    })
    .await;
    mail.token()
}

async fn status_code(app: &TestApp, id: &str) -> u16 {
    app.get_release("Devx", id).await.status().as_u16()
}

#[tokio::test]
async fn rounds_decided_before_the_retention_are_deleted_with_all_their_rows() {
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    let app = app_keeping(Some(400 * DAY), |_| {}).await;
    post_in_callback_mode(&app, &azure, "1", "ana@example.com").await;
    let approve = email_to(&app, "ana@example.com").await;
    assert_eq!(app.decide(&approve, "approve", None).await.status(), 200);
    let reject = create(&app, "2", "bo@example.com").await;
    assert_eq!(app.decide(&reject, "reject", None).await.status(), 200);
    create(&app, "3", "cy@example.com").await;
    let cancel = app
        .client
        .post(format!("{}/release/Devx/3/cancel", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    create(&app, "4", "di@example.com").await; // expires undecided
    app.wait_until_idle().await;
    for table in ["release", "approval", "callback", "callback_line"] {
        assert!(app.rows_in(table).await > 0, "{table} is empty already");
    }

    app.advance_clock(399 * DAY).await;
    app.drain_jobs().await;
    assert_eq!(app.prune_batch().await, 0, "decided less than 400 days ago");
    // Release 4 expired two days (the default deadline) after the others' decisions.
    app.advance_clock(2 * DAY).await;
    assert_eq!(app.prune_batch().await, 3);
    app.advance_clock(2 * DAY).await;
    assert_eq!(app.prune_batch().await, 1);

    for id in ["1", "2", "3", "4"] {
        assert_eq!(status_code(&app, id).await, 404, "release {id}");
    }
    for table in TABLES {
        assert_eq!(app.rows_in(table).await, 0, "rows left in {table}");
    }
    let metrics = scrape(&app).await;
    assert_eq!(sample(&metrics, "deploy_gate_releases_pruned_total"), 4.0);
    assert_eq!(sample(&metrics, "deploy_gate_approvals_pruned_total"), 4.0);
}

#[tokio::test]
async fn young_decided_rounds_and_old_pending_rounds_are_kept() {
    let app = app_keeping(Some(400 * DAY), |s| {
        s.approval_deadline = Some(1000 * DAY);
    })
    .await;
    let old = create(&app, "1", "ana@example.com").await;
    assert_eq!(app.decide(&old, "approve", None).await.status(), 200);
    let pending = create(&app, "2", "bo@example.com").await;
    app.advance_clock(401 * DAY).await;
    let young = create(&app, "3", "cy@example.com").await;
    assert_eq!(app.decide(&young, "approve", None).await.status(), 200);

    assert_eq!(app.prune_batch().await, 1);

    assert_eq!(status_code(&app, "1").await, 404);
    assert_eq!(app.release_status("Devx", "2").await["status"], "pending");
    assert_eq!(app.release_status("Devx", "3").await["status"], "approved");
    assert_eq!(app.rows_in("approval").await, 2);
    // The pending round's link still decides it.
    assert_eq!(app.decide(&pending, "approve", None).await.status(), 200);
    assert_eq!(app.release_status("Devx", "2").await["status"], "approved");
}

#[tokio::test]
async fn without_a_retention_every_round_is_kept() {
    let app = app_keeping(None, |_| {}).await;
    let approve = create(&app, "1", "ana@example.com").await;
    assert_eq!(app.decide(&approve, "approve", None).await.status(), 200);
    create(&app, "2", "bo@example.com").await; // expires undecided
    app.advance_clock(3650 * DAY).await;
    app.drain_jobs().await;

    assert_eq!(app.prune_batch().await, 0);

    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
    assert_eq!(app.release_status("Devx", "2").await["status"], "expired");
    assert_eq!(app.rows_in("approval").await, 2);
}

#[tokio::test]
async fn a_backlog_is_deleted_a_batch_at_a_time() {
    let app = app_keeping(Some(400 * DAY), |_| {}).await;
    let backlog = PRUNE_BATCH + PRUNE_BATCH / 2;
    for id in 1..=backlog {
        let body = json!({"ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx",
                          "Approvers": ["ana@example.com"]});
        assert_eq!(app.post_release(&body).await.status(), 202);
    }
    app.drain_jobs().await;
    // They expire two days (the default deadline) after they were created.
    app.advance_clock(403 * DAY).await;
    app.drain_jobs().await;

    assert_eq!(app.prune_batch().await, PRUNE_BATCH as u64);
    assert_eq!(app.rows_in("release").await, (backlog - PRUNE_BATCH) as i64);
    let rest = app
        .retention
        .prune(&CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(rest.releases, (backlog - PRUNE_BATCH) as u64);
    assert_eq!(app.prune_batch().await, 0);

    for table in TABLES {
        assert_eq!(app.rows_in(table).await, 0, "rows left in {table}");
    }
    assert_eq!(status_code(&app, "1").await, 404);
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, "deploy_gate_releases_pruned_total"),
        backlog as f64
    );
}
