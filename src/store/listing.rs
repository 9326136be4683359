//! The release board: recent releases newest first, by project and status, a page at a time.
//!
//! A release's status is not stored: `domain::policy::decide` derives it from the decisions
//! the rule of its policy and the clock. So the SQL only narrows the candidates with
//! conditions every release of the wanted status meets, and `decide` has the last word on
//! each candidate: a rejection or a cancellation for `rejected`, an approval for `approved`.
//! `pending` and `expired` lean on `concluded_at`, which the lifecycle records only in the
//! transaction that makes a round final (migration 0010): a pending round is not concluded
//! and its deadline is ahead; an expired one was not concluded at all. Without
//! it a filter for the few pending rounds among many approved ones judged every approved
//! round in the service, a cost growing with the database. Pages are keyset pages
//! over `(created_at, release_id)`, read through the indexes of migration 0003, so a page
//! costs the same on the first release as on the ten-thousandth; `pending` ones through
//! migration 0010's partial index of the rounds not concluded, so that a page with fewer
//! pending rounds than it holds does not walk back through every release; `expired` ones
//! through migration 0016's, so that a page does not first read every round whose
//! deadline is still ahead.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};

use super::{
    StoreError,
    connection::Conn,
    releases::troubles_of,
    rows,
    sql::{Columns, Sql},
};
use crate::domain::{
    policy::ReleaseStatus,
    snapshot::{ReleaseRecord, ReleaseSnapshot},
};

/// A release has a rejection that counts (made before its deadline).
macro_rules! rejected_in_time {
    () => {
        "EXISTS (SELECT 1 FROM approval a WHERE a.release_id = r.release_id
                 AND a.decision = 'rejected' AND a.decided_at <= r.deadline)"
    };
}

/// A release has an approval made before its deadline (every approved release has one).
macro_rules! approved_in_time {
    () => {
        "EXISTS (SELECT 1 FROM approval a WHERE a.release_id = r.release_id
                 AND a.decision = 'approved' AND a.decided_at <= r.deadline)"
    };
}

