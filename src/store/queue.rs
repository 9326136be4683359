//! The durable job queue: enqueue inside the caller's transaction, claim with a
//! lease, renew it, complete or fail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    StoreError,
    connection::{Conn, Row},
    releases,
    rows::{self, Prefixed},
    sql::{Columns, Rows, Sql},
};
use crate::domain::job::{Job, JobKind, NewJob, Subject};

/// The job insert, for up to [`Rows::MOST`] jobs.
static JOBS: Rows = Rows::new(
    "INSERT INTO job (kind, release_id, approval_id, callback_id, channel, run_at, created_at)",
    7,
    "",
);

/// Queues jobs, as many in one statement as it holds.
pub(super) async fn enqueue(db: &mut Conn<'_>, jobs: &[NewJob]) -> Result<(), StoreError> {
    let created_at = Utc::now();
    for chunk in jobs.chunks(Rows::MOST) {
        let mut sql = JOBS.sql(chunk.len());
        for job in chunk {
            let (approval_id, callback_id, channel) = match job.subject {
                Subject::Release => (None, None, None),
                Subject::Approval(id) => (Some(id), None, None),
                Subject::Callback(id) => (None, Some(id), None),
                Subject::Channel(id, channel) => (Some(id), None, Some(channel.as_str())),
            };
            sql = sql
                .bind(job.kind.as_str())
                .bind(job.release_id)
                .bind(approval_id)
                .bind(callback_id)
                .bind(channel)
                .bind(job.run_at)
                .bind(created_at);
        }
        db.execute(sql).await?;
    }
    Ok(())
}

/// Deletes an approval's jobs of `kind`, queued or failing.
pub(super) fn approval_jobs_deleted(approval_id: Uuid, kind: JobKind) -> Sql {
    Sql::new("DELETE FROM job WHERE approval_id = $1 AND kind = $2")
        .bind(approval_id)
        .bind(kind.as_str())
}

/// Whether release `release_id` has a job of `kind`, in any state.
pub(super) async fn has_job(
    db: &mut Conn<'_>,
    release_id: i64,
    kind: JobKind,
) -> Result<bool, StoreError> {
    let sql = Sql::new("SELECT job_id FROM job WHERE release_id = $1 AND kind = $2 LIMIT 1")
        .bind(release_id)
        .bind(kind.as_str());
    db.exists(sql).await
}

/// The condition of a job that is due at `$2` and not locked by a worker.
macro_rules! due_unlocked {
    () => {
        "dead_at IS NULL AND run_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)"
    };
}
pub(super) use due_unlocked;

