//! Refused input at `POST /release` and `GET /release/...`: every refusal is a 4xx
//! `application/problem+json` document that says what is wrong, and stores nothing.

use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{HANG_GUARD, TestApp, TestSmtp, spawn_app, spawn_app_with};

/// Checks a problem document with `status`, and returns it.
async fn problem(response: reqwest::Response, status: u16, context: &str) -> Value {
    assert_eq!(response.status(), status, "{context}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{context}: content type {content_type}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{context}: {body}");
    let kind = body["type"].as_str().unwrap_or_default();
    assert!(
        kind.starts_with("urn:deploy-gate:problem:"),
        "{context}: type {kind}"
    );
    for field in ["title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|t| !t.trim().is_empty()),
            "{context}: no {field} in {body}"
        );
    }
    body
}

/// A 400 problem whose `detail` mentions `needle`.
async fn bad_request(response: reqwest::Response, needle: &str, context: &str) -> Value {
    let body = problem(response, 400, context).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(needle),
        "{context}: the detail should mention {needle:?}: {detail}"
    );
    body
}

/// `POST /release` with a raw body and content type.
async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/release", app.address));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(body).send().await.unwrap()
}

async fn assert_unknown(app: &TestApp, project: &str, id: &str) {
    let response = app.get_release(project, id).await;
    let body = problem(response, 404, &format!("GET /release/{project}/{id}")).await;
    assert_eq!(body["type"], "urn:deploy-gate:problem:not-found");
}

fn valid() -> Value {
    json!({"ReleaseName": "Desafio-CD", "ReleaseId": "1", "TeamProject": "Devx"})
}

