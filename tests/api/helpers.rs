//! The test harness: the real app on port 0 with a database of its own, a real
//! SMTP server on loopback, and wiremock for the approvers API.
//!
//! The same suite runs on both backends: this crate (`api`) uses a temporary
//! SQLite file; `tests/api_postgres/main.rs` includes it as the `api_postgres`
//! target, where each app gets a fresh schema in the PostgreSQL database named
//! by `DEPLOY_GATE_TEST_POSTGRES_URL`.

use std::{future::Future, io::Write, sync::Arc, time::Duration};

use deploy_gate::{
    clock::Clock,
    jobs::{Retention, Worker},
    secret::Secret,
    settings::{Config, Settings},
    startup::App,
    store::Store,
    telemetry,
};
use serde_json::Value;
pub use smtp::{ReceivedMail, TestSmtp};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::{sync::oneshot, task::JoinHandle};

#[path = "../support/smtp.rs"]
mod smtp;

/// How long a test waits for an event before it calls the wait a hang: far
/// longer than anything takes on a loaded machine, so it never times a test.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Polls `probe` every 20 ms until it gives `Some`, and returns that; panics
/// naming `what` after [`HANG_GUARD`], which only a hang reaches.
pub async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {HANG_GUARD:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The token secret every test app uses, so tests can mint their own tokens.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef";

/// Where the PostgreSQL run creates its schemas, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VARIABLE: &str = "DEPLOY_GATE_TEST_POSTGRES_URL";

/// A database the suite can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per app.
    Sqlite,
    /// A PostgreSQL schema per app.
    Postgres,
}

/// The backend of this test binary, told apart by the name of its target.
pub const BACKEND: Backend = match env!("CARGO_CRATE_NAME").as_bytes() {
    b"api_postgres" => Backend::Postgres,
    _ => Backend::Sqlite,
};

/// The database of one test, shared by the apps (restarts, replicas) on it.
/// A PostgreSQL schema is dropped when the last of them is gone.
struct TestDatabase {
    /// What the apps connect to.
    url: String,
    /// The server URL and schema name, on PostgreSQL.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A SQLite file in `dir`, or a fresh PostgreSQL schema.
    async fn create(backend: Backend, dir: &tempfile::TempDir) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}/deploy-gate.db", dir.path().display()),
                postgres: None,
            },
            Backend::Postgres => Self::create_schema().await,
        }
    }

    async fn create_schema() -> Self {
        let server = postgres_url_or_skip();
        let schema = format!("dg_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VARIABLE} is set but unreachable: {e}"));
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("creating the test schema");
        let mut url = url::Url::parse(&server).expect("a valid PostgreSQL URL");
        // The schema name doubles as application name, to find this test's connections.
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={schema}"))
            .append_pair("application_name", &schema);
        Self {
            url: url.into(),
            postgres: Some((server, schema)),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, schema)) = self.postgres.take() else {
            return;
        };
        // Drop runs on the test's runtime thread; the cleanup needs a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(drop_schema(&server, &schema))
        });
        if let Ok(Err(err)) = cleanup.join() {
            let _ = writeln!(std::io::stderr(), "test schema left behind: {err}");
        }
    }
}

/// Ends the connections of the apps still on `schema` (their open transactions
/// would hold locks), then drops it.
async fn drop_schema(server: &str, schema: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(server).await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(schema)
    .execute(&mut admin)
    .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET lock_timeout = '10s'; DROP SCHEMA {schema} CASCADE"
    )))
    .execute(&mut admin)
    .await?;
    Ok(())
}

/// The PostgreSQL server URL; without one, says that the PostgreSQL run is
/// skipped and ends this test binary, whose tests all need it.
fn postgres_url_or_skip() -> String {
    static SKIP: std::sync::Once = std::sync::Once::new();
    if let Ok(url) = std::env::var(POSTGRES_URL_VARIABLE) {
        return url;
    }
    SKIP.call_once(|| {
        // Written past the test harness's output capture, which would swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL run of the tests/api suite (target api_postgres): \
             {POSTGRES_URL_VARIABLE} not set; set it, e.g. to \
             postgres://postgres@127.0.0.1:5432/test, to run it"
        );
        std::process::exit(0);
    });
    unreachable!("the process exited")
}

/// Checks that `response` is a problem document with `status` and the type
/// `urn:deploy-gate:problem:{kind}`, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let problem: Value = response.json().await.expect("a problem document");
    assert_eq!(problem["status"], status, "{problem}");
    assert_eq!(
        problem["type"],
        format!("urn:deploy-gate:problem:{kind}"),
        "{problem}"
    );
    problem
}

