//! The test harness: the real app on port 0 with a temporary SQLite file, a real
//! SMTP server on loopback, and wiremock for the approvers API.

use std::{
    net::TcpListener as StdListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use deploy_gate::{
    config::{Config, Secret, Settings},
    jobs::Worker,
    startup::App,
    store::Store,
    telemetry,
};
use mailin_embedded::{Handler, Response as SmtpResponse, Server, response};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

/// The token secret every test app uses, so tests can mint their own tokens.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef";

/// A message received by the test SMTP server.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The raw message.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// The decoded plain-text part.
    pub fn text(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable email");
        parsed.body_text(0).expect("a text part").into_owned()
    }

    /// The decoded HTML part.
    pub fn html(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable email");
        parsed.body_html(0).expect("an HTML part").into_owned()
    }

    /// The approval link in the plain-text part.
    pub fn link(&self) -> String {
        let text = self.text();
        let start = text.find("http").expect("a link in the email");
        text[start..].split_whitespace().next().unwrap().to_owned()
    }

    /// The token of the approval link.
    pub fn token(&self) -> String {
        let link = self.link();
        link.split("token=")
            .nth(1)
            .expect("a token in the link")
            .to_owned()
    }
}

#[derive(Clone, Default)]
struct Recorder {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    current_to: Vec<String>,
    current: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> SmtpResponse {
        self.current_to = to.to_vec();
        self.current.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> SmtpResponse {
        let mail = ReceivedMail {
            to: std::mem::take(&mut self.current_to),
            raw: std::mem::take(&mut self.current),
        };
        self.inbox.lock().unwrap().push(mail);
        response::OK
    }
}

/// A real SMTP server (mailin-embedded) on a loopback port, which can be
/// started late to simulate an outage.
pub struct TestSmtp {
    /// The port, reserved even while the server is not running.
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    started: bool,
}

impl TestSmtp {
    /// Reserves a port without serving on it yet: connections are refused.
    pub fn reserve() -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            port,
            inbox: Arc::default(),
            started: false,
        }
    }

    /// A running server.
    pub fn running() -> Self {
        let mut smtp = Self::reserve();
        smtp.start();
        smtp
    }

    /// Starts serving on the reserved port.
    pub fn start(&mut self) {
        assert!(!self.started, "the SMTP server is already running");
        let listener = StdListener::bind(("127.0.0.1", self.port)).expect("the reserved SMTP port");
        let recorder = Recorder {
            inbox: self.inbox.clone(),
            ..Recorder::default()
        };
        let mut server = Server::new(recorder);
        server
            .with_name("test-smtp")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        self.started = true;
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (10 s at most) and returns all.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        for _ in 0..500 {
            let mails = self.received();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} emails, got {}", self.received().len());
    }
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
    /// The database, only to prove durability.
    pub store: Arc<dyn Store>,
    /// The temporary folder holding the database.
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test app writing to `dir` and sending to `smtp_port`.
pub fn test_settings(dir: &tempfile::TempDir, smtp_port: u16) -> Settings {
    Settings {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some(Secret::new(format!(
            "sqlite://{}/deploy-gate.db",
            dir.path().display()
        ))),
        smtp_url: Some(Secret::new(format!("smtp://127.0.0.1:{smtp_port}"))),
        token_secret: Some(Secret::new(TEST_SECRET)),
        retry_base: Some(Duration::from_millis(50)),
        retry_cap: Some(Duration::from_millis(400)),
        job_lease: Some(Duration::from_secs(2)),
        poll_interval: Some(Duration::from_millis(50)),
        ..Settings::default()
    }
}

/// A test app with a running SMTP server and default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestSmtp::running(), |_| {}).await
}

/// A test app with the given SMTP server and settings adjusted by `adjust`.
pub async fn spawn_app_with(smtp: TestSmtp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    telemetry::init_for_tests();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = test_settings(&dir, smtp.port);
    adjust(&mut settings);
    start(settings, smtp, dir).await
}

async fn start(settings: Settings, smtp: TestSmtp, dir: Arc<tempfile::TempDir>) -> TestApp {
    let config = Config::from_settings(settings.clone()).expect("valid test settings");
    let app = App::build(config).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let worker = app.worker();
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
        store,
        dir,
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

    /// Runs every due job now.
    pub async fn drain_jobs(&self) {
        self.worker.drain().await.expect("the queue is reachable");
    }

    /// Waits until the queue holds no live job (10 s at most).
    pub async fn wait_until_idle(&self) {
        for _ in 0..500 {
            if self.store.due_job_count(chrono::Utc::now()).await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("jobs are still queued after 10 s");
    }

    /// Polls the release status until `done` holds (10 s at most) and returns it.
    pub async fn wait_for_release(
        &self,
        project: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut status = Value::Null;
        for _ in 0..500 {
            status = self.release_status(project, id).await;
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the release never reached the expected state: {status}");
    }

    /// Stops gracefully and starts again on the same database (new port).
    pub async fn restart(mut self) -> TestApp {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap().unwrap();
        let settings = self.settings.clone();
        let smtp = std::mem::replace(&mut self.smtp, TestSmtp::reserve());
        start(settings, smtp, self.dir.clone()).await
    }

    /// Kills the app abruptly (no graceful shutdown) and starts it again on the same database.
    pub async fn crash_and_restart(mut self) -> TestApp {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
        let settings = self.settings.clone();
        let smtp = std::mem::replace(&mut self.smtp, TestSmtp::reserve());
        start(settings, smtp, self.dir.clone()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