/// Sends `request` over a plain TCP connection and returns the status and the whole answer.
async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, String) {
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("waited for the server to answer and close the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

/// A chunked `POST /release` of `body`, in chunks of at most 512 bytes.
fn chunked_post(body: &[u8]) -> Vec<u8> {
    let mut request =
        b"POST /release HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for chunk in body.chunks(512) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// A valid release body of exactly `len` bytes, padded with an unknown field.
fn body_of_len(len: usize, id: &str) -> Vec<u8> {
    let mut body = json!({"ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx", "Pad": ""});
    let base = serde_json::to_vec(&body).unwrap().len();
    body["Pad"] = "x".repeat(len - base).into();
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(bytes.len(), len);
    bytes
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_and_stores_nothing() {
    let app = spawn_app().await;
    let bodies: [(&str, &[u8]); 9] = [
        (
            "truncated",
            br#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx""#,
        ),
        (
            "trailing comma",
            br#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",}"#,
        ),
        ("not JSON", b"ReleaseName=R&ReleaseId=1&TeamProject=Devx"),
        ("empty body", b""),
        (
            "an array",
            br#"[{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"}]"#,
        ),
        ("a string", br#""Devx/1""#),
        ("null", b"null"),
        (
            "invalid UTF-8",
            b"{\"ReleaseName\": \"\xff\xfe\", \"ReleaseId\": \"1\", \"TeamProject\": \"Devx\"}",
        ),
        (
            "a lone surrogate",
            br#"{"ReleaseName": "\ud800", "ReleaseId": "1", "TeamProject": "Devx"}"#,
        ),
    ];
    for (label, body) in bodies {
        let response = post_raw(&app, Some("application/json"), body.to_vec()).await;
        problem(response, 400, label).await;
    }
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let response = post_raw(&app, Some("application/json"), nested).await;
    problem(response, 400, "deeply nested").await;

    assert_unknown(&app, "Devx", "1").await;
    assert_eq!(
        app.post_release(&valid()).await.status(),
        202,
        "a valid body still works"
    );
}

#[tokio::test]
async fn a_json_body_with_a_repeated_key_is_refused_rather_than_read_last_wins() {
    let app = spawn_app().await;
    let bodies: [(&str, &str, &str); 4] = [
        (
            "TeamProject twice",
            r#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Other", "TeamProject": "Devx"}"#,
            "TeamProject",
        ),
        (
            "escaped spelling of the same key",
            r#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Team\u0050roject": "Devx"}"#,
            "TeamProject",
        ),
        (
            "Approvers twice",
            r#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": [], "Approvers": ["me@example.com"]}"#,
            "Approvers",
        ),
        (
            "a repeat in a nested object",
            r#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "x": [{"a": 1, "a": 2}]}"#,
            "`a`",
        ),
    ];
    for (label, body, key) in bodies {
        let response = post_raw(&app, Some("application/json"), body.to_owned()).await;
        let problem = bad_request(response, key, label).await;
        assert_eq!(
            problem["type"], "urn:deploy-gate:problem:invalid-request",
            "{label}"
        );
    }
    assert_unknown(&app, "Devx", "1").await;
    // The same key in two different objects is no repeat.
    let response = post_raw(
        &app,
        Some("application/json"),
        r#"{"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "x": [{"a": 1}, {"a": 2}], "a": 3}"#,
    )
    .await;
    assert_eq!(response.status(), 202);

    // The approval form's JSON body too: a repeated decision is no decision.
    let token = "x";
    let response = app
        .client
        .post(format!("{}/approval", app.address))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"token": "{token}", "decision": "reject", "decision": "approve"}}"#
        ))
        .send()
        .await
        .unwrap();
    bad_request(response, "decision", "POST /approval").await;
}

#[tokio::test]
async fn a_missing_field_is_named_in_the_problem() {
    let app = spawn_app().await;
    for field in ["ReleaseName", "ReleaseId", "TeamProject"] {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        bad_request(
            app.post_release(&body).await,
            &format!("{field}: is required"),
            &format!("without {field}"),
        )
        .await;
    }
    problem(app.post_release(&json!({})).await, 400, "{}").await;
    assert_unknown(&app, "Devx", "1").await;
}

#[tokio::test]
async fn empty_and_whitespace_only_fields_are_refused_as_empty() {
    let app = spawn_app().await;
    for field in ["ReleaseName", "ReleaseId", "TeamProject"] {
        for blank in ["", "   ", " \t "] {
            let mut body = valid();
            body[field] = blank.into();
            let refused = bad_request(
                app.post_release(&body).await,
                &format!("{field}: must not be empty"),
                &format!("{field} = {blank:?}"),
            )
            .await;
            assert_eq!(refused["type"], "urn:deploy-gate:problem:invalid-field");
        }
    }
    assert_unknown(&app, "Devx", "1").await;
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_refused_by_name() {
    let app = spawn_app().await;
    let string = "must be a string";
    let id = "ReleaseId: must be a string or a whole number";
    let approvers = "Approvers: must be a list of email addresses";
    let cases = [
        ("ReleaseName", json!(5), string),
        ("ReleaseName", json!(true), string),
        ("ReleaseName", json!(["R"]), string),
        ("ReleaseName", json!({"name": "R"}), string),
        ("ReleaseName", json!(null), "ReleaseName: is required"),
        ("TeamProject", json!(7), string),
        ("TeamProject", json!(null), "TeamProject: is required"),
        ("ReleaseId", json!(null), "ReleaseId: is required"),
        ("ReleaseId", json!(true), id),
        ("ReleaseId", json!(3.5), id),
        ("ReleaseId", json!(1.0), id),
        ("ReleaseId", json!(1e30), id),
        ("ReleaseId", json!(18_446_744_073_709_551_615_u64), id),
        ("ReleaseId", json!(["1"]), id),
        ("ReleaseId", json!({"id": 1}), id),
        ("Stage", json!(5), "Stage: must be a string"),
        ("Stage", json!(["prod"]), "Stage: must be a string"),
        ("PlanUrl", json!(false), "PlanUrl: must be a string"),
        ("Approvers", json!(5), approvers),
        ("Approvers", json!([1, 2]), approvers),
        ("Approvers", json!(["ana@example.com", null]), approvers),
        ("Approvers", json!({"email": "ana@example.com"}), approvers),
    ];
    for (field, value, why) in cases {
        let mut body = valid();
        body[field] = value.clone();
        let refused = bad_request(
            app.post_release(&body).await,
            why,
            &format!("{field} = {value}"),
        )
        .await;
        assert!(
            refused["detail"].as_str().unwrap().contains(field),
            "{refused}"
        );
    }
    assert_unknown(&app, "Devx", "1").await;
}

#[tokio::test]
async fn release_id_as_text_or_integer_names_the_same_release() {
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": 386, "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    assert_eq!(created.json::<Value>().await.unwrap()["ReleaseId"], "386");
    for same in [json!("386"), json!(" 386 "), json!(386)] {
        let polled = app
            .post_release(&json!({"ReleaseName": "R", "ReleaseId": same, "TeamProject": "Devx"}))
            .await;
        assert_eq!(polled.status(), 200, "ReleaseId {same}");
    }
    // An id is opaque text: a negative number is the same as its text, as Azure would send it.
    let negative = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": -7, "TeamProject": "Devx"}))
        .await;
    assert_eq!(negative.status(), 202);
    assert_eq!(app.release_status("Devx", "-7").await["ReleaseId"], "-7");
}

#[tokio::test]
async fn control_characters_and_overlong_text_are_refused() {
    let app = spawn_app().await;
    let cases = [
        (
            "ReleaseName",
            json!("R\r\nBcc: mallory@example.com"),
            "must not contain control characters",
        ),
        (
            "ReleaseName",
            json!("R\u{0}"),
            "must not contain control characters",
        ),
        (
            "TeamProject",
            json!("Dev\u{7f}x"),
            "must not contain control characters",
        ),
        (
            "Stage",
            json!("pr\nod"),
            "must not contain control characters",
        ),
        (
            "ReleaseName",
            json!("é".repeat(257)),
            "must be at most 256 characters",
        ),
        (
            "TeamProject",
            json!("p".repeat(257)),
            "must be at most 256 characters",
        ),
        (
            "Stage",
            json!("s".repeat(257)),
            "must be at most 256 characters",
        ),
        (
            "ReleaseId",
            json!("9".repeat(129)),
            "must be at most 128 characters",
        ),
    ];
    for (field, value, why) in cases {
        let mut body = valid();
        body[field] = value;
        bad_request(
            app.post_release(&body).await,
            &format!("{field}: {why}"),
            field,
        )
        .await;
    }
    assert_unknown(&app, "Devx", "1").await;

    let mut longest = valid();
    longest["ReleaseName"] = "é".repeat(256).into();
    assert_eq!(
        app.post_release(&longest).await.status(),
        202,
        "256 characters fit"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_or_without_content_length() {
    let limit = 1024;
    let app = spawn_app_with(TestSmtp::running(), |s| s.max_body_bytes = Some(limit)).await;

    let response = post_raw(&app, Some("application/json"), body_of_len(limit + 1, "1")).await;
    let refused = problem(response, 413, "Content-Length over the limit").await;
    assert_eq!(refused["type"], "urn:deploy-gate:problem:body-too-large");
    assert!(
        refused["detail"].as_str().unwrap().contains("1024 bytes"),
        "{refused}"
    );

    let (status, answer) = raw_http(&app, &chunked_post(&body_of_len(4 * limit, "1"))).await;
    assert_eq!(status, 413, "chunked over the limit: {answer}");
    assert!(
        answer
            .to_lowercase()
            .contains("content-type: application/problem+json")
            && answer.contains("urn:deploy-gate:problem:body-too-large"),
        "{answer}"
    );
    assert_unknown(&app, "Devx", "1").await;

    // At the limit, both ways, a body is accepted.
    let response = post_raw(&app, Some("application/json"), body_of_len(limit, "2")).await;
    assert_eq!(response.status(), 202);
    let (status, answer) = raw_http(&app, &chunked_post(&body_of_len(limit, "3"))).await;
    assert_eq!(status, 202, "chunked at the limit: {answer}");
    assert_eq!(app.release_status("Devx", "3").await["status"], "pending");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    let json_text = serde_json::to_string(&valid()).unwrap();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let response = post_raw(&app, content_type, json_text.clone()).await;
        let refused = problem(response, 415, &format!("content type {content_type:?}")).await;
        assert_eq!(
            refused["type"],
            "urn:deploy-gate:problem:unsupported-media-type"
        );
    }
    let form = app
        .client
        .post(format!("{}/release", app.address))
        .form(&[
            ("ReleaseName", "R"),
            ("ReleaseId", "1"),
            ("TeamProject", "Devx"),
        ])
        .send()
        .await
        .unwrap();
    problem(form, 415, "a form").await;
    assert_unknown(&app, "Devx", "1").await;

    let with_charset = post_raw(&app, Some("application/json; charset=utf-8"), json_text).await;
    assert_eq!(with_charset.status(), 202, "a charset parameter is fine");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
            "ReleaseUri": "vstfs:///ReleaseManagement/Release/1", "Reason": "manual",
            "nested": {"a": [1, null, {"b": true}]}, "releaseid": "999"
        }))
        .await;
    assert_eq!(created.status(), 202);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["ReleaseId"], "1");
    assert!(body.get("nested").is_none() && body.get("Reason").is_none());
    assert_unknown(&app, "Devx", "999").await;
}