/// `GET {path}` of `app` as JSON; panics unless `200`.
pub async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// The `ReleaseId`s of a board page (`GET /releases`), in order.
pub fn board_ids(board: &Value) -> Vec<&str> {
    board["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ReleaseId"].as_str().unwrap())
        .collect()
}

/// A running deploy-gate with its surroundings.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub address: String,
    /// An HTTP client that does not follow redirects.
    pub client: reqwest::Client,
    /// The SMTP server the app sends to.
    pub smtp: TestSmtp,
    /// The configuration, kept for restarts.
    pub settings: Settings,
    /// The app's worker, to drain the queue.
    pub worker: Worker,
    /// The app's retention, to prune without waiting for its hourly pass.
    pub retention: Retention,
    /// The database, only to prove durability.
    pub store: Arc<dyn Store>,
    /// A temporary folder of the test's own (the SQLite file is kept there).
    pub dir: Arc<tempfile::TempDir>,
    /// The app's clock, shared by restarts and replicas; tests move it forward.
    pub clock: Clock,
    database: Arc<TestDatabase>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test app on `database_url` sending to `smtp_port`.
pub fn test_settings(database_url: &str, smtp_port: u16) -> Settings {
    Settings {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some(Secret::new(database_url)),
        // Small pools, so that parallel tests stay within the server's connection limit.
        database_max_connections: Some(5),
        smtp_url: Some(Secret::new(format!("smtp://127.0.0.1:{smtp_port}"))),
        token_secret: Some(Secret::new(TEST_SECRET)),
        // The recording fakes of Azure DevOps listen on plain http on loopback.
        callback_hosts: Some("dev.azure.com,*.visualstudio.com,127.0.0.1".into()),
        retry_base: Some(Duration::from_millis(50)),
        retry_cap: Some(Duration::from_millis(400)),
        job_lease: Some(Duration::from_secs(2)),
        poll_interval: Some(Duration::from_millis(50)),
        // Many tests call /approval and fail authentication on purpose from one address;
        // tests/api/rate_limits.rs turns the limits on.
        rate_limit_approval: Some(0),
        rate_limit_auth_failures: Some(0),
        // Most tests name their approvers in the request, as a pipeline may where
        // DEPLOY_GATE_REQUEST_APPROVERS=true; tests/api/approvers.rs checks the default.
        request_approvers: Some(true),
        ..Settings::default()
    }
}

/// A test app with a running SMTP server and default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestSmtp::running(), |_| {}).await
}

/// A test app with the given SMTP server and settings adjusted by `adjust`.
pub async fn spawn_app_with(smtp: TestSmtp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on_filled_database(BACKEND, smtp, async |_: &str| {}, adjust).await
}

/// A test app on a `backend` database that `fill` writes before the app starts
/// (given the URL the app will use), as an older release would have left it;
/// the app migrates it as it starts. A PostgreSQL URL names the test's schema
/// in `application_name`.
pub async fn spawn_app_on_filled_database(
    backend: Backend,
    smtp: TestSmtp,
    fill: impl AsyncFnOnce(&str),
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    telemetry::init_for_tests();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database = Arc::new(TestDatabase::create(backend, &dir).await);
    fill(&database.url).await;
    let mut settings = test_settings(&database.url, smtp.port);
    adjust(&mut settings);
    start(settings, smtp, dir, database, Clock::system()).await
}

