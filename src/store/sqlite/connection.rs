//! SQLite statements that run on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every
//! statement to it; for a gate poll, one short read, that hand-off cost more
//! CPU than the read, and a write transaction made five of them while holding
//! the writers' turn. The SQLite store's connections, four for reads and one
//! for writes, are therefore rusqlite's (sqlx only applies the migrations, on
//! the same file and the same SQLite library): a statement runs where it is
//! called. In WAL mode a read never waits for the writer, writes take turns on the one
//! writer, no commit waits for a sync (`synchronous = NORMAL`; checkpoints run
//! in the background, `checkpoints`), and a lock held by another process
//! is waited for on the runtime, not the thread; so a statement holds the
//! runtime's thread for microseconds, less than the hand-off did.

use std::{
    borrow::Cow,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use rusqlite::{ErrorCode, OpenFlags, types::Value as Stored};
use uuid::Uuid;

use crate::store::{
    StoreError,
    sql::{Columns, Sql, Value},
};

/// The most of the database file a reader maps into memory.
const READ_MAP_BYTES: i64 = 256 << 20;

/// Statements kept prepared per connection; the store uses fewer.
const PREPARED_STATEMENTS: usize = 64;

/// A connection to the database file whose statements run on the calling thread.
pub struct Connection {
    conn: rusqlite::Connection,
    /// How long a statement waits for a lock another process holds.
    busy_timeout: Duration,
}

/// Time between attempts to take a lock that another process holds.
const LOCK_RETRY: Duration = Duration::from_millis(5);

impl Connection {
    /// Opens the database file for reads only.
    pub fn reader(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let this = Self::open(path, busy_timeout, OpenFlags::empty())?;
        // Opened read-write, as SQLite advises for WAL files, but refusing writes.
        this.conn
            .pragma_update(None, "query_only", true)
            .map_err(sqlite_error)?;
        // Pages read through a shared memory map instead of copied into each
        // connection's 2 MB cache: +20% polls on 10,000 releases. Up to this much
        // of the file is mapped.
        this.conn
            .pragma_update(None, "mmap_size", READ_MAP_BYTES)
            .map_err(sqlite_error)?;
        Ok(this)
    }

    /// Opens the database file for the store's writes, creating it if needed,
    /// in WAL mode, with foreign keys on and no checkpoints in commits
    /// (`checkpoints` makes them in the background).
    ///
    /// In WAL mode `synchronous = NORMAL` syncs at checkpoints instead of at
    /// every commit: a commit survives the process crashing or being killed,
    /// and the file is never corrupted; an OS crash or power loss may undo the
    /// last commits. FULL would cost one fsync per write, which caps the whole
    /// service (one writer at a time) at a few hundred writes a second.
    pub fn writer(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let this = Self::open(path, busy_timeout, OpenFlags::SQLITE_OPEN_CREATE)?;
        this.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 0;",
            )
            .map_err(sqlite_error)?;
        Ok(this)
    }

    /// Opens the file; a statement that finds it locked by another process
    /// (the store's own writers take turns) is retried for up to `busy_timeout`.
    /// SQLite's own busy handler is off: it would sleep on the runtime's thread.
    fn open(path: &Path, busy_timeout: Duration, create: OpenFlags) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(Duration::ZERO).map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(Self { conn, busy_timeout })
    }

    /// Runs `sql` to its end, collecting at most `limit` rows; while the file
    /// is locked by another process, waits on the runtime and tries again.
    async fn rows(&mut self, sql: Sql, limit: usize) -> Result<Vec<Row>, StoreError> {
        let started = Instant::now();
        loop {
            match self.try_rows(&sql, limit) {
                Err(Failure::Sqlite(rusqlite::Error::SqliteFailure(err, _)))
                    if err.code == ErrorCode::DatabaseBusy
                        && started.elapsed() < self.busy_timeout =>
                {
                    tokio::time::sleep(LOCK_RETRY).await;
                }
                done => return done.map_err(StoreError::from),
            }
        }
    }

    fn try_rows(&mut self, sql: &Sql, limit: usize) -> Result<Vec<Row>, Failure> {
        let mut statement = self.conn.prepare_cached(sql.text)?;
        for index in 1..=statement.parameter_count() {
            // `$N` names the Nth parameter wherever it appears, as sqlx binds it.
            let number = statement
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|digits| digits.parse::<usize>().ok())
                .unwrap_or(index);
            let value = number.checked_sub(1).and_then(|i| sql.params.get(i));
            let value = value.ok_or_else(|| {
                Failure::Parameter(format!("no value for parameter {number} of {}", sql.text))
            })?;
            match encoded(value) {
                Encoded::Int(value) => statement.raw_bind_parameter(index, value),
                Encoded::Text(value) => statement.raw_bind_parameter(index, value),
            }?;
        }
        let columns: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut found = Vec::new();
        let mut rows = statement.raw_query();
        // Stepped to the end even past `limit`: a write with RETURNING is done
        // only then.
        while let Some(row) = rows.next()? {
            if found.len() == limit {
                continue;
            }
            let values = (0..columns.len())
                .map(|i| row.get::<_, Stored>(i))
                .collect::<Result<_, _>>()?;
            found.push(Row {
                columns: columns.clone(),
                values,
            });
        }
        Ok(found)
    }
}