#[tokio::test]
async fn the_stage_is_part_of_a_release_identity() {
    let app = spawn_app().await;
    let plain = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": "7", "TeamProject": "Devx"}))
        .await;
    assert_eq!(plain.status(), 202);
    assert_eq!(plain.headers()["location"], "/release/Devx/7");

    let staged = app
        .post_release(
            &json!({"ReleaseName": "R", "ReleaseId": "7", "TeamProject": "Devx", "Stage": "prod"}),
        )
        .await;
    assert_eq!(staged.status(), 202, "another stage is another release");
    assert_eq!(staged.headers()["location"], "/release/Devx/7?Stage=prod");
    assert_eq!(staged.json::<Value>().await.unwrap()["Stage"], "prod");

    for (stage, expected) in [
        (json!("prod"), "prod"),
        (json!(" prod "), "prod"),
        (json!(""), ""),
        (json!(null), ""),
    ] {
        let polled = app
            .post_release(&json!({"ReleaseName": "R", "ReleaseId": "7", "TeamProject": "Devx", "Stage": stage}))
            .await;
        assert_eq!(polled.status(), 200, "Stage {stage}");
        assert_eq!(polled.json::<Value>().await.unwrap()["Stage"], expected);
    }

    assert_eq!(app.release_status("Devx", "7").await["Stage"], "");
    let get = |stage: &str| {
        app.client
            .get(format!("{}/release/Devx/7?Stage={stage}", app.address))
            .send()
    };
    let prod = get("prod").await.unwrap();
    assert_eq!(prod.status(), 200);
    assert_eq!(prod.json::<Value>().await.unwrap()["Stage"], "prod");
    problem(get("staging").await.unwrap(), 404, "an unknown stage").await;
}