async fn start(
    settings: Settings,
    smtp: TestSmtp,
    dir: Arc<tempfile::TempDir>,
    database: Arc<TestDatabase>,
    clock: Clock,
) -> TestApp {
    let config = Config::from_settings(settings.clone()).expect("valid test settings");
    let app = App::build_with_clock(config, clock.clone())
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let worker = app.worker();
    let retention = app.retention();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        smtp,
        settings,
        worker,
        retention,
        store,
        dir,
        clock,
        database,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// `POST /release` with a JSON body.
    pub async fn post_release(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/release", self.address))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /release/{project}/{id}` as JSON.
    pub async fn get_release(&self, project: &str, id: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/release/{project}/{id}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// The status body of a release (panics unless 200).
    pub async fn release_status(&self, project: &str, id: &str) -> Value {
        let response = self.get_release(project, id).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `POST /approval` with a JSON body.
    pub async fn decide(
        &self,
        token: &str,
        decision: &str,
        comment: Option<&str>,
    ) -> reqwest::Response {
        let mut body = serde_json::json!({ "token": token, "decision": decision });
        if let Some(comment) = comment {
            body["comment"] = comment.into();
        }
        self.client
            .post(format!("{}/approval", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The email sent to `to` about the release named `name`, found by the subject
    /// (the body holds a token, whose random characters may spell `name`).
    pub fn email_about(&self, to: &str, name: &str) -> ReceivedMail {
        self.smtp
            .received()
            .into_iter()
            .find(|m| m.to == [to] && m.subject().contains(&format!(": {name} (")))
            .unwrap_or_else(|| panic!("{to}'s email about {name}"))
    }

    /// Moves the app's clock forward, once no job is in flight: a jump in time
    /// would otherwise end the lease of a running job and let a second worker take it.
    pub async fn advance_clock(&self, by: Duration) {
        self.wait_until_idle().await;
        self.clock.advance(by);
    }

    /// Runs every due job now.
    pub async fn drain_jobs(&self) {
        self.worker.drain().await.expect("the queue is reachable");
    }

    /// Runs one batch of the retention's pruning now; how many rounds it deleted.
    pub async fn prune_batch(&self) -> u64 {
        let pruned = self.retention.prune_batch().await;
        pruned.expect("the database is reachable").releases
    }

    /// How many rows `table` holds, read from the database itself (to prove
    /// that deleted rounds left nothing behind).
    pub async fn rows_in(&self, table: &str) -> i64 {
        use sqlx::{Row, SqliteConnection};
        let count = format!("SELECT COUNT(*) FROM {table}");
        match BACKEND {
            Backend::Sqlite => {
                let mut db = SqliteConnection::connect(&self.database.url).await.unwrap();
                let row = sqlx::query(AssertSqlSafe(count)).fetch_one(&mut db).await;
                row.unwrap().get(0)
            }
            Backend::Postgres => {
                let mut db = PgConnection::connect(&self.database.url).await.unwrap();
                let row = sqlx::query(AssertSqlSafe(count)).fetch_one(&mut db).await;
                row.unwrap().get(0)
            }
        }
    }

    /// Waits until no job is left that is due or waiting to retry (jobs
    /// scheduled for later, such as reminders and deadlines, do not count);
    /// panics after [`HANG_GUARD`], which only a hang reaches.
    pub async fn wait_until_idle(&self) {
        wait_until("the queue to be idle (no job due or retrying)", || async {
            let outstanding = self
                .store
                .outstanding_job_count(self.clock.now())
                .await
                .expect("the queue is reachable");
            (outstanding == 0).then_some(())
        })
        .await;
    }

    /// Polls the release status until `done` holds and returns it; panics
    /// after [`HANG_GUARD`], which only a hang reaches.
    pub async fn wait_for_release(
        &self,
        project: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("release {project}/{id} to reach the expected state");
        wait_until(&what, || async {
            let status = self.release_status(project, id).await;
            done(&status).then_some(status)
        })
        .await
    }

    /// Stops gracefully and starts again on the same database (new port).
    pub async fn restart(mut self) -> TestApp {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap().unwrap();
        let smtp = std::mem::replace(&mut self.smtp, TestSmtp::reserve());
        self.start_on_same_database(smtp).await
    }

    /// A second instance on the same database with the same settings, as a
    /// replica behind a load balancer; its mail arrives in this app's `smtp`.
    pub async fn spawn_replica(&self) -> TestApp {
        self.spawn_replica_with(|_| {}).await
    }

    /// A replica whose settings differ from this app's by `adjust` (another
    /// route to the same database, say).
    pub async fn spawn_replica_with(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        start(
            settings,
            TestSmtp::reserve(),
            self.dir.clone(),
            self.database.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Another instance with this app's settings, folder, database and clock.
    async fn start_on_same_database(&self, smtp: TestSmtp) -> TestApp {
        start(
            self.settings.clone(),
            smtp,
            self.dir.clone(),
            self.database.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Kills the app abruptly (no graceful shutdown) and starts it again on the same database.
    pub async fn crash_and_restart(mut self) -> TestApp {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
        let smtp = std::mem::replace(&mut self.smtp, TestSmtp::reserve());
        self.start_on_same_database(smtp).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A test app whose clock stands still at `at` until the test moves it
/// (`advance_clock`), to reach an instant such as a deadline exactly.
pub async fn spawn_app_stopped_at(
    at: chrono::DateTime<chrono::Utc>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    telemetry::init_for_tests();
    let smtp = TestSmtp::running();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database = Arc::new(TestDatabase::create(BACKEND, &dir).await);
    let mut settings = test_settings(&database.url, smtp.port);
    adjust(&mut settings);
    start(settings, smtp, dir, database, Clock::stopped_at(at)).await
}
