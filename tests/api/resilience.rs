//! Concurrency, slow and failing dependencies, restarts and crashes: nothing is lost or sent twice.

use std::time::Duration;

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::{HANG_GUARD, TestSmtp, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_hundred_concurrent_creates_of_one_release_send_each_approver_exactly_one_email() {
    let app = spawn_app().await;
    let body = json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                      "Approvers": ["ana@example.com", "bo@example.com"]});
    let answers = futures_util::future::join_all((0..100).map(|_| app.post_release(&body))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        99,
        "{statuses:?}"
    );

    app.smtp.wait_for(2).await;
    app.wait_until_idle().await;
    let mut to: Vec<String> = app
        .smtp
        .received()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(to, ["ana@example.com", "bo@example.com"]);
}

/// An approvers API that answers `{"approvers": [approver]}` only once `open`
/// turns true; `asked` counts the requests it got, so far.
struct HeldApproversApi {
    url: String,
    asked: tokio::sync::watch::Receiver<usize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl HeldApproversApi {
    /// Starts the API on a loopback port, held.
    async fn start(approver: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/approvers", listener.local_addr().unwrap());
        let (count, asked) = tokio::sync::watch::channel(0);
        let (open, opened) = tokio::sync::watch::channel(false);
        let body = json!({ "approvers": [approver] }).to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut opened = opened.clone();
                let body = body.clone();
                count.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    let mut request = [0; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = opened.wait_for(|open| *open).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, asked, open }
    }

    /// Waits until the API was asked `count` times (a hang guard only).
    async fn wait_until_asked(&mut self, count: usize) {
        tokio::time::timeout(HANG_GUARD, self.asked.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("the approvers API was never asked {count} times"))
            .unwrap();
    }
}

#[tokio::test]
async fn a_slow_approvers_api_does_not_hold_up_post_release() {
    let mut api = HeldApproversApi::start("ana@example.com").await;
    let url = api.url.clone();
    let app = spawn_app_with(TestSmtp::running(), |s| s.approvers_url = Some(url)).await;

    // The API answers nothing until after POST /release answered: the answer
    // cannot have waited for it (a wait would hang until the hang guard).
    let answer = tokio::time::timeout(
        HANG_GUARD,
        app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"})),
    )
    .await
    .expect("POST /release answered while the approvers API was held");
    assert_eq!(answer.status(), 202);
    api.wait_until_asked(1).await;
    assert_eq!(
        app.release_status("Devx", "1").await["status"],
        "pending",
        "while the approvers API is still held"
    );

    api.open.send(true).unwrap();
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    app.wait_until_idle().await;
    assert_eq!(*api.asked.borrow(), 1, "the approvers API was asked once");
}

#[tokio::test]
async fn a_failing_approvers_api_is_retried_shown_on_the_release_and_recovers() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"approvers": ["ana@example.com"]})),
        )
        .with_priority(2)
        .expect(1)
        .mount(&api)
        .await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers_url = Some(url);
        s.retry_base = Some(Duration::from_millis(300));
    })
    .await;

    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"}))
        .await;
    let status = app
        .wait_for_release("Devx", "1", |s| {
            s["problems"][0]["code"] == "approvers_failing"
        })
        .await;
    assert!(
        status["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{status}"
    );

    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    app.wait_until_idle().await;
    assert_eq!(app.release_status("Devx", "1").await["problems"], json!([]));
}

#[tokio::test]
async fn while_the_smtp_server_is_down_the_email_waits_and_is_sent_once_when_it_is_back() {
    let app = spawn_app_with(TestSmtp::reserve(), |_| {}).await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": "ana@example.com"}))
        .await;
    let status = app
        .wait_for_release("Devx", "1", |s| s["problems"][0]["code"] == "email_failing")
        .await;
    assert!(
        status["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("ana@example.com")
    );
    assert_eq!(status["approvers"][0]["notified"], false);

    let mut app = app;
    app.smtp.start();
    app.smtp.wait_for(1).await;
    // Idle: nothing due and nothing waiting to retry, so no second email can follow.
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 1, "sent exactly once");
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["approvers"][0]["notified"], true);
    assert_eq!(status["problems"], json!([]));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_the_flow_loses_nothing() {
    let app = spawn_app_with(TestSmtp::reserve(), |_| {}).await;
    app.post_release(
        &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                             "Approvers": ["ana@example.com", "bo@example.com"]}),
    )
    .await;
    app.drain_jobs().await;
    assert!(app.smtp.received().is_empty());

    let mut app = app.restart().await;
    app.smtp.start();
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(
        app.decide(&mails[0].token(), "approve", Some("first"))
            .await
            .status(),
        200
    );

    let app = app.restart().await;
    let status = app.release_status("Devx", "1").await;
    assert_eq!(
        status["approvals"]["approved"], 1,
        "the decision survived the restart"
    );
    assert_eq!(
        app.decide(&mails[1].token(), "approve", None)
            .await
            .status(),
        200
    );
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 2);
}

/// Accepts SMTP connections on `port` and never answers, so a sender hangs mid-delivery.
async fn smtp_tarpit(port: u16, connected: tokio::sync::mpsc::Sender<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut held = Vec::new();
    loop {
        let (socket, _) = listener.accept().await.unwrap();
        held.push(socket);
        let _ = connected.try_send(());
    }
}

