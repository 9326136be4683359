//! The PostgreSQL database, for several replicas sharing one: native
//! `timestamptz` and `uuid` columns, row locks, and `SKIP LOCKED` job claims.

use std::{pin::Pin, str::FromStr, sync::Arc};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{
    PgConnection, PgPool, Row as _,
    migrate::Migrator,
    postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow},
    query::Query,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod transaction;
mod warm;

pub use transaction::Transaction;
use warm::{Connections, Out};

use super::{
    DataVersion, StoreError,
    changes::{self, Changes},
    grouped::Grouped,
    releases::SentEmail,
    sql::{Columns, Dialect, Rows, Sql, Value},
};
use crate::settings::DatabaseConfig;

/// The columns of a claim's rows: each job claimed (`claimed`), its columns
/// named `claimed_…`, with its release's snapshot (`release`, `approval`:
/// `releases::snapshot_columns!`).
macro_rules! claimed_columns {
    () => {
        concat!(
            " SELECT claimed.job_id AS claimed_job_id, claimed.kind AS claimed_kind,
                claimed.release_id AS claimed_release_id,
                claimed.approval_id AS claimed_approval_id,
                claimed.callback_id AS claimed_callback_id, claimed.channel AS claimed_channel,
                claimed.attempts AS claimed_attempts, ",
            super::releases::snapshot_columns!()
        )
    };
}

/// The rest of a claim after its `WITH claimed AS (…)`: each job claimed
/// joined with its release's snapshot, a row for each approval.
macro_rules! with_their_release {
    () => {
        concat!(
            claimed_columns!(),
            " FROM claimed
               LEFT JOIN release ON release.release_id = claimed.release_id
               LEFT JOIN approval ON approval.release_id = release.release_id"
        )
    };
}

/// The statements whose text is PostgreSQL's own.
pub const DIALECT: Dialect = Dialect {
    lock_release: "SELECT release_id FROM release WHERE release_id = $1 FOR UPDATE",
    // A job locked by another replica's claim is skipped, not waited for; the
    // lease (locked_until) hands a dead replica's job to another after it expires.
    // The release is read as of the claim's start, as a read right after it
    // would see it: a job is queued by the transaction that wrote what it needs.
    claim_job: concat!(
        "WITH claimed AS (
             UPDATE job SET locked_until = $1
             WHERE job_id = (
                 SELECT job_id FROM job WHERE ",
        super::queue::due_unlocked!(),
        " ORDER BY run_at, job_id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts)",
        with_their_release!(),
        " ORDER BY approval.created_at, approval.email"
    ),
    // The same for a release's jobs of one kind, one job's rows after the other's.
    claim_release_jobs: concat!(
        "WITH claimed AS (
             UPDATE job SET locked_until = $1
             WHERE job_id IN (
                 SELECT job_id FROM job
                 WHERE release_id = $3 AND kind = $4 AND ",
        super::queue::due_unlocked!(),
        " ORDER BY job_id LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts)",
        with_their_release!(),
        " ORDER BY claimed.job_id, approval.created_at, approval.email"
    ),
    // The function answers rows of the job, release and approval types; each
    // is spread into the columns a claim answers. The count of failing jobs
    // is read as of the statement's start, as a claim reads the release.
    approvers_found: Some(concat!(
        claimed_columns!(),
        " FROM deploy_gate_approvers_found($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS found,
              LATERAL (SELECT (found.claimed_job).*) AS claimed,
              LATERAL (SELECT (found.round_release).*) AS release,
              LATERAL (SELECT (found.round_approval).*) AS approval
         ORDER BY claimed.job_id, approval.created_at, approval.email"
    )),
    writes_in_with: true,
    concluded_before: super::retention::concluded_before!(" FOR UPDATE OF r SKIP LOCKED"),
    expired_before: super::retention::expired_before!(" FOR UPDATE OF r SKIP LOCKED"),
    // PostgreSQL's planner weighs the partial index by its statistics.
    pending_candidates: super::listing::pending_candidates!("release r", "", "$5"),
    pending_candidates_of_project: super::listing::pending_candidates!(
        "release r",
        " AND r.team_project = $5",
        "$6"
    ),
};

/// The planner's price of a random page read on the service's connections
/// (see [`Postgres::connect`]).
const RANDOM_PAGE_COST: &str = "1.1";

/// The embedded migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A PostgreSQL database, for several replicas sharing it, through sqlx's pool.
pub struct Postgres {
    /// sqlx's pool, and connections kept warm beside it.
    connections: Connections,
    /// The database's version as this process knows it.
    changes: Arc<Changes>,
    /// The pool of the connection that listens for changes, once asked to.
    listener: PgPool,
    /// Emails sent, recorded in groups: each commit notifies the replicas,
    /// and notifying commits go one at a time ([`Grouped`]).
    emails_sent: Grouped<SentEmail>,
}

/// A connection from the pool, not tested first: a statement that finds it
/// ended by the server runs again on another (see [`Postgres::connect`]).
/// Dropped after a statement the server answered, it is handed on to the next
/// statement, not pinged back into the pool ([`warm`]).
pub struct Pooled {
    /// `None` only while dropped.
    out: Option<Out>,
    /// Whether the last statement ended with the server's answer.
    answered: bool,
    connections: Connections,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(out) = self.out.take()
            && self.answered
        {
            self.connections.hand_on(out);
        }
    }
}

/// How a statement runs on a connection.
type Run<T> = for<'c> fn(
    &'c mut PgConnection,
    Sql,
) -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

