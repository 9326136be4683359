//! [`Transaction`]: a transaction on a connection from [`Connections`], begun
//! with a release's lock where the caller holds one from the start, and its
//! connection handed on once it ended.
//!
//! sqlx's own transaction begins with a round trip of its own and, ended,
//! sends its connection back to the pool, which pings it: two round trips
//! that are not statements. Here the lock goes with `BEGIN` in one message,
//! and a committed transaction's connection is handed to the next statement
//! ([`warm`](super::warm)).

use sqlx::{
    AssertSqlSafe, PgConnection, SqlSafeStr, SqlStr, pool::PoolConnection,
    postgres::PgTransactionManager,
};
// sqlx does not name the trait its transactions begin and end by.
use sqlx_core::transaction::TransactionManager as _;

use super::{
    DIALECT, ended_by_server, retries_after_ended,
    warm::{Connections, Out},
};
use crate::store::StoreError;

/// A transaction; rolled back unless committed.
pub struct Transaction {
    /// `None` once committed.
    out: Option<Out>,
    connections: Connections,
}

impl Transaction {
    /// Begins a transaction on a connection from `connections`, holding the
    /// lock of release `holding` from the start when given (what
    /// `lock_release` does, and what `FOR UPDATE` waits for, in the message
    /// that begins it); on another connection while the server had ended the
    /// one it was begun on.
    pub async fn begin(
        connections: &Connections,
        holding: Option<i64>,
    ) -> Result<Self, StoreError> {
        let mut retries = retries_after_ended(connections);
        loop {
            let mut out = connections.take().await?;
            match PgTransactionManager::begin(&mut out.conn, begin_statement(holding)).await {
                Ok(()) => {
                    return Ok(Self {
                        out: Some(out),
                        connections: connections.clone(),
                    });
                }
                Err(err) if retries > 0 && ended_by_server(&err) => {
                    out.conn.close_on_drop();
                    retries -= 1;
                }
                Err(err) => {
                    if holding.is_some() {
                        end_failed_begin(&mut out.conn).await;
                    }
                    return Err(err.into());
                }
            }
        }
    }

    /// The connection, for the transaction's statements; `None` once it ended.
    pub fn conn(&mut self) -> Option<&mut PgConnection> {
        self.out.as_mut().map(|out| &mut *out.conn)
    }

    /// Commits; the connection goes on to the next statement.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        PgTransactionManager::commit(&mut out.conn).await?;
        if let Some(out) = self.out.take() {
            self.connections.hand_on(out);
        }
        Ok(())
    }
}

impl Drop for Transaction {
    /// Not committed: the rollback is sent as the connection goes back to
    /// sqlx's pool, which pings it (as sqlx's own transaction does).
    fn drop(&mut self) {
        if let Some(out) = self.out.as_mut() {
            PgTransactionManager::start_rollback(&mut out.conn);
        }
    }
}

/// `BEGIN`, and the lock of release `holding` in the same message: each
/// statement of a message has a snapshot of its own, so the transaction's
/// statements see what the lock's holder committed before it let go.
/// `None` is sqlx's own `BEGIN`.
fn begin_statement(holding: Option<i64>) -> Option<SqlStr> {
    holding.map(|release_id| {
        // A message's statements take no parameters; an integer written in
        // decimal needs no quoting.
        let lock = DIALECT.lock_release.replace("$1", &release_id.to_string());
        AssertSqlSafe(format!("BEGIN; {lock}")).into_sql_str()
    })
}

/// After `BEGIN` and the lock failed in one message: the lock failed (a
/// statement timeout, say) and left the transaction begun and aborted, which
/// sqlx does not know of. It is rolled back here, or the connection closed,
/// so that it never goes back to the pool in it.
async fn end_failed_begin(conn: &mut PoolConnection<sqlx::Postgres>) {
    if sqlx::raw_sql("ROLLBACK")
        .execute(&mut **conn)
        .await
        .is_err()
    {
        conn.close_on_drop();
    }
}
