//! Callback registrations: where a release's decision is reported in callback mode.

use chrono::{DateTime, Utc};

use super::{
    StoreError,
    connection::Conn,
    rows,
    sql::{Columns, Sql},
};
use crate::domain::{
    callback::{CallbackRecord, FeedLine, LineKind, PlanCallback},
    job::JobKind,
    snapshot::CallbackEntry,
};

/// Stores a callback registration, or refreshes the token of a registration
/// not yet delivered; the new registration's id when it was new.
pub(super) async fn save(
    db: &mut Conn<'_>,
    release_id: i64,
    callback: &PlanCallback,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let insert = Sql::new(
        "INSERT INTO callback (release_id, plan_url, project_id, hub_name, plan_id, job_id, timeline_id,
                               task_instance_id, auth_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (release_id, plan_id, job_id, task_instance_id) DO NOTHING
         RETURNING callback_id",
    )
    .bind(release_id)
    .bind(callback.plan_url.as_str())
    .bind(callback.project_id.as_str())
    .bind(callback.hub_name.as_str())
    .bind(callback.plan_id.as_str())
    .bind(callback.job_id.as_str())
    .bind(callback.timeline_id.as_deref())
    .bind(callback.task_instance_id.as_str())
    .bind(callback.auth_token.expose())
    .bind(now);
    if let Some(row) = db.fetch_optional(insert).await? {
        return row.int("callback_id").map(Some);
    }
    let refresh = Sql::new(
        "UPDATE callback SET auth_token = $1, plan_url = $2, hub_name = $3, timeline_id = $4
         WHERE release_id = $5 AND plan_id = $6 AND job_id = $7 AND task_instance_id = $8
         AND completed_at IS NULL",
    )
    .bind(callback.auth_token.expose())
    .bind(callback.plan_url.as_str())
    .bind(callback.hub_name.as_str())
    .bind(callback.timeline_id.as_deref())
    .bind(release_id)
    .bind(callback.plan_id.as_str())
    .bind(callback.job_id.as_str())
    .bind(callback.task_instance_id.as_str());
    db.execute(refresh).await?;
    Ok(None)
}

/// A registration of release `$1` not yet delivered, if it has one.
macro_rules! open {
    () => {
        "SELECT callback_id FROM callback WHERE release_id = $1 AND completed_at IS NULL LIMIT 1"
    };
}
pub(super) use open;

/// Whether the release has a registration not yet delivered.
pub(super) async fn has_open(db: &mut Conn<'_>, release_id: i64) -> Result<bool, StoreError> {
    db.exists(Sql::new(open!()).bind(release_id)).await
}

/// The release's callback registrations not yet delivered and with no delivery queued.
pub(super) async fn awaiting_delivery(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<Vec<i64>, StoreError> {
    let sql = Sql::new(
        "SELECT callback_id FROM callback c WHERE release_id = $1 AND completed_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM job j WHERE j.callback_id = c.callback_id AND j.kind = $2)",
    )
    .bind(release_id)
    .bind(JobKind::PostCallback.as_str());
    let found = db.fetch_all(sql).await?;
    found.iter().map(|row| row.int("callback_id")).collect()
}

/// A callback registration.
pub(super) async fn callback(
    db: &mut Conn<'_>,
    callback_id: i64,
) -> Result<Option<CallbackRecord>, StoreError> {
    let sql = Sql::new(
        "SELECT c.*, (SELECT COUNT(*) FROM callback_line l
                      WHERE l.callback_id = c.callback_id AND l.kind = $2) AS outcome_lines
         FROM callback c WHERE c.callback_id = $1",
    )
    .bind(callback_id)
    .bind(LineKind::Outcome.as_str());
    db.fetch_optional(sql)
        .await?
        .as_ref()
        .map(rows::callback)
        .transpose()
}

/// The callback registrations of a release, oldest first, without their tokens.
pub(super) async fn callbacks_of(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<Vec<CallbackEntry>, StoreError> {
    let sql = Sql::new(
        "SELECT hub_name, result, completed_at, created_at FROM callback
         WHERE release_id = $1 ORDER BY created_at, callback_id",
    )
    .bind(release_id);
    let found = db.fetch_all(sql).await?;
    found.iter().map(rows::callback_entry).collect()
}

/// Records a delivered callback and deletes its token.
pub(super) fn callback_delivered(callback_id: i64, result: &str, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "UPDATE callback SET completed_at = $1, result = $2, auth_token = NULL WHERE callback_id = $3",
    )
    .bind(now)
    .bind(result)
    .bind(callback_id)
}

/// Adds a feed line to every registration of the release still open (neither
/// delivered nor given its outcome line).
pub(super) fn line_added(release_id: i64, kind: LineKind, text: &str, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "INSERT INTO callback_line (callback_id, kind, line, created_at)
         SELECT c.callback_id, $2, $3, $4 FROM callback c
         WHERE c.release_id = $1 AND c.completed_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM callback_line l
                         WHERE l.callback_id = c.callback_id AND l.kind = $5)
         ORDER BY c.callback_id",
    )
    .bind(release_id)
    .bind(kind.as_str())
    .bind(text)
    .bind(now)
    .bind(LineKind::Outcome.as_str())
}

/// Adds a progress line to one registration.
pub(super) fn line_added_to(callback_id: i64, text: &str, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "INSERT INTO callback_line (callback_id, kind, line, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(callback_id)
    .bind(LineKind::Progress.as_str())
    .bind(text)
    .bind(now)
}

/// A registration's feed lines not yet posted, in order.
pub(super) async fn unposted_lines(
    db: &mut Conn<'_>,
    callback_id: i64,
) -> Result<Vec<FeedLine>, StoreError> {
    let sql = Sql::new(
        "SELECT callback_line_id, line, created_at FROM callback_line
         WHERE callback_id = $1 AND posted_at IS NULL ORDER BY callback_line_id",
    )
    .bind(callback_id);
    let found = db.fetch_all(sql).await?;
    found
        .iter()
        .map(|row| {
            Ok(FeedLine {
                id: row.int("callback_line_id")?,
                text: row.text("line")?,
                at: row.time("created_at")?,
            })
        })
        .collect()
}

/// Records the TaskStarted event as delivered (or given up).
pub(super) fn started(callback_id: i64, now: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE callback SET started_at = $1 WHERE callback_id = $2")
        .bind(now)
        .bind(callback_id)
}

/// Records a registration's lines up to `last_line_id` as posted (or given up).
pub(super) fn lines_posted(callback_id: i64, last_line_id: i64, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "UPDATE callback_line SET posted_at = $1
         WHERE callback_id = $2 AND callback_line_id <= $3 AND posted_at IS NULL",
    )
    .bind(now)
    .bind(callback_id)
    .bind(last_line_id)
}

/// Whether an undelivered registration has something to post: TaskStarted, a
/// line, or (its outcome line stored) TaskCompleted.
pub(super) async fn has_work(db: &mut Conn<'_>, callback_id: i64) -> Result<bool, StoreError> {
    let sql = Sql::new(
        "SELECT 1 FROM callback c WHERE c.callback_id = $1 AND c.completed_at IS NULL
         AND (c.started_at IS NULL OR EXISTS (
             SELECT 1 FROM callback_line l WHERE l.callback_id = c.callback_id
             AND (l.posted_at IS NULL OR l.kind = $2)))",
    )
    .bind(callback_id)
    .bind(LineKind::Outcome.as_str());
    db.exists(sql).await
}
