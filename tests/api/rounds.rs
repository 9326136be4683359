// Rounds keyed the way Azure DevOps keys approvals: the approvals of one
// stage, phase and attempt that are deploy-gate's form one round, each written
// back once the round is decided; a post-deployment approval and a redeploy
// start rounds of their own; an approval assigned to a person is left alone; a
// YAML approval is written back through the pipelines approvals API. The events
// are Microsoft's documented sample payloads (tests/fixtures/azure-devops), and
// a recording local server stands in for Azure DevOps.

use base64::Engine;
use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::{
    fakes::{
        GATE_IDENTITY, azure_assigning, azure_assigning_yaml, sample_event, settle,
        wait_for_requests, writes,
    },
    helpers::{TestApp, TestSmtp, assert_problem, get_json, spawn_app, spawn_app_with},
};

const PAT: &str = "pat-secret";

/// The sample `deployment-approval-pending` event (release 1, stage Dev,
/// project Fabrikam) for approval `id` of `approval_type` and `attempt`.
fn classic_pending(id: u64, approval_type: &str, attempt: u64) -> Value {
    let mut event = sample_event("ms.vss-release.deployment-approval-pending-event");
    let approval = &mut event["resource"]["approval"];
    approval["id"] = id.into();
    approval["approvalType"] = approval_type.into();
    approval["attempt"] = attempt.into();
    event
}

/// Azure DevOps answering every PATCH of a classic approval of Fabrikam and of
/// YAML approvals with success; `ours` are the approvals assigned to deploy-gate.
async fn azure_deciding(ours: &[u64]) -> MockServer {
    let azure = MockServer::start().await;
    azure_assigning(&azure, ours).await;
    Mock::given(method("PATCH"))
        .and(path_regex(
            r"^/contoso/Fabrikam/_apis/release/approvals/\d+$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "approved"})))
        .mount(&azure)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/contoso/[^/]+/_apis/pipelines/approvals$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 1, "value": []})))
        .mount(&azure)
        .await;
    azure
}

/// An app whose approver is ana, writing decisions back to `azure`.
async fn app_writing_back_to(azure: &MockServer) -> TestApp {
    let url = format!("{}/contoso", azure.uri());
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
    })
    .await
}

