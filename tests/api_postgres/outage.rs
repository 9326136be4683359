//! PostgreSQL going away under a running service: connections killed by the
//! server, the server unreachable for a while, as during a restart, and one
//! replica cut off from it while the others are not.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use deploy_gate::secret::Secret;
use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

use crate::{
    fakes::{SlowRelay, settle},
    helpers::{
        HANG_GUARD, POSTGRES_URL_VARIABLE, TestApp, TestSmtp, spawn_app, spawn_app_with, wait_until,
    },
};

fn release(n: usize) -> Value {
    json!({"ReleaseName": "R", "ReleaseId": n.to_string(), "TeamProject": "Devx",
           "Approvers": [format!("ana.{n}@example.com"), format!("bo.{n}@example.com")]})
}

fn server_url() -> url::Url {
    let server = std::env::var(POSTGRES_URL_VARIABLE).expect("set for this test binary");
    url::Url::parse(&server).unwrap()
}

fn app_url(app: &TestApp) -> url::Url {
    let url = app.settings.database_url.as_ref().unwrap().expose();
    url::Url::parse(url).unwrap()
}

/// The name `app` gives its connections, shared by its replicas.
fn application_name(app: &TestApp) -> String {
    app_url(app)
        .query_pairs()
        .find(|(key, _)| key == "application_name")
        .map(|(_, value)| value.into_owned())
        .expect("test apps name their connections")
}

/// Ends every server connection of `app` (and its replicas), as an
/// administrator or a failover would; returns once they have ended.
async fn kill_connections(app: &TestApp) -> u64 {
    let mut admin = PgConnection::connect(server_url().as_str()).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(application_name(app))
    .execute(&mut admin)
    .await
    .unwrap()
    .rows_affected()
}

/// `POST /release` again until it is stored, as a polling pipeline would: a
/// 503 `unavailable` (the database is away) is retried, anything else but
/// 202 or 200 fails the test at once.
async fn post_until_stored(app: &TestApp, body: &Value) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while tokio::time::Instant::now() < deadline {
        let answer = app.post_release(body).await;
        let status = answer.status().as_u16();
        if status == 202 || status == 200 {
            return;
        }
        let problem: Value = answer.json().await.unwrap_or_default();
        assert_eq!(
            (status, &problem["type"]),
            (503, &json!("urn:deploy-gate:problem:unavailable")),
            "only the documented 503 is retried: {problem}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited {HANG_GUARD:?} for the release to be stored");
}

async fn readiness(app: &TestApp) -> u16 {
    let url = format!("{}/readyz", app.address);
    app.client.get(url).send().await.unwrap().status().as_u16()
}

/// Waits until `/readyz` answers `expected`; panics after [`HANG_GUARD`].
async fn wait_for_readiness(app: &TestApp, expected: u16) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while readiness(app).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {HANG_GUARD:?} for /readyz to answer {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn connections_the_server_ended_while_pooled_are_replaced_unseen() {
    // The workers claim only when woken, so the requests are first to find them ended.
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.poll_interval = Some(Duration::from_secs(600));
    })
    .await;
    // Several connections opened together, then left idle in the pool.
    let bodies: Vec<Value> = (0..16).map(release).collect();
    let posted = join_all(bodies[..8].iter().map(|body| app.post_release(body))).await;
    assert!(posted.iter().all(|answer| answer.status() == 202));
    app.smtp.wait_for(16).await;
    app.wait_until_idle().await;
    let killed = kill_connections(&app).await;
    assert!(
        killed > 1,
        "several pooled connections were ended: {killed}"
    );

    // Each statement finds its connection ended first; nobody is told.
    let posted = join_all(bodies[8..].iter().map(|body| app.post_release(body))).await;
    for answer in posted {
        let status = answer.status();
        assert_eq!(status, 202, "{}", answer.text().await.unwrap());
    }
    app.smtp.wait_for(32).await;
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 32, "one email per approver");
    assert_eq!(readiness(&app).await, 200);
}

#[tokio::test]
async fn connections_killed_mid_flow_lose_no_job_and_send_no_email_twice() {
    let app = spawn_app().await;
    let killer = async {
        let mut killed = 0;
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(120)).await;
            killed += kill_connections(&app).await;
        }
        killed
    };
    let posts = async {
        for n in 0..20 {
            post_until_stored(&app, &release(n)).await;
        }
    };
    let (killed, ()) = tokio::join!(killer, posts);
    assert!(killed > 0, "connections were killed while the flow ran");

    app.smtp.wait_for(40).await;
    // Idle: nothing due and nothing waiting to retry, so no second email can follow.
    app.wait_until_idle().await;
    let mails = app.smtp.received();
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!((mails.len(), to.len()), (40, 40), "one email per approver");
    for mail in &mails {
        assert_eq!(
            app.decide(&mail.token(), "approve", None).await.status(),
            200
        );
    }
    for n in 0..20 {
        let status = app.release_status("Devx", &n.to_string()).await;
        assert_eq!(status["status"], "approved", "{status}");
    }
    assert_eq!(readiness(&app).await, 200);
}

