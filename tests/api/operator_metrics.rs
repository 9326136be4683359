//! What operators watch: the pending-release gauges (read from the database, so
//! the same on every replica and after a restart), the time-to-decision
//! histogram, and the Grafana dashboard and alert rules under `deploy/`, whose
//! every metric must be one `/metrics` exposes.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::{
    fakes::{
        azure_events_answering, post_in_callback_mode, sample, scrape, wait_for_task_completions,
    },
    helpers::{TestApp, spawn_app, spawn_app_stopped_at},
};

const PENDING: &str = "deploy_gate_pending_releases";
const OLDEST: &str = "deploy_gate_oldest_pending_release_age_seconds";

fn release(id: &str, approvers: &[&str]) -> Value {
    json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx",
           "Approvers": approvers})
}

/// Posts release `id` on `app` and waits for its approvers' emails, which
/// arrive at `mailbox` (the first app: its replicas share its SMTP server); their tokens.
async fn create_on(app: &TestApp, mailbox: &TestApp, id: &str, approvers: &[&str]) -> Vec<String> {
    assert_eq!(
        app.post_release(&release(id, approvers)).await.status(),
        202
    );
    app.wait_until_idle().await;
    approvers
        .iter()
        .map(|to| mailbox.email_about(to, &format!("R{id}")).token())
        .collect()
}

/// Posts release `id` and waits for its approvers' emails; their tokens.
async fn create(app: &TestApp, id: &str, approvers: &[&str]) -> Vec<String> {
    create_on(app, app, id, approvers).await
}

/// The pending gauges as `app` shows them.
async fn pending_gauges(app: &TestApp) -> (f64, f64) {
    let text = scrape(app).await;
    (sample(&text, PENDING), sample(&text, OLDEST))
}

#[tokio::test]
async fn pending_gauges_count_undecided_rounds_the_same_on_every_replica_and_after_a_restart() {
    let minute = Duration::from_secs(60);
    let a = spawn_app_stopped_at(chrono::Utc::now(), |s| {
        s.approval_deadline = Some(Duration::from_secs(3600));
    })
    .await;
    let b = a.spawn_replica().await;
    assert_eq!(pending_gauges(&b).await, (0.0, 0.0));

    let first = create(&a, "1", &["ana@example.com", "bo@example.com"]).await;
    a.advance_clock(10 * minute).await;
    let second = create_on(&b, &a, "2", &["cy@example.com"]).await;
    a.advance_clock(minute).await;
    for replica in [&a, &b] {
        assert_eq!(pending_gauges(replica).await, (2.0, 660.0));
    }

    // One vote of two leaves the first pending; the second decides it, on the other replica.
    assert_eq!(a.decide(&first[0], "approve", None).await.status(), 200);
    assert_eq!(pending_gauges(&b).await, (2.0, 660.0));
    assert_eq!(b.decide(&first[1], "approve", None).await.status(), 200);
    for replica in [&a, &b] {
        assert_eq!(pending_gauges(replica).await, (1.0, 60.0));
    }

    let a = a.restart().await;
    assert_eq!(pending_gauges(&a).await, (1.0, 60.0));
    assert_eq!(a.decide(&second[0], "reject", None).await.status(), 200);
    assert_eq!(pending_gauges(&b).await, (0.0, 0.0));

    // A round left undecided stops being pending at its deadline.
    create(&a, "3", &["di@example.com"]).await;
    a.advance_clock(59 * minute).await;
    assert_eq!(pending_gauges(&a).await, (1.0, 3540.0));
    a.advance_clock(minute).await;
    assert_eq!(pending_gauges(&b).await, (0.0, 0.0));
}

#[tokio::test]
async fn rounds_decided_by_a_release_before_the_gauges_stop_counting_as_pending_at_the_next_start()
{
    use sqlx::{Connection, SqliteConnection};

    let app = spawn_app().await;
    let Some(url) = app
        .settings
        .database_url
        .as_ref()
        .map(|u| u.expose().to_owned())
        .filter(|u| u.starts_with("sqlite:"))
    else {
        eprintln!("SKIPPED: an older release's rows, on the PostgreSQL run");
        return;
    };
    let approved = create(&app, "1", &["ana@example.com"]).await;
    assert_eq!(
        app.decide(&approved[0], "approve", None).await.status(),
        200
    );
    let rejected = create(&app, "2", &["bo@example.com"]).await;
    assert_eq!(app.decide(&rejected[0], "reject", None).await.status(), 200);
    let pending = create(&app, "3", &["cy@example.com", "di@example.com"]).await;
    assert_eq!(app.decide(&pending[0], "approve", None).await.status(), 200);
    assert_eq!(pending_gauges(&app).await.0, 1.0);

    // As a release that did not record conclusions left its rounds.
    let mut older = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE release SET concluded_at = NULL")
        .execute(&mut older)
        .await
        .unwrap();
    older.close().await.unwrap();
    assert_eq!(pending_gauges(&app).await.0, 3.0);

    let app = app.restart().await;
    assert_eq!(pending_gauges(&app).await.0, 1.0);
    assert_eq!(app.release_status("Devx", "3").await["status"], "pending");
}

