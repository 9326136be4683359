// Decisions taken in Azure DevOps itself: a rejection there, the approval of
// every Azure approval of a round there, the release abandoned or its
// deployment cancelled settle the round; its links then answer 410, and
// nothing is written back. The events are Microsoft's documented sample
// payloads (tests/fixtures/azure-devops).

use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::{
    fakes::{
        GATE_IDENTITY, azure_assigning, sample, sample_event, scrape, settle, wait_for_requests,
        writes,
    },
    helpers::{ReceivedMail, TestApp, TestSmtp, assert_problem, get_json, spawn_app_with},
};

/// The sample approval-pending event (release 1, stage `stage`, project Fabrikam) for approval `id`.
fn pending(id: u64, stage: &str) -> Value {
    let mut event = sample_event("ms.vss-release.deployment-approval-pending-event");
    event["resource"]["approval"]["id"] = id.into();
    event["resource"]["approval"]["releaseEnvironment"]["name"] = stage.into();
    event
}

/// The sample approval-completed event for approval `id` with `status`.
fn completed(id: u64, status: &str) -> Value {
    let mut event = sample_event("ms.vss-release.deployment-approval-completed-event");
    event["resource"]["approval"]["id"] = id.into();
    event["resource"]["approval"]["status"] = status.into();
    event
}

/// A fake Azure DevOps where `ours` are deploy-gate's approvals and every write-back succeeds.
async fn azure_with(ours: &[u64]) -> MockServer {
    let azure = MockServer::start().await;
    azure_assigning(&azure, ours).await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"/_apis/(release|pipelines)/approvals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&azure)
        .await;
    azure
}

async fn app_following(azure: &MockServer) -> TestApp {
    let url = format!("{}/contoso", azure.uri());
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new("pat-secret"));
    })
    .await
}

async fn deliver(app: &TestApp, event: &Value) -> Value {
    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(event)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.json().await.unwrap()
}

/// Starts the round of approval 101 on stage Dev and returns its email.
async fn round_of_101(app: &TestApp) -> ReceivedMail {
    assert_eq!(
        deliver(app, &pending(101, "Dev")).await["outcome"],
        "accepted"
    );
    app.smtp.wait_for(1).await.swap_remove(0)
}

async fn status(app: &TestApp, stage: &str) -> Value {
    get_json(app, &format!("/release/Fabrikam/1?Stage={stage}")).await
}

#[tokio::test]
async fn a_rejection_in_azure_settles_the_round_its_links_answer_410_and_nothing_is_written_back() {
    let azure = azure_with(&[101]).await;
    let app = app_following(&azure).await;
    let mail = round_of_101(&app).await;
    let pending = sample(&scrape(&app).await, "deploy_gate_pending_releases");
    assert_eq!(pending, 1.0);

    let mut rejected = completed(101, "rejected");
    rejected["resource"]["approval"]["approvedBy"]["displayName"] = "Dana Ops".into();
    let answer = deliver(&app, &rejected).await;
    assert_eq!(answer["outcome"], "settled");
    let round = status(&app, "Dev").await;
    assert_eq!(round["status"], "rejected");
    assert_eq!(round["settled_by"], "azure");
    let reason = round["settled_reason"].as_str().unwrap();
    assert!(
        reason.contains("rejected in Azure DevOps by Dana Ops"),
        "{reason}"
    );

    let decided = app.decide(&mail.token(), "approve", None).await;
    let problem = assert_problem(decided, 410, "decided-in-azure").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("Dana Ops"),
        "{problem}"
    );
    let page = app.client.get(mail.link()).send().await.unwrap();
    assert_eq!(
        page.status(),
        410,
        "the link's page says where it was decided"
    );
    assert!(page.text().await.unwrap().contains("Azure DevOps"));

    settle(&app).await;
    assert!(writes(&azure).await.is_empty(), "nothing is written back");
    // Operators see the round decided: no longer pending, its time to decision observed once.
    let metrics = scrape(&app).await;
    assert_eq!(sample(&metrics, "deploy_gate_pending_releases"), 0.0);
    let series = r#"deploy_gate_time_to_decision_seconds_count{status="rejected"}"#;
    assert_eq!(sample(&metrics, series), 1.0, "{metrics}");
    let timeline = get_json(&app, "/releases/Fabrikam/1?Stage=Dev").await;
    let described: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap_or_default())
        .collect();
    assert!(
        described
            .iter()
            .any(|d| d.contains("rejected in Azure DevOps")),
        "{described:?}"
    );
}

