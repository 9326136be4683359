// Approvers from Azure DevOps (a policy's `azure_approvers`): a group's members
// through Graph with nested groups expanded, a team's members, and the approver
// a service-hook approval is assigned to; the answer cached until it expires and
// refreshed in the background; a failing look-up shown on the release like a
// failing approvers API. A recording local fake stands in for Azure DevOps and
// answers in the shapes of Microsoft's REST API specification examples
// (tests/fixtures/azure-devops/rest-api-specs/).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use deploy_gate::{secret::Secret, settings::PolicySettings};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::{
    fakes::{
        azure_assigning, azure_assigning_yaml, sample_event, wait_for_no_problem, wait_for_problem,
    },
    helpers::{ReceivedMail, TestApp, TestSmtp, spawn_app_with, wait_until},
};

const PAT: &str = "pat-secret";
const SRE: &str = "vssgp.U3JlIGdyb3Vw";
const ONCALL: &str = "vssgp.T25jYWxsIGdyb3Vw";
const ANA: &str = "aad.QW5hIFVzZXI";
const BO: &str = "aad.Qm8gVXNlcg";
const CY: &str = "aad.Q3kgVXNlcg";
const BOT: &str = "svc.RGVwbG95IGdhdGUgYm90";

/// The `200` body of one of Microsoft's examples copied into the fixtures.
fn spec_example(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/azure-devops/rest-api-specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let example: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
    example["responses"]["200"]["body"].clone()
}

/// Memberships - List (`direction=down`): `members` of `group`, in the example's shape.
fn memberships(group: &str, members: &[&str]) -> Value {
    let mut body = spec_example("graph-memberships-list-down");
    let template = body["value"][0].clone();
    let value: Vec<Value> = members
        .iter()
        .map(|member| {
            let mut m = template.clone();
            m["containerDescriptor"] = json!(group);
            m["memberDescriptor"] = json!(member);
            m
        })
        .collect();
    body["count"] = json!(value.len());
    body["value"] = json!(value);
    body
}

/// A Graph subject in the shape of the Subject Lookup example: a group, or a
/// user with `mail` (its principal name too).
fn subject(descriptor: &str, kind: &str, mail: Option<&str>) -> Value {
    let example = spec_example("graph-subject-lookup");
    let subjects = example["value"].as_object().unwrap();
    let mut s = subjects
        .values()
        .find(|s| s["subjectKind"] == if kind == "group" { "group" } else { "user" })
        .unwrap()
        .clone();
    s["subjectKind"] = json!(kind);
    s["descriptor"] = json!(descriptor);
    s["displayName"] = json!(format!("Subject {descriptor}"));
    if kind != "group" {
        s["mailAddress"] = json!(mail);
        s["principalName"] = json!(mail.unwrap_or("no-mailbox"));
    }
    s
}

/// Subject Lookup over a fixed directory: answers the descriptors asked for.
struct Lookup(BTreeMap<String, Value>);

impl Respond for Lookup {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let found: serde_json::Map<String, Value> = body["lookupKeys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["descriptor"].as_str())
            .filter_map(|d| self.0.get(d).map(|s| (d.to_owned(), s.clone())))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"count": found.len(), "value": found}))
    }
}

/// The directory: group SRE holds Ana, deploy-gate's service principal and the
/// nested group On-call, which holds Bo and SRE again (a cycle).
fn directory() -> BTreeMap<String, Value> {
    BTreeMap::from([
        (SRE.into(), subject(SRE, "group", None)),
        (ONCALL.into(), subject(ONCALL, "group", None)),
        (ANA.into(), subject(ANA, "user", Some("Ana@Example.com"))),
        (BO.into(), subject(BO, "user", Some("bo@example.com"))),
        (CY.into(), subject(CY, "user", Some("cy@example.com"))),
        (BOT.into(), subject(BOT, "servicePrincipal", None)),
    ])
}

