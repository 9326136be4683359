//! Telling Azure DevOps the outcome: callback registrations, the job that
//! watches the deadline, and the jobs queued once a release is decided.

use chrono::{DateTime, Utc};

use super::{
    CallbackEntry, ReleaseRecord, ReleaseSnapshot, StoreError,
    queue::{self, Subject},
    releases, rows,
    sql::{Columns, Queries, Sql, Writes},
};
use crate::{
    azure::{CallbackRecord, PlanCallback},
    jobs::JobKind,
};

/// Queues the TaskCompleted callbacks and the Azure write-back of a decided
/// release, skipping what is done or already queued.
pub(super) async fn queue_decision_notices<B: Writes>(
    db: &mut B,
    release_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "SELECT callback_id FROM callback c WHERE release_id = $1 AND completed_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM job j WHERE j.callback_id = c.callback_id AND j.kind = 'post_callback')",
    )
    .bind(release_id);
    for row in db.fetch_all(sql).await? {
        let subject = Subject::Callback(row.int("callback_id")?);
        queue::enqueue(db, JobKind::PostCallback, release_id, subject, now).await?;
    }
    let sql = Sql::new(
        "SELECT release_id FROM release r WHERE release_id = $1 AND azure_approval_id IS NOT NULL
         AND azure_written_back_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM job j WHERE j.release_id = r.release_id AND j.kind = 'write_back_approval')",
    )
    .bind(release_id);
    if db.exists(sql).await? {
        let kind = JobKind::WriteBackApproval;
        queue::enqueue(db, kind, release_id, Subject::Release, now).await?;
    }
    Ok(())
}

/// Stores or refreshes a callback registration; queues its delivery at once if
/// the release is already decided, else makes sure the deadline is watched.
pub(super) async fn register_callback<B: Writes>(
    db: &mut B,
    snapshot: &ReleaseSnapshot,
    callback: &PlanCallback,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "INSERT INTO callback (release_id, plan_url, project_id, hub_name, plan_id, job_id, timeline_id,
                               task_instance_id, auth_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (release_id, plan_id, job_id, task_instance_id)
         DO UPDATE SET auth_token = excluded.auth_token, plan_url = excluded.plan_url,
                       hub_name = excluded.hub_name, timeline_id = excluded.timeline_id
         WHERE callback.completed_at IS NULL",
    )
    .bind(snapshot.release.id)
    .bind(callback.plan_url.as_str())
    .bind(callback.project_id.as_str())
    .bind(callback.hub_name.as_str())
    .bind(callback.plan_id.as_str())
    .bind(callback.job_id.as_str())
    .bind(callback.timeline_id.as_deref())
    .bind(callback.task_instance_id.as_str())
    .bind(callback.auth_token.expose())
    .bind(now);
    db.execute(sql).await?;
    if snapshot.outcome(now).status.is_final() {
        queue_decision_notices(db, snapshot.release.id, now).await
    } else {
        watch_deadline(db, &snapshot.release).await
    }
}

/// Makes sure one job fires at the release's deadline.
pub(super) async fn watch_deadline<B: Writes>(
    db: &mut B,
    release: &ReleaseRecord,
) -> Result<(), StoreError> {
    if queue::has_job(db, release.id, JobKind::ExpireRelease).await? {
        return Ok(());
    }
    let kind = JobKind::ExpireRelease;
    queue::enqueue(db, kind, release.id, Subject::Release, release.deadline).await
}

/// At the deadline job's turn: queues the notices of an expired (or decided)
/// release and completes the job, or postpones it to a deadline not yet due.
pub(super) async fn expire<B: Writes>(
    db: &mut B,
    job_id: i64,
    release_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let snapshot = releases::lock(db, release_id).await?;
    if now < snapshot.release.deadline && !snapshot.outcome(now).status.is_final() {
        return queue::postpone(db, job_id, snapshot.release.deadline).await;
    }
    queue_decision_notices(db, release_id, now).await?;
    queue::complete(db, job_id).await
}

/// A callback registration.
pub(super) async fn callback<Q: Queries>(
    db: &mut Q,
    callback_id: i64,
) -> Result<Option<CallbackRecord>, StoreError> {
    let sql = Sql::new("SELECT * FROM callback WHERE callback_id = $1").bind(callback_id);
    db.fetch_optional(sql)
        .await?
        .as_ref()
        .map(rows::callback)
        .transpose()
}

/// The callback registrations of a release, oldest first, without their tokens.
pub(super) async fn callbacks_of<Q: Queries>(
    db: &mut Q,
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

/// Records the decision as written back to Azure DevOps.
pub(super) fn written_back(release_id: i64, now: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE release SET azure_written_back_at = $1 WHERE release_id = $2")
        .bind(now)
        .bind(release_id)
}