/// Locks release `release_id`'s first `most` due jobs of `kind` until
/// `lease_until`, oldest first, each with the release, read in the same
/// statement where the database can (as [`claim`] does).
pub(super) async fn claim_of_release(
    db: &mut Conn<'_>,
    release_id: i64,
    kind: JobKind,
    most: usize,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Job>, StoreError> {
    let sql = Sql::new(db.dialect().claim_release_jobs)
        .bind(lease_until)
        .bind(now)
        .bind(release_id)
        .bind(kind.as_str())
        .bind(i64::try_from(most).unwrap_or(i64::MAX));
    let writes_in_with = db.dialect().writes_in_with;
    let rows = db.fetch_all(sql).await?;
    if writes_in_with {
        return claimed_with_their_release(db, &rows).await;
    }
    let mut jobs = rows.iter().map(rows::job).collect::<Result<Vec<_>, _>>()?;
    if jobs.is_empty() {
        return Ok(jobs);
    }
    jobs.sort_by_key(|job| job.id);
    let release = releases::find_by_id(db, release_id).await?;
    for job in &mut jobs {
        job.release.clone_from(&release);
    }
    Ok(jobs)
}

/// The jobs of a claim's rows, each with the release they share: rows of
/// `claimed_…` columns joined with the release's snapshot, a row for each
/// approval, one job's rows after the other's in the jobs' order.
pub(super) async fn claimed_with_their_release(
    db: &mut Conn<'_>,
    rows: &[Row],
) -> Result<Vec<Job>, StoreError> {
    let mut jobs: Vec<Job> = Vec::new();
    for row in rows {
        let job = rows::job(&Prefixed(row, "claimed_"))?;
        if jobs.last().is_none_or(|last| last.id != job.id) {
            jobs.push(job);
        }
    }
    if jobs.is_empty() {
        return Ok(jobs);
    }
    // Every job has as many rows as the release has approvals (one if none).
    let release = releases::snapshot_in(db, &rows[..rows.len() / jobs.len()]).await?;
    for job in &mut jobs {
        job.release.clone_from(&release);
    }
    Ok(jobs)
}

/// Locks the next due job until `lease_until`, with its release where the
/// database reads both in one statement.
pub(super) async fn claim(
    db: &mut Conn<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Job>, StoreError> {
    let dialect = db.dialect();
    let sql = Sql::new(dialect.claim_job).bind(lease_until).bind(now);
    if !dialect.writes_in_with {
        return db
            .fetch_optional(sql)
            .await?
            .as_ref()
            .map(rows::job)
            .transpose();
    }
    let rows = db.fetch_all(sql).await?;
    Ok(claimed_with_their_release(db, &rows).await?.pop())
}

/// Keeps a running job locked until `lease_until`.
pub(super) async fn extend_lease(
    db: &mut Conn<'_>,
    job_id: i64,
    lease_until: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = Sql::new("UPDATE job SET locked_until = $1 WHERE job_id = $2")
        .bind(lease_until)
        .bind(job_id);
    db.execute(sql).await?;
    Ok(())
}

/// Unlocks a job and lets it run again at `run_at`, without counting a failure.
pub(super) async fn postpone(
    db: &mut Conn<'_>,
    job_id: i64,
    run_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = Sql::new("UPDATE job SET run_at = $1, locked_until = NULL WHERE job_id = $2")
        .bind(run_at)
        .bind(job_id);
    db.execute(sql).await?;
    Ok(())
}

/// Deletes a finished job.
pub(super) async fn complete(db: &mut Conn<'_>, job_id: i64) -> Result<(), StoreError> {
    db.execute(Sql::new("DELETE FROM job WHERE job_id = $1").bind(job_id))
        .await?;
    Ok(())
}

/// Records a failed attempt and unlocks the job; `retry_at` `None` marks it dead.
pub(super) async fn fail(
    db: &mut Conn<'_>,
    job_id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "UPDATE job SET attempts = attempts + 1, last_error = $1, locked_until = NULL,
             run_at = COALESCE($2, run_at), dead_at = CASE WHEN $2 IS NULL THEN $3 END
         WHERE job_id = $4",
    )
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .bind(job_id);
    db.execute(sql).await?;
    Ok(())
}

/// Jobs due by `now`, neither finished nor dead.
pub(super) async fn due_count(db: &mut Conn<'_>, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let sql = Sql::new("SELECT COUNT(*) AS due FROM job WHERE dead_at IS NULL AND run_at <= $1")
        .bind(now);
    let row = db.fetch_optional(sql).await?;
    let due = row.as_ref().map(|row| row.int("due")).transpose()?;
    u64::try_from(due.unwrap_or(0)).map_err(|_| StoreError::Corrupt(format!("job count {due:?}")))
}

/// Jobs neither finished nor dead that are due by `now` or wait to retry a
/// failed attempt: the work left before the queue is idle (scheduled
/// reminders, escalations and deadlines are not counted).
pub(super) async fn outstanding_count(
    db: &mut Conn<'_>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let sql = Sql::new(
        "SELECT COUNT(*) AS outstanding FROM job
         WHERE dead_at IS NULL AND (run_at <= $1 OR attempts > 0)",
    )
    .bind(now);
    let row = db.fetch_optional(sql).await?;
    let outstanding = row.as_ref().map(|row| row.int("outstanding")).transpose()?;
    u64::try_from(outstanding.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt(format!("job count {outstanding:?}")))
}
