//! The embedded SQLite backend (WAL mode; times as epoch milliseconds).

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Row, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow},
};
use uuid::Uuid;

use super::{
    ApprovalRecord, Creation, DecisionOutcome, JobTrouble, ReleaseRecord, ReleaseSnapshot,
    ResolvedApprovers, Store, StoreError,
};
use crate::{
    azure::{CallbackRecord, PlanCallback},
    config::Secret,
    domain::{
        policy::{Decided, Decision},
        release::{NewRelease, ReleaseKey},
    },
    jobs::{Job, JobKind},
};

/// Setting that holds the generated token secret.
const TOKEN_SECRET_SETTING: &str = "token_secret";

/// SQLite behind a connection pool.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by `url`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// A write transaction that takes the lock up front, so that read-then-write never fails to upgrade.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("uuid {text}")))
}

fn release_from_row(row: &SqliteRow) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        id: row.try_get("release_id")?,
        key: ReleaseKey {
            team_project: row.try_get("team_project")?,
            release_id: row.try_get("external_id")?,
            stage: row.try_get("stage")?,
        },
        name: row.try_get("release_name")?,
        required_approvals: row
            .try_get::<Option<i64>, _>("required_approvals")?
            .map(|n| n as u32),
        deadline: time(row.try_get("deadline")?)?,
        approvers_source: row.try_get("approvers_source")?,
        approver_problem: row.try_get("approver_problem")?,
        azure_approval_id: row.try_get("azure_approval_id")?,
        azure_written_back_at: opt_time(row.try_get("azure_written_back_at")?)?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

fn approval_from_row(row: &SqliteRow) -> Result<ApprovalRecord, StoreError> {
    let decision: Option<String> = row.try_get("decision")?;
    let decided_at: Option<i64> = row.try_get("decided_at")?;
    let decided = match (decision, decided_at) {
        (Some(d), Some(at)) => Some(Decided {
            decision: Decision::from_stored(&d)
                .ok_or_else(|| StoreError::Corrupt(format!("decision {d}")))?,
            at: time(at)?,
        }),
        _ => None,
    };
    Ok(ApprovalRecord {
        id: uuid(row.try_get("approval_id")?)?,
        release_id: row.try_get("release_id")?,
        email: row.try_get("email")?,
        decided,
        comment: row.try_get("comment")?,
        email_sent_at: opt_time(row.try_get("email_sent_at")?)?,
    })
}