#[tokio::test]
async fn unknown_releases_and_paths_are_404_problems() {
    let app = spawn_app().await;
    let unknown = problem(app.get_release("Devx", "404").await, 404, "unknown release").await;
    assert!(
        unknown["detail"].as_str().unwrap().contains("Devx/404"),
        "{unknown}"
    );

    for path in [
        "/release/Devx",
        "/release",
        "/nothing-here",
        "/release/Devx/1/extra",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        problem(response, if path == "/release" { 405 } else { 404 }, path).await;
    }
    let delete = app
        .client
        .delete(format!("{}/release", app.address))
        .send()
        .await
        .unwrap();
    problem(delete, 405, "DELETE /release").await;
    let bad_query = app
        .client
        .get(format!("{}/release/Devx/1?failsafe=maybe", app.address))
        .send()
        .await
        .unwrap();
    problem(bad_query, 400, "failsafe=maybe").await;
    let control = app
        .client
        .get(format!("{}/release/Devx/%00", app.address))
        .send()
        .await
        .unwrap();
    problem(control, 400, "a NUL release id").await;
}

#[tokio::test]
async fn with_an_api_key_release_endpoints_require_it_as_bearer_or_basic_password() {
    const KEY: &str = "k3y-0123456789abcdefghijk";
    let app = spawn_app_with(TestSmtp::running(), |s| s.api_key = Some(Secret::new(KEY))).await;
    let url = format!("{}/release", app.address);
    let status_url = format!("{}/release/Devx/1", app.address);

    let refusals = [
        ("no credentials", None),
        (
            "a wrong bearer token",
            Some("Bearer not-the-key".to_owned()),
        ),
        (
            "a bearer token with the key as a prefix",
            Some(format!("Bearer {KEY}x")),
        ),
        ("an empty bearer token", Some("Bearer ".to_owned())),
        ("the key without a scheme", Some(KEY.to_owned())),
        ("another scheme", Some(format!("Token {KEY}"))),
        (
            "basic with a wrong password",
            Some(basic("pipeline", "nope")),
        ),
        ("basic with the key as the user name", Some(basic(KEY, ""))),
        (
            "basic that is not base64",
            Some("Basic !!!not-base64!!!".to_owned()),
        ),
        ("basic without a colon", Some(format!("Basic {}", b64(KEY)))),
    ];
    for (label, authorization) in &refusals {
        let mut request = app.client.post(&url).json(&valid());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let refused = problem(request.send().await.unwrap(), 401, label).await;
        assert_eq!(refused["type"], "urn:deploy-gate:problem:unauthorized");
    }
    let response = app.client.get(&status_url).send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("a 401 names how to authenticate")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(", Basic "),
        "{challenge}"
    );
    problem(response, 401, "GET without credentials").await;
    let hook = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&json!({"eventType": "ms.vss-release.release-created-event"}))
        .send()
        .await
        .unwrap();
    problem(hook, 401, "a service hook without credentials").await;

    let stored = app
        .client
        .get(&status_url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    problem(stored, 404, "nothing was stored by refused requests").await;

    let created = app
        .client
        .post(&url)
        .bearer_auth(KEY)
        .json(&valid())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202, "Bearer");
    let polled = app
        .client
        .post(&url)
        .basic_auth("any-user", Some(KEY))
        .json(&valid())
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200, "Basic with the key as password");
    let fetched = app
        .client
        .get(&status_url)
        .header("authorization", basic("", KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200, "Basic with an empty user name");
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(&format!("{user}:{password}")))
}