#[tokio::test]
async fn a_crash_in_the_middle_of_sending_loses_no_email_and_sends_it_once() {
    let smtp = TestSmtp::reserve();
    let (connected, mut first_connection) = tokio::sync::mpsc::channel(8);
    let tarpit = tokio::spawn(smtp_tarpit(smtp.port, connected));
    let app = spawn_app_with(smtp, |s| s.job_lease = Some(Duration::from_millis(600))).await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": "ana@example.com"}))
        .await;
    tokio::time::timeout(HANG_GUARD, first_connection.recv())
        .await
        .expect("waited for the worker to connect to the SMTP server")
        .expect("the worker is in the middle of sending");

    tarpit.abort();
    let _ = tarpit.await;
    let mut app = app.crash_and_restart().await;
    app.smtp.start();
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 1);
    assert_eq!(
        app.release_status("Devx", "1").await["approvers"][0]["notified"],
        true
    );
}

#[tokio::test]
async fn an_undecided_release_expires_at_its_deadline_and_its_links_stop_working() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(3600))
    })
    .await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": "ana@example.com"}))
        .await;
    let token = app.smtp.wait_for(1).await[0].token();
    assert_eq!(app.release_status("Devx", "1").await["status"], "pending");
    app.advance_clock(Duration::from_secs(3600 + 1)).await;

    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "expired");
    assert_eq!(status["approved"], false);
    let refused = app.decide(&token, "approve", None).await;
    assert_eq!(refused.status(), 401);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:token-expired");
    assert_eq!(app.release_status("Devx", "1").await["status"], "expired");
}

#[tokio::test]
async fn with_a_minimum_of_one_the_first_approval_decides_and_later_decisions_are_refused() {
    let app = spawn_app_with(TestSmtp::running(), |s| s.required_approvals = Some(1)).await;
    app.post_release(
        &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                             "Approvers": ["ana@example.com", "bo@example.com"]}),
    )
    .await;
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(
        app.decide(&mails[0].token(), "approve", None)
            .await
            .status(),
        200
    );
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "approved");
    assert_eq!(status["approvals"]["required"], 1);
    let late = app.decide(&mails[1].token(), "reject", None).await;
    assert_eq!(late.status(), 409);
    let problem: serde_json::Value = late.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:release-final");
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
}

#[tokio::test]
async fn an_approvers_api_answering_garbage_is_retried_and_shown_never_guessed_around() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway says hi</html>"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"approvers": ["ana@example.com"]})),
        )
        .with_priority(2)
        .mount(&api)
        .await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers_url = Some(url);
        // The static list must not stand in for an approvers API that answers nonsense.
        s.approvers = Some("fallback@example.com".into());
        s.retry_base = Some(Duration::from_millis(300));
    })
    .await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "2", "TeamProject": "Devx"}))
        .await;
    let status = app
        .wait_for_release("Devx", "2", |s| {
            s["problems"][0]["code"] == "approvers_failing"
        })
        .await;
    assert_eq!(status["status"], "pending");
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    app.wait_until_idle().await;
    let mails = app.smtp.received();
    assert_eq!(mails.len(), 1, "nobody else was mailed");
    assert_eq!(app.release_status("Devx", "2").await["problems"], json!([]));
}

#[tokio::test]
async fn an_smtp_server_refusing_one_recipient_holds_up_only_that_email() {
    let smtp = TestSmtp::running();
    smtp.refuse("bo@example.com");
    let app = spawn_app_with(smtp, |s| {
        s.retry_base = Some(Duration::from_millis(200));
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "R", "ReleaseId": "3", "TeamProject": "Devx",
        "Approvers": ["ana@example.com", "bo@example.com", "cy@example.com"]
    }))
    .await;
    let status = app
        .wait_for_release("Devx", "3", |s| {
            s["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["code"] == "email_failing"))
        })
        .await;
    let problem = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "email_failing")
        .unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("bo@example.com"),
        "{problem}"
    );
    let mut delivered: Vec<String> = app
        .smtp
        .wait_for(2)
        .await
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["ana@example.com", "cy@example.com"]);

    // The mailbox comes back: bo's email goes out once, and the problem clears.
    app.smtp.accept("bo@example.com");
    let mails = app.smtp.wait_for(3).await;
    assert_eq!(
        mails.iter().filter(|m| m.to == ["bo@example.com"]).count(),
        1
    );
    app.wait_until_idle().await;
    assert_eq!(app.release_status("Devx", "3").await["problems"], json!([]));
}

#[tokio::test]
async fn a_briefly_locked_sqlite_database_delays_requests_and_jobs_without_losing_them() {
    use sqlx::{Connection, SqliteConnection};

    let app = spawn_app().await;
    let Some(url) = app
        .settings
        .database_url
        .as_ref()
        .map(|u| u.expose().to_owned())
        .filter(|u| u.starts_with("sqlite:"))
    else {
        eprintln!("SKIPPED: SQLite locking, on the PostgreSQL run");
        return;
    };
    // Another process holds the write lock for a second.
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let release = json!({"ReleaseName": "R", "ReleaseId": "9", "TeamProject": "Devx",
                         "Approvers": ["ana@example.com"]});
    // Set just before the lock is let go: an answer that did not wait for it comes first.
    let released = std::sync::atomic::AtomicBool::new(false);
    let (held_up, ()) = tokio::join!(
        async {
            let created = app.post_release(&release).await;
            (created, released.load(std::sync::atomic::Ordering::SeqCst))
        },
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            released.store(true, std::sync::atomic::Ordering::SeqCst);
            sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        }
    );
    let (created, answered_after_the_lock) = held_up;
    assert_eq!(created.status(), 202, "the request waited for the lock");
    assert!(
        answered_after_the_lock,
        "it was held up until the lock went"
    );
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 1);
}
