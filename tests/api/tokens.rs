//! Approval links: GET only looks, POST decides, and only a genuine, current token
//! of this service decides, and only its own approval of its own release.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{ReceivedMail, TEST_SECRET, TestApp, TestSmtp, spawn_app, spawn_app_with};

/// Creates release `Devx/{id}` for `approvers` and returns their mails, in `approvers` order.
async fn release_with_mails(app: &TestApp, id: &str, approvers: &[&str]) -> Vec<ReceivedMail> {
    let before = app.smtp.received().len();
    let created = app
        .post_release(&json!({
            "ReleaseName": format!("Release {id}"), "ReleaseId": id, "TeamProject": "Devx",
            "Approvers": approvers,
        }))
        .await;
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(before + approvers.len()).await;
    approvers
        .iter()
        .map(|who| {
            mails[before..]
                .iter()
                .find(|m| m.to == [who.to_string()])
                .unwrap_or_else(|| panic!("no mail to {who}"))
                .clone()
        })
        .collect()
}

/// The claims of a token, read without verifying it.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn mint(claims: &Value, algorithm: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A validly signed token with `claims` (HS256, the test apps' secret).
fn forge(claims: &Value) -> String {
    mint(claims, Algorithm::HS256, TEST_SECRET.as_bytes())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn view(app: &TestApp, token: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/approval", app.address))
        .query(&[("token", token)]);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

async fn decide_by_form(
    app: &TestApp,
    fields: &[(&str, &str)],
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/approval", app.address))
        .form(fields);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

/// Checks a problem document with `status` and `kind` (the last part of its type).
async fn problem(response: reqwest::Response, status: u16, kind: &str, context: &str) -> Value {
    assert_eq!(response.status(), status, "{context}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{context}: {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{context}: {body}");
    assert_eq!(
        body["type"],
        format!("urn:deploy-gate:problem:{kind}"),
        "{context}: {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty())
            && body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: {body}"
    );
    body
}

/// Checks an HTML error page with `status` that shows `title`.
async fn error_page(response: reqwest::Response, status: u16, title: &str, context: &str) {
    assert_eq!(response.status(), status, "{context}");
    assert_page_headers(&response, context);
    let html = response.text().await.unwrap();
    assert!(html.contains(title), "{context}: {html}");
    assert!(
        !html.contains("<form"),
        "{context}: an error page offers no decision"
    );
}

fn assert_page_headers(response: &reqwest::Response, context: &str) {
    let headers = response.headers();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{context}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{context}: {csp}"
    );
    assert!(
        !csp.contains("script-src"),
        "{context}: pages run no script: {csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff", "{context}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{context}");
    assert_eq!(headers["cache-control"], "no-store", "{context}");
}

/// Asserts that nobody of release `Devx/{id}` decided anything.
async fn assert_undecided(app: &TestApp, id: &str) {
    let status = app.release_status("Devx", id).await;
    assert_eq!(status["status"], "pending", "{status}");
    assert_eq!(status["approvals"]["approved"], 0, "{status}");
    assert_eq!(status["approvals"]["rejected"], 0, "{status}");
    for approver in status["approvers"].as_array().unwrap() {
        assert_eq!(approver["decision"], "pending", "{status}");
        assert_eq!(approver["decided_at"], Value::Null, "{status}");
    }
}

#[tokio::test]
async fn opening_the_link_never_changes_anything() {
    let app = spawn_app().await;
    let mail = &release_with_mails(&app, "1", &["ana@example.com"]).await[0];
    let token = mail.token();

    for accept in [
        None,
        Some("application/json"),
        Some("*/*"),
        Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        Some("text/html"),
    ] {
        let response = view(&app, &token, accept).await;
        assert_eq!(response.status(), 200, "{accept:?}");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        if accept.is_some_and(|a| a.starts_with("text/html")) {
            assert_page_headers(&response, "the approval page");
            let html = response.text().await.unwrap();
            assert!(html.contains("Release 1") && html.contains("ana@example.com"));
            assert!(html.contains(r#"<form method="post""#), "{html}");
            assert!(html.contains(r#"value="approve""#) && html.contains(r#"value="reject""#));
        } else {
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{accept:?}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["approver"], "ana@example.com");
            assert_eq!(body["decision"], "pending");
            assert_eq!(body["status"], "pending");
            assert_eq!(body["can_decide"], true);
            assert_eq!(body["release"]["ReleaseName"], "Release 1");
            assert_eq!(body["release"]["ReleaseId"], "1");
        }
    }
    // The link exactly as mailed, as a scanner would fetch it.
    let prefetched = app.client.get(mail.link()).send().await.unwrap();
    assert_eq!(prefetched.status(), 200);
    // HEAD is served wherever GET is (the `Allow` of /approval): GET's status, no body.
    let head = app.client.head(mail.link()).send().await.unwrap();
    assert_eq!(head.status(), 200, "HEAD of the mailed link");
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");

    assert_undecided(&app, "1").await;
}

#[tokio::test]
async fn a_decision_posted_as_a_form_or_as_json_is_recorded_with_who_when_and_why() {
    let app = spawn_app().await;
    let mails = release_with_mails(&app, "1", &["ana@example.com", "bo@example.com"]).await;
    let (ana, bo) = (mails[0].token(), mails[1].token());

    // The page's form, as a browser posts it.
    let page = decide_by_form(
        &app,
        &[
            ("token", &ana),
            ("decision", "approve"),
            ("comment", "  looks good  "),
        ],
        Some("text/html"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page, "the result page");
    let html = page.text().await.unwrap();
    assert!(html.contains("approved"), "{html}");
    assert!(
        !html.contains("<form"),
        "no second decision is offered: {html}"
    );

    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "pending");
    assert_eq!(status["approvals"]["approved"], 1);
    let entry = &status["approvers"][0];
    assert_eq!(entry["email"], "ana@example.com");
    assert_eq!(entry["decision"], "approved");
    assert_eq!(entry["comment"], "looks good");
    assert!(entry["decided_at"].is_string(), "{status}");

    // An API client's JSON.
    let decided = app.decide(&bo, "approve", None).await;
    assert_eq!(decided.status(), 200);
    let body: Value = decided.json().await.unwrap();
    assert_eq!(body["approver"], "bo@example.com");
    assert_eq!(body["decision"], "approved");
    assert_eq!(body["comment"], Value::Null);
    assert_eq!(body["can_decide"], false);
    assert_eq!(body["status"], "approved");
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "approved");
    assert_eq!(status["approved"], true);
    assert!(status["decided_at"].is_string(), "{status}");

    // The link still opens, read-only.
    let view = view(&app, &ana, None).await;
    let body: Value = view.json().await.unwrap();
    assert_eq!(body["decision"], "approved");
    assert_eq!(body["comment"], "looks good");
    assert_eq!(body["can_decide"], false);
}

#[tokio::test]
async fn one_rejection_rejects_the_release_and_closes_it_to_other_decisions() {
    let app = spawn_app().await;
    let mails = release_with_mails(&app, "1", &["ana@example.com", "bo@example.com"]).await;
    let (ana, bo) = (mails[0].token(), mails[1].token());

    let rejected = decide_by_form(
        &app,
        &[
            ("token", &ana),
            ("decision", "reject"),
            ("comment", "not on a Friday"),
        ],
        None,
    )
    .await;
    assert_eq!(rejected.status(), 200);
    assert_eq!(
        rejected.json::<Value>().await.unwrap()["status"],
        "rejected"
    );
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["approved"], false);
    assert_eq!(status["approvals"]["rejected"], 1);
    assert_eq!(status["approvers"][0]["comment"], "not on a Friday");

    let late = app.decide(&bo, "approve", None).await;
    problem(late, 409, "release-final", "deciding a rejected release").await;
    let late_page = decide_by_form(
        &app,
        &[("token", &bo), ("decision", "approve")],
        Some("text/html"),
    )
    .await;
    error_page(
        late_page,
        409,
        "The release is already decided",
        "as a browser",
    )
    .await;

    let again = app.decide(&ana, "reject", None).await;
    assert_eq!(again.status(), 200, "repeating the rejection is harmless");
    let changed = app.decide(&ana, "approve", None).await;
    problem(changed, 409, "already-decided", "changing a rejection").await;

    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["approvers"][1]["decision"], "pending");
    assert_eq!(status["approvers"][0]["decision"], "rejected");
}

#[tokio::test]
async fn the_same_decision_twice_is_harmless_and_the_contrary_one_is_a_conflict() {
    let app = spawn_app().await;
    let mails = release_with_mails(&app, "1", &["ana@example.com", "bo@example.com"]).await;
    let ana = mails[0].token();

    let first = app.decide(&ana, "approve", Some("first")).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    // A minute later by the app's clock, so a second timestamp would differ.
    app.advance_clock(Duration::from_secs(60)).await;
    let second = app.decide(&ana, "approve", Some("second")).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        second["decided_at"], first["decided_at"],
        "the first decision stands"
    );
    assert_eq!(second["comment"], "first");

    let contrary = app.decide(&ana, "reject", None).await;
    let body = problem(contrary, 409, "already-decided", "approve then reject").await;
    assert!(
        body["detail"].as_str().unwrap().contains("approve"),
        "{body}"
    );

    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["status"], "pending");
    assert_eq!(
        status["approvals"],
        json!({"required": 2, "approved": 1, "rejected": 0, "pending": 1})
    );
    assert_eq!(status["approvers"][0]["comment"], "first");
}

