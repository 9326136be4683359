// The Azure Pipelines recipes of docs/azure-pipelines.md, as written: each body is read from
// that page, Azure's variables are substituted the way Azure substitutes them
// (unknown ones would stay literal and be refused), and the service is driven
// with it against a recording fake Azure DevOps.

use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::{
    fakes::{
        CLASSIC_RELEASE_VARIABLES, YAML_RUN_VARIABLES, accept_progress, azure_events_answering,
        callback_headers, task_completed, wait_for_task_completions,
    },
    helpers::{TestApp, TestSmtp, spawn_app_with},
};

/// The code block after `<!-- recipe: {name} -->` in docs/azure-pipelines.md.
fn recipe(name: &str) -> String {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/azure-pipelines.md"
    ))
    .unwrap();
    let marker = format!("<!-- recipe: {name} -->");
    let after = &page[page
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} in docs/azure-pipelines.md"))..];
    let start = after.find("```").unwrap();
    let block = &after[start..];
    let body_start = block.find('\n').unwrap() + 1;
    let end = block[body_start..].find("```").unwrap();
    block[body_start..body_start + end].to_owned()
}

/// `text` with Azure's variables substituted; panics on a variable the table
/// does not know (the recipe would send it literally).
fn substituted(text: &str) -> String {
    let mut text = text.to_owned();
    for (name, value) in CLASSIC_RELEASE_VARIABLES.iter().chain(YAML_RUN_VARIABLES) {
        text = text.replace(&format!("$({name})"), value);
    }
    assert!(
        !text.contains("$("),
        "a variable no run substitutes: {text}"
    );
    text
}

/// The `body:` and `urlSuffix:` inputs of the recipe's `InvokeRESTAPI@1` task.
fn task_inputs(yaml: &str) -> (String, String) {
    let input = |name: &str| {
        let line = yaml
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}: "))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("{name} in {yaml}"));
        line.trim_matches('\'').to_owned()
    };
    (input("urlSuffix"), input("body"))
}

async fn app() -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
    })
    .await
}

async fn post(app: &TestApp, suffix: &str, body: &Value, headers: &[(&str, String)]) -> Value {
    let mut request = app
        .client
        .post(format!("{}{suffix}", app.address))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer = request.send().await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_classic_gate_recipe_passes_its_criteria_once_the_approvers_approve() {
    let app = app().await;
    let body: Value = serde_json::from_str(&substituted(&recipe("classic-gate"))).unwrap();
    // Azure's default task headers come along in polling mode too: ignored.
    let azure = MockServer::start().await;
    let headers = callback_headers(&azure);
    let first = post(&app, "/release", &body, &headers).await;
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(
        (
            first["Stage"].as_str(),
            first["Attempt"].as_u64(),
            first["DefinitionName"].as_str()
        ),
        (Some("Production"), Some(1), Some("Fabrikam.CD"))
    );
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;
    let evaluated = post(&app, "/release", &body, &headers).await;
    assert_eq!(
        evaluated["status"], "approved",
        "the criteria eq(root['status'], 'approved') pass"
    );
    assert!(
        azure.received_requests().await.unwrap().is_empty(),
        "no callback in polling mode"
    );
}

#[tokio::test]
async fn the_yaml_check_recipe_in_callback_mode_completes_the_check_when_decided() {
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    accept_progress(&azure).await;
    let app = app().await;
    let body: Value = serde_json::from_str(&substituted(&recipe("yaml-check"))).unwrap();
    let answer = post(
        &app,
        "/release?mode=callback",
        &body,
        &callback_headers(&azure),
    )
    .await;
    assert_eq!(answer["status"], "pending");
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;
    let completed = wait_for_task_completions(&azure, 1).await;
    let sent: Value = serde_json::from_slice(&completed[0].body).unwrap();
    assert_eq!(sent, task_completed("succeeded"));
}

#[tokio::test]
async fn the_agentless_job_recipe_uses_callback_mode_and_is_completed_once() {
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    accept_progress(&azure).await;
    let app = app().await;
    let (suffix, body) = task_inputs(&recipe("agentless-job"));
    assert!(
        suffix.contains("mode=callback"),
        "evaluated once: it must wait"
    );
    let body: Value = serde_json::from_str(&substituted(&body)).unwrap();
    let answer = post(&app, &suffix, &body, &callback_headers(&azure)).await;
    assert_eq!(
        (answer["Stage"].as_str(), answer["status"].as_str()),
        (Some("deploy"), Some("pending"))
    );
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "reject", Some("not today")).await;
    let completed = wait_for_task_completions(&azure, 1).await;
    let sent: Value = serde_json::from_slice(&completed[0].body).unwrap();
    assert_eq!(sent["result"], json!("failed"));
}
