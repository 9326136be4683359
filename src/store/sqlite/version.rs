//! Whether an SQLite database in WAL mode has changed, read from its WAL index.
//!
//! Every connection to a WAL database, in any process, shares the WAL index
//! (the `-shm` file beside it, <https://www.sqlite.org/walformat.html>). It
//! starts with a 48-byte header, written twice in a row; every commit rewrites
//! it (its change counter, frame count and checksums move on), and a checkpoint
//! that starts the WAL over gives it new salts. So an unchanged header means
//! nothing was committed in between, by this process or another, and reading
//! it costs one `pread` of 96 bytes: no lock, no transaction.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use super::DataVersion;

/// Bytes in one copy of the WAL-index header.
const HEADER_BYTES: usize = 48;

/// Offset of the header's `isInit` flag: 1 once a connection has built the index.
const IS_INIT: usize = 12;

/// The WAL index of one database file.
pub struct WalIndex {
    path: PathBuf,
    /// Opened on first use: SQLite creates the file when a connection first reads.
    file: OnceLock<File>,
}

impl WalIndex {
    /// The WAL index of the database file at `database`.
    pub fn of(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-shm");
        Self {
            path: PathBuf::from(path),
            file: OnceLock::new(),
        }
    }

    /// The header as it stands: `None` while a commit is rewriting it, before
    /// any connection has built it, or where it cannot be read.
    pub fn version(&self) -> Option<DataVersion> {
        let file = match self.file.get() {
            Some(file) => file,
            None => {
                let opened = File::open(&self.path).ok()?;
                self.file.get_or_init(|| opened)
            }
        };
        let mut header = [0u8; 2 * HEADER_BYTES];
        read_at(file, &mut header)?;
        let (first, second) = header.split_at(HEADER_BYTES);
        // A commit writes the second copy, then the first; SQLite's own readers
        // trust the header only when both agree, and so does this.
        if first != second || first[IS_INIT] != 1 {
            return None;
        }
        first.try_into().ok().map(DataVersion)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8]) -> Option<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, 0).ok()
}

/// Elsewhere the version is unknown, and nothing is kept on the strength of it.
#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8]) -> Option<()> {
    None
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn wal_database(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("versions.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        (path, conn)
    }

    #[test]
    fn the_version_stays_while_nothing_is_committed_and_moves_with_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        let index = WalIndex::of(&path);
        let before = index.version().expect("a WAL database has a version");
        assert_eq!(index.version(), Some(before.clone()));

        // Reads and an empty transaction leave it alone.
        writer
            .query_row("SELECT COUNT(*) FROM t", [], |_| Ok(()))
            .unwrap();
        writer.execute_batch("BEGIN; COMMIT;").unwrap();
        assert_eq!(index.version(), Some(before.clone()));

        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let after_one = index.version().unwrap();
        assert_ne!(after_one, before);
        writer.execute("UPDATE t SET x = 2", []).unwrap();
        let after_two = index.version().unwrap();
        assert_ne!(after_two, after_one);
        assert_ne!(after_two, before);
    }

    #[test]
    fn a_commit_by_another_connection_moves_it_and_a_rolled_back_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _first) = wal_database(dir.path());
        let index = WalIndex::of(&path);
        let other = Connection::open(&path).unwrap();
        let before = index.version().unwrap();

        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); ROLLBACK;")
            .unwrap();
        assert_eq!(index.version(), Some(before.clone()));

        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_ne!(index.version(), Some(before));
    }

    #[test]
    fn a_checkpoint_that_starts_the_wal_over_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(dir.path());
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let index = WalIndex::of(&path);
        let before = index.version().unwrap();
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_ne!(index.version(), Some(before));
    }

    #[test]
    fn a_database_without_a_wal_index_has_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        assert_eq!(WalIndex::of(&path).version(), None);
    }
}
