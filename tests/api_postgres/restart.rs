//! A real PostgreSQL restart in the middle of a fan-out, on a throwaway cluster
//! of its own (`.ci/run` creates it with Debian's `pg_createcluster` and names
//! it in `DEPLOY_GATE_TEST_RESTARTABLE_POSTGRES_URL`): nothing is lost,
//! `/readyz` says 503 while the server is down, and every email is sent within
//! seconds of its return. Without that variable the test says SKIPPED.

use std::{
    collections::BTreeSet,
    io::Write,
    process::Command,
    time::{Duration, Instant},
};

use deploy_gate::secret::Secret;
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::helpers::{HANG_GUARD, TestApp, TestSmtp, spawn_app_with, wait_until};

/// The URL of a PostgreSQL cluster that this test may stop and start.
const RESTARTABLE_URL_VARIABLE: &str = "DEPLOY_GATE_TEST_RESTARTABLE_POSTGRES_URL";

const RELEASES: usize = 40;

/// The Debian cluster (version, name) listening on `port`, from `pg_lsclusters`.
fn cluster_on(port: u16) -> (String, String) {
    let listed = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .expect("pg_lsclusters runs (Debian's postgresql-common)");
    let listed = String::from_utf8_lossy(&listed.stdout);
    listed
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&port.to_string().as_str()))
        .map(|fields| (fields[0].to_owned(), fields[1].to_owned()))
        .unwrap_or_else(|| panic!("no cluster on port {port} in:\n{listed}"))
}

/// `pg_ctlcluster VERSION NAME action`, e.g. `stop -m fast` or `start`.
fn pg_ctlcluster(cluster: &(String, String), action: &[&str]) {
    let status = Command::new("pg_ctlcluster")
        .arg("--skip-systemctl-redirect")
        .args([&cluster.0, &cluster.1])
        .args(action)
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {cluster:?} {action:?}");
}

async fn readiness(app: &TestApp) -> u16 {
    let url = format!("{}/readyz", app.address);
    app.client.get(url).send().await.unwrap().status().as_u16()
}

/// A fresh schema on the server at `server`, and the URL that uses it.
async fn fresh_schema(server: &str) -> (String, String) {
    let schema = format!("dg_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("{RESTARTABLE_URL_VARIABLE} is set but unreachable: {e}"));
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"));
    (url.into(), schema)
}

#[tokio::test]
async fn a_postgres_restart_mid_fan_out_loses_nothing_and_everything_is_sent_soon_after() {
    let Ok(server) = std::env::var(RESTARTABLE_URL_VARIABLE) else {
        // Written past the test harness's output capture, which would swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL restart test: {RESTARTABLE_URL_VARIABLE} not set; \
             .ci/run sets it to a throwaway cluster of its own (pg_createcluster)"
        );
        return;
    };
    let port = url::Url::parse(&server).unwrap().port().unwrap_or(5432);
    let cluster = cluster_on(port);
    let (url, schema) = fresh_schema(&server).await;
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.database_url = Some(Secret::new(url));
        s.database_connect_timeout = Some(Duration::from_millis(500));
        // One email at a time, so that the restart finds the fan-out under way.
        s.workers = Some(1);
        // The lease an operator runs with: the job in hand when the server
        // went away waits for it.
        s.job_lease = None;
    })
    .await;
    let mut expected = BTreeSet::new();
    for n in 0..RELEASES {
        let approvers = [
            format!("ana.{n}@example.com"),
            format!("bo.{n}@example.com"),
        ];
        expected.extend(approvers.iter().cloned());
        let body = json!({"ReleaseName": "R", "ReleaseId": n.to_string(), "TeamProject": "Devx",
                          "Approvers": approvers});
        assert_eq!(app.post_release(&body).await.status(), 202);
    }
    app.smtp.wait_for(4).await;

    pg_ctlcluster(&cluster, &["stop", "-m", "fast"]);
    let sent_before = app.smtp.received().len();
    assert!(sent_before < expected.len(), "the restart came mid fan-out");
    assert_eq!(
        readiness(&app).await,
        503,
        "/readyz while PostgreSQL is down"
    );
    let body = json!({"ReleaseName": "R", "ReleaseId": "down", "TeamProject": "Devx"});
    assert_eq!(app.post_release(&body).await.status(), 503);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        readiness(&app).await,
        503,
        "/readyz while PostgreSQL is down"
    );

    let back = Instant::now();
    pg_ctlcluster(&cluster, &["start"]);
    let arrived = wait_until("every approver's email", || async {
        let to: BTreeSet<String> = app
            .smtp
            .received()
            .iter()
            .flat_map(|mail| mail.to.clone())
            .collect();
        (to == expected).then(|| back.elapsed())
    })
    .await;
    eprintln!("{sent_before} emails before the restart; all {arrived:?} after starting it");
    assert!(
        arrived < Duration::from_secs(10),
        "everything was sent {arrived:?} after PostgreSQL returned"
    );
    assert_eq!(readiness(&app).await, 200);
    app.wait_until_idle().await;
    // An email the server accepted while its sending could not be recorded is
    // sent again: at most the one in hand when the server went away.
    let sent = app.smtp.received().len();
    assert!(
        sent <= expected.len() + 1,
        "{sent} emails for {} approvers",
        expected.len()
    );
    for n in 0..RELEASES {
        let status = app.release_status("Devx", &n.to_string()).await;
        assert_eq!(status["approvals"]["required"], 2, "{status}");
        assert_eq!(status["status"], "pending", "{status}");
    }
    drop(app);
    let mut admin = tokio::time::timeout(HANG_GUARD, PgConnection::connect(&server))
        .await
        .unwrap()
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}
