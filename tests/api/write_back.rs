// Telling Azure DevOps how a release ended: an operator's cancellation reaches a
// callback-mode check and a service hook's approval, and the write-back to the
// approval follows rejections, expiry and Azure failing once, or stays away when
// it is not configured. A local HTTP server stands in for Azure DevOps.

use std::time::Duration;

use base64::Engine;
use deploy_gate::{secret::Secret, settings::Settings};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::{
    fakes::{
        Flaky, JOB_TOKEN, azure_assigning, azure_events_answering, post_in_callback_mode, problems,
        sample, scrape, settle, task_completed, task_completions, wait_for_no_problem,
        wait_for_problem, wait_for_requests, wait_for_task_completions, writes,
    },
    helpers::{ReceivedMail, TestApp, TestSmtp, get_json, spawn_app, spawn_app_with, wait_until},
};

pub(crate) const APPROVAL_PATH: &str = "/contoso/Devx/_apis/release/approvals/17";
const PAT: &str = "pat-secret";

/// A `deployment-approval-pending` notification for approval 17 of release 386,
/// stage Production, shaped as documented (azure-devops.md §3.2, §3.4), whose
/// links all lead to `base`.
pub(crate) fn approval_pending_event(base: &str) -> Value {
    json!({
        "subscriptionId": "7b6a8c10-9c8e-4a8b-9c3e-0d2f1d1c5b11",
        "notificationId": 4,
        "id": "9e0c8a5b-2d8f-4f3b-8a1e-6c2d7e9f0a11",
        "eventType": "ms.vss-release.deployment-approval-pending-event",
        "publisherId": "rm",
        "message": {"text": "Approval pending", "html": "<p>Approval pending</p>", "markdown": "Approval pending"},
        "resource": {
            "approval": {
                "id": 17, "revision": 1, "approvalType": "preDeploy", "status": "pending",
                "approver": {"id": "4247a5b1-8b8a-4d6b-9f3d-2b6b1c0f3e21", "displayName": "Chuck Reinhart"},
                "attempt": 1, "trialNumber": 1, "rank": 1, "createdOn": "2026-11-22T10:00:00Z",
                "release": {"id": 386, "name": "Release-386", "url": format!("{base}/contoso/Devx/_apis/Release/releases/386")},
                "releaseDefinition": {"id": 1, "name": "Fabrikam.CD", "url": format!("{base}/contoso/_apis/Release/definitions/1")},
                "releaseEnvironment": {"id": 5, "name": "Production"}
            },
            "release": {"id": 386, "name": "Release-386", "status": "active"},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "name": "Devx"}
        },
        "resourceVersion": "3.0-preview.1",
        "resourceContainers": {
            "collection": {"id": "c1", "baseUrl": format!("{base}/contoso/")},
            "account": {"id": "a1", "baseUrl": format!("{base}/contoso/")},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "baseUrl": format!("{base}/contoso/")}
        },
        "createdDate": "2026-11-22T10:00:01Z"
    })
}

/// Azure DevOps answering every PATCH of approval 17 with `responder`; the
/// approval is assigned to deploy-gate's identity.
pub(crate) async fn approvals_api(responder: impl Respond + 'static) -> MockServer {
    let azure = MockServer::start().await;
    azure_assigning(&azure, &[17]).await;
    Mock::given(method("PATCH"))
        .and(path(APPROVAL_PATH))
        .respond_with(responder)
        .mount(&azure)
        .await;
    azure
}

/// The updated approval Azure DevOps answers with.
pub(crate) fn updated_approval(status: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": 17, "status": status}))
}

/// An app whose approver is ana, writing decisions back to `azure`.
async fn app_writing_back_to(azure: &MockServer, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let url = format!("{}/contoso", azure.uri());
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
        adjust(s);
    })
    .await
}