/// A batch of candidates, newest first, each with its approvals and its count of failing
/// jobs: `$releases` (string literals and literal macros, comma-separated) is the `SELECT`
/// of the batch's releases from `release r`, ending in its `ORDER BY … LIMIT`.
macro_rules! with_approvals {
    ($($releases:tt)*) => {
        concat!(
            "SELECT r.*, a.approval_id, a.email, a.decision, a.comment, a.decided_at, a.email_sent_at,
                    a.link_generation, a.signed_in_issuer, a.signed_in_subject, a.signed_in_email,
                    (SELECT COUNT(*) FROM job j
                     WHERE j.release_id = r.release_id AND j.last_error IS NOT NULL) AS failing_jobs
             FROM (",
            $($releases)*,
            ") r
             LEFT JOIN approval a ON a.release_id = r.release_id
             ORDER BY r.created_at DESC, r.release_id DESC, a.created_at, a.email"
        )
    };
}

pub(super) use with_approvals;

/// One batch of candidates after the position `($1, $2)`, with their approvals: `$3` is
/// the wanted status (empty for any; `pending` and `expired` have their own), `$4` now;
/// `$project` narrows to one project, `$limit` is the parameter holding the most releases
/// in the batch.
macro_rules! candidates {
    ($project:literal, $limit:literal) => {
        with_approvals!(
            "SELECT * FROM release r WHERE (r.created_at, r.release_id) < ($1, $2)",
            $project,
            " AND CASE $3
                     WHEN '' THEN 1 = 1
                     WHEN 'rejected' THEN r.cancelled_at IS NOT NULL OR r.settled_status = 'rejected' OR ",
            rejected_in_time!(),
            " ELSE r.cancelled_at IS NULL AND (r.settled_status = 'approved' OR ",
            approved_in_time!(),
            ")",
            " END
                   ORDER BY r.created_at DESC, r.release_id DESC LIMIT ",
            $limit
        )
    };
}

const CANDIDATES: &str = candidates!("", "$5");
const CANDIDATES_OF_PROJECT: &str = candidates!(" AND r.team_project = $5", "$6");

/// The candidates for `pending` (`$3`, always `pending` here), parameters as
/// [`candidates!`]: rounds not concluded whose deadline is ahead, read from `$table`
/// through migration 0010's partial index of the rounds not concluded by deadline.
/// On SQLite `$table` names that index: the planner would rather walk one in the
/// board's order (every release, or migration 0016's rounds not concluded), and
/// pending rounds are few, fewer than a page when releases are decided as they
/// come, so that walk read every release, or every expired round, behind them.
macro_rules! pending_candidates {
    ($table:literal, $project:literal, $limit:literal) => {
        $crate::store::listing::with_approvals!(
            "SELECT * FROM ",
            $table,
            " WHERE r.concluded_at IS NULL AND r.deadline > $4 AND $3 = 'pending'
               AND (r.created_at, r.release_id) < ($1, $2)",
            $project,
            " ORDER BY r.created_at DESC, r.release_id DESC LIMIT ",
            $limit
        )
    };
}

pub(super) use pending_candidates;

/// The candidates for `expired` (`$3`, always `expired` here), parameters as
/// [`candidates!`]: rounds not concluded whose deadline passed, neither cancelled
/// nor settled, without a rejection in time, read newest first through migration
/// 0016's partial index of the rounds not concluded. A round that expired was
/// never concluded: the lifecycle concludes a round only while it is pending
/// (votes and cancellations are refused once it is final), at the moment its
/// outcome was decided, before the deadline; the rounds concluded later were
/// cancelled or settled, which are not expired.
macro_rules! expired_candidates {
    ($project:literal, $limit:literal) => {
        with_approvals!(
            "SELECT * FROM release r
             WHERE r.concluded_at IS NULL AND r.deadline <= $4 AND $3 = 'expired'
               AND (r.created_at, r.release_id) < ($1, $2)",
            $project,
            " AND r.cancelled_at IS NULL AND r.settled_at IS NULL AND NOT ",
            rejected_in_time!(),
            " ORDER BY r.created_at DESC, r.release_id DESC LIMIT ",
            $limit
        )
    };
}

const EXPIRED_CANDIDATES: &str = expired_candidates!("", "$5");
const EXPIRED_CANDIDATES_OF_PROJECT: &str = expired_candidates!(" AND r.team_project = $5", "$6");

/// Which releases to list.
#[derive(Clone, Debug)]
pub struct ReleaseQuery {
    /// Only the releases of this project (exact match).
    pub team_project: Option<String>,
    /// Only the releases with this status.
    pub status: Option<ReleaseStatus>,
    /// Most releases on the page (at least 1).
    pub limit: u32,
    /// Continue after this position: the `next` of the previous page.
    pub after: Option<ListingCursor>,
}

/// One page of releases, newest first.
#[derive(Clone, Debug)]
pub struct ReleasePage {
    /// The releases, each with its approvals and failing jobs.
    pub releases: Vec<ReleaseSnapshot>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListingCursor>,
}

/// A position in the listing: just after one release, in the order newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListingCursor {
    created_at: DateTime<Utc>,
    release_id: i64,
}

/// A cursor's text is not one this service wrote.
#[derive(Debug, thiserror::Error)]
#[error("not a cursor from a previous page")]
pub struct BadCursor;

impl ListingCursor {
    /// Before every release: the last moment of the year 9999, with the largest row id.
    fn start() -> Self {
        Self {
            created_at: DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default(),
            release_id: i64::MAX,
        }
    }

    fn after(release: &ReleaseRecord) -> Self {
        Self {
            created_at: release.created_at,
            release_id: release.id,
        }
    }
}

/// Written as `{created_at in epoch milliseconds}.{row id}`; clients treat it as opaque.
impl fmt::Display for ListingCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.created_at.timestamp_millis(),
            self.release_id
        )
    }
}

/// Reads exactly what the API publishes, `^[0-9]{1,15}\.[0-9]{1,18}$`: so few digits stay
/// within the times both databases hold and within a 64-bit row id, so any cursor a client
/// sends is a valid position and none can make a query fail.
impl FromStr for ListingCursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Self, BadCursor> {
        let digits = |part: &str, most: usize| {
            (1..=most).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
        };
        let (millis, id) = text.split_once('.').ok_or(BadCursor)?;
        if !digits(millis, 15) || !digits(id, 18) {
            return Err(BadCursor);
        }
        let millis = millis.parse().map_err(|_| BadCursor)?;
        Ok(Self {
            created_at: DateTime::from_timestamp_millis(millis).ok_or(BadCursor)?,
            release_id: id.parse().map_err(|_| BadCursor)?,
        })
    }
}

