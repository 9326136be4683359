//! The PostgreSQL backend, for several replicas sharing one database: native
//! `timestamptz` and `uuid` columns, row locks, and `SKIP LOCKED` job claims.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{
    PgConnection, Postgres, Row,
    migrate::Migrator,
    postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow},
    query::Query,
};
use uuid::Uuid;

use super::{
    SqlStore, StoreError,
    sql::{Backend, Columns, NoneKept, Queries, Sql, Value, Writes},
};
use crate::settings::DatabaseConfig;

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to the database named by the configured URL.
    ///
    /// Each connection is checked before use, so connections that a database
    /// restart broke are replaced by new ones; statements running longer than
    /// the statement timeout are cancelled by the server. JIT compilation is
    /// off: the board's listing scans with per-row subqueries that the planner
    /// prices high, and compiling them took 20 times longer than running them.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let statement_timeout_ms = config.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(config.url.expose())?.options([
            ("statement_timeout", statement_timeout_ms.as_str()),
            ("jit", "off"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout)
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool))
    }
}

#[async_trait]
impl Queries for PgConnection {
    type Row = PgRow;

    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        Ok(query(sql).execute(self).await?.rows_affected())
    }

    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<PgRow>, StoreError> {
        Ok(query(sql).fetch_optional(self).await?)
    }

    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
        Ok(query(sql).fetch_all(self).await?)
    }
}

impl Writes for PgConnection {
    const LOCK_RELEASE: &'static str =
        "SELECT release_id FROM release WHERE release_id = $1 FOR UPDATE";
    // A job locked by another replica's claim is skipped, not waited for; the
    // lease (locked_until) hands a dead replica's job to another after it expires.
    const CLAIM_JOB: &'static str = "UPDATE job SET locked_until = $1
         WHERE job_id = (
             SELECT job_id FROM job
             WHERE dead_at IS NULL AND run_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY run_at, job_id LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts";
}

impl Backend for PgConnection {
    type Kept = NoneKept;

    const ONE_WRITER: bool = false;
    const BEGIN_WRITE: &'static str = "BEGIN";
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");
}

/// The statement with its parameters in PostgreSQL's types.
fn query(sql: Sql) -> Query<'static, Postgres, PgArguments> {
    let query = sqlx::query(sql.text);
    sql.params
        .into_iter()
        .fold(query, |query, param| match param {
            Value::Int(value) => query.bind(value),
            Value::Text(value) => query.bind(value),
            Value::Time(value) => query.bind(value.map(to_millis)),
            Value::Uuid(value) => query.bind(value),
        })
}

/// Times are kept to the millisecond, as on SQLite, so both backends show the same values.
fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(time)
}

impl Columns for PgRow {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(column)?)
    }
}
