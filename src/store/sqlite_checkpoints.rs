//! WAL checkpoints on SQLite, in the background.
//!
//! Left to SQLite, the commit that takes the WAL past 1,000 pages copies it
//! back into the database file, fsyncs included, while the writers' turn is
//! held, and every request queued for the turn waits for the copy: 5-6% of new
//! releases took over 4 ms under steady load (BENCHMARKS.md, change 11). The
//! store's connections therefore never checkpoint (`wal_autocheckpoint = 0`);
//! a connection of its own does, four times a second, on a blocking thread, in
//! `PASSIVE` mode, which waits for no reader and no writer: first beside the
//! writers, then, to finish, in their turn (below).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rusqlite::Connection;
use tokio::sync::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{StoreError, sqlite_inline::InlineConnection};

/// Time between checkpoints. A checkpoint's fsyncs stall the writer's next
/// WAL writes until their I/O is done, so smaller, more frequent ones stall it
/// for less: every second, 0.3-2.3% of paced new releases took over 8 ms on
/// this project's disk; every 250 ms, 0-0.3% (BENCHMARKS.md, change 17).
const EVERY: Duration = Duration::from_millis(250);

/// Starts checkpointing the database file at `path` until the guard drops;
/// `writer` is the store's kept writer, which writers take turns on.
pub fn start(
    path: &Path,
    busy_timeout: Duration,
    writer: Arc<Mutex<InlineConnection>>,
) -> Result<DropGuard, StoreError> {
    let conn = open(path, busy_timeout).map_err(|err| StoreError::Inline(err.to_string()))?;
    let stop = CancellationToken::new();
    tokio::spawn(run(conn, path.to_owned(), writer, stop.clone()));
    Ok(stop.drop_guard())
}

fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

async fn run(
    mut conn: Connection,
    path: PathBuf,
    writer: Arc<Mutex<InlineConnection>>,
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
        // the next write starts it over instead of growing it.
        let mut result = Ok(());
        for holding_the_writer in [false, true] {
            let _turn = if holding_the_writer {
                Some(writer.lock().await)
            } else {
                None
            };
            let done = tokio::task::spawn_blocking(move || {
                let result = checkpoint(&conn);
                (conn, result)
            })
            .await;
            let Ok((kept, this)) = done else {
                tracing::error!(path = %path.display(), "a WAL checkpoint panicked; checkpoints stop");
                return;
            };
            conn = kept;
            result = result.and(this);
        }
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), error = %err, "WAL checkpoint failed; retrying");
        }
    }
}

/// Copies what it can of the WAL into the database file.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wal_is_copied_into_the_file_without_a_commit_doing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (s TEXT);",
            )
            .unwrap();
        for _ in 0..50 {
            writer
                .execute("INSERT INTO t (s) VALUES (hex(randomblob(2000)))", [])
                .unwrap();
        }
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let store_writer = InlineConnection::writer(&path, Duration::from_secs(1)).unwrap();
        let _running = start(
            &path,
            Duration::from_secs(1),
            Arc::new(Mutex::new(store_writer)),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
