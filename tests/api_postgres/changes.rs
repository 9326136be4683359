//! Each replica learns of the others' commits from PostgreSQL's notifications,
//! on one listening connection. When that connection is lost, notifications
//! sent meanwhile are lost with it: from the moment the loss is noticed until
//! the connection listens again the replica answers from the database, and
//! nothing it kept before the loss is given after it.

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{POSTGRES_URL_VARIABLE, TestApp, spawn_app, wait_until};

/// Release `n` with one approver, so one decision settles it.
fn release(n: usize) -> Value {
    json!({"ReleaseName": "R", "ReleaseId": n.to_string(), "TeamProject": "Devx",
           "Approvers": [format!("ana.{n}@example.com")]})
}

async fn admin() -> PgConnection {
    let server = std::env::var(POSTGRES_URL_VARIABLE).expect("set for this test binary");
    PgConnection::connect(&server).await.unwrap()
}

/// The application name of the listening connections of `app` and its replicas.
fn listener_name(app: &TestApp) -> String {
    let url = app.settings.database_url.as_ref().unwrap().expose();
    let name = url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "application_name")
        .map(|(_, value)| value.into_owned())
        .expect("test apps name their connections");
    format!("{name} changes")
}

/// The server processes of the connections named `name` that listen, in order.
async fn listeners(name: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid")
        .bind(name)
        .fetch_all(&mut admin().await)
        .await
        .unwrap()
}

/// Waits until the listeners named `name` other than `others` are exactly one; its pid.
async fn the_listener_besides(name: &str, others: &[i32]) -> i32 {
    wait_until("a replica's listening connection", || async {
        let pids: Vec<i32> = listeners(name)
            .await
            .into_iter()
            .filter(|pid| !others.contains(pid))
            .collect();
        (pids.len() == 1).then(|| pids[0])
    })
    .await
}

/// Ends the server process `pid`, waiting until it is gone.
async fn terminate(pid: i32) {
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 10000)")
        .bind(pid)
        .fetch_one(&mut admin().await)
        .await
        .unwrap();
    assert!(ended, "the listening connection {pid} was ended");
}

async fn status_on(replica: &TestApp, n: usize) -> String {
    let status = replica.release_status("Devx", &n.to_string()).await;
    status["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_decision_taken_while_a_replica_had_lost_its_listener_is_never_answered_pending_after() {
    let a = spawn_app().await;
    let name = listener_name(&a);
    let a_listener = the_listener_besides(&name, &[]).await;
    let b = a.spawn_replica().await;
    let mut b_listener = the_listener_besides(&name, &[a_listener]).await;

    // The decision must be committed while b listens nowhere; b pauses before
    // listening again, so this nearly always happens on the first release.
    let mut decided_unheard = 0;
    for n in 0..5 {
        assert_eq!(a.post_release(&release(n)).await.status(), 202);
        a.smtp.wait_for(n + 1).await;
        let token = a.email_about(&format!("ana.{n}@example.com"), "R").token();
        for _ in 0..2 {
            assert_eq!(status_on(&b, n).await, "pending");
        }

        terminate(b_listener).await;
        assert_eq!(a.decide(&token, "reject", None).await.status(), 200);
        let unheard = listeners(&name).await == [a_listener];
        b_listener = the_listener_besides(&name, &[a_listener]).await;
        if unheard {
            // b noticed the loss before it connected again, and nothing kept
            // before it may be given now.
            assert_eq!(status_on(&b, n).await, "rejected");
            decided_unheard += 1;
        } else {
            wait_until("b to hear of the rejection", || async {
                (status_on(&b, n).await == "rejected").then_some(())
            })
            .await;
        }
    }
    assert!(
        decided_unheard > 0,
        "no decision was committed while b listened nowhere"
    );

    // Listening again, b hears of the next decision too.
    assert_eq!(a.post_release(&release(9)).await.status(), 202);
    a.smtp.wait_for(6).await;
    assert_eq!(status_on(&b, 9).await, "pending");
    assert_eq!(status_on(&b, 9).await, "pending");
    let token = a.email_about("ana.9@example.com", "R").token();
    assert_eq!(a.decide(&token, "approve", None).await.status(), 200);
    wait_until("b to hear of the approval", || async {
        (status_on(&b, 9).await == "approved").then_some(())
    })
    .await;
}

/// Answers show a round's failing jobs and nothing of the others, so a job
/// that never failed notifies nobody when it is queued, claimed or deleted,
/// while a failure, the claim of a failing job and its deletion do
/// (migration 0017: every notifying commit waits its turn for PostgreSQL's
/// notification lock).
#[tokio::test]
async fn a_job_notifies_the_replicas_only_while_it_is_failing() {
    use std::time::Duration;

    let app = spawn_app().await;
    let url = app.settings.database_url.as_ref().unwrap().expose();
    let mut listener = sqlx::postgres::PgListener::connect(url).await.unwrap();
    listener.listen("deploy_gate_changes").await.unwrap();
    let mut db = PgConnection::connect(url).await.unwrap();
    // Every test app has a schema of the same database: its notifications
    // name it, and other tests' are heard too.
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let mut run = async |statement: &'static str| {
        sqlx::raw_sql(statement).execute(&mut db).await.unwrap();
        let heard = async {
            loop {
                let notification = listener.recv().await.unwrap();
                if notification.payload() == schema {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_millis(500), heard)
            .await
            .is_ok()
    };
    // Due tomorrow, so the app's own worker leaves the job alone.
    let queue = "INSERT INTO job (kind, release_id, run_at, created_at)
                 SELECT 'send_approval_email', release_id, now() + interval '1 day', now()
                 FROM release";
    let claim = "UPDATE job SET locked_until = now() + interval '1 minute'";
    let delete = "DELETE FROM job";

    let release = "INSERT INTO release (team_project, external_id, stage, attempt, phase,
                                        release_name, deadline, created_at)
                   VALUES ('Devx', '1', '', 1, 'pre', 'R', now() + interval '1 day', now())";
    assert!(run(release).await, "a new release notifies");
    assert!(!run(queue).await, "a new job notifies");
    assert!(
        !run(claim).await,
        "the claim of a job that never failed notifies"
    );
    assert!(
        !run(delete).await,
        "the deletion of a job that never failed notifies"
    );

    assert!(!run(queue).await);
    let failed = "UPDATE job SET attempts = 1, last_error = 'refused', locked_until = NULL";
    assert!(run(failed).await, "a failure does not notify");
    assert!(
        run(claim).await,
        "the claim of a failing job does not notify"
    );
    assert!(
        run(delete).await,
        "the deletion of a failing job does not notify"
    );
}