/// Delivers the approval-pending event (links to `base`) and returns the approval email.
pub(crate) async fn start_round(app: &TestApp, base: &str) -> ReceivedMail {
    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&approval_pending_event(base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    app.smtp.wait_for(1).await.swap_remove(0)
}

/// The write-back a request carries, after checking it is the documented PATCH with the PAT.
fn approval_update(request: &Request) -> Value {
    assert_eq!(request.method.as_str(), "PATCH");
    assert_eq!(request.url.query(), Some("api-version=7.1"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"));
    assert_eq!(
        request.headers["authorization"],
        format!("Basic {basic}").as_str()
    );
    serde_json::from_slice(&request.body).unwrap()
}

/// `POST /release/Devx/{id}/cancel` with `query`.
async fn cancel(app: &TestApp, id: &str, query: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(format!("{}/release/Devx/{id}/cancel", app.address))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cancelling_a_callback_mode_release_reports_task_completed_failed_to_azure_devops() {
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    let app = spawn_app().await;
    post_in_callback_mode(&app, &azure, "5", "ana@example.com").await;
    app.smtp.wait_for(1).await;
    settle(&app).await;
    assert!(
        task_completions(&azure).await.is_empty(),
        "no TaskCompleted while pending"
    );

    let cancelled = cancel(&app, "5", &[("reason", "wrong build")]).await;
    assert_eq!(cancelled.status(), 200);
    let status: Value = cancelled.json().await.unwrap();
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["cancelled"]["reason"], "wrong build");

    let events = wait_for_task_completions(&azure, 1).await;
    let event = &events[0];
    assert_eq!(event.url.query(), Some("api-version=2.0-preview.1"));
    assert_eq!(
        event.headers["authorization"],
        format!("Bearer {JOB_TOKEN}").as_str()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&event.body).unwrap(),
        task_completed("failed")
    );
    settle(&app).await;
    assert_eq!(problems(&app, "Devx", "5", "").await, Vec::<Value>::new());

    let again = cancel(&app, "5", &[]).await;
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:release-final");
    settle(&app).await;
    assert_eq!(task_completions(&azure).await.len(), 1, "told once");
}

#[tokio::test]
async fn cancelling_a_service_hook_release_writes_the_rejection_and_the_reason_back_to_its_approval()
 {
    let azure = approvals_api(updated_approval("rejected")).await;
    let app = app_writing_back_to(&azure, |_| {}).await;
    start_round(&app, &azure.uri()).await;
    settle(&app).await;

    let cancelled = cancel(
        &app,
        "386",
        &[("Stage", "Production"), ("reason", "wrong build")],
    )
    .await;
    assert_eq!(cancelled.status(), 200);

    let requests = wait_for_requests(&azure, 1).await;
    let update = approval_update(&requests[0]);
    assert_eq!(update["status"], "rejected");
    let comments = update["comments"].as_str().unwrap();
    assert!(
        comments.contains("cancelled") && comments.contains("wrong build"),
        "the approval's history says why: {comments}"
    );
    settle(&app).await;
    assert_eq!(writes(&azure).await.len(), 1);
    assert_eq!(
        problems(&app, "Devx", "386", "Production").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn a_rejection_is_written_back_as_rejected_naming_who_rejected_and_why() {
    let azure = approvals_api(updated_approval("rejected")).await;
    let app = app_writing_back_to(&azure, |_| {}).await;
    let mail = start_round(&app, &azure.uri()).await;

    let answer = app
        .decide(&mail.token(), "reject", Some("not on a friday"))
        .await;
    assert_eq!(answer.status(), 200);

    let requests = wait_for_requests(&azure, 1).await;
    let update = approval_update(&requests[0]);
    assert_eq!(update["status"], "rejected");
    let comments = update["comments"].as_str().unwrap();
    assert!(
        comments.contains("ana@example.com") && comments.contains("not on a friday"),
        "{comments}"
    );
    settle(&app).await;
    assert_eq!(writes(&azure).await.len(), 1);
}

#[tokio::test]
async fn an_undecided_release_is_written_back_as_rejected_at_its_deadline() {
    let azure = approvals_api(updated_approval("rejected")).await;
    let app = app_writing_back_to(&azure, |s| {
        s.approval_deadline = Some(Duration::from_secs(3600));
    })
    .await;
    start_round(&app, &azure.uri()).await;
    settle(&app).await;
    assert!(
        writes(&azure).await.is_empty(),
        "nothing before the deadline"
    );

    app.advance_clock(Duration::from_secs(3600 + 60)).await;

    let requests = wait_for_requests(&azure, 1).await;
    let update = approval_update(&requests[0]);
    assert_eq!(update["status"], "rejected");
    assert!(
        update["comments"].as_str().unwrap().contains("deadline"),
        "{update}"
    );
    settle(&app).await;
    assert_eq!(writes(&azure).await.len(), 1);
    let status = app
        .client
        .get(format!("{}/release/Devx/386?Stage=Production", app.address))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(status["status"], "expired");
    assert_eq!(status["problems"], json!([]));
}

#[tokio::test]
async fn a_write_back_that_azure_devops_fails_once_is_retried_and_lands_once() {
    let flaky = Flaky::failing_first(1, ResponseTemplate::new(500), updated_approval("approved"));
    let azure = approvals_api(flaky.clone()).await;
    let app = app_writing_back_to(&azure, |_| {}).await;
    let mail = start_round(&app, &azure.uri()).await;

    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );

    let requests = wait_for_requests(&azure, 2).await;
    settle(&app).await;
    let requests_after = writes(&azure).await;
    assert_eq!(
        requests_after.len(),
        2,
        "one failure, one success, nothing after: {requests:?}"
    );
    for request in &requests_after {
        assert_eq!(approval_update(request)["status"], "approved");
    }
    assert_eq!(flaky.successes(), 1);
    assert_eq!(
        problems(&app, "Devx", "386", "Production").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn without_write_back_configured_a_decision_sends_nothing_to_azure_devops_and_nothing_fails()
{
    let azure = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&azure)
        .await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
    })
    .await;
    // Every link in the event leads to the stand-in, should the service follow one.
    let mail = start_round(&app, &azure.uri()).await;

    let decided = app.decide(&mail.token(), "approve", None).await;
    assert_eq!(decided.status(), 200);
    settle(&app).await;

    assert!(writes(&azure).await.is_empty());
    assert_eq!(
        problems(&app, "Devx", "386", "Production").await,
        Vec::<Value>::new()
    );
    let metrics = scrape(&app).await;
    for outcome in ["retried", "dead"] {
        let series =
            format!(r#"deploy_gate_jobs_total{{kind="write_back_approval",outcome="{outcome}"}}"#);
        assert_eq!(sample(&metrics, &series), 0.0, "{series}");
    }
}

#[tokio::test]
async fn a_write_back_azure_devops_keeps_failing_shows_write_back_failing_until_it_lands() {
    let flaky = Flaky::failing(
        ResponseTemplate::new(500).set_body_string("VS402904: internal error"),
        updated_approval("approved"),
    );
    let azure = approvals_api(flaky.clone()).await;
    let app = app_writing_back_to(&azure, |_| {}).await;
    let mail = start_round(&app, &azure.uri()).await;
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );

    let problem = wait_for_problem(&app, "Devx", "386", "Production", "write_back_failing").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("writing the decision back to the Azure DevOps approval failed ")
            && detail.contains(" time(s), next attempt at ")
            && detail.contains("HTTP 500"),
        "{detail}"
    );
    assert!(!detail.contains(PAT), "the PAT stays secret");

    flaky.recover();
    wait_for_no_problem(&app, "Devx", "386", "Production").await;
    settle(&app).await;
    assert_eq!(flaky.successes(), 1, "written back once");
    let requests = writes(&azure).await;
    assert_eq!(
        approval_update(requests.last().unwrap())["status"],
        "approved"
    );
}

#[tokio::test]
async fn a_final_decision_is_written_back_without_waiting_for_the_workers_next_poll() {
    let azure = approvals_api(updated_approval("rejected")).await;
    let app = app_writing_back_to(&azure, |s| {
        s.poll_interval = Some(crate::azure::NEVER_POLLED)
    })
    .await;
    let mail = start_round(&app, &azure.uri()).await;

    let answer = app.decide(&mail.token(), "reject", Some("not today")).await;
    assert_eq!(answer.status(), 200);

    let requests = wait_for_requests(&azure, 1).await;
    assert_eq!(approval_update(&requests[0])["status"], "rejected");
}

#[tokio::test]
async fn a_write_back_azure_refuses_outright_is_tried_twice_and_the_round_shows_why() {
    let azure = approvals_api(
        ResponseTemplate::new(403)
            .set_body_string("VS402904: Only an assigned approver can approve this approval"),
    )
    .await;
    let app = app_writing_back_to(&azure, |s| s.job_max_attempts = Some(10)).await;
    let mail = start_round(&app, &azure.uri()).await;
    app.decide(&mail.token(), "approve", None).await;

    let problem = wait_for_problem(&app, "Devx", "386", "Production", "job_dead").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("HTTP 403") && detail.contains("assigned approver"),
        "the round says what Azure refused and what to check: {detail}"
    );
    assert!(
        !detail.contains("VS402904"),
        "Azure's own words stay in the log"
    );
    settle(&app).await;
    assert_eq!(writes(&azure).await.len(), 2, "one retry, not ten");
    let board = get_json(&app, "/releases").await;
    let shown = board["releases"][0]["problem"].as_str().unwrap_or_default();
    assert!(
        shown.contains("HTTP 403"),
        "the board shows it too: {board}"
    );
}

