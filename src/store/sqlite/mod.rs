//! The embedded SQLite database: one file in WAL mode, times as epoch
//! milliseconds and ids as text.
//!
//! Its statements run on rusqlite connections, on the calling thread
//! (`connection`): four for reads, one that writers take turns on. sqlx, whose
//! SQLite driver runs each connection on a thread of its own, only applies the
//! migrations. `checkpoints` copies the WAL into the file in the background and
//! `version` tells from the WAL index whether anything was committed.

mod checkpoints;
mod connection;
mod version;

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use tempfile::TempDir;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};
use tokio_util::sync::DropGuard;

use connection::Connection;
pub use connection::Row;
use version::WalIndex;

use super::{
    DataVersion, StoreError,
    sql::{Dialect, Sql},
};
use crate::settings::DatabaseConfig;

/// The statements whose text is SQLite's own.
pub const DIALECT: Dialect = Dialect {
    // The write lock taken by BEGIN IMMEDIATE already covers the release.
    lock_release: "SELECT release_id FROM release WHERE release_id = $1",
    claim_job: concat!(
        "UPDATE job SET locked_until = $1
         WHERE job_id = (
             SELECT job_id FROM job WHERE ",
        super::queue::due_unlocked!(),
        " ORDER BY run_at, job_id LIMIT 1)
         RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts"
    ),
    claim_release_jobs: concat!(
        "UPDATE job SET locked_until = $1
         WHERE job_id IN (
             SELECT job_id FROM job WHERE release_id = $3 AND kind = $4 AND ",
        super::queue::due_unlocked!(),
        " ORDER BY job_id LIMIT $5)
         RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts"
    ),
    // A transaction on SQLite takes no round trip over a network.
    approvers_found: None,
    // SQLite writes nothing in a `WITH`; a job reads its release itself, on
    // the same process.
    writes_in_with: false,
    concluded_before: super::retention::concluded_before!(""),
    expired_before: super::retention::expired_before!(""),
    pending_candidates: super::listing::pending_candidates!(
        "release r INDEXED BY release_unconcluded",
        "",
        "$5"
    ),
    pending_candidates_of_project: super::listing::pending_candidates!(
        "release r INDEXED BY release_unconcluded",
        " AND r.team_project = $5",
        "$6"
    ),
};

/// The embedded migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections kept for reads.
const READERS: usize = 4;

/// How long a statement waits for another connection's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An SQLite database file and the connections kept on it.
pub struct Sqlite {
    file: PathBuf,
    /// The connection writers take turns on, first come first served. Left to
    /// SQLite's lock they would sleep and retry, and a busy moment would
    /// stretch single writes to seconds.
    writer: Arc<Mutex<Connection>>,
    /// Connections for reads; in WAL mode a read never waits for the writer.
    readers: Vec<Mutex<Connection>>,
    /// One permit per reader: readers wait here in turn, first come first served.
    free_readers: Semaphore,
    next_reader: AtomicUsize,
    /// Stops the background checkpoints when the store drops.
    _checkpoints: DropGuard,
    wal_index: WalIndex,
    /// The directory of an in-memory database's file, removed with the store.
    _temporary: Option<TempDir>,
}

impl Sqlite {
    /// Opens (creating if needed) the database file named by the configured
    /// URL. An in-memory URL (`sqlite::memory:`) gets a file in a temporary
    /// directory that is removed when the store drops: like memory, it keeps
    /// nothing, and the store has one way to reach its data.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let url = config.url.expose();
        let options = SqliteConnectOptions::from_str(url)?;
        let (file, temporary) = if names_memory(url) {
            let dir = tempfile::Builder::new()
                .prefix("deploy-gate-memory-")
                .tempdir()
                .map_err(|err| StoreError::Sqlite(err.to_string()))?;
            (dir.path().join("memory.db"), Some(dir))
        } else {
            (options.get_filename().to_owned(), None)
        };
        let writer = Arc::new(Mutex::new(Connection::writer(&file, BUSY_TIMEOUT)?));
        let readers = (0..READERS)
            .map(|_| Connection::reader(&file, BUSY_TIMEOUT).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpoints = checkpoints::start(&file, BUSY_TIMEOUT, writer.clone())?;
        Ok(Self {
            wal_index: WalIndex::of(&file),
            file,
            writer,
            free_readers: Semaphore::new(readers.len()),
            readers,
            next_reader: AtomicUsize::new(0),
            _checkpoints: checkpoints,
            _temporary: temporary,
        })
    }

    /// The database file.
    #[cfg(test)]
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The database's version, read from the WAL index.
    pub fn data_version(&self) -> Option<DataVersion> {
        self.wal_index.version()
    }

    /// Applies pending migrations, on a connection of sqlx's of its own.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(migration_options(&self.file))
            .await?;
        let applied = MIGRATOR.run(&pool).await;
        pool.close().await;
        Ok(applied?)
    }

    /// A connection for a read, as soon as one is free (in the order asked).
    pub async fn reader(&self) -> Result<Taken<'_>, StoreError> {
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
                    return Ok(Taken {
                        conn,
                        _permit: Some(permit),
                        in_transaction: false,
                    });
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// The writer, for a write outside a transaction, in the writers' turn.
    pub async fn writer(&self) -> Taken<'_> {
        Taken {
            conn: self.writer.lock().await,
            _permit: None,
            in_transaction: false,
        }
    }

    /// A write transaction on the writer, in the writers' turn. It takes the
    /// database's only write lock up front (`BEGIN IMMEDIATE`), so that a read
    /// followed by a write never fails to upgrade.
    pub async fn begin(&self) -> Result<Taken<'_>, StoreError> {
        let mut taken = self.writer().await;
        taken.conn.execute(Sql::new("BEGIN IMMEDIATE")).await?;
        taken.in_transaction = true;
        Ok(taken)
    }
}