#[tokio::test]
async fn bad_decision_bodies_are_400_and_record_nothing() {
    let app = spawn_app().await;
    let ana = release_with_mails(&app, "1", &["ana@example.com"]).await[0].token();
    let url = format!("{}/approval", app.address);

    for body in [
        json!({"token": ana, "decision": "maybe"}),
        json!({"token": ana, "decision": "APPROVE!"}),
        json!({"token": ana}),
        json!({"decision": "approve"}),
        json!({"token": ana, "decision": "approve", "comment": "x".repeat(2001)}),
        json!({"token": ana, "decision": "approve", "comment": "a\u{0}b"}),
        json!([ana, "approve"]),
    ] {
        let response = app.client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
    }
    // A number is no token: refused as the wrong type, not turned into the text "5".
    let number = app
        .client
        .post(&url)
        .json(&json!({"token": 5, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    problem(number, 400, "invalid-request", "a numeric token").await;
    let form = decide_by_form(&app, &[("token", &ana), ("decision", "maybe")], None).await;
    assert_eq!(form.status(), 400);
    let text = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body(format!("token={ana}&decision=approve"))
        .send()
        .await
        .unwrap();
    problem(text, 415, "unsupported-media-type", "text/plain").await;
    let missing = app.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 400, "GET without a token");

    assert_undecided(&app, "1").await;
    assert_eq!(app.decide(&ana, "approve", None).await.status(), 200);
}

#[tokio::test]
async fn tampered_foreign_expired_and_garbage_tokens_are_refused_and_decide_nothing() {
    let app = spawn_app().await;
    let genuine = release_with_mails(&app, "1", &["ana@example.com"]).await[0].token();
    let claims = claims_of(&genuine);
    assert_eq!(claims["sub"], "ana@example.com");
    assert_eq!(claims["project"], "Devx");
    assert_eq!(claims["release"], "1");
    let [header, payload, signature] = genuine.split('.').collect::<Vec<_>>()[..] else {
        panic!("a JWT has three parts: {genuine}");
    };

    let with = |key: &str, value: Value| {
        let mut changed = claims.clone();
        changed[key] = value;
        changed
    };
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let changed_payload = format!(
        "{header}.{}.{signature}",
        encode(&with("sub", json!("mallory@example.com")))
    );
    let later_expiry = format!(
        "{header}.{}.{signature}",
        encode(&with(
            "exp",
            json!(claims["exp"].as_i64().unwrap() + 86_400)
        ))
    );
    let mut sig: Vec<char> = signature.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let changed_signature = format!("{header}.{payload}.{}", sig.into_iter().collect::<String>());
    let alg_none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let alg_none_signed = format!(
        "{}.{payload}.{signature}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let mut no_expiry = claims.clone();
    no_expiry.as_object_mut().unwrap().remove("exp");

    let invalid = "token-invalid";
    let cases: Vec<(&str, String, &str)> = vec![
        ("payload changed", changed_payload, invalid),
        ("expiry extended", later_expiry, invalid),
        ("signature changed", changed_signature, invalid),
        ("signature removed", format!("{header}.{payload}."), invalid),
        (
            "another secret",
            mint(&claims, Algorithm::HS256, b"another-secret-0123456789"),
            invalid,
        ),
        (
            "another algorithm",
            mint(&claims, Algorithm::HS512, TEST_SECRET.as_bytes()),
            invalid,
        ),
        ("alg none", alg_none, invalid),
        ("alg none with the old signature", alg_none_signed, invalid),
        (
            "another audience",
            forge(&with("aud", json!("someone-else"))),
            invalid,
        ),
        (
            "another issuer",
            forge(&with("iss", json!("not-deploy-gate"))),
            invalid,
        ),
        ("no expiry", forge(&no_expiry), invalid),
        (
            "expired",
            forge(&with("exp", json!(now() - 60))),
            "token-expired",
        ),
        (
            "an unknown approval",
            forge(&with("jti", json!(uuid::Uuid::new_v4()))),
            "token-unknown",
        ),
        (
            "an approval id that is not a UUID",
            forge(&with("jti", json!("1"))),
            invalid,
        ),
        ("garbage", "not-a-token".to_owned(), invalid),
        ("three dots", "a.b.c".to_owned(), invalid),
        ("empty", String::new(), invalid),
        ("huge", "A".repeat(20_000), invalid),
        ("the header alone", header.to_owned(), invalid),
    ];
    for (label, token, kind) in &cases {
        problem(
            view(&app, token, None).await,
            401,
            kind,
            &format!("GET, {label}"),
        )
        .await;
        problem(
            app.decide(token, "approve", None).await,
            401,
            kind,
            &format!("POST JSON, {label}"),
        )
        .await;
        problem(
            decide_by_form(&app, &[("token", token), ("decision", "reject")], None).await,
            401,
            kind,
            &format!("POST form, {label}"),
        )
        .await;
        let title = if *kind == "token-expired" {
            "The approval link has expired"
        } else {
            "The approval link is not valid"
        };
        error_page(
            view(&app, token, Some("text/html")).await,
            401,
            title,
            &format!("page, {label}"),
        )
        .await;
        error_page(
            decide_by_form(
                &app,
                &[("token", token), ("decision", "approve")],
                Some("text/html"),
            )
            .await,
            401,
            title,
            &format!("form from a browser, {label}"),
        )
        .await;
    }
    assert_undecided(&app, "1").await;

    // Re-signing the genuine claims with the right secret reproduces a working token,
    // so the refusals above are about what was changed.
    assert_eq!(view(&app, &forge(&claims), None).await.status(), 200);
    assert_eq!(app.decide(&genuine, "approve", None).await.status(), 200);
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
}

#[tokio::test]
async fn a_token_cannot_decide_another_release_or_another_approval() {
    let app = spawn_app().await;
    let one = release_with_mails(&app, "1", &["ana@example.com", "bo@example.com"]).await;
    let two = release_with_mails(&app, "2", &["ana@example.com"]).await;
    let ana_one = claims_of(&one[0].token());
    let ana_two = claims_of(&two[0].token());
    assert_ne!(ana_one["jti"], ana_two["jti"]);

    let with = |base: &Value, changes: Value| {
        let mut claims = base.clone();
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        forge(&claims)
    };
    let forged = [
        (
            "release 1's approval, claiming release 2",
            with(&ana_one, json!({"release": "2"})),
        ),
        (
            "release 2's approval, claiming release 1",
            with(&ana_two, json!({"release": "1"})),
        ),
        (
            "release 1's approval, another project",
            with(&ana_one, json!({"project": "Other"})),
        ),
        (
            "release 1's approval, another stage",
            with(&ana_one, json!({"stage": "prod"})),
        ),
        (
            "release 2's claims, release 1's approval",
            with(&ana_two, json!({"jti": ana_one["jti"]})),
        ),
        (
            "ana's approval, claiming to be bo",
            with(&ana_one, json!({"sub": "bo@example.com"})),
        ),
        (
            "ana's approval, another case",
            with(&ana_one, json!({"sub": "ANA@example.com"})),
        ),
    ];
    for (label, token) in &forged {
        problem(
            view(&app, token, None).await,
            403,
            "token-mismatch",
            &format!("GET, {label}"),
        )
        .await;
        for decision in ["approve", "reject"] {
            problem(
                app.decide(token, decision, None).await,
                403,
                "token-mismatch",
                &format!("{decision}, {label}"),
            )
            .await;
        }
        error_page(
            view(&app, token, Some("text/html")).await,
            403,
            "The token does not match its approval",
            label,
        )
        .await;
    }
    assert_undecided(&app, "1").await;
    assert_undecided(&app, "2").await;

    // Each genuine token decides its own approval only.
    assert_eq!(
        app.decide(&two[0].token(), "reject", None).await.status(),
        200
    );
    assert_eq!(app.release_status("Devx", "2").await["status"], "rejected");
    assert_undecided(&app, "1").await;
}

#[tokio::test]
async fn an_expired_link_shows_a_page_that_says_so() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(3600))
    })
    .await;
    let token = release_with_mails(&app, "1", &["ana@example.com"]).await[0].token();
    assert_eq!(view(&app, &token, None).await.status(), 200);
    app.advance_clock(Duration::from_secs(3600 + 1)).await;

    error_page(
        view(&app, &token, Some("text/html")).await,
        401,
        "The approval link has expired",
        "an expired link",
    )
    .await;
    problem(
        app.decide(&token, "reject", None).await,
        401,
        "token-expired",
        "deciding late",
    )
    .await;
    assert_eq!(app.release_status("Devx", "1").await["status"], "expired");
}