/// The page of releases `query` asks for, with statuses as of `now`.
pub(super) async fn list(
    db: &mut Conn<'_>,
    query: &ReleaseQuery,
    now: DateTime<Utc>,
) -> Result<ReleasePage, StoreError> {
    let limit = query.limit.max(1) as usize;
    let mut position = query.after.unwrap_or_else(ListingCursor::start);
    let mut releases = Vec::with_capacity(limit + 1);
    // One more than the page holds tells whether there is a next page. The SQL rarely
    // lets through a candidate that `decide` turns down, so one batch is the rule.
    while releases.len() <= limit {
        let batch = candidates(db, query, position, now, limit + 1).await?;
        let exhausted = batch.len() <= limit;
        for summary in batch {
            position = ListingCursor::after(&summary.release);
            let wanted = query
                .status
                .is_none_or(|status| summary.outcome(now).status == status);
            if wanted && releases.len() <= limit {
                releases.push(summary);
            }
        }
        if exhausted {
            break;
        }
    }
    let next = if releases.len() > limit {
        releases.truncate(limit);
        releases
            .last()
            .map(|last| ListingCursor::after(&last.release))
    } else {
        None
    };
    Ok(ReleasePage { releases, next })
}

/// Up to `count` candidates after `position`, with their approvals and failing jobs (a
/// second statement for each release that has any, which few have).
async fn candidates(
    db: &mut Conn<'_>,
    query: &ReleaseQuery,
    position: ListingCursor,
    now: DateTime<Utc>,
    count: usize,
) -> Result<Vec<ReleaseSnapshot>, StoreError> {
    let status = query.status.map_or("", ReleaseStatus::as_str);
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let dialect = db.dialect();
    let text = match (&query.team_project, query.status) {
        (Some(_), Some(ReleaseStatus::Pending)) => dialect.pending_candidates_of_project,
        (None, Some(ReleaseStatus::Pending)) => dialect.pending_candidates,
        (Some(_), Some(ReleaseStatus::Expired)) => EXPIRED_CANDIDATES_OF_PROJECT,
        (None, Some(ReleaseStatus::Expired)) => EXPIRED_CANDIDATES,
        (Some(_), _) => CANDIDATES_OF_PROJECT,
        (None, _) => CANDIDATES,
    };
    let mut sql = Sql::new(text)
        .bind(position.created_at)
        .bind(position.release_id)
        .bind(status)
        .bind(now);
    if let Some(project) = &query.team_project {
        sql = sql.bind(project.as_str());
    }
    let rows = db.fetch_all(sql.bind(count)).await?;
    let mut summaries: Vec<ReleaseSnapshot> = Vec::new();
    let mut failing = Vec::new();
    for row in &rows {
        let release_id = row.int("release_id")?;
        if summaries.last().is_none_or(|s| s.release.id != release_id) {
            if row.int("failing_jobs")? > 0 {
                failing.push(summaries.len());
            }
            summaries.push(ReleaseSnapshot {
                release: rows::release(row)?,
                approvals: Vec::new(),
                troubles: Vec::new(),
            });
        }
        if row.opt_uuid("approval_id")?.is_some()
            && let Some(summary) = summaries.last_mut()
        {
            summary.approvals.push(rows::approval(row)?);
        }
    }
    for index in failing {
        let summary = &mut summaries[index];
        summary.troubles = troubles_of(db, summary.release.id).await?;
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_odd_text_is_refused() {
        let cursor = ListingCursor {
            created_at: DateTime::from_timestamp_millis(1_795_000_000_123).unwrap(),
            release_id: 42,
        };
        assert_eq!(cursor.to_string(), "1795000000123.42");
        assert_eq!(cursor.to_string().parse::<ListingCursor>().unwrap(), cursor);
        let widest = "999999999999999.999999999999999999";
        assert!(
            widest.parse::<ListingCursor>().is_ok(),
            "the widest published cursor"
        );
        for bad in [
            "",
            "1",
            "x.1",
            "1.x",
            "-5.1",
            "+5.1",
            "5.-1",
            "1.",
            ".1",
            "1234567890123456.1",
            "1.2.3",
        ] {
            assert!(bad.parse::<ListingCursor>().is_err(), "{bad:?}");
        }
    }
}