/// Whether an SQLite URL names an in-memory database, as sqlx reads it:
/// `:memory:` for the file, or `mode=memory`.
fn names_memory(url: &str) -> bool {
    let url = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = url.split_once('?').unwrap_or((url, ""));
    database == ":memory:"
        || url::form_urlencoded::parse(params.as_bytes())
            .any(|(key, value)| key == "mode" && value == "memory")
}

/// The options of sqlx's connection for migrations: the file, in WAL mode,
/// waiting for the store's writer rather than failing on its lock. Foreign
/// keys are off, as SQLite's procedure for rebuilding a table asks (a
/// migration that changes a table's constraints copies it into a new one);
/// the store's own connections turn them on.
fn migration_options(file: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(file)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(false)
        .pragma("wal_autocheckpoint", "0")
}

/// One of the kept connections, taken for a read, a write or a transaction;
/// a transaction not committed when it drops is rolled back.
pub struct Taken<'a> {
    conn: MutexGuard<'a, Connection>,
    _permit: Option<SemaphorePermit<'a>>,
    in_transaction: bool,
}

impl Taken<'_> {
    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        self.conn.execute(sql).await
    }

    /// Runs a query returning at most one row.
    pub async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<Row>, StoreError> {
        self.conn.fetch_optional(sql).await
    }

    /// Runs a query returning any number of rows.
    pub async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        self.conn.fetch_all(sql).await
    }

    /// Commits the open transaction, if there is one.
    pub async fn commit(&mut self) -> Result<(), StoreError> {
        if self.in_transaction {
            self.conn.execute(Sql::new("COMMIT")).await?;
            self.in_transaction = false;
        }
        Ok(())
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if self.in_transaction {
            self.conn.roll_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::secret::Secret;

    /// The bound on the WAL file the background checkpoints keep to.
    const WAL_BOUND: u64 = 64 << 20;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_wal_stays_under_64_mb_through_sustained_writes_beside_busy_readers() {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}/wal.db", dir.path().display())),
            max_connections: 5,
            statement_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        };
        let store = Arc::new(Sqlite::connect(&config).await.unwrap());
        let wal = dir.path().join("wal.db-wal");
        let create = Sql::new("CREATE TABLE t (t_id INTEGER PRIMARY KEY, s TEXT NOT NULL)");
        store.writer().await.execute(create).await.unwrap();
        let stop = CancellationToken::new();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.is_cancelled() {
                        let last = Sql::new("SELECT s FROM t ORDER BY t_id DESC LIMIT 1");
                        store
                            .reader()
                            .await
                            .unwrap()
                            .fetch_optional(last)
                            .await
                            .unwrap();
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        // Twice the bound in rows of 4 KB, ten to a transaction, as fast as they go.
        let mut largest = 0;
        for _ in 0..(2 * WAL_BOUND / (10 * 4000)) {
            let mut tx = store.begin().await.unwrap();
            for _ in 0..10 {
                let row = Sql::new("INSERT INTO t (s) VALUES (hex(randomblob(2000)))");
                tx.execute(row).await.unwrap();
            }
            tx.commit().await.unwrap();
            drop(tx);
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        stop.cancel();
        eprintln!("the WAL reached {} MB at most", largest >> 20);
        for reader in readers {
            reader.await.unwrap();
        }
        assert!(largest < WAL_BOUND, "the WAL reached {} MB", largest >> 20);
    }

    #[test]
    fn in_memory_urls_are_told_from_files_as_sqlx_reads_them() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://gate.db?mode=memory&cache=shared",
        ] {
            assert!(names_memory(url), "{url}");
            assert!(SqliteConnectOptions::from_str(url).is_ok(), "{url}");
        }
        for url in [
            "sqlite://gate.db",
            "sqlite:memory.db",
            "sqlite:///tmp/x.db?mode=rwc",
        ] {
            assert!(!names_memory(url), "{url}");
        }
    }
}
