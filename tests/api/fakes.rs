// What the job tests share: a dependency that fails on demand and counts what it
// answered, Azure DevOps requests as the documented payloads, waits for the queue,
// problems and requests at a fake, the metrics scrape, a slow mail server, and a
// release with email jobs stored directly.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_partial_json, method, path, path_regex, query_param},
};

use crate::helpers::{TestApp, wait_until};

/// Waits until the app's queue holds no due job (one running counts as due).
pub async fn settle(app: &TestApp) {
    wait_until("the job queue to empty", || async {
        let due = app.store.due_job_count(app.clock.now()).await.unwrap();
        (due == 0).then_some(())
    })
    .await;
}

/// The problems of the release's status body (`?Stage=` when `stage` is not empty).
pub async fn problems(app: &TestApp, project: &str, id: &str, stage: &str) -> Vec<Value> {
    let mut request = app
        .client
        .get(format!("{}/release/{project}/{id}", app.address));
    if !stage.is_empty() {
        request = request.query(&[("Stage", stage)]);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let status: Value = answer.json().await.unwrap();
    status["problems"].as_array().cloned().unwrap_or_default()
}

/// Waits until the release's status body lists a problem with `code`, and returns it.
pub async fn wait_for_problem(
    app: &TestApp,
    project: &str,
    id: &str,
    stage: &str,
    code: &str,
) -> Value {
    let what = format!("problem {code} on release {project}/{id}");
    wait_until(&what, || async {
        let list = problems(app, project, id, stage).await;
        list.into_iter().find(|p| p["code"] == code)
    })
    .await
}

/// Waits until the release's status body lists no problem at all.
pub async fn wait_for_no_problem(app: &TestApp, project: &str, id: &str, stage: &str) {
    let what = format!("release {project}/{id} to have no problem left");
    wait_until(&what, || async {
        problems(app, project, id, stage)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

/// The requests `server` received that change something: all but the `GET`s
/// (deploy-gate's questions to Azure DevOps before it acts on an approval).
pub async fn writes(server: &MockServer) -> Vec<Request> {
    let received = server.received_requests().await.unwrap();
    received
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect()
}

/// Waits until `server` has received `count` requests other than `GET`s, and
/// returns those.
pub async fn wait_for_requests(server: &MockServer, count: usize) -> Vec<Request> {
    wait_until(&format!("{count} request(s) at the fake"), || async {
        let received = writes(server).await;
        (received.len() >= count).then_some(received)
    })
    .await
}

/// Mounts on `azure`, under `/contoso`, Approvals - Query for YAML approvals
/// assigned to deploy-gate's identity (`userIds`), directly or through a
/// group: `ours`, in the list shape Azure DevOps answers with.
pub async fn azure_assigning_yaml(azure: &MockServer, ours: &[&str]) {
    let value: Vec<Value> = ours
        .iter()
        .map(|id| json!({"id": id, "status": "pending"}))
        .collect();
    Mock::given(method("GET"))
        .and(path_regex(r"^/contoso/[^/]+/_apis/pipelines/approvals$"))
        .and(query_param("userIds", GATE_IDENTITY))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"count": value.len(), "value": value})),
        )
        .mount(azure)
        .await;
}

/// deploy-gate's identity in the fake Azure DevOps: the owner of the PAT.
pub const GATE_IDENTITY: &str = "5f1c2d3e-7a8b-4c9d-8e0f-0a1b2c3d4e5f";

/// Mounts on `azure`, under `/contoso`, the answers to deploy-gate's two
/// questions before it acts on a classic approval: who the PAT belongs to
/// (`connectionData`), and which pending approvals that identity may decide,
/// directly or through a group (Approvals - List): `ours`.
pub async fn azure_assigning(azure: &MockServer, ours: &[u64]) {
    Mock::given(method("GET"))
        .and(path("/contoso/_apis/connectionData"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authenticatedUser": {"id": GATE_IDENTITY, "descriptor": "Microsoft.IdentityModel.Claims.ClaimsIdentity;deploy-gate", "providerDisplayName": "deploy-gate bot"},
            "authorizedUser": {"id": GATE_IDENTITY, "providerDisplayName": "deploy-gate bot"},
            "instanceId": "c12d0eb8-e382-443b-9f9c-c52cba5014c2"
        })))
        .mount(azure)
        .await;
    let value: Vec<Value> = ours
        .iter()
        .map(|id| json!({"id": id, "status": "pending", "approvalType": "preDeploy"}))
        .collect();
    Mock::given(method("GET"))
        .and(path_regex(r"^/contoso/[^/]+/_apis/release/approvals$"))
        .and(query_param("assignedToFilter", GATE_IDENTITY))
        .and(query_param("includeMyGroupApprovals", "true"))
        .and(query_param("statusFilter", "pending"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"count": value.len(), "value": value})),
        )
        .mount(azure)
        .await;
}

/// The text of `GET /metrics`; panics unless it is a 200 in the OpenMetrics format.
pub async fn scrape(app: &TestApp) -> String {
    let answer = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    answer.text().await.unwrap()
}

