// The Azure DevOps extension (extension/, docs/azure-devops-extension.md), as Azure
// would run it: the task's requests are read from its task.json, Azure's variables
// substituted for each host the way Azure substitutes them, each body checked against
// the request schema of POST /release in openapi/openapi.json, and the service driven
// with them, authenticated as the manifest's service connection type says.

use std::collections::HashMap;

use base64::Engine;
use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::{
    fakes::{
        CLASSIC_RELEASE_VARIABLES, JOB_TOKEN, YAML_RUN_VARIABLES, accept_progress, json_body,
        task_completed, wait_for_task_completions,
    },
    helpers::{TestApp, TestSmtp, spawn_app_with},
    openapi_schema::{document, request_schema, violations},
    success_criteria::evaluate,
};

const KEY: &str = "extension-key-0123456789abcdef";

fn read(path: &str) -> Value {
    let file = format!("{}/extension/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

fn task() -> Value {
    read("tasks/deploy-gate-approval/task.json")
}

/// The contribution of `manifest` of type `kind`.
fn contribution<'a>(manifest: &'a Value, kind: &str) -> &'a Value {
    let all = manifest["contributions"].as_array().unwrap();
    let mut found = all.iter().filter(|c| c["type"] == kind);
    let one = found
        .next()
        .unwrap_or_else(|| panic!("a {kind} contribution"));
    assert!(found.next().is_none(), "one {kind} contribution");
    one
}

/// A pipeline run: the task's input values and Azure's variables.
struct Run {
    inputs: HashMap<String, String>,
    variables: HashMap<String, String>,
}

impl Run {
    /// The task's defaults, `overrides` (input names or aliases, as in YAML) and
    /// `variables`, with the host type and the service connection's URL.
    fn new(
        host: &str,
        url: &str,
        overrides: &[(String, String)],
        variables: &[(&str, &str)],
    ) -> Self {
        let task = task();
        let mut inputs = HashMap::new();
        for input in task["inputs"].as_array().unwrap() {
            let name = input["name"].as_str().unwrap();
            let value = input["defaultValue"].as_str().unwrap_or("");
            inputs.insert(name.to_lowercase(), value.to_owned());
            for (given, value) in overrides {
                let aliases = input["aliases"].as_array().into_iter().flatten();
                if given == name
                    || aliases
                        .into_iter()
                        .any(|a| a.as_str() == Some(given.as_str()))
                {
                    inputs.insert(name.to_lowercase(), value.clone());
                }
            }
        }
        let mut all: HashMap<String, String> = variables
            .iter()
            .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
            .collect();
        all.insert("system.hosttype".into(), host.into());
        all.insert("endpoint.url".into(), url.into());
        Run {
            inputs,
            variables: all,
        }
    }

    /// `text` with every `$(name)` Azure knows replaced, inputs first (their values
    /// expanded in turn), names compared ignoring case; unknown ones stay literal.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("$(") {
            let Some(end) = rest[start..].find(')') else {
                break;
            };
            let name = rest[start + 2..start + end].to_lowercase();
            out.push_str(&rest[..start]);
            match (self.inputs.get(&name), self.variables.get(&name)) {
                (Some(input), _) => out.push_str(&self.expand(input)),
                (None, Some(variable)) => out.push_str(variable),
                (None, None) => out.push_str(&rest[start..=start + end]),
            }
            rest = &rest[start + end + 1..];
        }
        out + rest
    }

    /// The one request of the task's chain that this host does not skip.
    fn request(&self) -> Value {
        let chain = task()["execution"]["HttpRequestChain"]["Execute"].clone();
        let mut run: Vec<Value> = chain
            .as_array()
            .unwrap()
            .iter()
            .filter(|section| {
                let skip = section["ExecutionOptions"]["SkipSectionExpression"].as_str();
                !skip.is_some_and(|s| evaluate(&self.expand(s), &Value::Null).unwrap())
            })
            .map(|section| section["RequestInputs"].clone())
            .collect();
        assert_eq!(
            run.len(),
            1,
            "exactly one request runs on {:?}",
            self.variables["system.hosttype"]
        );
        run.remove(0)
    }

    /// The request's field `name`, substituted; it must leave no macro unresolved.
    fn field(&self, request: &Value, name: &str) -> String {
        let text = self.expand(request[name].as_str().unwrap_or(""));
        assert!(
            !text.contains("$("),
            "{name} keeps a variable no run resolves: {text}"
        );
        text
    }
}

/// The request body of `request` in `run`, checked against POST /release's schema.
fn checked_body(run: &Run, request: &Value) -> Value {
    let body: Value = serde_json::from_str(&run.field(request, "Body")).unwrap();
    let doc = document();
    let problems = violations(&doc, request_schema(&doc, "post", "/release"), &body);
    assert!(problems.is_empty(), "{problems:#?} in {body}");
    body
}

