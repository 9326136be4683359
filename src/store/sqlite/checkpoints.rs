//! WAL checkpoints on SQLite, in the background.
//!
//! Left to SQLite, the commit that takes the WAL past 1,000 pages copies it
//! back into the database file, fsyncs included, while the writers' turn is
//! held, and every request queued for the turn waits for the copy: 5-6% of new
//! releases took over 4 ms under steady load. The
//! store's connections therefore never checkpoint (`wal_autocheckpoint = 0`);
//! a connection of its own does, four times a second, on a blocking thread, in
//! `PASSIVE` mode, which waits for no reader and no writer: first beside the
//! writers, then, if they wrote meanwhile, the few pages they wrote in their
//! turn (below).
//!
//! The next write starts the WAL over, instead of growing it, only if the WAL
//! was wholly copied when that write began; under writes that never stop, a
//! checkpoint beside the writers never leaves it so, hence the last pages in
//! their turn. It also needs no reader still on a snapshot that needs the
//! WAL; with reads coming all the time, one may always be, and the WAL grew
//! past a gigabyte under sustained writes. So once it is over
//! [`TRUNCATE_ABOVE`], the checkpoint in the writers' turn is a `TRUNCATE`:
//! it waits for the readers already on the WAL (new ones read the database
//! file, as everything is copied), then empties it.

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
    conn: rusqlite::Connection,
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    stop: CancellationToken,
) {
    let mut conn = Some(conn);
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // A WAL over the bound is emptied in the writers' turn even when
        // wholly copied: readers may keep the next write from starting it over.
        let oversized = wal_size(&path) > TRUNCATE_ABOVE;
        let result = async {
            // First the bulk, beside the writers; then once more beside them,
            // which copies what they wrote meanwhile. When they wrote nothing
            // (an idle service, every time), the WAL is wholly copied and the
            // next write starts it over: the writers' turn is not taken.
            let bulk = checkpoint(&mut conn, Mode::Passive).await?;
            let rest = checkpoint(&mut conn, Mode::Passive).await?;
            if rest.frames == bulk.frames && rest.all_copied && !oversized {
                return Ok(());
            }
            // They did: the few pages they wrote since are copied holding
            // their turn, so that the next write finds the WAL wholly copied.
            let _turn = writer.lock().await;
            let mode = if oversized {
                Mode::Truncate
            } else {
                Mode::Passive
            };
            checkpoint(&mut conn, mode).await.map(drop)
        };
        match result.await {
            Ok(()) => {}
            Err(Stopped::Failed(err)) => {
                tracing::warn!(path = %path.display(), error = %err, "WAL checkpoint failed; retrying");
            }
            Err(Stopped::Panicked) => {
                tracing::error!(path = %path.display(), "a WAL checkpoint panicked; checkpoints stop");
                return;
            }
        }
    }
}

/// How a checkpoint runs.
#[derive(Clone, Copy)]
enum Mode {
    /// Copies what it can of the WAL into the database file, waiting for no
    /// reader and no writer.
    Passive,
    /// Copies all of it and then empties it, waiting for the readers on it.
    Truncate,
}

/// What a checkpoint found.
struct Checkpointed {
    /// The WAL's frames when it ran.
    frames: i64,
    /// Whether it copied all of them (SQLite also answers whether it gave up
    /// waiting).
    all_copied: bool,
}

/// Why a round of checkpoints stopped short.
enum Stopped {
    /// SQLite refused; the next tick tries again.
    Failed(rusqlite::Error),
    /// The blocking thread panicked and took the connection with it.
    Panicked,
}

/// Runs a checkpoint on `conn`, on a blocking thread (it copies pages and
/// fsyncs); `conn` is `None` only after a panic there.
async fn checkpoint(
    conn: &mut Option<rusqlite::Connection>,
    mode: Mode,
) -> Result<Checkpointed, Stopped> {
    let taken = conn.take().ok_or(Stopped::Panicked)?;
    let done = tokio::task::spawn_blocking(move || {
        let result = checkpoint_now(&taken, mode);
        (taken, result)
    })
    .await;
    let (kept, result) = done.map_err(|_| Stopped::Panicked)?;
    *conn = Some(kept);
    result.map_err(Stopped::Failed)
}

/// [`checkpoint`] on the calling thread.
fn checkpoint_now(conn: &rusqlite::Connection, mode: Mode) -> rusqlite::Result<Checkpointed> {
    let pragma = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    conn.query_row(pragma, [], |row| {
        let frames = row.get::<_, i64>(1)?;
        Ok(Checkpointed {
            frames,
            all_copied: row.get::<_, i64>(0)? == 0 && frames == row.get::<_, i64>(2)?,
        })
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

    /// Under writes that never stop, each checkpoint finishes in the writers'
    /// turn, so that the next write starts the WAL over: it stays a fraction
    /// of what was written. (A checkpoint beside the writers always saw new
    /// frames come in meanwhile, so the WAL grew until the truncation bound,
    /// and a truncation in the writers' turn stalled them for 20-50 ms every
    /// 0.75 s at 190 new releases a second.)
    #[tokio::test]
    async fn under_writes_that_never_stop_the_wal_is_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let _table = wal_database(&path);
        let writer = store_writer(&path);
        let _running = start(&path, Duration::from_secs(1), writer.clone()).unwrap();
        let row = "INSERT INTO t (s) VALUES (hex(randomblob(2000)))";
        // A row a millisecond for 3 s, a dozen checkpoints, under the
        // truncation bound. Each row's commit writes about three pages to the
        // WAL, so a WAL never started over holds about three times `written`.
        let (mut written, mut largest) = (0, 0);
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < until && written < TRUNCATE_ABOVE / 2 {
            let mut turn = writer.lock().await;
            turn.execute(crate::store::sql::Sql::new(row))
                .await
                .unwrap();
            drop(turn);
            written += 4096;
            largest = largest.max(wal_size(&path));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            largest < written,
            "the WAL grew to {largest} bytes while {written} bytes were written"
        );
    }
}
