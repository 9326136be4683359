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
