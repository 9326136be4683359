//! Azure DevOps: callback mode (TaskCompleted), service hooks, and write-back to approvals,
//! against a local HTTP server standing in for Azure DevOps that records every request.

use std::time::{Duration, Instant};

use base64::Engine;
use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, body_partial_json, header, method, path, query_param},
};

use crate::{
    fakes::{
        EVENTS_PATH, JOB_TOKEN, accept_progress, azure_assigning, callback_headers,
        post_callback_mode, task_completed, task_completions, wait_for_requests,
        wait_for_task_completions,
    },
    helpers::{TestApp, TestSmtp, assert_problem, spawn_app, spawn_app_with},
};

/// Azure DevOps accepting TaskCompleted events with the given result, once.
async fn azure_expecting(result: &str) -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(query_param("api-version", "2.0-preview.1"))
        .and(header(
            "authorization",
            format!("Bearer {JOB_TOKEN}").as_str(),
        ))
        .and(body_json(task_completed(result)))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    azure
}

fn release(approvers: &str) -> Value {
    json!({"ReleaseName": "R", "ReleaseId": "7", "TeamProject": "Devx", "Approvers": approvers})
}

#[tokio::test]
async fn in_callback_mode_an_approval_is_reported_to_azure_devops_as_task_completed_succeeded() {
    let azure = azure_expecting("succeeded").await;
    let app = spawn_app().await;

    let answer =
        post_callback_mode(&app, &release("ana@example.com"), &callback_headers(&azure)).await;
    assert_eq!(answer.status(), 202);
    assert!(
        !answer.text().await.unwrap().contains(JOB_TOKEN),
        "the job token is never returned"
    );

    let mail = &app.smtp.wait_for(1).await[0];
    assert!(
        task_completions(&azure).await.is_empty(),
        "no TaskCompleted while pending"
    );
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );
    wait_for_task_completions(&azure, 1).await;
    app.wait_until_idle().await;

    let callback = app
        .store
        .callback(1)
        .await
        .unwrap()
        .expect("the registration");
    assert!(callback.delivered);
    assert_eq!(
        callback.target.auth_token.expose(),
        "",
        "the job token is deleted once used"
    );
    assert_eq!(app.release_status("Devx", "7").await["problems"], json!([]));
}

#[tokio::test]
async fn callback_fields_in_the_body_work_too_and_a_rejection_reports_failed() {
    let azure = azure_expecting("failed").await;
    let app = spawn_app().await;
    let mut body = release("ana@example.com");
    body["Mode"] = "callback".into();
    for (name, value) in callback_headers(&azure) {
        body[name] = value.into();
    }
    assert_eq!(app.post_release(&body).await.status(), 202);
    let mail = &app.smtp.wait_for(1).await[0];
    app.decide(&mail.token(), "reject", Some("not today")).await;
    wait_for_task_completions(&azure, 1).await;
}

#[tokio::test]
async fn an_expired_release_reports_failed_at_its_deadline() {
    let azure = azure_expecting("failed").await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(1))
    })
    .await;
    post_callback_mode(&app, &release("ana@example.com"), &callback_headers(&azure)).await;
    wait_for_task_completions(&azure, 1).await;
    assert_eq!(app.release_status("Devx", "7").await["status"], "expired");
}

#[tokio::test]
async fn a_check_that_registers_after_the_decision_is_told_at_once() {
    let azure = azure_expecting("succeeded").await;
    let app = spawn_app().await;
    app.post_release(&release("ana@example.com")).await;
    let mail = &app.smtp.wait_for(1).await[0];
    app.decide(&mail.token(), "approve", None).await;

    let answer =
        post_callback_mode(&app, &release("ana@example.com"), &callback_headers(&azure)).await;
    assert_eq!(answer.status(), 200);
    wait_for_task_completions(&azure, 1).await;
}