/// The value of the sample named exactly `series` (with its labels), 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A wiremock responder that answers `failure` to the first requests (all of them
/// until [`Flaky::recover`]), then `success`, counting the successes it gave.
#[derive(Clone)]
pub struct Flaky {
    failures_left: Arc<AtomicUsize>,
    successes: Arc<AtomicUsize>,
    failure: ResponseTemplate,
    success: ResponseTemplate,
}

impl Flaky {
    /// Fails the first `count` requests.
    pub fn failing_first(
        count: usize,
        failure: ResponseTemplate,
        success: ResponseTemplate,
    ) -> Self {
        Self {
            failures_left: Arc::new(AtomicUsize::new(count)),
            successes: Arc::default(),
            failure,
            success,
        }
    }

    /// Fails every request until [`Flaky::recover`].
    pub fn failing(failure: ResponseTemplate, success: ResponseTemplate) -> Self {
        Self::failing_first(usize::MAX, failure, success)
    }

    /// Answers with success from now on.
    pub fn recover(&self) {
        self.failures_left.store(0, Ordering::SeqCst);
    }

    /// How many successful answers were given.
    pub fn successes(&self) -> usize {
        self.successes.load(Ordering::SeqCst)
    }
}

impl Respond for Flaky {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let failed = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failed {
            return self.failure.clone();
        }
        self.successes.fetch_add(1, Ordering::SeqCst);
        self.success.clone()
    }
}

/// The path of the TaskCompleted events of [`callback_headers`]' plan.
pub const EVENTS_PATH: &str = "/proj-guid/_apis/distributedtask/hubs/checks/plans/plan-1/events";

/// The job access token of [`callback_headers`]; never shown to anyone.
pub const JOB_TOKEN: &str = "job-token-never-shown";

/// The callback headers an Invoke REST API check sends by default (azure-devops.md §1.6).
pub fn callback_headers(azure: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("PlanUrl", format!("{}/", azure.uri())),
        ("ProjectId", "proj-guid".into()),
        ("HubName", "checks".into()),
        ("PlanId", "plan-1".into()),
        ("JobId", "job-1".into()),
        ("TimelineId", "timeline-1".into()),
        ("TaskInstanceId", "task-1".into()),
        ("AuthToken", JOB_TOKEN.into()),
    ]
}

/// The path of the timeline feed of [`callback_headers`]' job (azure-devops.md §2.2).
pub const FEED_PATH: &str = "/proj-guid/_apis/distributedtask/hubs/checks/plans/plan-1/timelines/timeline-1/records/job-1/feed";

/// Azure DevOps answering every TaskCompleted post of [`callback_headers`]' plan with
/// `responder`, and the task's progress (TaskStarted, feed lines) with `204`.
pub async fn azure_events_answering(responder: impl Respond + 'static) -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(body_partial_json(json!({"name": "TaskCompleted"})))
        .respond_with(responder)
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    azure
}

/// Makes `azure` answer `204` to every other POST, as Azure DevOps accepts a
/// TaskStarted event and feed lines.
pub async fn accept_progress(azure: &MockServer) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(u8::MAX)
        .mount(azure)
        .await;
}

/// The JSON body of a recorded request.
pub fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The TaskCompleted events among the requests `azure` received.
pub async fn task_completions(azure: &MockServer) -> Vec<Request> {
    let received = azure.received_requests().await.unwrap();
    received
        .into_iter()
        .filter(|r| json_body(r)["name"] == "TaskCompleted")
        .collect()
}

/// Waits until `azure` has received `count` TaskCompleted events, and returns them.
pub async fn wait_for_task_completions(azure: &MockServer, count: usize) -> Vec<Request> {
    wait_until(&format!("{count} TaskCompleted event(s)"), || async {
        let completions = task_completions(azure).await;
        (completions.len() >= count).then_some(completions)
    })
    .await
}

