// The status body names a job that is failing, with its attempts, its next attempt
// and the latest error, while it fails, and drops it once the job succeeds: the
// callback, the deadline, reminders and the escalation (the write-back is in
// write_back.rs). Reminders, escalations and deadlines come by the app's clock.

use std::time::Duration;

use chrono::DateTime;
use deploy_gate::settings::PolicySettings;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use wiremock::ResponseTemplate;

use crate::{
    fakes::{
        Flaky, JOB_TOKEN, azure_events_answering, post_in_callback_mode, settle, task_completed,
        task_completions, wait_for_no_problem, wait_for_problem, wait_for_task_completions,
    },
    helpers::{BACKEND, Backend, TestApp, TestSmtp, spawn_app, spawn_app_with},
};

/// Checks a retried job's problem detail: `{what} failed N time(s), next attempt at
/// {time}: {error}`, and returns the error.
fn retried_error(problem: &Value, what: &str) -> String {
    let detail = problem["detail"].as_str().unwrap();
    let rest = detail
        .strip_prefix(&format!("{what} failed "))
        .unwrap_or_else(|| panic!("{detail:?} starts with {what:?}"));
    let (attempts, rest) = rest.split_once(" time(s), next attempt at ").unwrap();
    assert!(attempts.parse::<u32>().unwrap() >= 1, "{detail}");
    let (at, error) = rest.split_once(": ").unwrap();
    DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at:?} is a time: {e}"));
    error.to_owned()
}

/// A policy for every project with `adjust` applied.
fn policy_for_all(adjust: impl FnOnce(&mut PolicySettings)) -> PolicySettings {
    let mut policy: PolicySettings = toml::from_str(r#"team_project = "*""#).unwrap();
    adjust(&mut policy);
    policy
}

/// `POST /release` of release `Devx/{id}` for ana, and her approval email.
async fn create_for_ana(app: &TestApp, id: &str) {
    let body = json!({"ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx", "Approvers": "ana@example.com"});
    assert_eq!(app.post_release(&body).await.status(), 202);
    app.smtp.wait_for(1).await;
    settle(app).await;
}

#[tokio::test]
async fn a_callback_azure_devops_keeps_refusing_shows_callback_failing_until_it_lands() {
    let flaky = Flaky::failing(
        ResponseTemplate::new(500).set_body_string("TF400898: internal error"),
        ResponseTemplate::new(204),
    );
    let azure = azure_events_answering(flaky.clone()).await;
    let app = spawn_app().await;
    post_in_callback_mode(&app, &azure, "1", "ana@example.com").await;
    let mail = app.smtp.wait_for(1).await.swap_remove(0);
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );

    let problem = wait_for_problem(&app, "Devx", "1", "", "callback_failing").await;
    let error = retried_error(&problem, "reporting the decision to Azure DevOps");
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(
        !problem.to_string().contains(JOB_TOKEN),
        "the job token stays secret"
    );
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");

    flaky.recover();
    wait_for_no_problem(&app, "Devx", "1", "").await;
    settle(&app).await;
    assert_eq!(flaky.successes(), 1, "delivered once");
    let requests = azure.received_requests().await.unwrap();
    let delivered: Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    assert_eq!(delivered, task_completed("succeeded"));
}

#[tokio::test]
async fn a_reminder_the_smtp_server_refuses_shows_reminder_failing_until_it_is_sent() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.policies = vec![policy_for_all(|p| p.reminders = vec!["1h".into()])];
    })
    .await;
    create_for_ana(&app, "2").await;
    app.smtp.refuse("ana@example.com");

    app.advance_clock(Duration::from_secs(3600 + 60)).await;

    let problem = wait_for_problem(&app, "Devx", "2", "", "reminder_failing").await;
    let error = retried_error(&problem, "sending reminders");
    assert!(error.contains("550"), "the server's refusal: {error}");
    assert_eq!(app.smtp.received().len(), 1);

    app.smtp.accept("ana@example.com");
    wait_for_no_problem(&app, "Devx", "2", "").await;
    settle(&app).await;
    let mails = app.smtp.received();
    assert_eq!(mails.len(), 2, "one approval email and one reminder");
    assert!(
        mails[1].subject().starts_with("Reminder: "),
        "{}",
        mails[1].subject()
    );
    assert_eq!(mails[1].to, ["ana@example.com"]);
}

#[tokio::test]
async fn an_escalation_the_smtp_server_refuses_shows_escalation_failing_until_it_is_sent() {
    let smtp = TestSmtp::running();
    smtp.refuse("lead@example.com");
    let app = spawn_app_with(smtp, |s| {
        s.policies = vec![policy_for_all(|p| {
            p.escalate_after = Some(Duration::from_secs(2 * 3600));
            p.escalate_to = Some("lead@example.com".into());
        })];
    })
    .await;
    create_for_ana(&app, "3").await;

    app.advance_clock(Duration::from_secs(2 * 3600 + 60)).await;

    let problem = wait_for_problem(&app, "Devx", "3", "", "escalation_failing").await;
    let error = retried_error(&problem, "sending the escalation");
    assert!(error.contains("550"), "the server's refusal: {error}");
    let status = app.release_status("Devx", "3").await;
    assert!(status.get("escalated_at").is_none(), "{status}");

    app.smtp.accept("lead@example.com");
    wait_for_no_problem(&app, "Devx", "3", "").await;
    settle(&app).await;
    let to_lead: Vec<_> = app
        .smtp
        .received()
        .into_iter()
        .filter(|m| m.to == ["lead@example.com"])
        .collect();
    assert_eq!(to_lead.len(), 1, "escalated once");
    assert!(to_lead[0].text().contains("ana@example.com"));
    assert!(app.release_status("Devx", "3").await["escalated_at"].is_string());
}

/// The deadline job fails only when the database does: on PostgreSQL another
/// session holds the release's row lock past the app's statement timeout.
#[tokio::test]
async fn a_deadline_the_database_keeps_from_handling_shows_expiry_failing_until_it_is_handled() {
    if BACKEND != Backend::Postgres {
        eprintln!("SKIPPED: expiry_failing needs PostgreSQL's row locks, on the SQLite run");
        return;
    }
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(3600));
        s.database_statement_timeout = Some(Duration::from_millis(500));
    })
    .await;
    post_in_callback_mode(&app, &azure, "4", "ana@example.com").await;
    app.smtp.wait_for(1).await;
    settle(&app).await;

    let url = app
        .settings
        .database_url
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    let mut other = PgConnection::connect(&url).await.unwrap();
    let mut holding = other.begin().await.unwrap();
    sqlx::query("SELECT release_id FROM release WHERE team_project = 'Devx' AND external_id = '4' FOR UPDATE")
        .fetch_one(&mut *holding)
        .await
        .unwrap();
    app.advance_clock(Duration::from_secs(3600 + 60)).await;

    let problem = wait_for_problem(&app, "Devx", "4", "", "expiry_failing").await;
    let error = retried_error(&problem, "handling the deadline");
    assert!(error.contains("statement timeout"), "{error}");
    assert_eq!(app.release_status("Devx", "4").await["status"], "expired");
    assert!(task_completions(&azure).await.is_empty());

    holding.rollback().await.unwrap();
    wait_for_no_problem(&app, "Devx", "4", "").await;
    let events = wait_for_task_completions(&azure, 1).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&events[0].body).unwrap(),
        task_completed("failed")
    );
    settle(&app).await;
    assert_eq!(task_completions(&azure).await.len(), 1);
}