#[tokio::test]
async fn azure_devops_answering_429_and_503_is_retried_honouring_retry_after() {
    let azure = MockServer::start().await;
    let completed = || body_partial_json(json!({"name": "TaskCompleted"}));
    accept_progress(&azure).await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(completed())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&azure)
        .await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(completed())
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&azure)
        .await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(completed())
        .respond_with(ResponseTemplate::new(200))
        .with_priority(3)
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app().await;
    post_callback_mode(&app, &release("ana@example.com"), &callback_headers(&azure)).await;
    let mail = &app.smtp.wait_for(1).await[0];
    let decided = Instant::now();
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );

    wait_for_task_completions(&azure, 3).await;
    let waited = decided.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After: 1 was honoured (waited {waited:?})"
    );
    app.wait_until_idle().await;
    assert_eq!(
        task_completions(&azure).await.len(),
        3,
        "no TaskCompleted after the success"
    );
}

#[tokio::test]
async fn incomplete_callback_fields_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let answer = app
        .client
        .post(format!("{}/release?mode=callback", app.address))
        .header("PlanUrl", "https://dev.azure.com/contoso/")
        .header("AuthToken", JOB_TOKEN)
        .json(&release("ana@example.com"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(answer, 400, "invalid-field").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("ProjectId"),
        "{problem}"
    );
    assert!(!problem.to_string().contains(JOB_TOKEN));
    assert_problem(app.get_release("Devx", "7").await, 404, "not-found").await;
}

/// A `deployment-approval-pending` notification shaped as documented (azure-devops.md §3.2, §3.4).
fn approval_pending_event(approval_id: u64) -> Value {
    json!({
        "subscriptionId": "7b6a8c10-9c8e-4a8b-9c3e-0d2f1d1c5b11",
        "notificationId": 4,
        "id": "9e0c8a5b-2d8f-4f3b-8a1e-6c2d7e9f0a11",
        "eventType": "ms.vss-release.deployment-approval-pending-event",
        "publisherId": "rm",
        "message": {"text": "Approval pending", "html": "<p>Approval pending</p>", "markdown": "Approval pending"},
        "detailedMessage": {"text": "Approval pending", "html": "", "markdown": ""},
        "resource": {
            "approval": {
                "id": approval_id, "revision": 1, "approvalType": "preDeploy", "status": "pending",
                "approver": {"id": "4247a5b1-8b8a-4d6b-9f3d-2b6b1c0f3e21", "displayName": "Chuck Reinhart"},
                "attempt": 1, "trialNumber": 1, "rank": 1, "createdOn": "2026-11-22T10:00:00Z",
                "release": {"id": 386, "name": "Release-386"},
                "releaseDefinition": {"id": 1, "name": "Fabrikam.CD", "url": "https://vsrm.dev.azure.com/contoso/_apis/Release/definitions/1"},
                "releaseEnvironment": {"id": 5, "name": "Production"}
            },
            "release": {"id": 386, "name": "Release-386", "status": "active"},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "name": "Devx"}
        },
        "resourceVersion": "3.0-preview.1",
        "resourceContainers": {"collection": {"id": "c1"}, "account": {"id": "a1"}},
        "createdDate": "2026-11-22T10:00:01Z"
    })
}

fn release_created_event() -> Value {
    json!({
        "id": "1f2e3d4c-0000-4000-8000-000000000001",
        "eventType": "ms.vss-release.release-created-event",
        "publisherId": "rm",
        "resource": {
            "release": {"id": 387, "name": "Release-387", "status": "active", "reason": "manual",
                        "createdBy": {"id": "x", "displayName": "Chuck Reinhart"},
                        "releaseDefinition": {"id": 1, "name": "Fabrikam.CD"},
                        "environments": [{"id": 5, "name": "Production", "status": "notStarted"}]},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "name": "Devx"}
        },
        "resourceVersion": "3.0-preview.1",
        "createdDate": "2026-11-22T10:00:01Z"
    })
}

