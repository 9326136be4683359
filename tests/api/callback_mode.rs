// Callback mode only when asked (`?mode=callback` or body `Mode`), unresolved
// pipeline macros refused, and the job token kept to the hosts of
// DEPLOY_GATE_CALLBACK_HOSTS. Azure's Invoke REST API task and check send the
// callback headers by default in every mode (azure-devops.md §1.6), so the
// polls here carry them exactly as Azure does; a recording fake stands in for
// Azure DevOps on 127.0.0.1, which the test settings allow.

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    fakes::{
        EVENTS_PATH, JOB_TOKEN, callback_headers, json_body, post_callback_mode, post_with_headers,
        settle, task_completed, task_completions, wait_for_problem, wait_for_task_completions,
    },
    helpers::{TestApp, assert_problem, spawn_app},
};

fn release(id: &str) -> Value {
    json!({"ReleaseName": "Desafio-CD", "ReleaseId": id, "TeamProject": "Devx",
           "Approvers": "ana@example.com"})
}

/// A fake Azure DevOps answering every request `204` and recording it.
async fn recording_azure() -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&azure)
        .await;
    azure
}

/// The headers of [`callback_headers`] with `name` set to `value`.
fn headers_with(azure: &MockServer, name: &str, value: &str) -> Vec<(&'static str, String)> {
    let mut headers = callback_headers(azure);
    for header in &mut headers {
        if header.0 == name {
            header.1 = value.to_owned();
        }
    }
    headers
}

/// Approves release `Devx/{id}` through ana's email and waits for the queue to empty.
async fn approve(app: &TestApp) {
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    let decided = app.decide(&mail.token(), "approve", None).await;
    assert_eq!(decided.status(), 200);
    settle(app).await;
}

#[tokio::test]
async fn polls_carrying_only_the_default_task_headers_never_get_a_task_completed() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let headers = callback_headers(&azure);
    let created = post_with_headers(&app, &release("1"), &headers).await;
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(1).await;
    settle(&app).await;

    // Nothing is written for a poll, so the poll cache answers the next ones.
    let version = app.store.data_version();
    for _ in 0..3 {
        let polled = post_with_headers(&app, &release("1"), &headers).await;
        assert_eq!(polled.status(), 200);
    }
    assert_eq!(app.store.data_version(), version, "polls wrote nothing");
    assert!(
        app.store.callback(1).await.unwrap().is_none(),
        "no callback registered, no job token stored"
    );

    approve(&app).await;
    let after = post_with_headers(&app, &release("1"), &headers).await;
    assert_eq!(after.status(), 200);
    settle(&app).await;
    assert!(
        azure.received_requests().await.unwrap().is_empty(),
        "no TaskCompleted for a poll"
    );
}

#[tokio::test]
async fn mode_callback_registers_once_and_yields_exactly_one_task_completed() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let headers = callback_headers(&azure);
    let created = post_callback_mode(&app, &release("2"), &headers).await;
    assert_eq!(created.status(), 202);
    assert!(!created.text().await.unwrap().contains(JOB_TOKEN));
    // The check evaluates again: the same registration, not a second one.
    let again = post_callback_mode(&app, &release("2"), &headers).await;
    assert_eq!(again.status(), 200);

    approve(&app).await;
    let requests = wait_for_task_completions(&azure, 1).await;
    assert_eq!(requests[0].url.path(), EVENTS_PATH);
    assert_eq!(json_body(&requests[0]), task_completed("succeeded"));

    let late = post_callback_mode(&app, &release("2"), &headers).await;
    assert_eq!(late.status(), 200);
    settle(&app).await;
    assert_eq!(
        task_completions(&azure).await.len(),
        1,
        "exactly one TaskCompleted for the registration"
    );
}

#[tokio::test]
async fn body_field_mode_asks_for_callback_mode_and_a_query_that_differs_is_refused() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let mut body = release("3");
    body["Mode"] = "callback".into();
    let headers = callback_headers(&azure);

    let differing = app
        .client
        .post(format!("{}/release?mode=poll", app.address))
        .json(&body);
    let refused = headers
        .iter()
        .fold(differing, |r, (name, value)| r.header(*name, value));
    let problem = assert_problem(refused.send().await.unwrap(), 400, "invalid-field").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("mode") && detail.contains("Mode"),
        "{detail}"
    );

    body["Mode"] = "sideways".into();
    let problem = assert_problem(
        post_with_headers(&app, &body, &headers).await,
        400,
        "invalid-field",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("Mode"));
    assert_problem(app.get_release("Devx", "3").await, 404, "not-found").await;

    body["Mode"] = "callback".into();
    assert_eq!(post_with_headers(&app, &body, &headers).await.status(), 202);
    approve(&app).await;
    wait_for_task_completions(&azure, 1).await;
}