/// The `Authorization` header each authentication scheme of the manifest's service
/// connection type sends, with `KEY` entered as the key.
fn authorizations() -> Vec<String> {
    let manifest = read("vss-extension.json");
    let endpoint = contribution(&manifest, "ms.vss-endpoint.service-endpoint-type");
    let schemes = endpoint["properties"]["authenticationSchemes"]
        .as_array()
        .unwrap();
    schemes
        .iter()
        .map(|scheme| match scheme["type"].as_str().unwrap() {
            "ms.vss-endpoint.endpoint-auth-scheme-token" => {
                let header = &scheme["headers"][0];
                assert_eq!(header["name"], "Authorization");
                header["value"]
                    .as_str()
                    .unwrap()
                    .replace("{{{endpoint.apitoken}}}", KEY)
            }
            "ms.vss-endpoint.endpoint-auth-scheme-basic" => {
                let credentials =
                    base64::engine::general_purpose::STANDARD.encode(format!(":{KEY}"));
                format!("Basic {credentials}")
            }
            other => panic!("an authentication scheme deploy-gate cannot take: {other}"),
        })
        .collect()
}

/// Sends `request` as Azure would (URL, method, headers, body) with `authorization`;
/// callbacks go to `fake_azure` (the organization's URL, `PlanUrl`, names a loopback
/// port there, which the `ReleaseUrl` built from the same variable could not name).
async fn send(
    app: &TestApp,
    run: &Run,
    request: &Value,
    authorization: &str,
    fake_azure: Option<&MockServer>,
) -> (u16, Value) {
    assert_eq!(run.field(request, "Method"), "POST");
    let mut headers: HashMap<String, String> =
        serde_json::from_str(&run.field(request, "Headers")).unwrap();
    if let Some(azure) = fake_azure {
        let plan_url = headers.get_mut("PlanUrl").expect("a PlanUrl header");
        assert_eq!(*plan_url, run.variables["system.collectionuri"]);
        *plan_url = format!("{}/", azure.uri());
    }
    let mut call = app
        .client
        .post(run.field(request, "EndpointUrl"))
        .header("Authorization", authorization)
        .body(run.field(request, "Body"));
    for (name, value) in &headers {
        call = call.header(name, value);
    }
    let answer = call.send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

async fn app() -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(KEY));
        s.approvers = Some("ana@example.com".into());
    })
    .await
}

/// The YAML example of docs/azure-devops-extension.md: the task's reference and inputs.
fn yaml_example() -> (String, Vec<(String, String)>) {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/azure-devops-extension.md"
    ))
    .unwrap();
    let after = docs
        .split("<!-- extension: yaml-job -->")
        .nth(1)
        .expect("the YAML example");
    let block = after.split("```").nth(1).unwrap();
    let reference = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("- task: "))
        .unwrap();
    let inputs = block
        .split("inputs:")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (reference.to_owned(), inputs)
}

#[test]
fn the_manifest_ships_the_task_and_the_task_uses_the_manifest_s_connection_type() {
    let manifest = read("vss-extension.json");
    let task = task();
    let path = contribution(&manifest, "ms.vss-distributed-task.task")["properties"]["name"]
        .as_str()
        .unwrap();
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&path), "{path} is packaged: {files:?}");
    assert_eq!(read(&format!("{path}/task.json")), task);
    let endpoint = contribution(&manifest, "ms.vss-endpoint.service-endpoint-type");
    let connection = format!(
        "connectedService:{}",
        endpoint["properties"]["name"].as_str().unwrap()
    );
    let input = task["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == connection.as_str());
    let input = input.unwrap_or_else(|| panic!("an input of type {connection}"))["name"]
        .as_str()
        .unwrap();
    for section in task["execution"]["HttpRequestChain"]["Execute"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            section["RequestInputs"]["EndpointId"],
            format!("$({input})")
        );
    }
    assert!(
        task["friendlyName"].as_str().unwrap().chars().count() <= 40,
        "Azure's limit"
    );
    assert_eq!(task["runsOn"], json!(["Server", "ServerGate"]));
}

