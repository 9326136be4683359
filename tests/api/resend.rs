//! Re-sending an approver's email (`POST /release/{p}/{id}/approvers/{email}/resend`):
//! guarded by the API key like `/release`, refused when cross-site, and `409` with its
//! own problem `type` for a decided release and for an approver who already decided.

use deploy_gate::secret::Secret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestSmtp, spawn_app, spawn_app_with};

const KEY: &str = "operator-key-0123456789ab";

/// Creates release `R{id}` of project Devx with `approvers` and waits for their emails.
async fn created(app: &TestApp, id: &str, approvers: &[&str]) -> Vec<crate::helpers::ReceivedMail> {
    let body = json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx",
                      "Approvers": approvers});
    let answer = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let mails = app.smtp.wait_for(approvers.len()).await;
    app.wait_until_idle().await;
    mails
}

/// A re-send request for `email` on release `id`, not sent yet.
fn resend(app: &TestApp, id: &str, email: &str) -> reqwest::RequestBuilder {
    app.client.post(format!(
        "{}/release/Devx/{id}/approvers/{email}/resend",
        app.address
    ))
}

/// Checks that `answer` is a problem document with this status and `type`, and returns it.
async fn assert_problem(answer: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(answer.status(), status);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

/// The emails received so far, once the queue is empty.
async fn mail_count(app: &TestApp) -> usize {
    app.drain_jobs().await;
    app.wait_until_idle().await;
    app.smtp.received().len()
}

#[tokio::test]
async fn with_an_api_key_a_resend_needs_it_and_the_right_key_sends_a_new_link() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(KEY));
    })
    .await;
    let first = created(&app, "1", &["ana@example.com"]).await.remove(0);

    let missing = resend(&app, "1", "ana@example.com").send().await.unwrap();
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_problem(missing, 401, "urn:deploy-gate:problem:unauthorized").await;
    let wrong = resend(&app, "1", "ana@example.com")
        .bearer_auth("not-the-key")
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 401, "urn:deploy-gate:problem:unauthorized").await;
    assert_eq!(mail_count(&app).await, 1, "a refused re-send sends nothing");

    let queued = resend(&app, "1", "ana@example.com")
        .basic_auth("anyone", Some(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(mails[1].to, ["ana@example.com"]);
    assert_ne!(mails[1].token(), first.token(), "a new link");
    let superseded = app.decide(&first.token(), "approve", None).await;
    assert_problem(superseded, 401, "urn:deploy-gate:problem:token-superseded").await;
}

#[tokio::test]
async fn a_resend_to_an_approver_who_already_decided_is_409_approver_decided() {
    let app = spawn_app().await;
    let mails = created(&app, "2", &["ana@example.com", "bo@example.com"]).await;
    let ana = mails.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    assert_eq!(
        app.decide(&ana.token(), "approve", None).await.status(),
        200
    );
    assert_eq!(app.release_status("Devx", "2").await["status"], "pending");

    let answer = resend(&app, "2", "ana@example.com").send().await.unwrap();
    assert_problem(answer, 409, "urn:deploy-gate:problem:approver-decided").await;
    assert_eq!(mail_count(&app).await, 2, "nothing re-sent");
    // The undecided approver of the same release can still get a new link.
    let bo = resend(&app, "2", "bo@example.com").send().await.unwrap();
    assert_eq!(bo.status(), 202);
    assert_eq!(app.smtp.wait_for(3).await[2].to, ["bo@example.com"]);
}

#[tokio::test]
async fn a_resend_on_a_decided_or_cancelled_release_is_409_release_final() {
    let app = spawn_app().await;
    let mails = created(&app, "3", &["ana@example.com", "bo@example.com"]).await;
    let ana = mails.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    assert_eq!(app.decide(&ana.token(), "reject", None).await.status(), 200);
    // Bo never decided, but the release is rejected: nothing to re-send to him.
    let answer = resend(&app, "3", "bo@example.com").send().await.unwrap();
    let body = assert_problem(answer, 409, "urn:deploy-gate:problem:release-final").await;
    assert!(
        body["detail"].as_str().unwrap().contains("rejected"),
        "{body}"
    );

    created(&app, "4", &["cy@example.com"]).await;
    let cancel = app
        .client
        .post(format!("{}/release/Devx/4/cancel", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let answer = resend(&app, "4", "cy@example.com").send().await.unwrap();
    let body = assert_problem(answer, 409, "urn:deploy-gate:problem:release-final").await;
    assert!(
        body["detail"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
    assert_eq!(mail_count(&app).await, 3, "nothing re-sent");
}

#[tokio::test]
async fn a_cross_site_resend_or_cancel_is_refused_even_with_the_key_the_browser_keeps() {
    // A browser signed in to the board sends the Basic credentials on its own, also
    // when another site's page posts a form here; it marks such a request cross-site.
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(KEY));
    })
    .await;
    created(&app, "5", &["ana@example.com"]).await;
    let cancel = || {
        app.client
            .post(format!("{}/release/Devx/5/cancel", app.address))
            .basic_auth("anyone", Some(KEY))
    };
    let from_elsewhere = [
        vec![
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Origin", "https://evil.example")],
        vec![("Sec-Fetch-Site", "same-site")],
    ];
    for headers in &from_elsewhere {
        let mut request = resend(&app, "5", "ana@example.com").basic_auth("anyone", Some(KEY));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.unwrap();
        assert_problem(answer, 403, "urn:deploy-gate:problem:cross-site-request").await;
        let mut request = cancel();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.unwrap();
        assert_problem(answer, 403, "urn:deploy-gate:problem:cross-site-request").await;
    }
    assert_eq!(mail_count(&app).await, 1, "nothing re-sent");
    let status = app
        .client
        .get(format!("{}/release/Devx/5", app.address))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["status"], "pending", "nothing cancelled: {status}");

    // The same site (a page of this service) and scripts, which send neither header, get in.
    let host = app.address.trim_start_matches("http://").to_owned();
    let same_origin = resend(&app, "5", "ana@example.com")
        .basic_auth("anyone", Some(KEY))
        .header("Origin", format!("http://{host}"))
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 202);
    let script = resend(&app, "5", "ana@example.com")
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 202);
    let cancelled = cancel()
        .header("Origin", format!("http://{host}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
}
