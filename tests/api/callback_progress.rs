// Progress shown in Azure DevOps in callback mode (issue 19, point 5): TaskStarted
// on registration, then lines in the job's timeline feed as things happen (what
// the task waits for, each decision, the outcome), and TaskCompleted last. The
// calls follow Microsoft's server-task sample (azure-pipelines-extensions,
// ServerTaskHelper/HttpRequestSampleWithoutHandler/MyApp.cs); a recording fake
// stands in for Azure DevOps.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::{
    fakes::{
        EVENTS_PATH, FEED_PATH, JOB_TOKEN, accept_progress, callback_headers, json_body,
        post_callback_mode, settle, task_completed, task_started, wait_for_requests,
        wait_for_task_completions,
    },
    helpers::{TestApp, TestSmtp, spawn_app, spawn_app_with},
};

fn release(id: &str, approvers: &str) -> Value {
    json!({"ReleaseName": "Desafio-CD", "ReleaseId": id, "TeamProject": "Devx",
           "Approvers": approvers})
}

/// A fake Azure DevOps answering every POST `204` and recording it.
async fn recording_azure() -> MockServer {
    let azure = MockServer::start().await;
    accept_progress(&azure).await;
    azure
}

/// One call Azure DevOps received, checked for method, auth, content type and
/// api-version: its path and JSON body.
#[derive(Debug, PartialEq)]
struct Call {
    path: String,
    body: Value,
}

/// Every call `azure` received, in order, each checked as Microsoft's sample makes it.
async fn calls(azure: &MockServer) -> Vec<Call> {
    let received = azure.received_requests().await.unwrap();
    received
        .iter()
        .map(|request| {
            assert_eq!(request.method.as_str(), "POST");
            let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
            assert_eq!(header("authorization"), format!("Bearer {JOB_TOKEN}"));
            assert_eq!(header("content-type"), "application/json");
            let path = request.url.path().to_owned();
            let version = if path.ends_with("/feed") {
                "4.1"
            } else {
                "2.0-preview.1"
            };
            assert_eq!(
                request.url.query(),
                Some(&*format!("api-version={version}"))
            );
            Call {
                path,
                body: json_body(request),
            }
        })
        .collect()
}

/// A TaskStarted or TaskCompleted event call.
fn event(body: Value) -> Call {
    Call {
        path: EVENTS_PATH.into(),
        body,
    }
}

/// A feed call carrying `lines` (stamped with the time each thing happened).
fn feed(lines: &[&str]) -> Call {
    Call {
        path: FEED_PATH.into(),
        body: json!({"value": lines, "count": lines.len()}),
    }
}

/// The calls with each feed line's leading time stamp checked and removed.
fn unstamped(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .map(|mut call| {
            if let Some(lines) = call.body.get_mut("value").and_then(Value::as_array_mut) {
                for line in lines {
                    let (stamp, text) = line.as_str().unwrap().split_once(' ').unwrap();
                    assert!(DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp}");
                    *line = text.into();
                }
            }
            call
        })
        .collect()
}

/// The token of the approval email sent to `to`.
fn token_of(app: &TestApp, to: &str) -> String {
    app.email_about(to, "Desafio-CD").token()
}

#[tokio::test]
async fn azure_shows_the_task_started_what_it_waits_for_each_decision_and_the_outcome_before_task_completed()
 {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let headers = callback_headers(&azure);
    let body = release("1", "ana@example.com, bruno@example.com");
    assert_eq!(
        post_callback_mode(&app, &body, &headers).await.status(),
        202
    );

    wait_for_requests(&azure, 2).await;
    settle(&app).await;
    assert_eq!(
        unstamped(calls(&azure).await),
        [
            event(task_started()),
            feed(&["waiting for 2 of 2 approvals: ana@…, bruno@…"]),
        ]
    );

    app.smtp.wait_for(2).await;
    let ana = app
        .decide(
            &token_of(&app, "ana@example.com"),
            "approve",
            Some("looks\ngood"),
        )
        .await;
    assert_eq!(ana.status(), 200);
    wait_for_requests(&azure, 3).await;
    settle(&app).await;
    let bruno = app
        .decide(&token_of(&app, "bruno@example.com"), "approve", None)
        .await;
    assert_eq!(bruno.status(), 200);
    wait_for_task_completions(&azure, 1).await;

    // The check evaluates again after the decision: nothing follows TaskCompleted.
    assert_eq!(
        post_callback_mode(&app, &body, &headers).await.status(),
        200
    );
    settle(&app).await;
    app.wait_until_idle().await;
    assert_eq!(
        unstamped(calls(&azure).await)[2..],
        [
            feed(&[
                "approved by ana@…: looks good",
                "waiting for 1 of 2 approvals: bruno@…"
            ]),
            feed(&[
                "approved by bruno@…",
                "outcome: approved (2 of 2 approvals)"
            ]),
            event(task_completed("succeeded")),
        ]
    );
}

