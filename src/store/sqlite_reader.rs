//! Reads on SQLite that run on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every
//! statement to it; for a gate poll, one short read, that hand-off cost more
//! CPU than the read (BENCHMARKS.md, change 10). The connections kept for reads
//! are therefore rusqlite's, on the same file and the same SQLite library: a
//! statement runs where it is called. In WAL mode a read never waits for the
//! writer, and a poll's statement takes tens of microseconds, so running it on
//! a runtime thread holds that thread no longer than the hand-off did.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, types::Value as Stored};
use uuid::Uuid;

use super::{
    StoreError,
    sql::{Columns, Queries, Sql, Value},
};

/// Statements kept prepared per connection; the store reads with fewer.
const PREPARED_STATEMENTS: usize = 32;

/// A read-only connection to the database file, run on the calling thread.
pub struct SqliteReader {
    conn: Connection,
}

impl SqliteReader {
    /// Opens the database file for reads; `busy_timeout` bounds the rare waits
    /// of a WAL reader (while another connection recovers the WAL index).
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(read_error)?;
        conn.busy_timeout(busy_timeout).map_err(read_error)?;
        // Opened read-write, as SQLite advises for WAL files, but refusing writes.
        conn.pragma_update(None, "query_only", true)
            .map_err(read_error)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(Self { conn })
    }

    /// Runs `sql`, collecting at most `limit` rows.
    fn rows(&mut self, sql: Sql, limit: usize) -> Result<Vec<ReadRow>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql.text).map_err(read_error)?;
        for index in 1..=statement.parameter_count() {
            // `$N` names the Nth parameter wherever it appears, as sqlx binds it.
            let number = statement
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|digits| digits.parse::<usize>().ok())
                .unwrap_or(index);
            let value = number.checked_sub(1).and_then(|i| sql.params.get(i));
            let value = value.ok_or_else(|| {
                StoreError::Read(format!("no value for parameter {number} of {}", sql.text))
            })?;
            let bound = match value {
                Value::Int(value) => statement.raw_bind_parameter(index, value),
                Value::Text(value) => statement.raw_bind_parameter(index, value),
                Value::Time(value) => {
                    statement.raw_bind_parameter(index, value.map(|t| t.timestamp_millis()))
                }
                Value::Uuid(value) => {
                    statement.raw_bind_parameter(index, value.map(|id| id.to_string()))
                }
            };
            bound.map_err(read_error)?;
        }
        let columns: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut found = Vec::new();
        let mut rows = statement.raw_query();
        while found.len() < limit
            && let Some(row) = rows.next().map_err(read_error)?
        {
            let values = (0..columns.len())
                .map(|i| row.get::<_, Stored>(i))
                .collect::<Result<_, _>>()
                .map_err(read_error)?;
            found.push(ReadRow {
                columns: columns.clone(),
                values,
            });
        }
        Ok(found)
    }
}

fn read_error(err: rusqlite::Error) -> StoreError {
    StoreError::Read(err.to_string())
}

#[async_trait]
impl Queries for SqliteReader {
    type Row = ReadRow;

    /// Refused: the connection only reads.
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        Err(StoreError::Read(format!(
            "a reader cannot run {}",
            sql.text
        )))
    }

    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<ReadRow>, StoreError> {
        Ok(self.rows(sql, 1)?.pop())
    }

    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<ReadRow>, StoreError> {
        self.rows(sql, usize::MAX)
    }
}

/// A row read by a [`SqliteReader`].
pub struct ReadRow {
    columns: Arc<[String]>,
    values: Vec<Stored>,
}

impl ReadRow {
    /// The value of the first column named `column`.
    fn value(&self, column: &str) -> Result<&Stored, StoreError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
    }
}

impl Columns for ReadRow {
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
        self.opt_int(column)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| StoreError::Corrupt(format!("{column} {ms}")))
            })
            .transpose()
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        self.opt_text(column)?
            .map(|text| {
                Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("{column} {text}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_on_new_file() -> (tempfile::TempDir, Connection, SqliteReader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (n INTEGER, s TEXT, at INTEGER);",
            )
            .unwrap();
        let reader = SqliteReader::open(&path, Duration::from_secs(1)).unwrap();
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
            Err(StoreError::Read(_))
        ));
    }
}
