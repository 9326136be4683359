//! Retention: deleting rounds decided long ago with every row that belongs to
//! them, a small batch per transaction.
//!
//! A round is decided once it concluded (approved or rejected by its votes,
//! cancelled, settled in Azure DevOps: `concluded_at`, indexed by migration
//! 0013) or, never concluded, once its deadline passed (expired; the partial
//! index of migration 0010). A round with a job still queued or retrying is
//! kept until that job finishes or dies. On PostgreSQL the chosen rounds are
//! locked and rounds locked elsewhere skipped, so replicas prune side by side
//! and a writer holding a round (which locks it first) is never deleted under.

use chrono::{DateTime, Utc};

use super::{
    StoreError,
    connection::Conn,
    sql::{Columns, Sql},
};

/// The rounds concluded before `$1`, oldest first, at most `$2`, without a job
/// still queued or retrying; `$lock` ends the statement (PostgreSQL's row lock).
macro_rules! concluded_before {
    ($lock:literal) => {
        concat!(
            "SELECT r.release_id FROM release r
             WHERE r.concluded_at < $1
               AND NOT EXISTS (SELECT 1 FROM job j
                               WHERE j.release_id = r.release_id AND j.dead_at IS NULL)
             ORDER BY r.concluded_at, r.release_id LIMIT $2",
            $lock
        )
    };
}

/// The rounds never concluded whose deadline passed before `$1` (expired),
/// oldest first, at most `$2`, without a job still queued or retrying.
macro_rules! expired_before {
    ($lock:literal) => {
        concat!(
            "SELECT r.release_id FROM release r
             WHERE r.concluded_at IS NULL AND r.deadline < $1
               AND NOT EXISTS (SELECT 1 FROM job j
                               WHERE j.release_id = r.release_id AND j.dead_at IS NULL)
             ORDER BY r.deadline, r.release_id LIMIT $2",
            $lock
        )
    };
}

pub(super) use {concluded_before, expired_before};

/// What one batch deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rounds (rows of `release`).
    pub releases: u64,
    /// Their approvals, with the decisions they hold.
    pub approvals: u64,
}

/// A round's rows other than its approvals, children first: jobs name approvals
/// and callbacks, feed lines name callbacks.
const DEPENDENT_DELETES: [&str; 4] = [
    "DELETE FROM callback_line
     WHERE callback_id IN (SELECT callback_id FROM callback WHERE release_id = $1)",
    "DELETE FROM job WHERE release_id = $1",
    "DELETE FROM callback WHERE release_id = $1",
    "DELETE FROM azure_approval WHERE release_id = $1",
];

/// Deletes up to `limit` rounds decided before `cutoff`, with their rows, in the
/// caller's transaction: those concluded first, then the expired ones.
pub(super) async fn prune_decided(
    db: &mut Conn<'_>,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<Pruned, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let dialect = db.dialect();
    let mut rounds = ids(db, Sql::new(dialect.concluded_before), cutoff, limit).await?;
    let left = limit - i64::try_from(rounds.len()).unwrap_or(limit);
    if left > 0 {
        rounds.extend(ids(db, Sql::new(dialect.expired_before), cutoff, left).await?);
    }
    let mut pruned = Pruned::default();
    for release_id in rounds {
        for delete in DEPENDENT_DELETES {
            db.execute(Sql::new(delete).bind(release_id)).await?;
        }
        let approvals = Sql::new("DELETE FROM approval WHERE release_id = $1").bind(release_id);
        pruned.approvals += db.execute(approvals).await?;
        let round = Sql::new("DELETE FROM release WHERE release_id = $1").bind(release_id);
        pruned.releases += db.execute(round).await?;
    }
    Ok(pruned)
}

async fn ids(
    db: &mut Conn<'_>,
    select: Sql,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    db.fetch_all(select.bind(cutoff).bind(limit))
        .await?
        .iter()
        .map(|row| row.int("release_id"))
        .collect()
}
