//! The fail-safe form (`?failsafe=true`) of `POST /release` and `GET /release/{p}/{id}`:
//! only an approved release answers `200`; pending `423`, rejected `403`, expired `410`,
//! each with the same status body (not a problem document), so that a gate without
//! success criteria cannot pass by accident.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestSmtp, spawn_app_with};

/// The release every test here gates on, with its approvers.
fn release(id: &str, approvers: &[&str]) -> Value {
    json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx",
           "Approvers": approvers})
}

/// A test app whose releases expire one hour after they are created.
async fn app_with_one_hour_deadline() -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(3600));
    })
    .await
}

/// Asks both fail-safe forms about release `id` and checks that both answer
/// `status` with a JSON status body whose `status` is `expected`.
async fn both_forms_answer(app: &TestApp, id: &str, approvers: &[&str], code: u16, expected: &str) {
    let got = app
        .client
        .get(format!("{}/release/Devx/{id}?failsafe=true", app.address))
        .send()
        .await
        .unwrap();
    let posted = app
        .client
        .post(format!("{}/release?failsafe=true", app.address))
        .json(&release(id, approvers))
        .send()
        .await
        .unwrap();
    for (form, answer) in [("GET", got), ("POST", posted)] {
        assert_eq!(answer.status(), code, "{form} ?failsafe=true of R{id}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/json; charset=utf-8",
            "{form}: the fail-safe answers carry the status body, not a problem document"
        );
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["status"], expected, "{form}: {body}");
        assert_eq!(body["ReleaseId"], id, "{form}: {body}");
    }
}

#[tokio::test]
async fn a_release_created_by_the_failsafe_post_answers_423_and_is_stored_and_notified() {
    let app = app_with_one_hour_deadline().await;
    let created = app
        .client
        .post(format!("{}/release?failsafe=true", app.address))
        .json(&release("1", &["ana@example.com"]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 423, "a new release is not approved yet");
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    // The same request again is a poll of the stored release: still 423.
    both_forms_answer(&app, "1", &["ana@example.com"], 423, "pending").await;
    let plain = app.release_status("Devx", "1").await;
    assert_eq!(
        plain["status"], "pending",
        "the plain form still answers 200"
    );
}

#[tokio::test]
async fn the_failsafe_forms_answer_423_while_pending_and_200_once_approved() {
    let app = app_with_one_hour_deadline().await;
    let approvers = ["ana@example.com", "bo@example.com"];
    assert_eq!(
        app.post_release(&release("2", &approvers)).await.status(),
        202
    );
    let mails = app.smtp.wait_for(2).await;
    both_forms_answer(&app, "2", &approvers, 423, "pending").await;

    assert_eq!(
        app.decide(&mails[0].token(), "approve", None)
            .await
            .status(),
        200
    );
    both_forms_answer(&app, "2", &approvers, 423, "pending").await;
    assert_eq!(
        app.decide(&mails[1].token(), "approve", None)
            .await
            .status(),
        200
    );
    both_forms_answer(&app, "2", &approvers, 200, "approved").await;
}

#[tokio::test]
async fn the_failsafe_forms_answer_403_for_a_rejected_release() {
    let app = app_with_one_hour_deadline().await;
    let approvers = ["ana@example.com", "bo@example.com"];
    assert_eq!(
        app.post_release(&release("3", &approvers)).await.status(),
        202
    );
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(
        app.decide(&mails[0].token(), "approve", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.decide(&mails[1].token(), "reject", None).await.status(),
        200
    );
    both_forms_answer(&app, "3", &approvers, 403, "rejected").await;
}

#[tokio::test]
async fn the_failsafe_forms_answer_410_once_the_deadline_passed_undecided() {
    let app = app_with_one_hour_deadline().await;
    let approvers = ["ana@example.com"];
    assert_eq!(
        app.post_release(&release("4", &approvers)).await.status(),
        202
    );
    app.smtp.wait_for(1).await;
    both_forms_answer(&app, "4", &approvers, 423, "pending").await;

    app.advance_clock(Duration::from_secs(2 * 3600)).await;
    both_forms_answer(&app, "4", &approvers, 410, "expired").await;
    let plain = app.release_status("Devx", "4").await;
    assert_eq!(
        plain["status"], "expired",
        "the plain form still answers 200"
    );
}

#[tokio::test]
async fn the_failsafe_forms_answer_403_for_a_cancelled_release() {
    let app = app_with_one_hour_deadline().await;
    let approvers = ["ana@example.com"];
    assert_eq!(
        app.post_release(&release("5", &approvers)).await.status(),
        202
    );
    app.smtp.wait_for(1).await;
    let cancelled = app
        .client
        .post(format!("{}/release/Devx/5/cancel", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    both_forms_answer(&app, "5", &approvers, 403, "rejected").await;
}
