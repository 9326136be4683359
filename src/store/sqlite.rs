//! The embedded SQLite backend: WAL mode, one writer at a time, times as epoch
//! milliseconds and ids as text.

use std::{borrow::Cow, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Row, Sqlite, SqliteConnection,
    migrate::Migrator,
    query::Query,
    sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{
    SqlStore, StoreError,
    sql::{Backend, Columns, Queries, Sql, Value, Writes},
    sqlite_checkpoints,
    sqlite_inline::InlineConnection,
    sqlite_version::WalIndex,
};
use crate::settings::DatabaseConfig;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// Connections kept for reads, run on the calling thread (`sqlite_inline`).
const READERS: usize = 4;

/// How long a statement waits for another connection's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) the database file named by the configured URL.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(config.url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL syncs at checkpoints instead of at every commit:
            // a commit survives the process crashing or being killed, and the file
            // is never corrupted; an OS crash or power loss may undo the last
            // commits. FULL would cost one fsync per write, which caps the whole
            // service (one writer at a time) at a few hundred writes a second.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Checkpoints run in the background (`sqlite_checkpoints`), not in commits.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            // A connection is a file handle that cannot drop like a socket; a test
            // before each use would be one more round trip to the connection's
            // thread on every gate poll.
            .test_before_acquire(false)
            .acquire_timeout(config.connect_timeout)
            .connect_with(options.clone())
            .await?;
        // The pool created the file; an in-memory database has none (and no
        // WAL), and is read through the pool.
        let file = options.get_filename();
        if !file.is_file() {
            return Ok(Self::new(pool));
        }
        let writer = Arc::new(Mutex::new(InlineConnection::writer(file, BUSY_TIMEOUT)?));
        let readers = (0..READERS)
            .map(|_| InlineConnection::reader(file, BUSY_TIMEOUT))
            .collect::<Result<_, _>>()?;
        let checkpoints = sqlite_checkpoints::start(file, BUSY_TIMEOUT, writer.clone())?;
        Ok(Self::new(pool).keep_connections(writer, readers, checkpoints, WalIndex::of(file)))
    }
}

#[async_trait]
impl Queries for SqliteConnection {
    type Row = SqliteRow;

    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        Ok(query(sql).execute(self).await?.rows_affected())
    }

    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<SqliteRow>, StoreError> {
        Ok(query(sql).fetch_optional(self).await?)
    }

    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<SqliteRow>, StoreError> {
        Ok(query(sql).fetch_all(self).await?)
    }
}

impl Writes for SqliteConnection {
    // The write lock taken by BEGIN IMMEDIATE already covers the release.
    const LOCK_RELEASE: &'static str = "SELECT release_id FROM release WHERE release_id = $1";
    const CLAIM_JOB: &'static str = "UPDATE job SET locked_until = $1
         WHERE job_id = (
             SELECT job_id FROM job
             WHERE dead_at IS NULL AND run_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY run_at, job_id LIMIT 1)
         RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts";
}

impl Backend for SqliteConnection {
    type Kept = InlineConnection;

    const ONE_WRITER: bool = true;
    // Takes the database's only write lock up front, so that a read followed
    // by a write never fails to upgrade, and writers take turns.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
}

/// A parameter in SQLite's encoding.
pub(super) enum Encoded<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

/// SQLite's encoding of a parameter, for sqlx and for `sqlite_inline`: times
/// as epoch milliseconds, ids as text.
pub(super) fn encoded(value: &Value) -> Encoded<'_> {
    match value {
        Value::Int(value) => Encoded::Int(*value),
        Value::Text(value) => Encoded::Text(value.as_deref().map(Cow::Borrowed)),
        Value::Time(value) => Encoded::Int(value.map(|t| t.timestamp_millis())),
        Value::Uuid(value) => Encoded::Text(value.map(|id| Cow::Owned(id.to_string()))),
    }
}

/// A time column read back from its epoch milliseconds.
pub(super) fn decoded_time(
    column: &str,
    millis: Option<i64>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    millis
        .map(|ms| {
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| StoreError::Corrupt(format!("{column} {ms}")))
        })
        .transpose()
}

/// An id column read back from its text.
pub(super) fn decoded_uuid(column: &str, text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.map(|text| {
        Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("{column} {text}")))
    })
    .transpose()
}

/// The statement with its parameters in SQLite's encoding.
fn query(sql: Sql) -> Query<'static, Sqlite, SqliteArguments> {
    let query = sqlx::query(sql.text);
    sql.params
        .iter()
        .fold(query, |query, param| match encoded(param) {
            Encoded::Int(value) => query.bind(value),
            Encoded::Text(value) => query.bind(value.map(Cow::into_owned)),
        })
}

impl Columns for SqliteRow {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        decoded_time(column, self.try_get(column)?)
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        decoded_uuid(column, self.try_get(column)?)
    }
}