#[tokio::test]
async fn a_hostile_release_name_is_shown_as_text() {
    let app = spawn_app().await;
    let name = "<script>alert(1)</script>";
    let stage = r#""><img src=x onerror=alert(2)>"#;
    let created = app
        .post_release(&json!({
            "ReleaseName": name, "ReleaseId": "1", "TeamProject": "Devx", "Stage": stage,
            "Approvers": ["ana@example.com"]
        }))
        .await;
    assert_eq!(created.status(), 202);
    let mail = &app.smtp.wait_for(1).await[0];
    assert!(
        !mail.html().contains("<script>") && !mail.html().contains("<img"),
        "{}",
        mail.html()
    );
    let token = mail.token();

    let page = view(&app, &token, Some("text/html")).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page, "the approval page");
    let html = page.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(!html.contains("onerror=alert(2)>"), "{html}");

    let json = view(&app, &token, None).await;
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
    assert!(
        json.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = json.json().await.unwrap();
    assert_eq!(
        body["release"]["ReleaseName"], name,
        "JSON carries the name as data"
    );

    let result = decide_by_form(
        &app,
        &[
            ("token", &token),
            ("decision", "approve"),
            ("comment", "</td><script>alert(3)</script>"),
        ],
        Some("text/html"),
    )
    .await;
    assert_eq!(result.status(), 200);
    assert_page_headers(&result, "the result page");
    let html = result.text().await.unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
}