/// A parameter in SQLite's encoding.
enum Encoded<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

/// SQLite's encoding of a parameter: times as epoch milliseconds, ids as text.
fn encoded(value: &Value) -> Encoded<'_> {
    match value {
        Value::Int(value) => Encoded::Int(*value),
        Value::Text(value) => Encoded::Text(value.as_deref().map(Cow::Borrowed)),
        Value::Time(value) => Encoded::Int(value.map(|t| t.timestamp_millis())),
        Value::Uuid(value) => Encoded::Text(value.map(|id| Cow::Owned(id.to_string()))),
    }
}

/// A time column read back from its epoch milliseconds.
fn decoded_time(column: &str, millis: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    millis
        .map(|ms| {
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| StoreError::Corrupt(format!("{column} {ms}")))
        })
        .transpose()
}

/// An id column read back from its text.
fn decoded_uuid(column: &str, text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.map(|text| {
        Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("{column} {text}")))
    })
    .transpose()
}

fn sqlite_error(err: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(err.to_string())
}

/// Why a statement failed.
enum Failure {
    Sqlite(rusqlite::Error),
    Parameter(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Sqlite(err) => sqlite_error(err),
            Failure::Parameter(text) => StoreError::Sqlite(text),
        }
    }
}

impl Connection {
    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        self.rows(sql, 0).await?;
        Ok(self.conn.changes())
    }

    /// Runs a query returning at most one row.
    pub async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, 1).await?.pop())
    }

    /// Runs a query returning any number of rows.
    pub async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        self.rows(sql, usize::MAX).await
    }

    /// Ends the open transaction without its changes; for a transaction
    /// dropped before its commit.
    pub fn roll_back(&mut self) {
        if let Err(err) = self.conn.execute_batch("ROLLBACK")
            && !self.conn.is_autocommit()
        {
            tracing::error!(error = %err, "a write transaction could not be rolled back");
        }
    }
}

/// A row read by a [`Connection`].
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Stored>,
}

impl Row {
    /// The value of the first column named `column`.
    fn value(&self, column: &str) -> Result<&Stored, StoreError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
    }
}

impl Columns for Row {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            Stored::Null => Ok(None),
            Stored::Integer(value) => Ok(Some(*value)),
            other => Err(StoreError::Corrupt(format!("{column} {other:?}"))),
        }
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            Stored::Null => Ok(None),
            Stored::Text(value) => Ok(Some(value.clone())),
            other => Err(StoreError::Corrupt(format!("{column} {other:?}"))),
        }
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        decoded_time(column, self.opt_int(column)?)
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        decoded_uuid(column, self.opt_text(column)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_on_new_file() -> (tempfile::TempDir, rusqlite::Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (n INTEGER, s TEXT, at INTEGER);",
            )
            .unwrap();
        let reader = Connection::reader(&path, Duration::from_secs(1)).unwrap();
        (dir, writer, reader)
    }

    #[tokio::test]
    async fn parameters_bind_by_their_number_and_columns_read_by_name() {
        let (_dir, _writer, mut reader) = reader_on_new_file();
        let sql = Sql::new("SELECT $2 AS second, $1 AS first, $1 AS again, $3 AS absent_value")
            .bind(7_i64)
            .bind("two")
            .bind(None::<i64>);
        let row = reader.fetch_optional(sql).await.unwrap().unwrap();
        assert_eq!(row.text("second").unwrap(), "two");
        assert_eq!(row.int("first").unwrap(), 7);
        assert_eq!(row.int("again").unwrap(), 7);
        assert_eq!(row.opt_int("absent_value").unwrap(), None);
        assert!(matches!(row.int("second"), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.int("absent"), Err(StoreError::Corrupt(_))));
    }

    #[tokio::test]
    async fn a_reader_sees_each_commit_and_cannot_write() {
        let (_dir, writer, mut reader) = reader_on_new_file();
        let count = || Sql::new("SELECT COUNT(*) AS n FROM t WHERE at >= $1").bind(0_i64);
        assert_eq!(
            reader.fetch_all(count()).await.unwrap()[0]
                .int("n")
                .unwrap(),
            0
        );
        writer
            .execute("INSERT INTO t (n, s, at) VALUES (1, 'a', 5)", [])
            .unwrap();
        assert_eq!(
            reader.fetch_all(count()).await.unwrap()[0]
                .int("n")
                .unwrap(),
            1
        );
        let insert = Sql::new("INSERT INTO t (n) VALUES ($1)").bind(2_i64);
        assert!(reader.execute(insert).await.is_err());
        let sneaky = Sql::new("DELETE FROM t RETURNING n");
        assert!(
            reader.fetch_all(sneaky).await.is_err(),
            "query_only refuses writes"
        );
        assert_eq!(
            reader.fetch_all(count()).await.unwrap()[0]
                .int("n")
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_missing_parameter_is_an_error_not_a_panic() {
        let (_dir, _writer, mut reader) = reader_on_new_file();
        let sql = Sql::new("SELECT $1 AS a, $2 AS b").bind(1_i64);
        assert!(matches!(
            reader.fetch_all(sql).await,
            Err(StoreError::Sqlite(_))
        ));
    }
}