impl Pooled {
    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        self.run(sql, |conn, sql| Box::pin(execute(conn, sql)))
            .await
    }

    /// Runs a query returning at most one row.
    pub async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<PgRow>, StoreError> {
        self.run(sql, |conn, sql| Box::pin(fetch_optional(conn, sql)))
            .await
    }

    /// Runs a query returning any number of rows.
    pub async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
        self.run(sql, |conn, sql| Box::pin(fetch_all(conn, sql)))
            .await
    }

    /// Runs `sql` with `run`, again on another connection while the server
    /// had ended the one it ran on. The server ends a connection between
    /// statements (a restart, a failover, an administrator), or during one,
    /// which it then rolls back, so the statement has not taken effect.
    async fn run<T>(&mut self, sql: Sql, run: Run<T>) -> Result<T, StoreError> {
        let mut retries = retries_after_ended(&self.connections);
        loop {
            let Some(out) = self.out.as_mut() else {
                unreachable!("a connection is dropped only with its `Pooled`")
            };
            self.answered = false;
            let result = run(&mut out.conn, sql.clone()).await;
            match result {
                Err(StoreError::Database(err)) if retries > 0 && ended_by_server(&err) => {
                    out.conn.close_on_drop();
                    self.out = Some(self.connections.take().await?);
                    retries -= 1;
                }
                result => {
                    self.answered = matches!(
                        result,
                        Ok(_) | Err(StoreError::Database(sqlx::Error::Database(_)))
                    );
                    return result;
                }
            }
        }
    }
}

/// How many more attempts a statement or a transaction's start gets after
/// finding its connection ended: every pooled connection may have been ended
/// at once, so as many as the pool holds, the last on a connection opened anew.
fn retries_after_ended(connections: &Connections) -> u32 {
    connections.max()
}

/// Whether the server had ended the connection a statement was sent on: it
/// says so as it ends a backend (`57P01` as an administrator or a shutdown
/// does, `57P02` after a crash), or the statement could not be written to a
/// socket already closed. A connection lost otherwise (reset on the way,
/// closed without a word) is not: the statement may have run and committed.
fn ended_by_server(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(err) => err.kind() == std::io::ErrorKind::BrokenPipe,
        sqlx::Error::Database(err) => matches!(err.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

/// Where a PostgreSQL URL points, for messages: `host:port/database`, without
/// the user or password.
pub fn location(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        ),
        Err(_) => "the configured URL".to_owned(),
    }
}