#[tokio::test]
async fn time_to_decision_is_observed_once_per_round_with_the_status_it_ended_with() {
    let app = spawn_app_stopped_at(chrono::Utc::now(), |_| {}).await;
    let approved = create(&app, "1", &["ana@example.com", "bo@example.com"]).await;
    app.advance_clock(Duration::from_secs(90)).await;
    assert_eq!(
        app.decide(&approved[0], "approve", None).await.status(),
        200
    );
    app.advance_clock(Duration::from_secs(30)).await;
    assert_eq!(
        app.decide(&approved[1], "approve", None).await.status(),
        200
    );

    let rejected = create(&app, "2", &["cy@example.com"]).await;
    app.advance_clock(Duration::from_secs(600)).await;
    assert_eq!(app.decide(&rejected[0], "reject", None).await.status(), 200);
    // Votes after the decision change nothing.
    assert_eq!(
        app.decide(&approved[1], "approve", None).await.status(),
        200
    );

    let text = scrape(&app).await;
    for (series, expected) in [
        (
            r#"deploy_gate_time_to_decision_seconds_count{status="approved"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_sum{status="approved"}"#,
            120.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_count{status="rejected"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_sum{status="rejected"}"#,
            600.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_bucket{le="300.0",status="approved"}"#,
            1.0,
        ),
        (
            r#"deploy_gate_time_to_decision_seconds_bucket{le="300.0",status="rejected"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), expected, "{series} in\n{text}");
    }
}

/// The metric names an expression uses: `deploy_gate_…` and `up`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("deploy_gate_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    if expr.contains("up{") || expr.starts_with("up ") {
        names.push("up".to_owned());
    }
    names
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    exprs
}

/// Every `expr` of the rules file, one line or folded (`expr: >-`) over the
/// lines indented below it.
fn rule_exprs(rules: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, value)) = line.split_once("expr:") else {
            continue;
        };
        let value = value.trim();
        if value != ">-" && value != "|" && value != ">" {
            exprs.push(value.to_owned());
            continue;
        }
        let mut folded = Vec::new();
        while let Some(next) = lines.next_if(|l| l.len() - l.trim_start().len() > indent.len()) {
            folded.push(next.trim());
        }
        exprs.push(folded.join(" "));
    }
    exprs
}

fn deploy_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/deploy/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn every_metric_of_the_dashboard_and_the_alert_rules_is_exposed_once_releases_fan_out() {
    let dashboard: Value = serde_json::from_str(&deploy_file("grafana/deploy-gate.json"))
        .expect("the dashboard is JSON");
    for key in [
        "__inputs",
        "title",
        "uid",
        "panels",
        "schemaVersion",
        "time",
    ] {
        assert!(dashboard.get(key).is_some(), "the dashboard has no {key}");
    }
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{panel}");
        }
    }
    let rules = deploy_file("prometheus/alerts.yml");
    let exprs: Vec<String> = dashboard_exprs(&dashboard)
        .into_iter()
        .chain(rule_exprs(&rules))
        .collect();
    assert!(exprs.len() >= 20, "{exprs:?}");

    // A release approved by email, one rejected in callback mode (Azure told).
    let app = spawn_app().await;
    let azure = azure_events_answering(ResponseTemplate::new(204)).await;
    let tokens = create(&app, "1", &["ana@example.com"]).await;
    assert_eq!(app.decide(&tokens[0], "approve", None).await.status(), 200);
    post_in_callback_mode(&app, &azure, "2", "bo@example.com").await;
    app.wait_until_idle().await;
    let token = app.email_about("bo@example.com", "R").token();
    assert_eq!(app.decide(&token, "reject", None).await.status(), 200);
    wait_for_task_completions(&azure, 1).await;
    app.wait_until_idle().await;
    let text = scrape(&app).await;
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();

    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} names no metric");
        used.extend(names);
    }
    for name in used.iter().filter(|name| *name != "up") {
        assert!(
            exposed.contains(name.as_str()),
            "{name} is not exposed:\n{text}"
        );
    }
    assert!(used.contains(PENDING) && used.contains(OLDEST), "{used:?}");
}