#[tokio::test]
async fn invalid_approvers_in_the_request_are_refused_by_name_and_nobody_is_mailed() {
    let app = spawn_app().await;
    let cases = [
        json!(["ana@example.com", "not-an-address"]),
        json!("ana@example.com; not-an-address"),
        json!(["ana@example.com\r\nBcc: not-an-address@example.com"]),
        json!(["ana@example.com", "not-an-address@nowhere"]),
    ];
    for approvers in cases {
        let mut body = valid();
        body["Approvers"] = approvers.clone();
        let refused = bad_request(
            app.post_release(&body).await,
            "not-an-address",
            &approvers.to_string(),
        )
        .await;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .starts_with("Approvers: "),
            "{refused}"
        );
    }
    let mut too_many = valid();
    too_many["Approvers"] = (0..101)
        .map(|i| format!("a{i}@example.com"))
        .collect::<Vec<_>>()
        .into();
    bad_request(
        app.post_release(&too_many).await,
        "at most 100 approvers",
        "101 approvers",
    )
    .await;

    assert_unknown(&app, "Devx", "1").await;
    app.drain_jobs().await;
    app.wait_until_idle().await;
    assert!(
        app.smtp.received().is_empty(),
        "nobody is mailed for a refused release"
    );
}

/// A content type, a body, and the status and problem kind they must get.
type OddInput = (Option<&'static str>, Vec<u8>, (u16, &'static str));

