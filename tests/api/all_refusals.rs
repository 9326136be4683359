//! A refused request names every refused field at once, in `detail` and in the problem's
//! `errors` list, so that a caller fixes them all in one round trip.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A 400 problem of `kind`, with its body.
async fn refused(response: reqwest::Response, kind: &str) -> Value {
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:deploy-gate:problem:{kind}"),
        "{body}"
    );
    body
}

/// The `(field, detail)` pairs of a problem's `errors`.
fn errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_owned();
            (text("field"), text("detail"))
        })
        .collect()
}

async fn assert_nothing_stored(app: &TestApp) {
    let response = app.get_release("Devx", "1").await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn an_empty_release_body_names_all_three_required_fields() {
    let app = spawn_app().await;
    let problem = refused(app.post_release(&json!({})).await, "invalid-request").await;
    let hint = |f: &str| format!("is required (field names are case-sensitive: {f})");
    assert_eq!(
        errors(&problem),
        [
            ("ReleaseName".to_owned(), hint("ReleaseName")),
            ("ReleaseId".to_owned(), hint("ReleaseId")),
            ("TeamProject".to_owned(), hint("TeamProject")),
        ]
    );
    assert_eq!(
        problem["detail"],
        format!(
            "ReleaseName: {}; ReleaseId: {}; TeamProject: {}",
            hint("ReleaseName"),
            hint("ReleaseId"),
            hint("TeamProject")
        )
    );
}

#[tokio::test]
async fn every_missing_mistyped_and_invalid_release_field_is_named_in_one_answer() {
    let app = spawn_app().await;
    let body = json!({
        "releaseName": "R",
        "ReleaseId": true,
        "TeamProject": "   ",
        "Stage": "pr\nod",
        "Attempt": "zero",
        "Approvers": ["ana@example.com", "not-an-address"],
        "RequestedFor": 5,
        "DefinitionName": "d".repeat(257),
        "ReleaseUrl": "$(Release.ReleaseWebURL)",
        "Mode": "wait",
        "PlanUrl": "p".repeat(8193),
    });
    let problem = refused(app.post_release(&body).await, "invalid-request").await;
    let found = errors(&problem);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "ReleaseName",
            "ReleaseId",
            "TeamProject",
            "Stage",
            "Attempt",
            "Approvers",
            "RequestedFor",
            "ReleaseUrl",
            "DefinitionName",
            "Mode",
            "PlanUrl"
        ],
        "{problem}"
    );
    let detail_of = |field: &str| &found.iter().find(|(f, _)| f == field).unwrap().1;
    assert!(detail_of("ReleaseName").contains("case-sensitive"));
    assert_eq!(detail_of("ReleaseId"), "must be a string or a whole number");
    assert_eq!(detail_of("TeamProject"), "must not be empty");
    assert_eq!(detail_of("Stage"), "must not contain control characters");
    assert!(detail_of("Attempt").starts_with("must be a whole number from 1 to 10000"));
    assert!(detail_of("Approvers").contains("not-an-address"));
    assert_eq!(detail_of("RequestedFor"), "must be a string");
    assert!(detail_of("ReleaseUrl").contains("$(Release.ReleaseWebURL)"));
    assert_eq!(
        detail_of("DefinitionName"),
        "must be at most 256 characters"
    );
    assert_eq!(detail_of("Mode"), "must be `poll` or `callback`");
    assert_eq!(detail_of("PlanUrl"), "must be at most 8192 characters");
    let detail = problem["detail"].as_str().unwrap();
    for (field, why) in &found {
        assert!(detail.contains(&format!("{field}: {why}")), "{detail}");
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn only_content_refusals_are_an_invalid_field_and_a_single_one_keeps_its_wording() {
    let app = spawn_app().await;
    let body = json!({"ReleaseName": "", "ReleaseId": "9".repeat(129), "TeamProject": "Devx",
        "Attempt": 0});
    let problem = refused(app.post_release(&body).await, "invalid-field").await;
    assert_eq!(
        problem["detail"],
        "ReleaseName: must not be empty; ReleaseId: must be at most 128 characters; \
         Attempt: must be a whole number from 1 to 10000, e.g. $(Release.AttemptNumber) or $(System.StageAttempt)"
    );
    assert_eq!(errors(&problem).len(), 3);

    let one = json!({"ReleaseName": " ", "ReleaseId": "1", "TeamProject": "Devx"});
    let problem = refused(app.post_release(&one).await, "invalid-field").await;
    assert_eq!(problem["detail"], "ReleaseName: must not be empty");
    assert_eq!(
        errors(&problem),
        [("ReleaseName".to_owned(), "must not be empty".to_owned())]
    );
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_decision_names_its_missing_token_bad_decision_and_bad_comment_at_once() {
    let app = spawn_app().await;
    let url = format!("{}/approval", app.address);
    let json = app
        .client
        .post(&url)
        .json(&json!({"decision": "yes", "comment": "a\u{1b}[31m"}))
        .send()
        .await
        .unwrap();
    let form = app
        .client
        .post(&url)
        .form(&[("decision", "yes"), ("comment", "a\u{1b}[31m")])
        .send()
        .await
        .unwrap();
    for (label, response) in [("JSON", json), ("form", form)] {
        let problem = refused(response, "invalid-request").await;
        assert_eq!(
            errors(&problem),
            [
                (
                    "token".to_owned(),
                    "is required (field names are case-sensitive: token)".to_owned()
                ),
                (
                    "decision".to_owned(),
                    "must be `approve` or `reject`".to_owned()
                ),
                (
                    "comment".to_owned(),
                    "must not contain control characters".to_owned()
                ),
            ],
            "{label}: {problem}"
        );
    }
    // A form field given twice is no decision.
    let twice = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=x&decision=reject&decision=approve")
        .send()
        .await
        .unwrap();
    let problem = refused(twice, "invalid-request").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("decision"),
        "{problem}"
    );
    // The fields are judged before the token: a bad token with a bad decision is a 400.
    let problem = refused(
        app.decide("not-a-token", "yes", None).await,
        "invalid-request",
    )
    .await;
    assert_eq!(problem["detail"], "decision: must be `approve` or `reject`");
}

#[tokio::test]
async fn a_board_query_names_its_bad_status_and_limit_together() {
    let app = spawn_app().await;
    let get = |query: &'static str| {
        app.client
            .get(format!("{}/releases?{query}", app.address))
            .header("accept", "application/json")
            .send()
    };
    let problem = refused(
        get("status=bogus&limit=500").await.unwrap(),
        "invalid-request",
    )
    .await;
    assert_eq!(
        errors(&problem),
        [
            (
                "status".to_owned(),
                "must be one of any, pending, approved, rejected, expired".to_owned()
            ),
            ("limit".to_owned(), "must be at most 100".to_owned()),
        ]
    );
    let problem = refused(
        get("limit=ten&cursor=x&TeamProject=a%01").await.unwrap(),
        "invalid-request",
    )
    .await;
    let fields: Vec<String> = errors(&problem).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["TeamProject", "limit", "cursor"], "{problem}");
    let problem = refused(get("limit=0").await.unwrap(), "invalid-request").await;
    assert_eq!(problem["detail"], "limit: must be at least 1");
    assert_eq!(get("limit=100&status=any").await.unwrap().status(), 200);
}
