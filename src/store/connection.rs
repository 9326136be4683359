//! [`Conn`]: a connection of either database that the statements run on, for
//! a read, a write or a write transaction.
//!
//! PostgreSQL's futures (sqlx's) are boxed: an `async` function's future is as
//! large as its largest state, so unboxed they made every store call's future
//! about 14 KB, copied whole each time one was boxed or moved, on SQLite too
//! (6% more instructions per request, `bench/instructions`). A PostgreSQL
//! statement is a network round trip; one allocation more does not show.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{
    StoreError,
    postgres::{self, Pooled},
    sql::{Columns, Dialect, Sql},
    sqlite::{self, Taken},
};

/// A connection to run statements on.
pub enum Conn<'a> {
    /// One of SQLite's kept connections, perhaps in a transaction.
    Sqlite(Taken<'a>),
    /// A connection from PostgreSQL's pool.
    Postgres(Pooled),
    /// A transaction on a connection from PostgreSQL's pool; `None` once it ended.
    PostgresTx(Option<postgres::Transaction>),
}

/// A row read on either database.
pub enum Row {
    /// Read on SQLite.
    Sqlite(sqlite::Row),
    /// Read on PostgreSQL.
    Postgres(PgRow),
}

impl Conn<'_> {
    /// The statements whose text is this connection's database's own.
    pub fn dialect(&self) -> &'static Dialect {
        match self {
            Self::Sqlite(_) => &sqlite::DIALECT,
            Self::Postgres(_) | Self::PostgresTx(_) => &postgres::DIALECT,
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(conn) => conn.execute(sql).await,
            Self::Postgres(conn) => Box::pin(conn.execute(sql)).await,
            Self::PostgresTx(tx) => Box::pin(postgres::execute(open(tx)?, sql)).await,
        }
    }

    /// Runs a query returning at most one row.
    pub async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Self::Sqlite(conn) => conn.fetch_optional(sql).await?.map(Row::Sqlite),
            Self::Postgres(conn) => Box::pin(conn.fetch_optional(sql)).await?.map(Row::Postgres),
            Self::PostgresTx(tx) => Box::pin(postgres::fetch_optional(open(tx)?, sql))
                .await?
                .map(Row::Postgres),
        })
    }

    /// Runs a query returning any number of rows.
    pub async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        Ok(match self {
            Self::Sqlite(conn) => rows(conn.fetch_all(sql).await?, Row::Sqlite),
            Self::Postgres(conn) => rows(Box::pin(conn.fetch_all(sql)).await?, Row::Postgres),
            Self::PostgresTx(tx) => rows(
                Box::pin(postgres::fetch_all(open(tx)?, sql)).await?,
                Row::Postgres,
            ),
        })
    }

    /// Whether a query finds a row.
    pub async fn exists(&mut self, sql: Sql) -> Result<bool, StoreError> {
        Ok(self.fetch_optional(sql).await?.is_some())
    }

    /// Commits the open transaction; a connection outside one has nothing to commit.
    pub async fn commit(&mut self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(conn) => conn.commit().await,
            Self::Postgres(_) => Ok(()),
            Self::PostgresTx(tx) => match tx.take() {
                Some(tx) => Box::pin(tx.commit()).await,
                None => Err(ended()),
            },
        }
    }
}

/// The connection of a PostgreSQL transaction that has not ended.
fn open(tx: &mut Option<postgres::Transaction>) -> Result<&mut sqlx::PgConnection, StoreError> {
    tx.as_mut()
        .and_then(postgres::Transaction::conn)
        .ok_or_else(ended)
}

fn ended() -> StoreError {
    StoreError::Corrupt("a statement after the transaction ended".into())
}

fn rows<R>(rows: Vec<R>, wrap: impl Fn(R) -> Row) -> Vec<Row> {
    rows.into_iter().map(wrap).collect()
}

impl Columns for Row {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Sqlite(row) => row.opt_int(column),
            Self::Postgres(row) => row.opt_int(column),
        }
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Sqlite(row) => row.opt_text(column),
            Self::Postgres(row) => row.opt_text(column),
        }
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self {
            Self::Sqlite(row) => row.opt_time(column),
            Self::Postgres(row) => row.opt_time(column),
        }
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        match self {
            Self::Sqlite(row) => row.opt_uuid(column),
            Self::Postgres(row) => row.opt_uuid(column),
        }
    }
}