#[tokio::test]
async fn odd_input_never_yields_a_server_error() {
    let app = spawn_app().await;
    // Each with the exact status and problem type it is documented to get:
    // unparseable JSON 400 `invalid-request`, a bad field 400 `invalid-field`,
    // a content type that is not JSON 415 `unsupported-media-type`.
    const MALFORMED: (u16, &str) = (400, "invalid-request");
    const BAD_FIELD: (u16, &str) = (400, "invalid-field");
    const NOT_JSON: (u16, &str) = (415, "unsupported-media-type");
    let odd: Vec<OddInput> =
        vec![
        (Some("application/json"), b"\x00\x01\x02".to_vec(), MALFORMED),
        (
            Some("application/json"),
            b"{\"ReleaseName\": \"R\"".repeat(100),
            MALFORMED,
        ),
        (
            Some("application/json"),
            br#"{"ReleaseName": "R", "ReleaseName": 5, "ReleaseId": 1, "TeamProject": "Devx"}"#
                .to_vec(),
            MALFORMED,
        ),
        (
            Some("application/json"),
            br#"{"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx", "Mode": "callback", "PlanUrl": "ftp://x"}"#
                .to_vec(),
            BAD_FIELD,
        ),
        (
            Some("application/json"),
            br#"{"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx", "Mode": "callback", "AuthToken": "t"}"#
                .to_vec(),
            BAD_FIELD,
        ),
        (
            Some("application/json"),
            br#"{"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx", "Approvers": [null]}"#
                .to_vec(),
            MALFORMED,
        ),
        (Some("application/json; charset=latin1"), b"{}".to_vec(), MALFORMED),
        (Some("application/json"), b"1e999999".to_vec(), MALFORMED),
        (Some("application/json"), b"\xef\xbb\xbf{}".to_vec(), MALFORMED),
        (Some(""), b"{}".to_vec(), NOT_JSON),
        (Some(";;;"), b"{}".to_vec(), NOT_JSON),
    ];
    for (content_type, body, (status, kind)) in odd {
        let label = format!("{content_type:?} {:?}", String::from_utf8_lossy(&body));
        let response = post_raw(&app, content_type, body).await;
        let body = problem(response, status, &label).await;
        assert_eq!(
            body["type"],
            format!("urn:deploy-gate:problem:{kind}"),
            "{label}: {body}"
        );
    }
    let header = app
        .client
        .post(format!("{}/release?mode=callback", app.address))
        .header("PlanUrl", "https://dev.azure.com/contoso/")
        .json(&valid())
        .send()
        .await
        .unwrap();
    bad_request(
        header,
        "missing: ProjectId",
        "a partial callback in headers",
    )
    .await;

    let (status, answer) = raw_http(
        &app,
        b"POST /release HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          PlanUrl: \xff\xfe\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    // The unreadable header is not a callback field; the empty body is what is refused.
    assert_eq!(status, 400, "a non-UTF-8 header: {answer}");
    assert!(
        answer.contains(r#""type":"urn:deploy-gate:problem:invalid-request""#),
        "a non-UTF-8 header: {answer}"
    );
    assert_unknown(&app, "Devx", "1").await;
}

#[tokio::test]
async fn refusals_name_the_field_and_what_it_takes_not_internal_types() {
    let app = spawn_app().await;
    let board = app
        .client
        .get(format!("{}/releases?limit=500", app.address))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(board.status(), 400);
    let problem: Value = board.json().await.unwrap();
    assert_eq!(problem["detail"], "limit: must be at most 100", "{problem}");

    let decided = app.decide("not-a-token", "yes", None).await;
    assert_eq!(decided.status(), 400);
    let problem: Value = decided.json().await.unwrap();
    assert_eq!(
        problem["detail"], "decision: must be `approve` or `reject`",
        "{problem}"
    );

    let created = app
        .post_release(&json!({"releaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"}))
        .await;
    let problem: Value = created.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("case-sensitive") && !detail.contains("ReleaseRequest"),
        "{detail}"
    );
}
