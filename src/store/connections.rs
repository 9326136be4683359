//! The connections a [`super::SqlStore`] runs statements on: one kept out of
//! the pool (SQLite's, `sqlite_inline`) or one from the pool, for a read, an
//! autocommit write, or a write transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Transaction, pool::PoolConnection};
use tokio::sync::{MutexGuard, SemaphorePermit};
use uuid::Uuid;

use super::{
    StoreError,
    sql::{Backend, Columns, Kept, Queries, Sql, Writes},
};

/// The backend's connection kept out of the pool.
pub type KeptConn<DB> = <<DB as Database>::Connection as Backend>::Kept;

/// A connection to run statements on outside a transaction.
pub enum Conn<'a, DB: Database>
where
    DB::Connection: Backend,
{
    /// A kept connection, with the permit that a kept reader is taken under.
    Kept {
        conn: MutexGuard<'a, KeptConn<DB>>,
        _permit: Option<SemaphorePermit<'a>>,
    },
    /// A pooled connection, with the turn to write where writers take turns.
    Pooled {
        conn: PoolConnection<DB>,
        _turn: Option<MutexGuard<'a, ()>>,
    },
}

/// A write transaction; it holds the turn to write (or the kept writer) until
/// it ends, and rolls back unless committed.
pub enum WriteTx<'a, DB: Database>
where
    DB::Connection: Backend,
{
    /// On the kept writer.
    Kept(KeptTx<'a, KeptConn<DB>>),
    /// On a pooled connection.
    Pooled {
        tx: Transaction<'static, DB>,
        _turn: Option<MutexGuard<'a, ()>>,
    },
}

/// A transaction open on a kept connection.
pub struct KeptTx<'a, K: Kept> {
    conn: MutexGuard<'a, K>,
    open: bool,
}

impl<'a, DB: Database> WriteTx<'a, DB>
where
    DB::Connection: Backend,
{
    /// Begins a transaction on the kept writer.
    pub async fn begin_kept(mut conn: MutexGuard<'a, KeptConn<DB>>) -> Result<Self, StoreError> {
        conn.execute(Sql::new(<DB::Connection as Backend>::BEGIN_WRITE))
            .await?;
        Ok(Self::Kept(KeptTx { conn, open: true }))
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Kept(mut kept) => {
                kept.conn.execute(Sql::new("COMMIT")).await?;
                kept.open = false;
                Ok(())
            }
            Self::Pooled { tx, .. } => Ok(tx.commit().await?),
        }
    }
}

impl<K: Kept> Drop for KeptTx<'_, K> {
    fn drop(&mut self) {
        if self.open {
            self.conn.roll_back();
        }
    }
}

/// A row read on a kept or a pooled connection.
pub enum EitherRow<K, P> {
    /// Read on a kept connection.
    Kept(K),
    /// Read on a pooled connection.
    Pooled(P),
}

type Row<DB> =
    EitherRow<<KeptConn<DB> as Queries>::Row, <<DB as Database>::Connection as Queries>::Row>;

/// The connection a [`Conn`] or [`WriteTx`] runs its statements on.
enum On<'x, K, P> {
    Kept(&'x mut K),
    Pooled(&'x mut P),
}

impl<DB: Database> Conn<'_, DB>
where
    DB::Connection: Backend,
{
    fn on(&mut self) -> On<'_, KeptConn<DB>, DB::Connection> {
        match self {
            Self::Kept { conn, .. } => On::Kept(&mut **conn),
            Self::Pooled { conn, .. } => On::Pooled(&mut **conn),
        }
    }
}

impl<DB: Database> WriteTx<'_, DB>
where
    DB::Connection: Backend,
{
    fn on(&mut self) -> On<'_, KeptConn<DB>, DB::Connection> {
        match self {
            Self::Kept(kept) => On::Kept(&mut *kept.conn),
            Self::Pooled { tx, .. } => On::Pooled(&mut **tx),
        }
    }
}

fn wrap_all<R, T>(rows: Vec<R>, wrap: impl Fn(R) -> T) -> Vec<T> {
    rows.into_iter().map(wrap).collect()
}

/// `Queries` and `Writes` for a connection enum with an `on` method.
macro_rules! delegate_queries {
    ($ty:ident) => {
        #[async_trait]
        impl<DB: Database> Queries for $ty<'_, DB>
        where
            DB::Connection: Backend,
        {
            type Row = Row<DB>;

            async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
                match self.on() {
                    On::Kept(conn) => conn.execute(sql).await,
                    On::Pooled(conn) => conn.execute(sql).await,
                }
            }

            async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<Row<DB>>, StoreError> {
                Ok(match self.on() {
                    On::Kept(conn) => conn.fetch_optional(sql).await?.map(EitherRow::Kept),
                    On::Pooled(conn) => conn.fetch_optional(sql).await?.map(EitherRow::Pooled),
                })
            }

            async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Row<DB>>, StoreError> {
                Ok(match self.on() {
                    On::Kept(conn) => wrap_all(conn.fetch_all(sql).await?, EitherRow::Kept),
                    On::Pooled(conn) => wrap_all(conn.fetch_all(sql).await?, EitherRow::Pooled),
                })
            }
        }

        impl<DB: Database> Writes for $ty<'_, DB>
        where
            DB::Connection: Backend,
        {
            const LOCK_RELEASE: &'static str = <DB::Connection as Writes>::LOCK_RELEASE;
            const CLAIM_JOB: &'static str = <DB::Connection as Writes>::CLAIM_JOB;
        }
    };
}

delegate_queries!(Conn);
delegate_queries!(WriteTx);

impl<K: Columns, P: Columns> Columns for EitherRow<K, P> {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Kept(row) => row.opt_int(column),
            Self::Pooled(row) => row.opt_int(column),
        }
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Kept(row) => row.opt_text(column),
            Self::Pooled(row) => row.opt_text(column),
        }
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self {
            Self::Kept(row) => row.opt_time(column),
            Self::Pooled(row) => row.opt_time(column),
        }
    }

    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        match self {
            Self::Kept(row) => row.opt_uuid(column),
            Self::Pooled(row) => row.opt_uuid(column),
        }
    }
}
