//! Callback registrations: where a release's decision is reported in callback mode.

use chrono::{DateTime, Utc};

use super::{
    StoreError,
    connection::Conn,
    rows,
    sql::{Columns, Sql},
};
use crate::domain::{
    callback::{CallbackRecord, PlanCallback},
    job::JobKind,
    snapshot::CallbackEntry,
};

/// Stores a callback registration, or refreshes the token of a registration
/// not yet delivered.
pub(super) async fn save(
    db: &mut Conn<'_>,
    release_id: i64,
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
    db.execute(sql).await?;
    Ok(())
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
    let sql = Sql::new("SELECT * FROM callback WHERE callback_id = $1").bind(callback_id);
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