#[tokio::test]
async fn each_registration_on_a_decided_release_is_started_told_the_outcome_and_completed_once() {
    let azure = recording_azure().await;
    let app = spawn_app().await;
    let body = release("2", "ana@example.com");
    assert_eq!(app.post_release(&body).await.status(), 202);
    app.smtp.wait_for(1).await;
    let token = token_of(&app, "ana@example.com");
    assert_eq!(
        app.decide(&token, "reject", Some("not today"))
            .await
            .status(),
        200
    );
    settle(&app).await;

    let first = callback_headers(&azure);
    let mut second = first.clone();
    for (name, value) in &mut second {
        match *name {
            "JobId" => *value = "job-2".into(),
            "TaskInstanceId" => *value = "task-2".into(),
            _ => {}
        }
    }
    for headers in [&first, &second, &first, &second] {
        assert_eq!(post_callback_mode(&app, &body, headers).await.status(), 200);
    }
    wait_for_task_completions(&azure, 2).await;
    settle(&app).await;
    app.wait_until_idle().await;

    let calls = unstamped(calls(&azure).await);
    let second_feed = FEED_PATH.replace("job-1", "job-2");
    for (task, job, feed_path) in [
        ("task-1", "job-1", FEED_PATH),
        ("task-2", "job-2", &*second_feed),
    ] {
        let ids = json!({"taskId": task, "jobId": job});
        let of_task: Vec<&Call> = calls
            .iter()
            .filter(|c| c.path == feed_path || (c.body["taskId"] == task && c.body["jobId"] == job))
            .collect();
        let mut started = task_started();
        let mut completed = task_completed("failed");
        for event in [&mut started, &mut completed] {
            event["taskId"] = ids["taskId"].clone();
            event["jobId"] = ids["jobId"].clone();
        }
        let lines = json!({"value": ["outcome: rejected by ana@…: not today"], "count": 1});
        assert_eq!(
            of_task,
            [
                &event(started),
                &Call {
                    path: feed_path.to_owned(),
                    body: lines
                },
                &event(completed),
            ],
            "{task}"
        );
    }
}

#[tokio::test]
async fn feed_lines_azure_keeps_refusing_never_hold_back_task_completed() {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(FEED_PATH))
        .respond_with(ResponseTemplate::new(404))
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    let app = spawn_app().await;
    let body = release("3", "ana@example.com");
    assert_eq!(
        post_callback_mode(&app, &body, &callback_headers(&azure))
            .await
            .status(),
        202
    );
    app.smtp.wait_for(1).await;
    let token = token_of(&app, "ana@example.com");
    assert_eq!(app.decide(&token, "approve", None).await.status(), 200);

    let completions = wait_for_task_completions(&azure, 1).await;
    assert_eq!(json_body(&completions[0]), task_completed("succeeded"));
    app.wait_until_idle().await;
    assert_eq!(app.release_status("Devx", "3").await["problems"], json!([]));
}

#[tokio::test]
async fn a_release_reaching_its_deadline_undecided_shows_it_expired_before_task_completed() {
    let azure = recording_azure().await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(1));
    })
    .await;
    let body = release("4", "ana@example.com");
    let headers = callback_headers(&azure);
    assert_eq!(
        post_callback_mode(&app, &body, &headers).await.status(),
        202
    );
    wait_for_task_completions(&azure, 1).await;
    app.wait_until_idle().await;

    let calls = unstamped(calls(&azure).await);
    let deadline = app.release_status("Devx", "4").await["deadline"].clone();
    let deadline = DateTime::parse_from_rfc3339(deadline.as_str().unwrap()).unwrap();
    let expired = format!(
        "outcome: expired, undecided at its deadline {}",
        deadline.to_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    // The deadline may pass before the first lines are posted: then they go together.
    let (first, last) = (&calls[0], calls.last().unwrap());
    assert_eq!(
        (first, last),
        (&event(task_started()), &event(task_completed("failed")))
    );
    let middle = &calls[1..calls.len() - 1];
    assert!(middle.iter().all(|c| c.path == FEED_PATH), "{middle:?}");
    let lines: Vec<&Value> = middle
        .iter()
        .flat_map(|c| c.body["value"].as_array().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            &json!("waiting for 1 of 1 approvals: ana@…"),
            &json!(expired)
        ]
    );
}
