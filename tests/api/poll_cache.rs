//! Repeated polls of a release are answered from the poll cache while nothing
//! changes; these tests poll first, so that the cache holds the answer, and
//! then change the release in each way that must show at the next poll.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    BACKEND, Backend, ReceivedMail, TestApp, TestSmtp, spawn_app, spawn_app_with, wait_until,
};

fn release(approvers: &[&str]) -> Value {
    json!({"ReleaseName": "R7", "ReleaseId": "7", "TeamProject": "Devx", "Approvers": approvers})
}

/// Creates the release with `approvers`, waits for their emails and for the
/// worker to finish, so that nothing is written while the tests poll.
async fn created(app: &TestApp, approvers: &[&str]) -> Vec<ReceivedMail> {
    assert_eq!(app.post_release(&release(approvers)).await.status(), 202);
    let mails = app.smtp.wait_for(approvers.len()).await;
    app.wait_until_idle().await;
    mails
}

/// Polls the release both ways, twice, and checks that all four answers agree.
async fn polled(app: &TestApp, approvers: &[&str]) -> Value {
    let mut answers = Vec::new();
    for _ in 0..2 {
        let got = app.get_release("Devx", "7").await;
        assert_eq!(got.status(), 200);
        assert_eq!(
            got.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        answers.push(got.json::<Value>().await.unwrap());
        let posted = app.post_release(&release(approvers)).await;
        assert_eq!(posted.status(), 200);
        answers.push(posted.json::<Value>().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    answers.remove(0)
}

/// The status code of `GET /release/Devx/7?failsafe=true`.
async fn failsafe_status(app: &TestApp) -> u16 {
    let url = format!("{}/release/Devx/7?failsafe=true", app.address);
    app.client.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_decision_shows_at_the_next_poll_after_polls_that_were_answered_before_it() {
    let approvers = ["ana@example.com", "bo@example.com"];
    let app = spawn_app().await;
    let mails = created(&app, &approvers).await;

    let before = polled(&app, &approvers).await;
    assert_eq!(before["approvals"]["approved"], 0, "{before}");
    assert_eq!(
        app.decide(&mails[0].token(), "approve", None)
            .await
            .status(),
        200
    );
    let one = polled(&app, &approvers).await;
    assert_eq!(one["approvals"]["approved"], 1, "{one}");
    assert_eq!(one["status"], "pending");

    app.decide(&mails[1].token(), "approve", None).await;
    let both = polled(&app, &approvers).await;
    assert_eq!(both["status"], "approved", "{both}");
    assert_eq!(failsafe_status(&app).await, 200);
}

#[tokio::test]
async fn a_decision_made_through_another_instance_shows_at_the_next_poll() {
    let approvers = ["ana@example.com"];
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    let mail = &created(&a, &approvers).await[0];
    b.wait_until_idle().await;

    assert_eq!(polled(&a, &approvers).await["status"], "pending");
    assert_eq!(b.decide(&mail.token(), "reject", None).await.status(), 200);
    match BACKEND {
        // Both share the WAL index, which b's commit moved before it answered.
        Backend::Sqlite => {
            let seen = polled(&a, &approvers).await;
            assert_eq!(seen["status"], "rejected", "{seen}");
        }
        // a learns of b's commit from PostgreSQL's notification, which may
        // still be on its way when b has answered, even between two of the
        // polls that `polled` compares: wait for one poll to see it first.
        Backend::Postgres => {
            wait_until("a to hear of the rejection made through b", || async {
                let got = a.get_release("Devx", "7").await;
                let status = got.json::<Value>().await.unwrap()["status"].clone();
                (status == "rejected").then_some(())
            })
            .await;
            let seen = polled(&a, &approvers).await;
            assert_eq!(seen["status"], "rejected", "{seen}");
        }
    }
    assert_eq!(failsafe_status(&a).await, 403);
}

#[tokio::test]
async fn a_pending_release_polled_before_its_deadline_is_expired_after_it_with_nothing_written() {
    // Idle workers look for due jobs once an hour, so the expiry job does not
    // run: only the clock moves between the polls.
    let approvers = ["ana@example.com"];
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.poll_interval = Some(Duration::from_secs(3600));
    })
    .await;
    created(&app, &approvers).await;
    assert_eq!(polled(&app, &approvers).await["status"], "pending");

    app.clock.advance(Duration::from_secs(49 * 3600));
    let expired = polled(&app, &approvers).await;
    assert_eq!(expired["status"], "expired", "{expired}");
}

#[tokio::test]
async fn an_operator_cancellation_shows_at_the_next_poll() {
    let approvers = ["ana@example.com"];
    let app = spawn_app().await;
    created(&app, &approvers).await;
    assert_eq!(polled(&app, &approvers).await["status"], "pending");

    let cancelled = app
        .client
        .post(format!(
            "{}/release/Devx/7/cancel?reason=wrong%20build",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200, "{:?}", cancelled.text().await);
    let seen = polled(&app, &approvers).await;
    assert_eq!(seen["status"], "rejected", "{seen}");
    assert_eq!(seen["cancelled"]["reason"], "wrong build");
}
