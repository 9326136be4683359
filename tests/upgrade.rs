//! A database written by release 0.1 upgrades in place. The app starts on the
//! committed fixtures of `tests/fixtures/` (made by that release with
//! `make-release-0.1.py`, see `migrations/README.md`), migrates them, and every
//! release in them carries on: the same statuses, approval links from the
//! emails of then that still decide, a queued job that still runs, and a
//! callback registered then that is still delivered.

use std::{io::Write, net::TcpListener};

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path},
};

use fakes::{
    EVENTS_PATH, Flaky, JOB_TOKEN, accept_progress, task_completed, wait_for_task_completions,
};
use helpers::{
    Backend, POSTGRES_URL_VARIABLE, TestApp, TestSmtp, spawn_app_on_filled_database, wait_until,
};

#[expect(
    dead_code,
    reason = "the upgrade tests use a part of the api suite's harness"
)]
#[path = "api/helpers.rs"]
mod helpers;

#[expect(
    dead_code,
    reason = "the upgrade tests use a part of the api suite's fakes"
)]
#[path = "api/fakes.rs"]
mod fakes;

/// One backend's database as release 0.1 left it.
struct Fixture {
    backend: Backend,
    /// Lines `Devx/<id> <approver> <link>`: the links of the undecided approvers' emails.
    links: &'static str,
    /// The port of the `PlanUrl` that release 0.1 stored for the callback release.
    callback_port: u16,
}

const SQLITE: Fixture = Fixture {
    backend: Backend::Sqlite,
    links: include_str!("fixtures/release-0.1-sqlite.links"),
    callback_port: 29171,
};

const POSTGRES: Fixture = Fixture {
    backend: Backend::Postgres,
    links: include_str!("fixtures/release-0.1-postgres.links"),
    callback_port: 29172,
};

/// The schema that the PostgreSQL dump names; each test loads it under its own.
const DUMP_SCHEMA: &str = "deploy_gate_release_0_1";

#[tokio::test]
async fn a_sqlite_database_of_release_0_1_keeps_working_after_the_upgrade() {
    upgrade_and_carry_on(&SQLITE).await;
}

#[tokio::test]
async fn a_postgres_schema_of_release_0_1_keeps_working_after_the_upgrade() {
    if std::env::var(POSTGRES_URL_VARIABLE).is_err() {
        // Written past the test harness's output capture, which would swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL upgrade test (tests/upgrade.rs): {POSTGRES_URL_VARIABLE} not set"
        );
        return;
    }
    upgrade_and_carry_on(&POSTGRES).await;
}

/// Starts today's app on `fixture` and takes each of its releases one step further.
async fn upgrade_and_carry_on(fixture: &Fixture) {
    let (approvers_api, approvers) = approvers_api_down_for_now().await;
    let azure = azure_at_stored_plan_url(fixture.callback_port).await;
    let smtp = TestSmtp::running();
    let app = spawn_app_on_filled_database(fixture.backend, smtp, fill_from_fixture, |settings| {
        // The secret release 0.1 generated is in the database: the links it mailed must verify.
        settings.token_secret = None;
        settings.approvers_url = Some(format!("{}/approvers", approvers.uri()));
    })
    .await;

    statuses_are_as_release_0_1_left_them(&app).await;
    approvers_api.recover();
    the_queued_job_mails_the_resolved_approver_and_nobody_else(&app).await;
    mailed_links_still_decide(&app, fixture).await;
    // The one TaskCompleted that `azure` expects; it checks the count when dropped.
    wait_for_task_completions(&azure, 1).await;
}

/// Devx/104's resolve job, queued by release 0.1, runs once the approvers API
/// answers; the approvals mailed by release 0.1 are not mailed again.
async fn the_queued_job_mails_the_resolved_approver_and_nobody_else(app: &TestApp) {
    let resolved = app
        .wait_for_release("Devx", "104", |s| s["approvals"]["pending"] == 1)
        .await;
    assert_eq!(resolved["approvers"][0]["email"], "hal@example.com");
    app.wait_until_idle().await;
    let recipients: Vec<_> = app.smtp.received().into_iter().map(|m| m.to).collect();
    assert_eq!(recipients, [["hal@example.com"]]);
}

