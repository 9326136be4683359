//! Transactions that begin holding a release's lock: on PostgreSQL the lock
//! goes with `BEGIN` in one message (`src/store/postgres/transaction.rs`).
//! The transaction waits for another holder and then sees what it committed;
//! a lock that fails leaves no connection behind in an aborted transaction.

use std::time::Duration;

use chrono::Utc;
use deploy_gate::domain::release::{NewRelease, ReleaseKey};
use sqlx::{Connection, PgConnection};

use crate::{
    helpers::{TestApp, TestSmtp, spawn_app, spawn_app_with},
    plans::connect,
};

/// Inserts release `Devx/{id}`, with no job to run; its internal id.
async fn release(app: &TestApp, id: &str) -> i64 {
    let now = Utc::now();
    let key = ReleaseKey::parse("Devx", id, "").unwrap();
    let new = NewRelease::parse(key, "R", None).unwrap();
    let mut tx = app.store.begin().await.unwrap();
    let inserted = tx.insert_release(&new, None, now + chrono::Duration::days(1), now);
    let release_id = inserted.await.unwrap().expect("a new release").id;
    tx.commit().await.unwrap();
    release_id
}

/// Another session's transaction holding release `release_id`'s lock.
async fn hold_elsewhere(app: &TestApp, release_id: i64) -> PgConnection {
    let mut other = connect(app).await;
    sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT release_id FROM release WHERE release_id = $1 FOR UPDATE")
        .bind(release_id)
        .execute(&mut other)
        .await
        .unwrap();
    other
}

#[tokio::test]
async fn a_transaction_begun_holding_a_release_waits_for_its_holder_and_reads_what_it_committed() {
    let app = spawn_app().await;
    let release_id = release(&app, "1").await;
    let mut other = hold_elsewhere(&app, release_id).await;
    sqlx::query("UPDATE release SET release_name = 'renamed' WHERE release_id = $1")
        .bind(release_id)
        .execute(&mut other)
        .await
        .unwrap();

    let store = app.store.clone();
    let waiting = tokio::spawn(async move {
        let mut tx = store.begin_holding(release_id).await.unwrap();
        let name = tx.read_release(release_id).await.unwrap().release.name;
        tx.commit().await.unwrap();
        name
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "began while another held the lock");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(waiting.await.unwrap(), "renamed");
}

#[tokio::test]
async fn a_lock_that_times_out_as_the_transaction_begins_leaves_its_connection_usable() {
    // One connection, so the next transaction gets the one whose lock failed.
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.database_max_connections = Some(1);
        s.database_statement_timeout = Some(Duration::from_millis(200));
    })
    .await;
    let release_id = release(&app, "1").await;
    let other = hold_elsewhere(&app, release_id).await;

    let refused = app.store.begin_holding(release_id).await.err();
    let refused = format!("{:?}", refused.expect("the lock to time out"));
    assert!(refused.contains("statement timeout"), "{refused}");

    other.close().await.unwrap();
    let mut tx = app.store.begin_holding(release_id).await.unwrap();
    let name = tx.read_release(release_id).await.unwrap().release.name;
    tx.commit().await.unwrap();
    assert_eq!(name, "R");
    assert!(
        app.store
            .find_release(&ReleaseKey::parse("Devx", "1", "").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}