#[tokio::test]
async fn approval_in_azure_settles_the_round_once_every_one_of_its_approvals_is_approved_there() {
    let azure = azure_with(&[101, 102]).await;
    let app = app_following(&azure).await;
    round_of_101(&app).await;
    assert_eq!(
        deliver(&app, &pending(102, "Dev")).await["outcome"],
        "joined"
    );

    assert_eq!(
        deliver(&app, &completed(101, "approved")).await["outcome"],
        "known"
    );
    assert_eq!(status(&app, "Dev").await["status"], "pending");
    assert_eq!(
        deliver(&app, &completed(102, "approved")).await["outcome"],
        "settled"
    );
    let round = status(&app, "Dev").await;
    assert_eq!(
        (round["status"].as_str(), round["settled_by"].as_str()),
        (Some("approved"), Some("azure"))
    );
    settle(&app).await;
    assert!(writes(&azure).await.is_empty());
}

#[tokio::test]
async fn azures_report_of_deploy_gates_own_write_back_changes_nothing() {
    let azure = azure_with(&[101]).await;
    let app = app_following(&azure).await;
    let mail = round_of_101(&app).await;
    app.decide(&mail.token(), "approve", None).await;
    wait_for_requests(&azure, 1).await;

    let mut report = completed(101, "approved");
    report["resource"]["approval"]["approvedBy"] =
        json!({"id": GATE_IDENTITY, "displayName": "deploy-gate bot"});
    assert_eq!(deliver(&app, &report).await["outcome"], "known");
    let round = status(&app, "Dev").await;
    assert_eq!(
        (round["status"].as_str(), round["settled_by"].as_str()),
        (Some("approved"), Some("deploy-gate"))
    );
}

#[tokio::test]
async fn an_abandoned_release_settles_every_open_round_of_it_and_a_cancelled_deployment_its_stage()
{
    let azure = azure_with(&[101, 102, 103]).await;
    let app = app_following(&azure).await;
    round_of_101(&app).await;
    assert_eq!(
        deliver(&app, &pending(102, "QA")).await["outcome"],
        "accepted"
    );

    // A deployment that succeeded settles nothing; one cancelled settles its stage.
    let mut deployed = sample_event("ms.vss-release.deployment-completed-event");
    deployed["resource"]["environment"]["name"] = "QA".into();
    assert_eq!(deliver(&app, &deployed).await["outcome"], "ignored");
    deployed["resource"]["environment"]["status"] = "canceled".into();
    assert_eq!(deliver(&app, &deployed).await["outcome"], "settled");
    let qa = status(&app, "QA").await;
    assert_eq!(qa["status"], "rejected");
    assert!(qa["settled_reason"].as_str().unwrap().contains("canceled"));
    assert_eq!(status(&app, "Dev").await["status"], "pending");

    // The sample names release 4: make it this release.
    let mut abandoned = sample_event("ms.vss-release.release-abandoned-event");
    abandoned["resource"]["release"]["id"] = 1.into();
    assert_eq!(deliver(&app, &abandoned).await["outcome"], "settled");
    let dev = status(&app, "Dev").await;
    assert_eq!(
        (dev["status"].as_str(), dev["settled_by"].as_str()),
        (Some("rejected"), Some("azure"))
    );
    assert!(
        dev["settled_reason"]
            .as_str()
            .unwrap()
            .contains("abandoned")
    );

    let unknown = sample_event("ms.vss-release.release-abandoned-event");
    let answer = deliver(&app, &unknown).await;
    assert_eq!(
        answer["outcome"], "ignored",
        "release 4 is not followed: {answer}"
    );
    settle(&app).await;
    assert!(writes(&azure).await.is_empty());
}

#[tokio::test]
async fn a_yaml_approval_rejected_in_azure_settles_its_round() {
    let azure = azure_with(&[]).await;
    let app = app_following(&azure).await;
    let mut pending = sample_event("ms.vss-pipelinechecks-events.approval-pending");
    pending["resource"]["approval"]["steps"][0]["assignedApprover"]["id"] = GATE_IDENTITY.into();
    assert_eq!(deliver(&app, &pending).await["outcome"], "accepted");
    let release = deliver(&app, &pending).await["release"].clone();
    let path = format!(
        "/release/{}/{}",
        release["TeamProject"].as_str().unwrap(),
        release["ReleaseId"].as_str().unwrap()
    );

    let mut completed = sample_event("ms.vss-pipelinechecks-events.approval-completed");
    completed["resource"]["approval"]["status"] = "rejected".into();
    assert_eq!(deliver(&app, &completed).await["outcome"], "settled");
    let round = get_json(&app, &path).await;
    assert_eq!(
        (round["status"].as_str(), round["settled_by"].as_str()),
        (Some("rejected"), Some("azure"))
    );
    settle(&app).await;
    assert!(writes(&azure).await.is_empty());
}
