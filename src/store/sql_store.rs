//! [`SqlStore`]: the one [`Store`] implementation, over either backend's pool.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Pool, pool::PoolConnection};
use tokio::sync::{Mutex, MutexGuard, Semaphore};
use tokio_util::sync::DropGuard;
use uuid::Uuid;

use super::{
    DataVersion, ReleasePage, ReleaseQuery, Store, StoreError, Transaction, callbacks,
    connections::{Conn, KeptConn, WriteTx},
    listing, queue, releases,
    sql::{Backend, Columns, Queries, Sql},
    sqlite_version::WalIndex,
};
use crate::domain::{
    callback::CallbackRecord,
    job::Job,
    release::ReleaseKey,
    snapshot::{ApprovalRecord, ReleaseHistory, ReleaseSnapshot},
};

/// Setting that holds the generated token secret.
const TOKEN_SECRET_SETTING: &str = "token_secret";

/// The store over a connection pool of SQLite ([`super::SqliteStore`]) or
/// PostgreSQL ([`super::PgStore`]); each method is one transaction.
pub struct SqlStore<DB: Database>
where
    DB::Connection: Backend,
{
    pool: Pool<DB>,
    /// On a database with one writer at a time (SQLite) writers take turns,
    /// first come first served, on the kept writer or else here. Left to
    /// SQLite's lock they would sleep and retry, and a busy moment would
    /// stretch single writes to seconds.
    turn_to_write: Option<Mutex<()>>,
    /// The connection kept for writes (SQLite's, statements on the calling
    /// thread, `sqlite_inline`); without one, writes use the pool.
    writer: Option<Arc<Mutex<KeptConn<DB>>>>,
    /// Connections kept for reads (SQLite's, as the writer); without them,
    /// reads use the pool.
    readers: Vec<Mutex<KeptConn<DB>>>,
    /// One permit per kept reader: readers wait here in turn, first come first served.
    free_readers: Semaphore,
    next_reader: AtomicUsize,
    /// Stops the store's background work when it drops (SQLite's checkpoints).
    background: Option<DropGuard>,
    /// Where the database's version is read (SQLite's WAL index).
    wal_index: Option<WalIndex>,
}