#[tokio::test]
async fn a_write_back_refused_because_azure_completed_the_approval_settles_the_round_as_azure_did()
{
    let azure = approvals_api(
        ResponseTemplate::new(400).set_body_string("VS402860: The approval is already completed"),
    )
    .await;
    // Rejected in Azure's own UI before deploy-gate wrote back its approval.
    Mock::given(method("GET"))
        .and(path("/contoso/Devx/_apis/release/approvals"))
        .and(query_param("releaseIdsFilter", "386"))
        .and(query_param("statusFilter", "rejected"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"count": 1, "value": [{"id": 17, "status": "rejected"}]})),
        )
        .mount(&azure)
        .await;
    Mock::given(method("GET"))
        .and(path("/contoso/Devx/_apis/release/approvals"))
        .and(query_param("statusFilter", "approved"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 0, "value": []})))
        .mount(&azure)
        .await;
    let app = app_writing_back_to(&azure, |_| {}).await;
    let mail = start_round(&app, &azure.uri()).await;
    app.decide(&mail.token(), "approve", None).await;

    let status = wait_until("the round settled as Azure decided", || async {
        let status = get_json(&app, "/release/Devx/386?Stage=Production").await;
        (status["settled_by"] == "azure").then_some(status)
    })
    .await;
    assert_eq!(status["status"], "rejected", "{status}");
    assert!(
        status["settled_reason"]
            .as_str()
            .unwrap()
            .contains("before deploy-gate wrote its decision back"),
        "{status}"
    );
    settle(&app).await;
    assert_eq!(status["problems"], json!([]));
    assert_eq!(
        writes(&azure).await.len(),
        1,
        "not retried: there is nothing to write"
    );
}