async fn post_hook(app: &TestApp, event: &Value, password: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(event);
    if let Some(password) = password {
        request = request.basic_auth("azure-devops", Some(password));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn service_hooks_start_the_flow_once_however_often_they_are_delivered() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into())
    })
    .await;

    let first = post_hook(&app, &release_created_event(), None).await;
    assert_eq!(first.status(), 202);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["outcome"], "accepted");
    assert_eq!(body["release"]["ReleaseId"], "387");
    assert_eq!(body["release"]["ReleaseName"], "Release-387");

    let again = post_hook(&app, &release_created_event(), None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "known");

    let pending = post_hook(&app, &approval_pending_event(17), None).await;
    assert_eq!(pending.status(), 202);
    assert_eq!(
        pending.json::<Value>().await.unwrap()["release"]["Stage"],
        "Production"
    );
    assert_eq!(
        post_hook(&app, &approval_pending_event(17), None)
            .await
            .status(),
        200
    );

    app.smtp.wait_for(2).await;
    app.wait_until_idle().await;
    assert_eq!(
        app.smtp.received().len(),
        2,
        "one email per release, whatever the redeliveries"
    );
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_as_ignored_and_malformed_known_ones_refused() {
    let app = spawn_app().await;
    let push = json!({"id": "e1", "eventType": "git.push", "publisherId": "tfs", "resource": {"refUpdates": []}});
    let ignored = post_hook(&app, &push, None).await;
    assert_eq!(ignored.status(), 200);
    assert_eq!(ignored.json::<Value>().await.unwrap()["outcome"], "ignored");

    let mut broken = release_created_event();
    broken["resource"]["release"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let refused = post_hook(&app, &broken, None).await;
    let problem = assert_problem(refused, 400, "invalid-field").await;
    assert!(problem.to_string().contains("/release/id"), "{problem}");
}

#[tokio::test]
async fn service_hooks_need_the_api_key_as_basic_password_and_the_header_secret_when_configured() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new("hook-key-0123456789abcdef"));
        s.hook_secret = Some(Secret::new("header-secret"));
    })
    .await;
    assert_problem(
        post_hook(&app, &release_created_event(), None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        post_hook(&app, &release_created_event(), Some("wrong")).await,
        401,
        "unauthorized",
    )
    .await;
    // The header secret is missing.
    assert_problem(
        post_hook(
            &app,
            &release_created_event(),
            Some("hook-key-0123456789abcdef"),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;
    let accepted = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .basic_auth("azure-devops", Some("hook-key-0123456789abcdef"))
        .header("X-Deploy-Gate-Hook-Secret", "header-secret")
        .json(&release_created_event())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
}

#[tokio::test]
async fn a_decision_on_a_service_hook_release_is_written_back_to_its_azure_approval() {
    let azure = MockServer::start().await;
    azure_assigning(&azure, &[17]).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(":pat-secret");
    Mock::given(method("PATCH"))
        .and(path("/contoso/Devx/_apis/release/approvals/17"))
        .and(query_param("api-version", "7.1"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 17, "status": "approved"})),
        )
        .expect(1)
        .mount(&azure)
        .await;
    let url = format!("{}/contoso", azure.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new("pat-secret"));
    })
    .await;

    post_hook(&app, &approval_pending_event(17), None).await;
    let mail = &app.smtp.wait_for(1).await[0];
    app.decide(&mail.token(), "approve", Some("looks good"))
        .await;

    let requests = wait_for_requests(&azure, 1).await;
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["status"], "approved");
    let comments = body["comments"].as_str().unwrap();
    assert!(
        comments.contains("ana@example.com") && comments.contains("looks good"),
        "{comments}"
    );
    app.wait_until_idle().await;
}

#[tokio::test]
async fn an_oversized_callback_header_is_refused_even_when_body_fields_take_precedence() {
    let app = spawn_app().await;
    let mut body = release("a@example.com");
    body["PlanUrl"] = "".into();
    let answer = app
        .client
        .post(format!("{}/release?mode=callback", app.address))
        .header("PlanUrl", "x".repeat(9000))
        .json(&body)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(answer, 400, "invalid-field").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("PlanUrl"),
        "{problem}"
    );
    assert_problem(app.get_release("Devx", "7").await, 404, "not-found").await;
}

/// A worker poll interval no test waits for: whatever reaches Azure DevOps
/// while it is set got there because the decision woke the worker.
pub const NEVER_POLLED: Duration = Duration::from_secs(600);

#[tokio::test]
async fn a_final_decision_reaches_azure_devops_without_waiting_for_the_workers_next_poll() {
    let azure = azure_expecting("succeeded").await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.poll_interval = Some(NEVER_POLLED)
    })
    .await;
    let answer =
        post_callback_mode(&app, &release("ana@example.com"), &callback_headers(&azure)).await;
    assert_eq!(answer.status(), 202);
    let mail = &app.smtp.wait_for(1).await[0];

    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );
    wait_for_task_completions(&azure, 1).await;
}
