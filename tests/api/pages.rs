// The pages a new user meets first: `/`, a mistyped path, a mistyped filter. Browsers
// get readable pages; API clients keep the problem documents.

use serde_json::json;

use crate::{
    fakes::{sample, scrape},
    helpers::{TestApp, assert_problem, spawn_app},
};

/// `GET {path}` of `app` with the `Accept` header of a browser, or of a JSON client.
async fn get(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// The body of an HTML answer with `status`.
async fn page(response: reqwest::Response, status: u16) -> String {
    let url = response.url().clone();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let got = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "{url}: {body}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    body
}

#[tokio::test]
async fn the_home_page_links_the_docs_and_the_board() {
    let app = spawn_app().await;
    let home = page(get(&app, "/", BROWSER).await, 200).await;
    assert!(home.contains(r#"href="/docs""#), "{home}");
    assert!(home.contains(r#"href="/releases""#), "{home}");
}

#[tokio::test]
async fn api_clients_get_an_index_of_the_services_entry_points_at_the_root() {
    let app = spawn_app().await;
    let index = get(&app, "/", "application/json").await;
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let index: serde_json::Value = index.json().await.unwrap();
    assert_eq!(
        index["links"],
        json!({
            "board": "/releases",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/healthz",
            "readiness": "/readyz",
            "metrics": "/metrics",
        }),
        "an app with an SMTP server has no mail preview: {index}"
    );
    // Nothing else answers at the root: a path under it is still unknown.
    assert_problem(get(&app, "/x", "application/json").await, 404, "not-found").await;
}

#[tokio::test]
async fn unknown_paths_are_a_readable_page_for_browsers() {
    let app = spawn_app().await;
    let body = page(get(&app, "/no/such/page", BROWSER).await, 404).await;
    assert!(body.contains("<h1>Not found</h1>"), "{body}");
    assert!(body.contains(r#"href="/""#), "{body}");
    assert_problem(
        get(&app, "/no/such/page", "application/json").await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_bad_status_filter_names_the_parameter_and_its_values() {
    let app = spawn_app().await;
    let problem = assert_problem(
        get(&app, "/releases?status=bogus", "application/json").await,
        400,
        "invalid-request",
    )
    .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("status") && detail.contains("any, pending, approved, rejected, expired"),
        "{detail}"
    );
    assert!(!detail.contains("StatusFilter"), "{detail}");
    let body = page(get(&app, "/releases?status=bogus", BROWSER).await, 400).await;
    assert!(
        body.contains("any, pending, approved, rejected, expired"),
        "{body}"
    );
    assert!(!body.contains("StatusFilter"), "{body}");
}

#[tokio::test]
async fn a_release_asked_for_without_its_stage_is_refused_with_the_stages_it_has() {
    let app = spawn_app().await;
    for stage in ["production", "staging"] {
        let body = json!({"ReleaseName": "R-388", "ReleaseId": "388", "TeamProject": "Shop",
                          "Stage": stage, "Approvers": "ana@example.com"});
        assert_eq!(app.post_release(&body).await.status(), 202);
    }
    let problem = assert_problem(app.get_release("Shop", "388").await, 404, "not-found").await;
    assert_eq!(
        problem["detail"],
        "no release Shop/388 without a stage; it exists with ?Stage=production, ?Stage=staging"
    );
    let problem = assert_problem(
        get(&app, "/release/Shop/388?Stage=prod", "application/json").await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        problem["detail"],
        "no release Shop/388/prod; it exists with ?Stage=production, ?Stage=staging"
    );
    let problem = assert_problem(app.get_release("Shop", "389").await, 404, "not-found").await;
    assert_eq!(problem["detail"], "no release Shop/389");
}

#[tokio::test]
async fn a_round_that_does_not_exist_is_refused_with_the_rounds_the_stage_has() {
    let app = spawn_app().await;
    let body = json!({"ReleaseName": "R-9", "ReleaseId": "9", "TeamProject": "Devx",
                      "Stage": "prod", "Approvers": "ana@example.com"});
    assert_eq!(app.post_release(&body).await.status(), 202);
    let problem = assert_problem(
        get(
            &app,
            "/release/Devx/9?Stage=prod&Attempt=3",
            "application/json",
        )
        .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        problem["detail"],
        "no such round of release Devx/9/prod; it has ?Attempt=1&Phase=pre"
    );
}

#[tokio::test]
async fn a_refused_parameter_is_still_counted_under_its_operation() {
    let app = spawn_app().await;
    for accept in [BROWSER, "application/json"] {
        assert_eq!(
            get(&app, "/releases?status=bogus", accept).await.status(),
            400
        );
    }
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(
            &metrics,
            r#"deploy_gate_http_requests_total{route="listReleases",method="GET",status="400"}"#
        ),
        2.0,
        "{metrics}"
    );
}