/// The undecided approvers' links decide Devx/101 (whose other approver
/// decided before the upgrade) and the callback release Devx/105.
async fn mailed_links_still_decide(app: &TestApp, fixture: &Fixture) {
    for id in ["101", "105"] {
        let token = link_token(fixture, &format!("Devx/{id}"));
        let answer = app.decide(token, "approve", None).await;
        assert_eq!(answer.status(), 200, "the kept link of Devx/{id}");
        let approved = app.release_status("Devx", id).await;
        assert_eq!(approved["status"], "approved", "{approved}");
    }
}

/// An approvers API that answers 503 until recovered, then names hal: the
/// statuses are read before the queued job of Devx/104 can succeed.
async fn approvers_api_down_for_now() -> (Flaky, MockServer) {
    let api = Flaky::failing(
        ResponseTemplate::new(503),
        ResponseTemplate::new(200).set_body_json(json!({"approvers": ["hal@example.com"]})),
    );
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(api.clone())
        .mount(&server)
        .await;
    (api, server)
}

/// Copies the SQLite file to where `database_url` points, or loads the
/// PostgreSQL dump under the test's schema.
async fn fill_from_fixture(database_url: &str) {
    if let Some(file) = database_url.strip_prefix("sqlite://") {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/release-0.1-sqlite.db"
        );
        std::fs::copy(fixture, file).expect("copying the SQLite fixture");
        return;
    }
    let url = url::Url::parse(database_url).unwrap();
    let (_, schema) = url
        .query_pairs()
        .find(|(key, _)| key == "application_name")
        .expect("test apps name their connections after their schema");
    let dump = include_str!("fixtures/release-0.1-postgres.sql").replace(DUMP_SCHEMA, &schema);
    let mut connection = PgConnection::connect(database_url).await.unwrap();
    // The dump creates its schema itself.
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema}; {dump}")))
        .execute(&mut connection)
        .await
        .expect("loading the PostgreSQL fixture");
}

/// A fake Azure DevOps on the `PlanUrl` the callback release registered,
/// expecting its TaskCompleted event once, with the job's token.
async fn azure_at_stored_plan_url(port: u16) -> MockServer {
    // Another checkout's run of this test may hold the port for a moment.
    let listener = wait_until(&format!("port {port} of the fixture's PlanUrl"), || async {
        TcpListener::bind(("127.0.0.1", port)).ok()
    })
    .await;
    let azure = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .and(header(
            "authorization",
            format!("Bearer {JOB_TOKEN}").as_str(),
        ))
        .and(body_json(task_completed("succeeded")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    azure
}

/// Each release of the fixture: its id, stage, status, and approvals
/// (approved, rejected, pending), as release 0.1 answered before it stopped.
const BEFORE_THE_UPGRADE: [(&str, &str, &str, [u64; 3]); 6] = [
    ("101", "", "pending", [1, 0, 1]),
    ("102", "prod", "approved", [1, 0, 0]),
    ("103", "", "rejected", [0, 1, 1]),
    ("104", "", "pending", [0, 0, 0]),
    ("105", "", "pending", [0, 0, 1]),
    ("106", "", "rejected", [0, 0, 1]),
];

/// Asks for each release as people (GET) and pipelines (POST again) do.
async fn statuses_are_as_release_0_1_left_them(app: &TestApp) {
    for (id, stage, status, [approved, rejected, pending]) in BEFORE_THE_UPGRADE {
        let read = app
            .client
            .get(format!("{}/release/Devx/{id}", app.address))
            .query(&[("Stage", stage)])
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "GET Devx/{id}");
        let body = json!({"ReleaseName": format!("Release-{id}"), "ReleaseId": id,
                          "TeamProject": "Devx", "Stage": stage});
        let polled = app.post_release(&body).await;
        assert_eq!(polled.status(), 200, "POST /release of Devx/{id}");
        for answer in [
            read.json::<Value>().await.unwrap(),
            polled.json().await.unwrap(),
        ] {
            assert_eq!(answer["status"], status, "{answer}");
            let counts = &answer["approvals"];
            let got = [&counts["approved"], &counts["rejected"], &counts["pending"]];
            assert_eq!(got, [approved, rejected, pending], "{answer}");
        }
    }
    let cancelled = app.release_status("Devx", "106").await;
    assert!(cancelled["cancelled"].is_object(), "{cancelled}");
}

/// The token of the link that release 0.1 mailed to `release`'s undecided approver.
fn link_token(fixture: &Fixture, release: &str) -> &'static str {
    fixture
        .links
        .lines()
        .find_map(|line| line.strip_prefix(release)?.split_once("token="))
        .map(|(_, token)| token)
        .unwrap_or_else(|| panic!("a kept link of {release}"))
}