async fn snapshot(
    conn: &mut SqliteConnection,
    release_row: Option<SqliteRow>,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let Some(row) = release_row else {
        return Ok(None);
    };
    let release = release_from_row(&row)?;
    let approvals =
        sqlx::query("SELECT * FROM approval WHERE release_id = ? ORDER BY created_at, email")
            .bind(release.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(approval_from_row)
            .collect::<Result<Vec<_>, _>>()?;
    let troubles = sqlx::query(
        "SELECT job.kind, job.attempts, job.last_error, job.run_at, job.dead_at, approval.email
         FROM job LEFT JOIN approval ON approval.approval_id = job.approval_id
         WHERE job.release_id = ? AND job.last_error IS NOT NULL ORDER BY job.job_id",
    )
    .bind(release.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(trouble_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ReleaseSnapshot {
        release,
        approvals,
        troubles,
    }))
}

fn trouble_from_row(row: &SqliteRow) -> Result<JobTrouble, StoreError> {
    let kind: String = row.try_get("kind")?;
    let dead_at: Option<i64> = row.try_get("dead_at")?;
    Ok(JobTrouble {
        kind: JobKind::from_str(&kind)
            .map_err(|_| StoreError::Corrupt(format!("job kind {kind}")))?,
        approver: row.try_get("email")?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        last_error: row.try_get("last_error")?,
        next_attempt_at: match dead_at {
            Some(_) => None,
            None => Some(time(row.try_get("run_at")?)?),
        },
    })
}

/// What a new job is about.
#[derive(Clone, Copy)]
enum Subject {
    Release,
    Approval(Uuid),
    Callback(i64),
}

async fn enqueue(
    conn: &mut SqliteConnection,
    kind: JobKind,
    release_id: i64,
    subject: Subject,
    run_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (approval_id, callback_id) = match subject {
        Subject::Release => (None, None),
        Subject::Approval(id) => (Some(id.to_string()), None),
        Subject::Callback(id) => (None, Some(id)),
    };
    sqlx::query(
        "INSERT INTO job (kind, release_id, approval_id, callback_id, run_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(kind.as_str())
    .bind(release_id)
    .bind(approval_id)
    .bind(callback_id)
    .bind(ms(run_at))
    .bind(ms(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues the TaskCompleted callbacks and the Azure write-back of a decided
/// release, skipping what is done or already queued.
async fn enqueue_decision_notices(
    conn: &mut SqliteConnection,
    release_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT callback_id FROM callback c WHERE release_id = ? AND completed_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM job j WHERE j.callback_id = c.callback_id AND j.kind = 'post_callback')",
    )
    .bind(release_id)
    .fetch_all(&mut *conn)
    .await?;
    for callback_id in open {
        enqueue(
            conn,
            JobKind::PostCallback,
            release_id,
            Subject::Callback(callback_id),
            now,
        )
        .await?;
    }
    let write_back: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM release r WHERE release_id = ? AND azure_approval_id IS NOT NULL
         AND azure_written_back_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM job j WHERE j.release_id = r.release_id AND j.kind = 'write_back_approval'))",
    )
    .bind(release_id)
    .fetch_one(&mut *conn)
    .await?;
    if write_back {
        enqueue(
            conn,
            JobKind::WriteBackApproval,
            release_id,
            Subject::Release,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Stores or refreshes a callback registration; queues its delivery at once if
/// the release is already decided, else makes sure the deadline is watched.
async fn register_callback(
    conn: &mut SqliteConnection,
    snapshot: &ReleaseSnapshot,
    callback: &PlanCallback,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO callback (release_id, plan_url, project_id, hub_name, plan_id, job_id, timeline_id,
                               task_instance_id, auth_token, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (release_id, plan_id, job_id, task_instance_id)
         DO UPDATE SET auth_token = excluded.auth_token, plan_url = excluded.plan_url,
                       hub_name = excluded.hub_name, timeline_id = excluded.timeline_id
         WHERE callback.completed_at IS NULL",
    )
    .bind(snapshot.release.id)
    .bind(&callback.plan_url)
    .bind(&callback.project_id)
    .bind(&callback.hub_name)
    .bind(&callback.plan_id)
    .bind(&callback.job_id)
    .bind(&callback.timeline_id)
    .bind(&callback.task_instance_id)
    .bind(callback.auth_token.expose())
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    if snapshot.outcome(now).status.is_final() {
        enqueue_decision_notices(conn, snapshot.release.id, now).await
    } else {
        watch_deadline(conn, &snapshot.release).await
    }
}

/// Makes sure one job fires at the release's deadline.
async fn watch_deadline(
    conn: &mut SqliteConnection,
    release: &ReleaseRecord,
) -> Result<(), StoreError> {
    let watched: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM job WHERE release_id = ? AND kind = 'expire_release')",
    )
    .bind(release.id)
    .fetch_one(&mut *conn)
    .await?;
    if !watched {
        enqueue(
            conn,
            JobKind::ExpireRelease,
            release.id,
            Subject::Release,
            release.deadline,
        )
        .await?;
    }
    Ok(())
}

async fn release_snapshot_by_id(
    conn: &mut SqliteConnection,
    release_id: i64,
) -> Result<ReleaseSnapshot, StoreError> {
    let row = sqlx::query("SELECT * FROM release WHERE release_id = ?")
        .bind(release_id)
        .fetch_optional(&mut *conn)
        .await?;
    snapshot(conn, row)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("release {release_id} is missing")))
}

fn callback_from_row(row: &SqliteRow) -> Result<CallbackRecord, StoreError> {
    let token: Option<String> = row.try_get("auth_token")?;
    let completed_at: Option<i64> = row.try_get("completed_at")?;
    Ok(CallbackRecord {
        id: row.try_get("callback_id")?,
        release_id: row.try_get("release_id")?,
        target: PlanCallback {
            plan_url: row.try_get("plan_url")?,
            project_id: row.try_get("project_id")?,
            hub_name: row.try_get("hub_name")?,
            plan_id: row.try_get("plan_id")?,
            job_id: row.try_get("job_id")?,
            timeline_id: row.try_get("timeline_id")?,
            task_instance_id: row.try_get("task_instance_id")?,
            auth_token: Secret::new(token.unwrap_or_default()),
        },
        delivered: completed_at.is_some(),
    })
}