impl Postgres {
    /// Connects to the database named by the configured URL.
    ///
    /// Connections are not pinged as they leave the pool, a round trip each
    /// (BENCHMARKS.md, change 40): a statement that finds its connection
    /// ended, as a database restart ends them, runs again on another
    /// ([`Pooled`]). Nor are they as they go back to it after a statement the
    /// server answered: they are handed on to the next statement instead
    /// ([`warm`], change 41).
    /// Statements running longer than the statement timeout are cancelled by
    /// the server. JIT compilation is off: the board's listing scans with
    /// per-row subqueries that the planner prices high, and compiling them
    /// took 20 times longer than running them.
    /// A random page read is priced as what it is for the service's rows, held
    /// in memory: about a sequential one (`random_page_cost` 1.1, not the
    /// spinning disk's 4). At the default the board's page read every approval
    /// in the database to join the page's fifty releases to theirs (a hash
    /// join over a sequential scan, 12 ms at 20,000 approvals, where looking
    /// each release's up took 1 ms).
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let statement_timeout_ms = config.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(config.url.expose())?.options([
            ("statement_timeout", statement_timeout_ms.as_str()),
            ("jit", "off"),
            ("random_page_cost", RANDOM_PAGE_COST),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            connections: Connections::new(pool),
            changes: Arc::default(),
            listener: changes::listener_pool(&options, config.connect_timeout),
            emails_sent: Grouped::new(Rows::MOST),
        })
    }

    /// The database's version, known while a connection listens for changes
    /// ([`follow_changes`](Self::follow_changes)).
    pub fn data_version(&self) -> Option<DataVersion> {
        self.changes.version()
    }

    /// Where sent emails wait to be recorded with others.
    pub(in crate::store) fn emails_sent(&self) -> &Grouped<SentEmail> {
        &self.emails_sent
    }

    /// The version to move on after each commit of this process.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Listens for the changes of every process on the database until `stop`
    /// is cancelled, so that [`data_version`](Self::data_version) is known.
    pub fn follow_changes(&self, stop: CancellationToken) {
        tokio::spawn(changes::follow(
            self.changes.clone(),
            self.listener.clone(),
            stop,
        ));
    }

    /// Applies pending migrations. The migrator holds an advisory lock while
    /// it runs, so replicas starting together apply each migration once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Ok(MIGRATOR.run(self.connections.pool()).await?)
    }

    /// A connection from the pool, or one handed on by the statement before.
    pub async fn conn(&self) -> Result<Pooled, StoreError> {
        Ok(Pooled {
            out: Some(self.connections.take().await?),
            answered: false,
            connections: self.connections.clone(),
        })
    }

    /// A transaction on a connection from the pool, holding release
    /// `holding`'s lock from the start when given ([`Transaction::begin`]).
    pub async fn begin(&self, holding: Option<i64>) -> Result<Transaction, StoreError> {
        Transaction::begin(&self.connections, holding).await
    }
}

/// Runs a statement; returns the number of rows it changed.
pub async fn execute(conn: &mut PgConnection, sql: Sql) -> Result<u64, StoreError> {
    Ok(query(sql).execute(conn).await?.rows_affected())
}

/// Runs a query returning at most one row.
pub async fn fetch_optional(
    conn: &mut PgConnection,
    sql: Sql,
) -> Result<Option<PgRow>, StoreError> {
    Ok(query(sql).fetch_optional(conn).await?)
}

/// Runs a query returning any number of rows.
pub async fn fetch_all(conn: &mut PgConnection, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
    Ok(query(sql).fetch_all(conn).await?)
}

/// The statement with its parameters in PostgreSQL's types.
fn query(sql: Sql) -> Query<'static, sqlx::Postgres, PgArguments> {
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