async fn deliver(app: &TestApp, event: &Value) -> (u16, Value) {
    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(event)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

/// The approval id a classic write-back names, after checking that it is the
/// documented PATCH with the PAT; and its body.
fn classic_write_back(request: &Request) -> (String, Value) {
    assert_eq!(request.method.as_str(), "PATCH");
    assert_eq!(request.url.query(), Some("api-version=7.1"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"));
    assert_eq!(
        request.headers["authorization"],
        format!("Basic {basic}").as_str()
    );
    let id = request.url.path().rsplit('/').next().unwrap().to_owned();
    (id, serde_json::from_slice(&request.body).unwrap())
}

#[tokio::test]
async fn two_approvals_of_one_stage_form_one_round_and_both_are_written_back() {
    // 101 is assigned to deploy-gate's identity, 102 to a group it belongs to:
    // Approvals - List with includeMyGroupApprovals names both.
    let azure = azure_deciding(&[101, 102, 103]).await;
    let app = app_writing_back_to(&azure).await;

    let (status, first) = deliver(&app, &classic_pending(101, "preDeploy", 1)).await;
    assert_eq!((status, first["outcome"].as_str()), (202, Some("accepted")));
    let (status, second) = deliver(&app, &classic_pending(102, "preDeploy", 1)).await;
    assert_eq!((status, second["outcome"].as_str()), (200, Some("joined")));
    let (status, again) = deliver(&app, &classic_pending(102, "preDeploy", 1)).await;
    assert_eq!((status, again["outcome"].as_str()), (200, Some("known")));

    // One round: one email.
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", Some("ship it")).await;
    let requests = wait_for_requests(&azure, 2).await;
    let mut written: Vec<String> = requests
        .iter()
        .map(|r| {
            let (id, body) = classic_write_back(r);
            assert_eq!(body["status"], "approved");
            assert!(
                body["comments"]
                    .as_str()
                    .unwrap()
                    .contains("ana@example.com")
            );
            id
        })
        .collect();
    written.sort();
    assert_eq!(written, ["101", "102"]);

    // Who deploy-gate is was asked once, then which approvals it may decide.
    let received = azure.received_requests().await.unwrap();
    let asked: Vec<&str> = received
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .map(|r| r.url.path())
        .collect();
    assert_eq!(
        asked,
        [
            "/contoso/_apis/connectionData",
            "/contoso/Fabrikam/_apis/release/approvals",
            "/contoso/Fabrikam/_apis/release/approvals",
            "/contoso/Fabrikam/_apis/release/approvals",
        ]
    );
    let list = received
        .iter()
        .find(|r| r.url.path().ends_with("/approvals"))
        .unwrap();
    let query: Vec<(String, String)> = list.url.query_pairs().into_owned().collect();
    for expected in [
        ("assignedToFilter", GATE_IDENTITY),
        ("includeMyGroupApprovals", "true"),
        ("releaseIdsFilter", "1"),
        ("statusFilter", "pending"),
        ("api-version", "7.1"),
    ] {
        assert!(
            query.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {query:?}"
        );
    }

    // A late approval of the decided round is written back at once.
    settle(&app).await;
    assert_eq!(writes(&azure).await.len(), 2);
    let (status, joined) = deliver(&app, &classic_pending(103, "preDeploy", 1)).await;
    assert_eq!((status, joined["outcome"].as_str()), (200, Some("joined")));
    let requests = wait_for_requests(&azure, 3).await;
    assert_eq!(classic_write_back(&requests[2]).0, "103");
}

#[tokio::test]
async fn an_approval_assigned_to_someone_else_is_ignored_and_says_whose() {
    let azure = azure_deciding(&[]).await;
    let app = app_writing_back_to(&azure).await;

    let (status, answer) = deliver(&app, &classic_pending(104, "preDeploy", 1)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "ignored");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("104") && reason.contains("Chuck Reinhart"),
        "the answer says whose approval it is: {reason}"
    );
    settle(&app).await;
    assert!(app.smtp.received().is_empty(), "nobody was asked");
    assert_problem(app.get_release("Fabrikam", "1").await, 404, "not-found").await;
    assert!(writes(&azure).await.is_empty());
}

#[tokio::test]
async fn when_azure_devops_cannot_say_whose_approval_it_is_the_event_is_refused_for_a_retry() {
    let azure = MockServer::start().await; // answers 404 to everything
    let app = app_writing_back_to(&azure).await;
    let (status, answer) = deliver(&app, &classic_pending(105, "preDeploy", 1)).await;
    assert_eq!(status, 503, "{answer}");
    assert_problem(app.get_release("Fabrikam", "1").await, 404, "not-found").await;
}

#[tokio::test]
async fn a_post_deployment_approval_and_a_redeploy_each_start_a_round_with_new_emails() {
    let azure = azure_deciding(&[201, 202, 203]).await;
    let app = app_writing_back_to(&azure).await;

    // Microsoft's sample counts the first attempt as 0.
    assert_eq!(
        deliver(&app, &classic_pending(201, "preDeploy", 0)).await.0,
        202
    );
    let pre = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&pre.token(), "approve", None).await;
    wait_for_requests(&azure, 1).await;

    assert_eq!(
        deliver(&app, &classic_pending(202, "postDeploy", 0))
            .await
            .0,
        202
    );
    let post = app.smtp.wait_for(2).await.swap_remove(1);
    assert_ne!(post.token(), pre.token());
    let status = get_json(&app, "/release/Fabrikam/1?Stage=Dev").await;
    assert_eq!(
        (
            status["Attempt"].as_u64(),
            status["Phase"].as_str(),
            status["status"].as_str()
        ),
        (Some(1), Some("post"), Some("pending")),
        "without Attempt and Phase: the latest round"
    );
    let first = get_json(&app, "/release/Fabrikam/1?Stage=Dev&Phase=pre").await;
    assert_eq!(first["status"], "approved");
    app.decide(&post.token(), "reject", Some("smoke tests failed"))
        .await;
    let requests = wait_for_requests(&azure, 2).await;
    let (id, body) = classic_write_back(&requests[1]);
    assert_eq!(
        (id.as_str(), body["status"].as_str()),
        ("202", Some("rejected"))
    );

    // A redeploy: attempt 2 asks again.
    assert_eq!(
        deliver(&app, &classic_pending(203, "preDeploy", 2)).await.0,
        202
    );
    let redeploy = app.smtp.wait_for(3).await.swap_remove(2);
    let status = get_json(&app, "/release/Fabrikam/1?Stage=Dev").await;
    assert_eq!(
        (status["Attempt"].as_u64(), status["Phase"].as_str()),
        (Some(2), Some("pre"))
    );
    app.decide(&redeploy.token(), "approve", None).await;
    let requests = wait_for_requests(&azure, 3).await;
    assert_eq!(classic_write_back(&requests[2]).0, "203");

    let timeline = get_json(&app, "/releases/Fabrikam/1?Stage=Dev&Attempt=1&Phase=post").await;
    assert_eq!(timeline["release"]["status"], "rejected");
    let cancel_old = app
        .client
        .post(format!(
            "{}/release/Fabrikam/1/cancel?Stage=Dev&Attempt=1&Phase=pre",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancel_old.status(),
        409,
        "the first round is decided already"
    );
    assert_problem(
        app.client
            .get(format!(
                "{}/release/Fabrikam/1?Stage=Dev&Attempt=3",
                app.address
            ))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_yaml_approval_is_written_back_through_the_pipelines_approvals_api() {
    let azure = azure_deciding(&[]).await;
    let app = app_writing_back_to(&azure).await;
    let mut event = sample_event("ms.vss-pipelinechecks-events.approval-pending");
    event["resource"]["approval"]["steps"][0]["assignedApprover"]["id"] = GATE_IDENTITY.into();
    let approval_id = event["resource"]["approval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(deliver(&app, &event).await.0, 202);
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", Some("fine")).await;

    let requests = wait_for_requests(&azure, 1).await;
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "PATCH");
    assert_eq!(
        request.url.path(),
        "/contoso/00000000-0000-0000-0000-000000000000/_apis/pipelines/approvals"
    );
    assert_eq!(request.url.query(), Some("api-version=7.1"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"));
    assert_eq!(
        request.headers["authorization"],
        format!("Basic {basic}").as_str()
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body[0]["approvalId"], approval_id.as_str());
    assert_eq!(body[0]["status"], "approved");
    assert!(body[0]["comment"].as_str().unwrap().contains("fine"));
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_yaml_approval_is_deploy_gates_through_a_group_and_someone_elses_is_ignored() {
    let azure = azure_deciding(&[]).await;
    // Assigned to a group deploy-gate's identity belongs to: Approvals - Query
    // with userIds holds it, though no step names the identity.
    azure_assigning_yaml(&azure, &["6a1c2d3e-0000-4000-8000-0000000000a1"]).await;
    let app = app_writing_back_to(&azure).await;
    let mut through_group = sample_event("ms.vss-pipelinechecks-events.approval-pending");
    through_group["resource"]["approval"]["id"] = "6a1c2d3e-0000-4000-8000-0000000000a1".into();
    let (status, answer) = deliver(&app, &through_group).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("accepted")),
        "{answer}"
    );
    let query = azure
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/_apis/pipelines/approvals"))
        .unwrap();
    let pairs: Vec<(String, String)> = query.url.query_pairs().into_owned().collect();
    assert!(
        pairs.contains(&("userIds".into(), GATE_IDENTITY.into())),
        "{pairs:?}"
    );
    assert!(pairs.contains(&(
        "approvalIds".into(),
        "6a1c2d3e-0000-4000-8000-0000000000a1".into()
    )));

    let event = sample_event("ms.vss-pipelinechecks-events.approval-pending");
    let (status, answer) = deliver(&app, &event).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("ignored")));
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("743f73b7-cdeb-4de7-80b7-00cee17476b8"),
        "{answer}"
    );
}

#[tokio::test]
async fn without_write_back_every_approval_event_starts_or_joins_a_round_and_nothing_is_asked() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
    })
    .await;
    assert_eq!(
        deliver(&app, &classic_pending(301, "preDeploy", 1)).await.0,
        202
    );
    let (status, joined) = deliver(&app, &classic_pending(302, "preDeploy", 1)).await;
    assert_eq!((status, joined["outcome"].as_str()), (200, Some("joined")));
    app.smtp.wait_for(1).await;
}