/// Inserts approvals with an email job each; already present approvers are skipped.
async fn insert_approvals(
    conn: &mut SqliteConnection,
    release_id: i64,
    resolved: &ResolvedApprovers,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (position, email) in resolved.approvers.iter().enumerate() {
        let approval_id = Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO approval (approval_id, release_id, email, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (release_id, email) DO NOTHING",
        )
        .bind(approval_id.to_string())
        .bind(release_id)
        .bind(email.as_str())
        // The position keeps the approvers in their given order.
        .bind(ms(now) + position as i64)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            enqueue(
                conn,
                JobKind::SendApprovalEmail,
                release_id,
                Subject::Approval(approval_id),
                now,
            )
            .await?;
        }
    }
    sqlx::query(
        "UPDATE release SET approvers_source = ?, approvers_resolved_at = ?, approver_problem = ?
         WHERE release_id = ?",
    )
    .bind(&resolved.source)
    .bind(ms(now))
    .bind(&resolved.problem)
    .bind(release_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn token_secret(
        &self,
        candidate: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO setting (setting_id, value, created_at) VALUES (?, ?, ?)
             ON CONFLICT (setting_id) DO NOTHING",
        )
        .bind(TOKEN_SECRET_SETTING)
        .bind(candidate)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM setting WHERE setting_id = ?")
                .bind(TOKEN_SECRET_SETTING)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_release(
        &self,
        new: &NewRelease,
        callback: Option<&PlanCallback>,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Creation, StoreError> {
        let mut tx = self.write_tx().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO release (team_project, external_id, stage, release_name, required_approvals, deadline,
                                  azure_approval_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (team_project, external_id, stage) DO NOTHING
             RETURNING release_id",
        )
        .bind(&new.key.team_project)
        .bind(&new.key.release_id)
        .bind(&new.key.stage)
        .bind(&new.name)
        .bind(required_approvals.map(i64::from))
        .bind(ms(deadline))
        .bind(&new.azure_approval_id)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(release_id) = inserted {
            match &new.approvers {
                Some(approvers) => {
                    let resolved = ResolvedApprovers {
                        approvers: approvers.clone(),
                        source: "request".to_owned(),
                        problem: None,
                    };
                    insert_approvals(&mut tx, release_id, &resolved, now).await?;
                }
                None => {
                    enqueue(
                        &mut tx,
                        JobKind::ResolveApprovers,
                        release_id,
                        Subject::Release,
                        now,
                    )
                    .await?
                }
            }
        }
        let row = sqlx::query(
            "SELECT * FROM release WHERE team_project = ? AND external_id = ? AND stage = ?",
        )
        .bind(&new.key.team_project)
        .bind(&new.key.release_id)
        .bind(&new.key.stage)
        .fetch_optional(&mut *tx)
        .await?;
        let snap = snapshot(&mut tx, row)
            .await?
            .ok_or_else(|| StoreError::Corrupt("release vanished inside its transaction".into()))?;
        if let Some(callback) = callback {
            register_callback(&mut tx, &snap, callback, now).await?;
        }
        if inserted.is_some() && new.azure_approval_id.is_some() {
            watch_deadline(&mut tx, &snap.release).await?;
        }
        tx.commit().await?;
        Ok(if inserted.is_some() {
            Creation::Created(snap)
        } else {
            Creation::Existing(snap)
        })
    }

    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "SELECT * FROM release WHERE team_project = ? AND external_id = ? AND stage = ?",
        )
        .bind(&key.team_project)
        .bind(&key.release_id)
        .bind(&key.stage)
        .fetch_optional(&mut *conn)
        .await?;
        snapshot(&mut conn, row).await
    }

    async fn release_by_id(&self, id: i64) -> Result<Option<ReleaseSnapshot>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT * FROM release WHERE release_id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        snapshot(&mut conn, row).await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        sqlx::query("SELECT * FROM approval WHERE approval_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(approval_from_row)
            .transpose()
    }

    async fn record_decision(
        &self,
        approval_id: Uuid,
        decision: Decision,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DecisionOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(approval) = sqlx::query("SELECT * FROM approval WHERE approval_id = ?")
            .bind(approval_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(approval_from_row)
            .transpose()?
        else {
            return Ok(DecisionOutcome::UnknownApproval);
        };
        let row = sqlx::query("SELECT * FROM release WHERE release_id = ?")
            .bind(approval.release_id)
            .fetch_optional(&mut *tx)
            .await?;
        let before = snapshot(&mut tx, row)
            .await?
            .ok_or_else(|| StoreError::Corrupt("approval without release".into()))?;
        if let Some(existing) = approval.decided {
            return Ok(if existing.decision == decision {
                DecisionOutcome::Unchanged(before)
            } else {
                DecisionOutcome::Conflicting(existing.decision)
            });
        }
        if before.outcome(now).status.is_final() {
            return Ok(DecisionOutcome::ReleaseFinal(before));
        }
        sqlx::query(
            "UPDATE approval SET decision = ?, comment = ?, decided_at = ? WHERE approval_id = ?",
        )
        .bind(decision.as_str())
        .bind(comment)
        .bind(ms(now))
        .bind(approval_id.to_string())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM release WHERE release_id = ?")
            .bind(approval.release_id)
            .fetch_optional(&mut *tx)
            .await?;
        let after = snapshot(&mut tx, row)
            .await?
            .ok_or_else(|| StoreError::Corrupt("approval without release".into()))?;
        if after.outcome(now).status.is_final() {
            enqueue_decision_notices(&mut tx, approval.release_id, now).await?;
        }
        tx.commit().await?;
        Ok(DecisionOutcome::Recorded(after))
    }

    async fn store_approvers(
        &self,
        job_id: i64,
        release_id: i64,
        resolved: &ResolvedApprovers,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_approvals(&mut tx, release_id, resolved, now).await?;
        sqlx::query("DELETE FROM job WHERE job_id = ?")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expire_release(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let snapshot = release_snapshot_by_id(&mut tx, release_id).await?;
        if now < snapshot.release.deadline && !snapshot.outcome(now).status.is_final() {
            sqlx::query("UPDATE job SET run_at = ?, locked_until = NULL WHERE job_id = ?")
                .bind(ms(snapshot.release.deadline))
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        } else {
            enqueue_decision_notices(&mut tx, release_id, now).await?;
            sqlx::query("DELETE FROM job WHERE job_id = ?")
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        sqlx::query("SELECT * FROM callback WHERE callback_id = ?")
            .bind(callback_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(callback_from_row)
            .transpose()
    }

    async fn complete_callback(
        &self,
        job_id: i64,
        callback_id: i64,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE callback SET completed_at = ?, result = ?, auth_token = NULL WHERE callback_id = ?",
        )
        .bind(ms(now))
        .bind(result)
        .bind(callback_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM job WHERE job_id = ?")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_written_back(
        &self,
        job_id: i64,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE release SET azure_written_back_at = ? WHERE release_id = ?")
            .bind(ms(now))
            .bind(release_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM job WHERE job_id = ?")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE approval SET email_sent_at = ? WHERE approval_id = ?")
            .bind(ms(now))
            .bind(approval_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM job WHERE job_id = ?")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(
            "UPDATE job SET locked_until = ?1
             WHERE job_id = (
                 SELECT job_id FROM job
                 WHERE dead_at IS NULL AND run_at <= ?2 AND (locked_until IS NULL OR locked_until <= ?2)
                 ORDER BY run_at, job_id LIMIT 1)
             RETURNING job_id, kind, release_id, approval_id, callback_id, attempts",
        )
        .bind(ms(lease_until))
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let kind: String = row.try_get("kind")?;
            let approval_id: Option<String> = row.try_get("approval_id")?;
            Ok(Job {
                id: row.try_get("job_id")?,
                kind: JobKind::from_str(&kind)
                    .map_err(|_| StoreError::Corrupt(format!("job kind {kind}")))?,
                release_id: row.try_get("release_id")?,
                approval_id: approval_id.as_deref().map(uuid).transpose()?,
                callback_id: row.try_get("callback_id")?,
                attempts: row.try_get::<i64, _>("attempts")? as u32,
            })
        })
        .transpose()
    }

    async fn extend_lease(
        &self,
        job_id: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE job SET locked_until = ? WHERE job_id = ?")
            .bind(ms(lease_until))
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM job WHERE job_id = ?")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn fail_job(
        &self,
        job_id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE job SET attempts = attempts + 1, last_error = ?, locked_until = NULL,
                 run_at = COALESCE(?, run_at), dead_at = CASE WHEN ? IS NULL THEN ? END
             WHERE job_id = ?",
        )
        .bind(error)
        .bind(retry_at.map(ms))
        .bind(retry_at.map(ms))
        .bind(ms(now))
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn due_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM job WHERE dead_at IS NULL AND run_at <= ?")
                .bind(ms(now))
                .fetch_one(&self.pool)
                .await?;
        Ok(count as u64)
    }
}