#[test]
fn a_gate_polls_with_the_built_in_criterion_and_agentless_jobs_ask_for_a_callback() {
    let url = "https://deploy-gate.example.com";
    let gate = Run::new("gates", url, &[], CLASSIC_RELEASE_VARIABLES);
    let polled = gate.request();
    assert_eq!(gate.field(&polled, "EndpointUrl"), format!("{url}/release"));
    assert_eq!(polled["WaitForCompletion"], "false");
    assert_eq!(
        polled["Expression"], "eq(root['status'], 'approved')",
        "the README's criterion"
    );
    let body = checked_body(&gate, &polled);
    assert_eq!(
        (&body["ReleaseId"], &body["Stage"]),
        (&json!("42"), &json!("Production"))
    );
    for host in ["release", "build"] {
        let job = Run::new(host, url, &[], CLASSIC_RELEASE_VARIABLES);
        let called_back = job.request();
        assert_eq!(
            job.field(&called_back, "EndpointUrl"),
            format!("{url}/release?mode=callback")
        );
        assert_eq!(called_back["WaitForCompletion"], "true");
        assert_eq!(checked_body(&job, &called_back), body, "the same release");
    }
}

#[test]
fn the_schema_check_refuses_what_deploy_gate_would_not_take() {
    let doc = document();
    let schema = request_schema(&doc, "post", "/release");
    let fine = json!({"ReleaseName": "R", "ReleaseId": "42", "TeamProject": "P", "Attempt": "1"});
    assert!(violations(&doc, schema, &fine).is_empty());
    for (bad, broken) in [
        (
            json!({"ReleaseName": "R", "ReleaseId": "42"}),
            "TeamProject",
        ),
        (
            json!({"ReleaseName": "R", "ReleaseId": "42", "TeamProject": "P", "Stag": "x"}),
            "Stag",
        ),
        (
            json!({"ReleaseName": "R", "ReleaseId": "42", "TeamProject": "P", "Attempt": "0"}),
            "Attempt",
        ),
        (
            json!({"ReleaseName": "R", "ReleaseId": true, "TeamProject": "P"}),
            "ReleaseId",
        ),
        (
            json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "P", "RequestedFor": "$(Build.RequestedForEmail)"}),
            "RequestedFor",
        ),
    ] {
        let problems = violations(&doc, schema, &bad);
        assert!(
            problems.iter().any(|p| p.contains(broken)),
            "{broken}: {problems:?}"
        );
    }
}

#[tokio::test]
async fn as_a_classic_gate_the_task_passes_its_criterion_once_the_approvers_approve() {
    let app = app().await;
    let run = Run::new("gates", &app.address, &[], CLASSIC_RELEASE_VARIABLES);
    let request = run.request();
    checked_body(&run, &request);
    let criterion = request["Expression"].as_str().unwrap();
    let [token, basic] = authorizations()
        .try_into()
        .expect("two authentication schemes");
    let (status, first) = send(&app, &run, &request, &token, None).await;
    assert_eq!(
        (status, evaluate(criterion, &first)),
        (202, Ok(false)),
        "{first}"
    );
    let (status, _) = send(
        &app,
        &run,
        &request,
        "Bearer not-the-key-0123456789abcdef",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;
    let (status, evaluated) = send(&app, &run, &request, &basic, None).await;
    assert_eq!(
        (status, evaluate(criterion, &evaluated)),
        (200, Ok(true)),
        "{evaluated}"
    );
    assert_eq!(evaluated["Stage"], "Production");
}

#[tokio::test]
async fn the_documented_yaml_job_waits_for_deploy_gate_s_callback_and_succeeds_once_approved() {
    let (reference, inputs) = yaml_example();
    let task = task();
    assert_eq!(
        reference,
        format!(
            "{}@{}",
            task["name"].as_str().unwrap(),
            task["version"]["Major"]
        )
    );
    let azure = MockServer::start().await;
    accept_progress(&azure).await;
    let app = app().await;
    let plan = [
        ("System.PlanId", "plan-1"),
        ("System.JobId", "job-1"),
        ("System.TimelineId", "timeline-1"),
        ("System.TaskInstanceId", "task-1"),
        ("System.AccessToken", JOB_TOKEN),
    ];
    let variables: Vec<(&str, &str)> = YAML_RUN_VARIABLES.iter().chain(&plan).copied().collect();
    let run = Run::new("build", &app.address, &inputs, &variables);
    let request = run.request();
    let body = checked_body(&run, &request);
    assert_eq!(
        (&body["ReleaseId"], &body["Stage"]),
        (&json!("1234"), &json!("deploy"))
    );
    let (status, answer) = send(&app, &run, &request, &authorizations()[0], Some(&azure)).await;
    assert_eq!(
        (status, &answer["status"]),
        (202, &json!("pending")),
        "{answer}"
    );
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    app.decide(&mail.token(), "approve", None).await;
    let completed = wait_for_task_completions(&azure, 1).await;
    assert_eq!(
        completed[0].url.path(),
        "/proj-guid/_apis/distributedtask/hubs/build/plans/plan-1/events"
    );
    assert_eq!(json_body(&completed[0]), task_completed("succeeded"));
}