#[tokio::test]
async fn polls_name_their_attempt_and_earlier_attempts_keep_their_answers() {
    let app = spawn_app().await;
    let body = |attempt: Value| {
        json!({"ReleaseName": "R-9", "ReleaseId": "9", "TeamProject": "Devx", "Stage": "prod",
               "Approvers": "ana@example.com", "Attempt": attempt})
    };
    assert_eq!(app.post_release(&body(Value::Null)).await.status(), 202);
    let first = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&first.token(), "reject", None).await;

    // The redeploy, with $(Release.AttemptNumber) substituted as text or as a number.
    let second = app.post_release(&body("2".into())).await;
    assert_eq!(second.status(), 202);
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        (second["Attempt"].as_u64(), second["status"].as_str()),
        (Some(2), Some("pending"))
    );
    let again = app.post_release(&body(2.into())).await;
    assert_eq!(again.status(), 200);
    let first_again = app.post_release(&body(1.into())).await;
    let first_again: Value = first_again.json().await.unwrap();
    assert_eq!(
        first_again["status"], "rejected",
        "attempt 1 keeps its answer"
    );
    app.smtp.wait_for(2).await;

    for (bad, kind) in [
        (json!(0), "invalid-field"),
        (json!("two"), "invalid-field"),
        (json!(10_001), "invalid-field"),
        (json!(1.5), "invalid-request"),
    ] {
        let answer = app.post_release(&body(bad.clone())).await;
        let problem = assert_problem(answer, 400, kind).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("Attempt"),
            "{bad}: {problem}"
        );
    }
    let answer = app
        .post_release(&body("$(Release.AttemptNumber)".into()))
        .await;
    assert_problem(answer, 400, "unresolved-macro").await;
    let answer = app
        .client
        .get(format!(
            "{}/release/Devx/9?Stage=prod&Phase=during",
            app.address
        ))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(answer, 400, "invalid-field").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("Phase"),
        "{problem}"
    );
}