async fn mount_group(azure: &MockServer, group: &str, members: &[&str]) {
    Mock::given(method("GET"))
        .and(path(format!("/contoso/_apis/graph/memberships/{group}")))
        .and(query_param("direction", "down"))
        .and(query_param("api-version", "7.1-preview.1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(memberships(group, members)))
        .mount(azure)
        .await;
}

async fn mount_directory(azure: &MockServer) {
    mount_group(azure, SRE, &[ANA, BOT, ONCALL]).await;
    mount_group(azure, ONCALL, &[BO, SRE]).await;
    Mock::given(method("POST"))
        .and(path("/contoso/_apis/graph/subjectlookup"))
        .and(query_param("api-version", "7.1-preview.1"))
        .respond_with(Lookup(directory()))
        .mount(azure)
        .await;
}

/// The Graph and team requests the fake received.
async fn directory_requests(azure: &MockServer) -> Vec<Request> {
    let received = azure.received_requests().await.unwrap();
    received
        .into_iter()
        .filter(|r| {
            let p = r.url.path();
            p.contains("/_apis/graph/") || p.contains("/teams/")
        })
        .collect()
}

fn policy(azure_approvers: &str) -> PolicySettings {
    toml::from_str(&format!(
        "team_project = \"Devx\"\nazure_approvers = {azure_approvers}"
    ))
    .unwrap()
}

async fn app_with_policy(azure: &MockServer, azure_approvers: &str) -> TestApp {
    let url = format!("{}/contoso", azure.uri());
    let policy = policy(azure_approvers);
    spawn_app_with(TestSmtp::running(), |s| {
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
        s.azure_approvers_cache = Some(Duration::from_secs(600));
        s.policies = vec![policy];
    })
    .await
}

async fn post(app: &TestApp, id: &str) {
    let answer = app
        .post_release(
            &json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx"}),
        )
        .await;
    assert_eq!(answer.status(), 202);
}

fn recipients(mails: &[ReceivedMail]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to
}

#[tokio::test]
async fn a_policy_naming_an_azure_group_emails_its_members_with_nested_groups_expanded() {
    let azure = MockServer::start().await;
    mount_directory(&azure).await;
    let app = app_with_policy(&azure, &format!("{{ group = \"{SRE}\" }}")).await;

    post(&app, "1").await;
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(recipients(&mails), ["ana@example.com", "bo@example.com"]);

    let requests = directory_requests(&azure).await;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"))
    );
    for request in &requests {
        assert_eq!(request.headers["authorization"], expected.as_str());
    }
    let memberships = requests
        .iter()
        .filter(|r| r.url.path().contains("/memberships/"))
        .count();
    assert_eq!(
        memberships, 2,
        "SRE and On-call, each once despite the cycle"
    );
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["problems"], json!([]), "{status}");

    // The members decide like any other approvers.
    let status = app
        .decide(&mails[0].token(), "approve", None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(status["release"]["approvals"]["approved"], 1);
}

#[tokio::test]
async fn the_members_are_reused_until_they_expire_then_looked_up_again() {
    let azure = MockServer::start().await;
    mount_directory(&azure).await;
    let app = app_with_policy(&azure, &format!("{{ group = \"{SRE}\" }}")).await;

    post(&app, "1").await;
    app.smtp.wait_for(2).await;
    app.wait_until_idle().await;
    let first = directory_requests(&azure).await.len();

    // Within the expiry (and before half of it): no request to Azure DevOps.
    post(&app, "2").await;
    app.smtp.wait_for(4).await;
    app.wait_until_idle().await;
    assert_eq!(directory_requests(&azure).await.len(), first);

    // Past the expiry the members are looked up again before they are used.
    app.advance_clock(Duration::from_secs(601)).await;
    post(&app, "3").await;
    app.smtp.wait_for(6).await;
    app.wait_until_idle().await;
    assert_eq!(directory_requests(&azure).await.len(), 2 * first);
}

#[tokio::test]
async fn past_half_the_expiry_a_release_gets_the_cached_members_while_they_are_refreshed() {
    let azure = MockServer::start().await;
    mount_directory(&azure).await;
    let app = app_with_policy(&azure, &format!("{{ group = \"{ONCALL}\" }}")).await;
    post(&app, "1").await;
    assert_eq!(
        recipients(&app.smtp.wait_for(2).await),
        ["ana@example.com", "bo@example.com"]
    );
    app.wait_until_idle().await;

    // On-call changes in Azure DevOps: Cy replaces Bo and SRE.
    azure.reset().await;
    mount_group(&azure, ONCALL, &[CY]).await;
    Mock::given(method("POST"))
        .and(path("/contoso/_apis/graph/subjectlookup"))
        .respond_with(Lookup(directory()))
        .mount(&azure)
        .await;

    app.advance_clock(Duration::from_secs(400)).await;
    post(&app, "2").await;
    let mails = app.smtp.wait_for(4).await;
    assert_eq!(
        recipients(&mails[2..]),
        ["ana@example.com", "bo@example.com"],
        "the cached answer, not a wait for the refresh"
    );
    wait_until("the background refresh", || async {
        (directory_requests(&azure).await.len() >= 2).then_some(())
    })
    .await;

    // The refreshed answer serves the next releases.
    let next = AtomicUsize::new(10);
    wait_until("a release asking the refreshed members", || async {
        let id = next.fetch_add(1, Ordering::Relaxed).to_string();
        post(&app, &id).await;
        let status = app
            .wait_for_release("Devx", &id, |s| {
                !s["approvers"].as_array().unwrap().is_empty()
            })
            .await;
        (status["approvers"][0]["email"] == "cy@example.com").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_failing_graph_shows_on_the_release_and_the_release_goes_on_when_graph_is_back() {
    let azure = MockServer::start().await;
    mount_group(&azure, SRE, &[ANA]).await;
    let down = Arc::new(AtomicBool::new(true));
    Mock::given(method("POST"))
        .and(path("/contoso/_apis/graph/subjectlookup"))
        .respond_with(Outage(down.clone(), Lookup(directory())))
        .mount(&azure)
        .await;
    let app = app_with_policy(&azure, &format!("{{ group = \"{SRE}\" }}")).await;

    post(&app, "1").await;
    let problem = wait_for_problem(&app, "Devx", "1", "", "approvers_failing").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("Azure DevOps") && detail.contains("503"),
        "{detail}"
    );
    assert!(app.smtp.received().is_empty());

    down.store(false, Ordering::Relaxed);
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
    wait_for_no_problem(&app, "Devx", "1", "").await;
}

/// Answers 503 while `down`, then as the inner responder.
struct Outage(Arc<AtomicBool>, Lookup);

impl Respond for Outage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.0.load(Ordering::Relaxed) {
            ResponseTemplate::new(503)
        } else {
            self.1.respond(request)
        }
    }
}

#[tokio::test]
async fn a_policy_naming_a_team_emails_its_members() {
    let azure = MockServer::start().await;
    mount_directory(&azure).await;
    let mut body = spec_example("core-team-members");
    // The example's users, and SRE as a member that is a group.
    body["value"][2]["identity"]["isContainer"] = json!(true);
    body["value"][2]["identity"]["descriptor"] = json!(SRE);
    Mock::given(method("GET"))
        .and(path(
            "/contoso/_apis/projects/Devx/teams/Web%20Team/members",
        ))
        .and(query_param("api-version", "7.1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&azure)
        .await;
    let app = app_with_policy(&azure, "{ team = \"Web Team\" }").await;

    post(&app, "1").await;
    let mails = app.smtp.wait_for(4).await;
    assert_eq!(
        recipients(&mails),
        [
            "ana@example.com",
            "bo@example.com",
            "fabrikamfiber1@hotmail.com",
            "fabrikamfiber3@hotmail.com"
        ]
    );
}

#[tokio::test]
async fn the_approver_a_service_hook_approval_is_assigned_to_is_emailed() {
    let azure = MockServer::start().await;
    azure_assigning(&azure, &[0]).await;
    mount_directory(&azure).await;
    let event = sample_event("ms.vss-release.deployment-approval-pending-event");
    let approver = event["resource"]["approval"]["approver"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut descriptor = spec_example("graph-descriptors-get");
    descriptor["value"] = json!(ONCALL);
    Mock::given(method("GET"))
        .and(path(format!("/contoso/_apis/graph/descriptors/{approver}")))
        .and(query_param("api-version", "7.1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(descriptor))
        .expect(1)
        .mount(&azure)
        .await;
    let url = format!("{}/contoso", azure.uri());
    let mut policy = policy("{ assigned = true }");
    policy.team_project = "Fabrikam".into();
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
        s.policies = vec![policy];
    })
    .await;

    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    // The approval is assigned to the group On-call: its members are asked.
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(recipients(&mails), ["ana@example.com", "bo@example.com"]);
}

#[tokio::test]
async fn without_azure_approvers_nothing_is_asked_of_azure_devops_graph() {
    let azure = MockServer::start().await;
    mount_directory(&azure).await;
    let url = format!("{}/contoso", azure.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
        s.approvers = Some("dee@example.com".into());
    })
    .await;

    post(&app, "1").await;
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["dee@example.com"]);
    app.wait_until_idle().await;
    assert!(directory_requests(&azure).await.is_empty());
}

#[tokio::test]
async fn the_approver_a_yaml_approval_step_is_assigned_to_is_emailed() {
    let azure = MockServer::start().await;
    azure_assigning(&azure, &[]).await;
    let event = sample_event("ms.vss-pipelinechecks-events.approval-pending");
    let approval = event["resource"]["approval"]["id"].as_str().unwrap();
    azure_assigning_yaml(&azure, &[approval]).await;
    mount_directory(&azure).await;
    let step_approver = event["resource"]["approval"]["steps"][0]["assignedApprover"]["id"]
        .as_str()
        .unwrap();
    let mut descriptor = spec_example("graph-descriptors-get");
    descriptor["value"] = json!(ANA);
    Mock::given(method("GET"))
        .and(path(format!(
            "/contoso/_apis/graph/descriptors/{step_approver}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(descriptor))
        .expect(1)
        .mount(&azure)
        .await;
    let url = format!("{}/contoso", azure.uri());
    let mut policy = policy("{ assigned = true }");
    // The documented sample names its project only by id.
    policy.team_project = event["resource"]["projectId"].as_str().unwrap().into();
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.azure_devops_url = Some(url);
        s.azure_devops_pat = Some(Secret::new(PAT));
        s.policies = vec![policy];
    })
    .await;

    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert_eq!(app.smtp.wait_for(1).await[0].to, ["ana@example.com"]);
}