#[tokio::test]
async fn while_the_database_is_down_readyz_says_so_and_queued_work_resumes_when_it_is_back() {
    let mut proxy = DatabaseProxy::start(&server_url()).await;
    let port = proxy.port;
    // A failed email waits a minute, by the app's clock, for its next attempt.
    let retry = Duration::from_secs(60);
    let mut app = spawn_app_with(TestSmtp::reserve(), |s| {
        let mut url = url::Url::parse(s.database_url.as_ref().unwrap().expose()).unwrap();
        url.set_port(Some(port)).unwrap();
        s.database_url = Some(Secret::new(url.as_str()));
        s.database_connect_timeout = Some(Duration::from_millis(500));
        (s.retry_base, s.retry_cap) = (Some(retry), Some(retry));
    })
    .await;
    assert_eq!(readiness(&app).await, 200);
    // Queued while the mail server is down, so the emails are still to send;
    // the cut comes once both have failed, with no job in hand: one claimed
    // before the cut may still be sent during it.
    assert_eq!(app.post_release(&release(1)).await.status(), 202);
    settle(&app).await;

    proxy.cut().await;
    wait_for_readiness(&app, 503).await;
    // The database comes back only after this answer: it cannot have waited for it.
    let refused = tokio::time::timeout(HANG_GUARD, app.post_release(&release(2)))
        .await
        .expect("POST /release answered while the database was down");
    assert_eq!(refused.status(), 503);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:unavailable");
    app.smtp.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.smtp.received().is_empty(),
        "no job ran without the database"
    );

    proxy.restore().await;
    wait_for_readiness(&app, 200).await;
    app.clock.advance(retry);
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(app.post_release(&release(3)).await.status(), 202);
    app.smtp.wait_for(4).await;
    app.wait_until_idle().await;
    assert_eq!(app.smtp.received().len(), 4);
    for mail in &mails {
        assert_eq!(
            app.decide(&mail.token(), "approve", None).await.status(),
            200
        );
    }
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
}

#[tokio::test]
async fn a_replica_cut_off_from_the_database_lets_go_of_its_job_before_another_takes_it() {
    let lease = Duration::from_secs(1);
    let mut proxy = DatabaseProxy::start(&server_url()).await;
    let port = proxy.port;
    let smtp = TestSmtp::running();
    // Each SMTP greeting comes three leases late.
    let relay = SlowRelay::start(smtp.port, lease * 3).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", relay.port);
    let cut_off = spawn_app_with(smtp, |s| {
        let mut url = url::Url::parse(s.database_url.as_ref().unwrap().expose()).unwrap();
        url.set_port(Some(port)).unwrap();
        s.database_url = Some(Secret::new(url.as_str()));
        s.database_connect_timeout = Some(Duration::from_millis(500));
        s.job_lease = Some(lease);
        s.smtp_url = Some(Secret::new(smtp_url));
    })
    .await;
    let body = json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                      "Approvers": "ana@example.com"});
    assert_eq!(cut_off.post_release(&body).await.status(), 202);
    // Its email job in hand, waiting for the greeting, the replica loses the database.
    wait_until("the email job to connect to SMTP", || async {
        (relay.connections() == 1).then_some(())
    })
    .await;
    let direct = server_url().port().unwrap_or(5432);
    let replica = cut_off
        .spawn_replica_with(|s| {
            let mut url = url::Url::parse(s.database_url.as_ref().unwrap().expose()).unwrap();
            url.set_port(Some(direct)).unwrap();
            s.database_url = Some(Secret::new(url.as_str()));
        })
        .await;
    proxy.cut().await;

    // The other replica takes the job up once the lease has run out, and sends it.
    cut_off.smtp.wait_for(1).await;
    replica.wait_until_idle().await;
    assert_eq!(relay.connections(), 2, "the other replica sent the email");
    // The cut-off replica's greeting was due before the other's: had it kept
    // the job, its email would be in by now.
    tokio::time::sleep(lease / 2).await;
    let mails = cut_off.smtp.received();
    assert_eq!(mails.len(), 1, "only one replica ran the job");
    let status = replica.release_status("Devx", "1").await;
    assert_eq!(status["approvers"][0]["notified"], true, "{status}");
}

/// A TCP proxy in front of PostgreSQL that can be cut: open connections are
/// reset and new ones refused, as while a server restarts.
struct DatabaseProxy {
    port: u16,
    upstream: String,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl DatabaseProxy {
    async fn start(server: &url::Url) -> Self {
        let upstream = format!(
            "{}:{}",
            server.host_str().unwrap_or("127.0.0.1"),
            server.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Self {
            port: listener.local_addr().unwrap().port(),
            upstream,
            accepting: None,
            connections: Arc::default(),
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(relay.abort_handle());
            }
        }));
    }

    /// Resets every connection and refuses new ones.
    async fn cut(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
            let _ = accepting.await;
        }
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    /// Accepts connections again, on the same port.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.accept(listener);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}
