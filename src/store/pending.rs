//! The pending rounds as a whole, for operators: how many there are and since
//! when the oldest waits, counted over the partial index of migration 0010
//! (unconcluded rounds by deadline), so a scrape costs the same with ten or
//! ten thousand decided rounds stored.

use chrono::{DateTime, Utc};

use super::{
    StoreError,
    connection::Conn,
    sql::{Columns, Sql},
};

/// The rounds pending at one moment, in the whole database (every replica's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRounds {
    /// How many rounds are neither concluded nor past their deadline.
    pub count: u64,
    /// When the oldest of them was created; `None` when there is none.
    pub oldest_created_at: Option<DateTime<Utc>>,
}

/// The rounds pending at `now`: not concluded, deadline still ahead.
pub(super) async fn pending(
    db: &mut Conn<'_>,
    now: DateTime<Utc>,
) -> Result<PendingRounds, StoreError> {
    let sql = Sql::new(
        "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM release
         WHERE concluded_at IS NULL AND deadline > $1",
    )
    .bind(now);
    let Some(row) = db.fetch_optional(sql).await? else {
        return Ok(PendingRounds {
            count: 0,
            oldest_created_at: None,
        });
    };
    let count = row.int("pending")?;
    Ok(PendingRounds {
        count: u64::try_from(count)
            .map_err(|_| StoreError::Corrupt(format!("pending count {count}")))?,
        oldest_created_at: row.opt_time("oldest")?,
    })
}

/// Unconcluded rounds whose deadline is ahead of `now` and that have a vote, a
/// cancellation or a settlement: those that may have concluded without it being
/// recorded (by a release older than migration 0010), for the lifecycle to judge.
pub(super) async fn possibly_concluded(
    db: &mut Conn<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let sql = Sql::new(
        "SELECT r.release_id FROM release r
         WHERE r.concluded_at IS NULL AND r.deadline > $1
           AND (r.cancelled_at IS NOT NULL OR r.settled_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM approval a
                           WHERE a.release_id = r.release_id AND a.decided_at IS NOT NULL))",
    )
    .bind(now);
    db.fetch_all(sql)
        .await?
        .iter()
        .map(|row| row.int("release_id"))
        .collect()
}

/// Records when a round concluded, unless that is recorded already.
pub(super) fn concluded(release_id: i64, at: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE release SET concluded_at = $1 WHERE release_id = $2 AND concluded_at IS NULL")
        .bind(at)
        .bind(release_id)
}
