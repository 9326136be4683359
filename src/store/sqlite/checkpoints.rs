//! WAL checkpoints on SQLite, in the background.
//!
//! Left to SQLite, the commit that takes the WAL past 1,000 pages copies it
//! back into the database file, fsyncs included, while the writers' turn is
//! held, and every request queued for the turn waits for the copy: 5-6% of new
//! releases took over 4 ms under steady load. The
//! store's connections therefore never checkpoint (`wal_autocheckpoint = 0`);
//! a connection of its own does, four times a second, on a blocking thread, in
//! `PASSIVE` mode, which waits for no reader and no writer: first beside the
//! writers, then, to finish, in their turn (below).
//!
//! A wholly copied WAL is started over by the next write only if no reader is
//! still on a snapshot that needs it; with reads coming all the time, one
//! always is, and the WAL grew past a gigabyte under sustained writes. So once
//! it is over [`TRUNCATE_ABOVE`], the checkpoint in the writers' turn is a
//! `TRUNCATE`: it waits for the readers already on the WAL (new ones read the
//! database file, as everything is copied), then empties it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::sync::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{StoreError, connection::Connection};

/// Time between checkpoints. A checkpoint's fsyncs stall the writer's next
/// WAL writes until their I/O is done, so smaller, more frequent ones stall it
/// for less: every second, 0.3-2.3% of paced new releases took over 8 ms on
/// this project's disk; every 250 ms, 0-0.3%.
const EVERY: Duration = Duration::from_millis(250);

/// WAL size past which a checkpoint empties it, waiting for the readers on it.
/// What the writers add in one [`EVERY`] comes on top: the WAL stays far under
/// 64 MB.
const TRUNCATE_ABOVE: u64 = 16 << 20;

/// Longest a `TRUNCATE` checkpoint waits for readers (and holds the writers'
/// turn meanwhile); one that runs out is tried again at the next tick.
const TRUNCATE_WAIT: Duration = Duration::from_secs(1);

/// Starts checkpointing the database file at `path` until the guard drops;
/// `writer` is the store's kept writer, which writers take turns on.
pub fn start(
    path: &Path,
    busy_timeout: Duration,
    writer: Arc<Mutex<Connection>>,
) -> Result<DropGuard, StoreError> {
    let conn = open(path, busy_timeout.min(TRUNCATE_WAIT))
        .map_err(|err| StoreError::Sqlite(err.to_string()))?;
    let stop = CancellationToken::new();
    tokio::spawn(run(conn, path.to_owned(), writer, stop.clone()));
    Ok(stop.drop_guard())
}

fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

async fn run(
    mut conn: rusqlite::Connection,
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // First the bulk, beside the writers; then, holding the writer, the
        // few pages they wrote meanwhile, so that the WAL is wholly copied and
        // the next write starts it over instead of growing it. When nothing
        // was written meanwhile (an idle service, every time), the writers'
        // turn is not taken.
        // A WAL over the bound is emptied in the writers' turn even when
        // wholly copied: readers may keep the next write from starting it over.
        let oversized = wal_size(&path) > TRUNCATE_ABOVE;
        let mut failure = None;
        for holding_the_writer in [false, true] {
            let _turn = if holding_the_writer {
                Some(writer.lock().await)
            } else {
                None
            };
            let truncate = holding_the_writer && oversized;
            let done = tokio::task::spawn_blocking(move || {
                let result = checkpoint(&conn, truncate);
                (conn, result)
            })
            .await;
            let Ok((kept, this)) = done else {
                tracing::error!(path = %path.display(), "a WAL checkpoint panicked; checkpoints stop");
                return;
            };
            conn = kept;
            match this {
                Ok(true) if !oversized || holding_the_writer => break,
                Ok(_) => {}
                Err(err) => failure = Some(err),
            }
        }
        if let Some(err) = failure {
            tracing::warn!(path = %path.display(), error = %err, "WAL checkpoint failed; retrying");
        }
    }
}

/// Copies what it can of the WAL into the database file (`PASSIVE`), or all of
/// it and then empties it (`truncate`); whether that was all of it (SQLite
/// answers whether it gave up waiting, the WAL's frames and how many of them
/// are copied).
fn checkpoint(conn: &rusqlite::Connection, truncate: bool) -> rusqlite::Result<bool> {
    let pragma = if truncate {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    } else {
        "PRAGMA wal_checkpoint(PASSIVE)"
    };
    conn.query_row(pragma, [], |row| {
        Ok(row.get::<_, i64>(0)? == 0 && row.get::<_, i64>(1)? == row.get::<_, i64>(2)?)
    })
}

/// The size of the WAL beside the database file at `path`; 0 when there is none.
fn wal_size(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |meta| meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database whose table `t` has rows in the WAL only.
    fn wal_database(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (s TEXT);",
        )
        .unwrap();
        add_rows(&conn);
        conn
    }

    fn add_rows(conn: &rusqlite::Connection) {
        for _ in 0..50 {
            conn.execute("INSERT INTO t (s) VALUES (hex(randomblob(2000)))", [])
                .unwrap();
        }
    }

    fn store_writer(path: &Path) -> Arc<Mutex<Connection>> {
        let writer = Connection::writer(path, Duration::from_secs(1)).unwrap();
        Arc::new(Mutex::new(writer))
    }

    /// Waits until a checkpoint has grown the database file.
    async fn file_grows(path: &Path) {
        let size = || std::fs::metadata(path).unwrap().len();
        let before = size();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn the_wal_is_copied_into_the_file_without_a_commit_doing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let _writes = wal_database(&path);
        let _running = start(&path, Duration::from_secs(1), store_writer(&path)).unwrap();
        file_grows(&path).await;
    }

    #[tokio::test]
    async fn a_wal_wholly_copied_beside_the_writers_does_not_wait_for_their_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let writes = wal_database(&path);
        let writer = store_writer(&path);
        // The writers' turn stays taken: a checkpoint that waited for it would
        // never come round again.
        let _turn = writer.clone().lock_owned().await;
        let _running = start(&path, Duration::from_secs(1), writer).unwrap();
        file_grows(&path).await;
        add_rows(&writes);
        file_grows(&path).await;
    }
}