#[tokio::test]
async fn an_unresolved_macro_in_a_body_field_is_refused_naming_field_variable_and_yaml_equivalent()
{
    let app = spawn_app().await;
    let mut body = release("4");
    body["ReleaseName"] = "$(Release.ReleaseName)".into();
    let problem = assert_problem(app.post_release(&body).await, 400, "unresolved-macro").await;
    let detail = problem["detail"].as_str().unwrap();
    for part in [
        "ReleaseName",
        "$(Release.ReleaseName)",
        "$(Build.BuildNumber)",
    ] {
        assert!(detail.contains(part), "{part} in {detail}");
    }
    assert_problem(app.get_release("Devx", "4").await, 404, "not-found").await;

    for (field, value, named) in [
        (
            "ReleaseId",
            json!("$(Release.ReleaseId)"),
            "$(Build.BuildId)",
        ),
        (
            "Stage",
            json!("$(Release.EnvironmentName)"),
            "$(System.StageName)",
        ),
        (
            "TeamProject",
            json!("$(Custom.Project)"),
            "$(Custom.Project)",
        ),
        (
            "Approvers",
            json!(["$(Approvers.Lead)"]),
            "$(Approvers.Lead)",
        ),
        ("Mode", json!("$(deploy.mode)"), "$(deploy.mode)"),
    ] {
        let mut body = release("4");
        body[field] = value;
        let answer = app.post_release(&body).await;
        let problem = assert_problem(answer, 400, "unresolved-macro").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(field) && detail.contains(named),
            "{field}: {detail}"
        );
    }
    assert_problem(app.get_release("Devx", "4").await, 404, "not-found").await;
}

#[tokio::test]
async fn a_macro_in_a_callback_header_is_refused_in_callback_mode_only() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let headers = headers_with(&azure, "AuthToken", "$(system.AccessToken)");

    let refused = post_callback_mode(&app, &release("5"), &headers).await;
    let problem = assert_problem(refused, 400, "unresolved-macro").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("AuthToken") && detail.contains("$(system.AccessToken)"),
        "{detail}"
    );
    assert_problem(app.get_release("Devx", "5").await, 404, "not-found").await;

    let polled = post_with_headers(&app, &release("5"), &headers).await;
    assert_eq!(
        polled.status(),
        202,
        "ignored headers are no reason to refuse"
    );
}

#[tokio::test]
async fn a_plan_url_outside_the_callback_hosts_is_refused_and_nothing_is_stored() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    for plan_url in [
        "https://attacker.example.com/",
        "https://dev.azure.com.attacker.example.com/contoso/",
        "http://contoso.visualstudio.com/",
    ] {
        let headers = headers_with(&azure, "PlanUrl", plan_url);
        let refused = post_callback_mode(&app, &release("6"), &headers).await;
        let problem = assert_problem(refused, 400, "invalid-field").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("PlanUrl") && detail.contains("DEPLOY_GATE_CALLBACK_HOSTS"),
            "{plan_url}: {detail}"
        );
        assert!(!problem.to_string().contains(JOB_TOKEN));
        assert_problem(app.get_release("Devx", "6").await, 404, "not-found").await;
    }
    let headers = headers_with(&azure, "PlanUrl", "https://attacker.example.com/");
    let polled = post_with_headers(&app, &release("6"), &headers).await;
    assert_eq!(
        polled.status(),
        202,
        "outside callback mode PlanUrl is ignored"
    );
}

#[tokio::test]
async fn a_redirect_from_azure_is_not_followed_with_the_job_token() {
    let elsewhere = recording_azure().await;
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/collect", elsewhere.uri()).as_str()),
        )
        .mount(&azure)
        .await;
    let app = spawn_app().await;
    let created = post_callback_mode(&app, &release("7"), &callback_headers(&azure)).await;
    assert_eq!(created.status(), 202);
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;

    let problem = wait_for_problem(&app, "Devx", "7", "", "callback_failing").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("307"), "{detail}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn the_text_azure_answers_never_appears_in_the_status_body() {
    const AZURE_TEXT: &str = "TF400813: The user is not authorized; internals at 10.0.0.7";
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_string(AZURE_TEXT))
        .mount(&azure)
        .await;
    let app = spawn_app().await;
    post_callback_mode(&app, &release("8"), &callback_headers(&azure)).await;
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;

    let problem = wait_for_problem(&app, "Devx", "8", "", "callback_failing").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("Azure DevOps answered HTTP 404 Not Found"),
        "{detail}"
    );
    let status = app.release_status("Devx", "8").await.to_string();
    for part in ["TF400813", "10.0.0.7", JOB_TOKEN] {
        assert!(!status.contains(part), "{part} in {status}");
    }
}

#[tokio::test]
async fn a_callback_header_over_its_published_length_is_refused_in_every_mode() {
    // The OpenAPI document gives each callback header a maximum length, so a
    // longer one is refused whether or not the mode reads it; Azure's own
    // headers are far shorter.
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let headers = headers_with(&azure, "TimelineId", &"0".repeat(8193));

    let polled = post_with_headers(&app, &release("6"), &headers).await;
    let problem = assert_problem(polled, 400, "invalid-field").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("TimelineId"),
        "{problem}"
    );
    assert_problem(app.get_release("Devx", "6").await, 404, "not-found").await;
}
