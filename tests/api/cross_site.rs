// Cross-site state changes: a browser signed in with Basic credentials replays them on
// another site's form posts, so every operation that changes state and takes the API key
// refuses a request the browser marks as sent from another site (`Sec-Fetch-Site`,
// `Origin`); requests with neither header (pipelines, service hooks, scripts) get in.

use deploy_gate::secret::Secret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestSmtp, assert_problem, spawn_app_with};

const KEY: &str = "operator-key-0123456789ab";

/// An app with an API key and a release `Devx/5` awaiting ana.
async fn app_with_a_pending_release() -> TestApp {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(KEY));
    })
    .await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(KEY)
        .json(
            &json!({"ReleaseName": "R5", "ReleaseId": "5", "TeamProject": "Devx",
                      "Approvers": ["ana@example.com"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(1).await;
    app.wait_until_idle().await;
    app
}

/// Every operation of the OpenAPI document that changes state (not `GET`) and declares the
/// API key, as (method, path template).
fn credentialed_state_changes() -> Vec<(String, String)> {
    let spec: Value = serde_json::from_str(&deploy_gate::api::openapi_json()).unwrap();
    let mut found = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if method != "get" && secured {
                found.push((method.to_uppercase(), template.clone()));
            }
        }
    }
    found.sort();
    found
}

/// A request for `template` that the operation would accept from a script: path parameters
/// naming release `Devx/5` and ana, and the body the operation needs.
fn request_for(app: &TestApp, method: &str, template: &str) -> reqwest::RequestBuilder {
    let path = template
        .replace("{TeamProject}", "Devx")
        .replace("{ReleaseId}", "5")
        .replace("{email}", "ana@example.com");
    let request = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.address))
        .basic_auth("operator", Some(KEY));
    match template {
        "/release" => request.json(&json!({"ReleaseName": "R6", "ReleaseId": "6",
                                           "TeamProject": "Devx"})),
        "/hooks/azure-devops" => request.json(&json!({
            "eventType": "ms.vss-release.release-created-event",
            "resource": {"release": {"id": 7, "name": "R7"}, "project": {"name": "Devx"}}
        })),
        _ => request,
    }
}

#[tokio::test]
async fn every_state_change_that_takes_the_key_refuses_a_browsers_cross_site_request() {
    let app = app_with_a_pending_release().await;
    let operations = credentialed_state_changes();
    let names: Vec<String> = operations.iter().map(|(m, t)| format!("{m} {t}")).collect();
    for expected in [
        "POST /release",
        "POST /hooks/azure-devops",
        "POST /release/{TeamProject}/{ReleaseId}/cancel",
        "POST /release/{TeamProject}/{ReleaseId}/approvers/{email}/resend",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let from_elsewhere = [
        vec![
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
    ];
    for (method, template) in &operations {
        for headers in &from_elsewhere {
            let mut request = request_for(&app, method, template);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let answer = request.send().await.unwrap();
            assert_problem(answer, 403, "cross-site-request").await;
        }
    }
    app.drain_jobs().await;
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 1, "nothing sent again");
    assert_eq!(status_of(&app, "5").await, 200);
    for id in ["6", "7"] {
        assert_eq!(
            status_of(&app, id).await,
            404,
            "release {id} was not created"
        );
    }
    let release: Value = app
        .client
        .get(format!("{}/release/Devx/5", app.address))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(release["status"], "pending", "not cancelled: {release}");
}

/// The HTTP status of `GET /release/Devx/{id}` with the key.
async fn status_of(app: &TestApp, id: &str) -> u16 {
    app.client
        .get(format!("{}/release/Devx/{id}", app.address))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn requests_from_scripts_and_from_this_service_s_own_pages_still_change_state() {
    let app = app_with_a_pending_release().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let own_origin = format!("http://{host}");
    let from_a_script = request_for(&app, "POST", "/release").send().await.unwrap();
    assert_eq!(from_a_script.status(), 202);
    let from_own_page = request_for(&app, "POST", "/hooks/azure-devops")
        .header("Origin", &own_origin)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(from_own_page.status(), 202);
    let typed_in = request_for(
        &app,
        "POST",
        "/release/{TeamProject}/{ReleaseId}/approvers/{email}/resend",
    )
    .header("Sec-Fetch-Site", "none")
    .send()
    .await
    .unwrap();
    assert_eq!(typed_in.status(), 202);
    let older_browser = request_for(&app, "POST", "/release/{TeamProject}/{ReleaseId}/cancel")
        .header("Origin", &own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(older_browser.status(), 200);
}