/// `POST /release` with `body` and `headers` (such as [`callback_headers`]).
pub async fn post_with_headers(
    app: &TestApp,
    body: &Value,
    headers: &[(&'static str, String)],
) -> reqwest::Response {
    post_release(app, "/release", body, headers).await
}

/// `POST /release?mode=callback` with `body` and `headers` (such as [`callback_headers`]).
pub async fn post_callback_mode(
    app: &TestApp,
    body: &Value,
    headers: &[(&'static str, String)],
) -> reqwest::Response {
    post_release(app, "/release?mode=callback", body, headers).await
}

async fn post_release(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&'static str, String)],
) -> reqwest::Response {
    let mut request = app.client.post(format!("{}{path}", app.address)).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// `POST /release` of release `Devx/{id}` for `approver`, in callback mode to `azure`.
pub async fn post_in_callback_mode(app: &TestApp, azure: &MockServer, id: &str, approver: &str) {
    let body =
        json!({"ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx", "Approvers": approver});
    let answer = post_callback_mode(app, &body, &callback_headers(azure)).await;
    assert_eq!(answer.status(), 202);
}

/// The TaskStarted event of [`callback_headers`]' task (azure-devops.md §2.1).
pub fn task_started() -> Value {
    json!({"name": "TaskStarted", "taskId": "task-1", "jobId": "job-1"})
}

/// The TaskCompleted event of [`callback_headers`]' task with `result` (azure-devops.md §2.1).
pub fn task_completed(result: &str) -> Value {
    json!({"name": "TaskCompleted", "taskId": "task-1", "jobId": "job-1", "result": result})
}

/// A TCP relay to a local port that holds each connection for a while before
/// relaying it, and counts the connections it was asked for.
pub struct SlowRelay {
    /// The port it listens on.
    pub port: u16,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SlowRelay {
    /// Relays to `upstream` on loopback, each connection `delay` late.
    pub async fn start(upstream: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut outbound = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self {
            port,
            connections,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Microsoft's documented sample payload of the service-hook event
/// `event_type`, as copied into tests/fixtures/azure-devops/ from
/// docs/service-hooks/events.md of MicrosoftDocs/azure-devops-docs.
pub fn sample_event(event_type: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/azure-devops/{event_type}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An approvers API at `/approvers` that answers each release id of `answers` with its
/// response (a failure, say, or an empty list) and every other release with a 404.
pub async fn approvers_api(answers: &[(&str, ResponseTemplate)]) -> MockServer {
    let server = MockServer::start().await;
    for (release_id, answer) in answers {
        Mock::given(method("GET"))
            .and(path("/approvers"))
            .and(query_param("ReleaseId", *release_id))
            .respond_with(answer.clone())
            .mount(&server)
            .await;
    }
    server
}

/// What Azure substitutes in a classic release (values shaped as in a real run), for the
/// recipes and the extension's task.
pub const CLASSIC_RELEASE_VARIABLES: &[(&str, &str)] = &[
    ("Release.ReleaseName", "Release-42"),
    ("Release.ReleaseId", "42"),
    ("Release.EnvironmentName", "Production"),
    ("Release.AttemptNumber", "1"),
    ("Release.RequestedForEmail", "cy@example.com"),
    ("Release.DefinitionName", "Fabrikam.CD"),
    (
        "Release.ReleaseWebURL",
        "https://dev.azure.com/fabrikam/Fabrikam/_releaseProgress?_a=release-pipeline-progress&releaseId=42",
    ),
    ("System.TeamProject", "Fabrikam"),
];

/// What Azure substitutes in a YAML run.
pub const YAML_RUN_VARIABLES: &[(&str, &str)] = &[
    ("Build.DefinitionName", "web"),
    ("Build.BuildNumber", "20261206.3"),
    ("Build.BuildId", "1234"),
    ("Build.RequestedForEmail", "cy@example.com"),
    ("System.StageName", "deploy"),
    ("System.StageAttempt", "1"),
    ("System.TeamProject", "Fabrikam"),
    ("System.TeamProjectId", "proj-guid"),
    ("System.CollectionUri", "https://dev.azure.com/fabrikam/"),
];

/// Stores a release due at `at` with an email job for each of `approvers`
/// (`a1@example.com`, …), and its deadline's job; its id.
pub async fn release_with_email_jobs(
    app: &TestApp,
    id: &str,
    approvers: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    use chrono::Duration;
    use deploy_gate::domain::{
        approver::ApproverEmail,
        job::{ApprovalJob, JobKind, NewJob, Subject},
        policy::{NewApprovers, ResolvedApprovers, Rule},
        release::{NewRelease, ReleaseKey},
    };

    let key = ReleaseKey::parse("Devx", id, "").unwrap();
    let release = NewRelease::parse(key, "R", None).unwrap();
    let emails: Vec<_> = (1..=approvers)
        .map(|n| ApproverEmail::parse(&format!("a{n}@example.com")).unwrap())
        .collect();
    let approvers: Vec<_> = (0..)
        .zip(&emails)
        .map(|(n, e)| (e, at + Duration::milliseconds(n)))
        .collect();
    let resolved = ResolvedApprovers {
        approvers: Vec::new(),
        source: "static".to_owned(),
        problem: None,
        rule: Rule::from_required(None),
        channels: Vec::new(),
    };
    let mut tx = app.store.begin().await.unwrap();
    let inserted = tx.insert_release(&release, None, at + Duration::days(1), at);
    let release_id = inserted.await.unwrap().expect("a new release").id;
    let email = ApprovalJob {
        kind: JobKind::SendApprovalEmail,
        channel: None,
    };
    let new = NewApprovers {
        release_id,
        approvers: &approvers,
        jobs: &[email],
        resolved: &resolved,
        now: at,
    };
    tx.add_approvers(&new, None).await.unwrap();
    let deadline = NewJob {
        kind: JobKind::ExpireRelease,
        release_id,
        subject: Subject::Release,
        run_at: at,
    };
    tx.enqueue(&[deadline]).await.unwrap();
    tx.commit().await.unwrap();
    release_id
}
