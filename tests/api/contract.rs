//! The service answers as its OpenAPI document says: 405s name the allowed methods, absent
//! values are left out (never `null`), unknown fields are ignored, and text is judged as sent.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Creates release `id` with one approver and returns the token of their emailed link.
async fn release_and_token(app: &TestApp, id: &str) -> String {
    let before = app.smtp.received().len();
    let created = app
        .post_release(&json!({
            "ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx",
            "Approvers": ["ana@example.com"],
        }))
        .await;
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(before + 1).await[before].token()
}

/// Every `null` in `value`, by JSON pointer.
fn nulls(value: &Value, at: &str) -> Vec<String> {
    match value {
        Value::Null => vec![at.to_owned()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| nulls(v, &format!("{at}/{i}")))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(k, v)| nulls(v, &format!("{at}/{k}")))
            .collect(),
        _ => vec![],
    }
}

/// The JSON body of a `200` answer, checked to hold no `null`.
async fn json_without_nulls(response: reqwest::Response, context: &str) -> Value {
    assert_eq!(response.status(), 200, "{context}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(nulls(&body, ""), Vec::<String>::new(), "{context}: {body}");
    body
}

#[tokio::test]
async fn a_method_a_path_does_not_offer_is_a_405_that_names_the_methods_it_does() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        ("TRACE", "/release", "POST"),
        ("DELETE", "/release", "POST"),
        ("GET", "/release", "POST"),
        ("PUT", "/release/Devx/386", "GET, HEAD"),
        ("POST", "/release/Devx/386", "GET, HEAD"),
        ("PATCH", "/approval", "GET, HEAD, POST"),
        ("DELETE", "/hooks/azure-devops", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("OPTIONS", "/readyz", "GET, HEAD"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["type"],
            "urn:deploy-gate:problem:method-not-allowed"
        );
    }
    let head = app
        .client
        .head(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "HEAD is served wherever GET is");
}

#[tokio::test]
async fn values_not_there_yet_are_left_out_rather_than_sent_as_null() {
    let app = spawn_app().await;
    let token = release_and_token(&app, "1").await;

    let pending = json_without_nulls(app.get_release("Devx", "1").await, "pending").await;
    assert!(pending.get("decided_at").is_none());
    assert!(pending["approvers"][0].get("decided_at").is_none());
    assert!(pending["approvers"][0].get("comment").is_none());
    assert_eq!(pending["status"], "pending");
    let view = app
        .client
        .get(format!("{}/approval", app.address))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    let view = json_without_nulls(view, "view before deciding").await;
    assert!(view.get("decided_at").is_none() && view.get("comment").is_none());

    let decided = json_without_nulls(app.decide(&token, "approve", None).await, "decided").await;
    assert!(decided["decided_at"].is_string(), "{decided}");
    assert!(decided.get("comment").is_none(), "no comment was given");
    let approved = json_without_nulls(app.get_release("Devx", "1").await, "approved").await;
    assert_eq!(approved["status"], "approved");
    assert!(approved["decided_at"].is_string());
    assert!(approved["approvers"][0]["decided_at"].is_string());

    let ignored = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&json!({"eventType": "ms.vss-release.deployment-started-event"}))
        .send()
        .await
        .unwrap();
    let ignored = json_without_nulls(ignored, "an ignored hook event").await;
    assert_eq!(ignored["outcome"], "ignored");
    assert!(ignored.get("release").is_none());
}

#[tokio::test]
async fn a_decision_with_unknown_fields_is_taken_as_a_form_or_as_json() {
    let app = spawn_app().await;
    let token = release_and_token(&app, "1").await;
    let form = app
        .client
        .post(format!("{}/approval", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "submit=Approve&token={token}&x=1&x=2&decision=approve&=&%C3%A9=%00&comment="
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "{}", form.text().await.unwrap());

    let token = release_and_token(&app, "2").await;
    let json = app
        .client
        .post(format!("{}/approval", app.address))
        .json(&json!({
            "token": token, "decision": "reject", "comment": null,
            "reason": {"nested": [1, null, true]}, "": [], "token2": 5
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    assert_eq!(app.release_status("Devx", "2").await["status"], "rejected");
}

#[tokio::test]
async fn null_is_the_same_as_an_absent_optional_field() {
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Stage": null,
            "Approvers": null, "PlanUrl": null, "ProjectId": null, "HubName": null,
            "PlanId": null, "JobId": null, "TimelineId": null, "TaskInstanceId": null,
            "AuthToken": null
        }))
        .await;
    assert_eq!(created.status(), 202);
    let hook = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&json!({"eventType": "x", "id": null, "publisherId": null, "resource": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200);
}

#[tokio::test]
async fn text_is_judged_as_sent_the_way_the_published_schema_describes_it() {
    let app = spawn_app().await;
    let valid = || json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx"});
    for (field, value, why) in [
        (
            "ReleaseName",
            json!("\tR"),
            "must not contain control characters",
        ),
        (
            "TeamProject",
            json!("Devx\n"),
            "must not contain control characters",
        ),
        (
            "Stage",
            json!("prod\r\n"),
            "must not contain control characters",
        ),
        (
            "ReleaseName",
            json!(format!("R{}", " ".repeat(256))),
            "must be at most 256 characters",
        ),
        (
            "TimelineId",
            json!("t".repeat(8193)),
            "must be at most 8192 characters",
        ),
    ] {
        let mut body = valid();
        body[field] = value;
        let refused = app.post_release(&body).await;
        assert_eq!(refused.status(), 400, "{field}");
        let problem: Value = refused.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert_eq!(detail, format!("{field}: {why}"), "{field}");
    }
    let spaced = app
        .post_release(&json!({"ReleaseName": " R ", "ReleaseId": " 1 ", "TeamProject": "Devx"}))
        .await;
    assert_eq!(spaced.status(), 202, "surrounding spaces are still trimmed");
    for path in [
        "/release/%09Devx/1",
        "/release/Devx/1%0A",
        "/release/Devx/1?Stage=%0D",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }

    let token = release_and_token(&app, "2").await;
    let comment = format!("ok{}", " ".repeat(1999));
    let refused = app.decide(&token, "approve", Some(&comment)).await;
    assert_eq!(
        refused.status(),
        400,
        "a comment over 2000 characters as sent"
    );
    let decided = app
        .decide(&token, "approve", Some("line one\r\n\tline two"))
        .await;
    assert_eq!(decided.status(), 200, "line breaks and tabs are fine");
}

#[tokio::test]
async fn hook_fields_of_the_wrong_json_type_are_refused() {
    let app = spawn_app().await;
    for event in [
        json!({"eventType": 5}),
        json!({"eventType": true}),
        json!({"eventType": "x", "publisherId": false}),
        json!({"eventType": "x", "id": 17}),
    ] {
        let response = app
            .client
            .post(format!("{}/hooks/azure-devops", app.address))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{event}");
    }
}