impl<DB: Database> SqlStore<DB>
where
    DB::Connection: Backend,
{
    /// A store over `pool`.
    pub(super) fn new(pool: Pool<DB>) -> Self {
        let turn_to_write = <DB::Connection as Backend>::ONE_WRITER.then(Mutex::default);
        Self {
            pool,
            turn_to_write,
            writer: None,
            readers: Vec::new(),
            free_readers: Semaphore::new(0),
            next_reader: AtomicUsize::new(0),
            background: None,
            wal_index: None,
        }
    }

    /// Serves writes on `writer` and reads on `readers` instead of the pool's
    /// connections, keeps `background` work (SQLite's checkpoints) running
    /// for as long as the store lives, and reads the version from `wal_index`.
    pub(super) fn keep_connections(
        mut self,
        writer: Arc<Mutex<KeptConn<DB>>>,
        readers: Vec<KeptConn<DB>>,
        background: DropGuard,
        wal_index: WalIndex,
    ) -> Self {
        self.wal_index = Some(wal_index);
        self.writer = Some(writer);
        self.free_readers.add_permits(readers.len());
        self.readers = readers.into_iter().map(Mutex::new).collect();
        self.background = Some(background);
        self
    }

    /// A connection for a read: a kept one as soon as one is free (in the order
    /// asked), or one from the pool when none are kept.
    async fn reader(&self) -> Result<Conn<'_, DB>, StoreError> {
        if self.readers.is_empty() {
            let conn = self.conn().await?;
            return Ok(Conn::Pooled { conn, _turn: None });
        }
        let permit = self
            .free_readers
            .acquire()
            .await
            .map_err(|_| StoreError::Corrupt("the readers were closed".into()))?;
        // A permit means a reader is free or about to be (its guard drops before its permit).
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let count = self.readers.len();
        loop {
            for offset in 0..count {
                if let Ok(conn) = self.readers[(start + offset) % count].try_lock() {
                    return Ok(Conn::Kept {
                        conn,
                        _permit: Some(permit),
                    });
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits for the turn to write, where writers take turns on the pool.
    async fn turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.turn_to_write {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }

    /// A connection for a write outside a transaction, in the writers' turn.
    async fn write_conn(&self) -> Result<Conn<'_, DB>, StoreError> {
        if let Some(writer) = &self.writer {
            let conn = writer.lock().await;
            return Ok(Conn::Kept {
                conn,
                _permit: None,
            });
        }
        let turn = self.turn().await;
        let conn = self.conn().await?;
        Ok(Conn::Pooled { conn, _turn: turn })
    }

    /// A write transaction, in the writers' turn.
    async fn write_tx(&self) -> Result<WriteTx<'_, DB>, StoreError> {
        if let Some(writer) = &self.writer {
            return WriteTx::begin_kept(writer.lock().await).await;
        }
        let turn = self.turn().await;
        let tx = self
            .pool
            .begin_with(<DB::Connection as Backend>::BEGIN_WRITE)
            .await?;
        Ok(WriteTx::Pooled { tx, _turn: turn })
    }

    async fn conn(&self) -> Result<PoolConnection<DB>, StoreError> {
        Ok(self.pool.acquire().await?)
    }
}

#[async_trait]
impl<DB: Database> Store for SqlStore<DB>
where
    DB::Connection: Backend,
{
    fn data_version(&self) -> Option<DataVersion> {
        self.wal_index.as_ref()?.version()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // On PostgreSQL the migrator holds an advisory lock while it runs, so
        // replicas starting together apply each migration once.
        <DB::Connection as Backend>::MIGRATOR
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn().await?.execute(Sql::new("SELECT 1")).await?;
        Ok(())
    }

    async fn token_secret(
        &self,
        candidate: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut conn = self.write_conn().await?;
        let insert = Sql::new(
            "INSERT INTO setting (setting_id, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (setting_id) DO NOTHING",
        );
        conn.execute(insert.bind(TOKEN_SECRET_SETTING).bind(candidate).bind(now))
            .await?;
        let select = Sql::new("SELECT value FROM setting WHERE setting_id = $1");
        let row = conn
            .fetch_optional(select.bind(TOKEN_SECRET_SETTING))
            .await?;
        row.ok_or_else(|| StoreError::Corrupt("the token secret vanished".into()))?
            .text("value")
    }

    async fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(self.write_tx().await?))
    }

    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError> {
        releases::find(&mut self.reader().await?, key).await
    }

    async fn release_history(
        &self,
        key: &ReleaseKey,
    ) -> Result<Option<ReleaseHistory>, StoreError> {
        let mut conn = self.reader().await?;
        let Some(snapshot) = releases::find(&mut conn, key).await? else {
            return Ok(None);
        };
        let callbacks = callbacks::callbacks_of(&mut conn, snapshot.release.id).await?;
        Ok(Some(ReleaseHistory {
            snapshot,
            callbacks,
        }))
    }

    async fn list_releases(
        &self,
        query: &ReleaseQuery,
        now: DateTime<Utc>,
    ) -> Result<ReleasePage, StoreError> {
        listing::list(&mut self.reader().await?, query, now).await
    }

    async fn release_by_id(&self, id: i64) -> Result<Option<ReleaseSnapshot>, StoreError> {
        releases::find_by_id(&mut self.reader().await?, id).await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        releases::approval(&mut self.reader().await?, id).await
    }

    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        callbacks::callback(&mut self.reader().await?, callback_id).await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        queue::claim(&mut self.write_conn().await?, now, lease_until).await
    }

    async fn extend_lease(
        &self,
        job_id: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue::extend_lease(&mut self.write_conn().await?, job_id, lease_until).await
    }

    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError> {
        queue::complete(&mut self.write_conn().await?, job_id).await
    }

    async fn fail_job(
        &self,
        job_id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue::fail(&mut self.write_conn().await?, job_id, error, retry_at, now).await
    }

    async fn due_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        queue::due_count(&mut self.reader().await?, now).await
    }

    async fn outstanding_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        queue::outstanding_count(&mut self.reader().await?, now).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{secret::Secret, settings::DatabaseConfig, store::SqliteStore};

    async fn sqlite_store(dir: &tempfile::TempDir) -> SqliteStore {
        let path = dir.path().join("store.db");
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}", path.display())),
            max_connections: 4,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        };
        let store = SqliteStore::connect(&config).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.writer.is_some(), "a file database keeps a writer");
        store
    }

    fn setting(id: &str) -> Sql {
        Sql::new("SELECT value FROM setting WHERE setting_id = $1").bind(id)
    }

    #[tokio::test]
    async fn a_write_dropped_before_its_commit_leaves_nothing_and_frees_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let insert = |id: &str| {
            Sql::new("INSERT INTO setting (setting_id, value, created_at) VALUES ($1, 'v', $2)")
                .bind(id)
                .bind(Utc::now())
        };
        {
            let mut tx = store.write_tx().await.unwrap();
            tx.execute(insert("dropped")).await.unwrap();
            // Dropped here, as when a statement after it fails.
        }
        let mut tx = store.write_tx().await.unwrap();
        tx.execute(insert("kept")).await.unwrap();
        tx.commit().await.unwrap();
        let mut reader = store.reader().await.unwrap();
        assert!(
            reader
                .fetch_optional(setting("dropped"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            reader
                .fetch_optional(setting("kept"))
                .await
                .unwrap()
                .is_some()
        );
    }
}
