//! PostgreSQL's plans of the service's statements, for the tests that hold a
//! statement to the index it must read (`job_queue.rs`, `board_plan.rs`).

use sqlx::{Connection, PgConnection, Row, SqlSafeStr};

use crate::helpers::TestApp;

/// A connection of the test's own to `app`'s database, on its schema.
pub async fn connect(app: &TestApp) -> PgConnection {
    let url = app.settings.database_url.as_ref().unwrap().expose();
    PgConnection::connect(url).await.unwrap()
}

/// The plan that `explain` (an `EXPLAIN …` statement) prints, a line per row.
pub async fn plan_of(db: &mut PgConnection, explain: impl SqlSafeStr) -> String {
    let lines: Vec<String> = sqlx::query(explain)
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect();
    lines.join("\n")
}
