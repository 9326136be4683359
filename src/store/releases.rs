//! Releases and their approvals: creation, snapshots, decisions, approvers.
//!
//! Every function runs on the connection or transaction it is given; the ones
//! that write to a release lock it first, so that on PostgreSQL two replicas
//! writing to the same release take turns, as SQLite's single writer does.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    ApprovalRecord, CancelOutcome, Creation, DecisionOutcome, JobTrouble, ReleasePlan,
    ReleaseRecord, ReleaseSnapshot, ResendOutcome, ResolvedApprovers, StoreError, notices,
    queue::{self, Subject},
    rows,
    sql::{Columns, Queries, Sql, Writes},
};
use crate::{
    azure::PlanCallback,
    domain::{
        approver::ApproverEmail,
        policy::Decision,
        release::{NewRelease, ReleaseKey},
    },
    jobs::JobKind,
};

/// A release's row joined with each of its approvals, in creation order, and the
/// number of its failing jobs: a gate poll is one statement (on SQLite every
/// statement is a round trip to the connection's thread). `$where` picks the release.
macro_rules! snapshot_query {
    ($where:literal) => {
        concat!(
            "SELECT release.*, approval.approval_id, approval.email, approval.decision,
                    approval.decided_at, approval.comment, approval.email_sent_at,
                    approval.link_generation,
                    (SELECT COUNT(*) FROM job
                     WHERE job.release_id = release.release_id AND job.last_error IS NOT NULL)
                    AS failing_jobs
             FROM release LEFT JOIN approval ON approval.release_id = release.release_id
             WHERE ",
            $where,
            " ORDER BY approval.created_at, approval.email"
        )
    };
}

/// The release with this public identity.
pub(super) async fn find<Q: Queries>(
    db: &mut Q,
    key: &ReleaseKey,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let sql = Sql::new(snapshot_query!(
        "release.team_project = $1 AND release.external_id = $2 AND release.stage = $3"
    ))
    .bind(key.team_project.as_str())
    .bind(key.release_id.as_str())
    .bind(key.stage.as_str());
    snapshot_of(db, sql).await
}

/// The release with this internal id.
pub(super) async fn find_by_id<Q: Queries>(
    db: &mut Q,
    release_id: i64,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let sql = Sql::new(snapshot_query!("release.release_id = $1")).bind(release_id);
    snapshot_of(db, sql).await
}

/// The snapshot read by a [`snapshot_query!`]; the failing jobs, when there are
/// any, take a second statement.
async fn snapshot_of<Q: Queries>(
    db: &mut Q,
    sql: Sql,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let rows = db.fetch_all(sql).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let release = rows::release(first)?;
    let mut approvals = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.opt_uuid("approval_id")?.is_some() {
            approvals.push(rows::approval(row)?);
        }
    }
    let troubles = match first.int("failing_jobs")? {
        0 => Vec::new(),
        _ => troubles_of(db, release.id).await?,
    };
    Ok(Some(ReleaseSnapshot {
        release,
        approvals,
        troubles,
    }))
}

/// The release's failing jobs, with the email of the approver each concerns.
async fn troubles_of<Q: Queries>(
    db: &mut Q,
    release_id: i64,
) -> Result<Vec<JobTrouble>, StoreError> {
    let sql = Sql::new(
        "SELECT job.kind, job.attempts, job.last_error, job.run_at, job.dead_at, approval.email
         FROM job LEFT JOIN approval ON approval.approval_id = job.approval_id
         WHERE job.release_id = $1 AND job.last_error IS NOT NULL ORDER BY job.job_id",
    )
    .bind(release_id);
    db.fetch_all(sql).await?.iter().map(rows::trouble).collect()
}

async fn release_by_key<Q: Queries>(
    db: &mut Q,
    key: &ReleaseKey,
) -> Result<Option<ReleaseRecord>, StoreError> {
    let sql = Sql::new(
        "SELECT * FROM release WHERE team_project = $1 AND external_id = $2 AND stage = $3",
    )
    .bind(key.team_project.as_str())
    .bind(key.release_id.as_str())
    .bind(key.stage.as_str());
    db.fetch_optional(sql)
        .await?
        .as_ref()
        .map(rows::release)
        .transpose()
}

/// Locks the release for the rest of the transaction and reads it.
pub(super) async fn lock<B: Writes>(
    db: &mut B,
    release_id: i64,
) -> Result<ReleaseSnapshot, StoreError> {
    db.execute(Sql::new(B::LOCK_RELEASE).bind(release_id))
        .await?;
    read(db, release_id).await
}

async fn read<Q: Queries>(db: &mut Q, release_id: i64) -> Result<ReleaseSnapshot, StoreError> {
    find_by_id(db, release_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("release {release_id} is missing")))
}

/// An approval by id.
pub(super) async fn approval<Q: Queries>(
    db: &mut Q,
    approval_id: Uuid,
) -> Result<Option<ApprovalRecord>, StoreError> {
    let sql = Sql::new("SELECT * FROM approval WHERE approval_id = $1").bind(approval_id);
    db.fetch_optional(sql)
        .await?
        .as_ref()
        .map(rows::approval)
        .transpose()
}

/// Stores a new release and queues its first jobs, or reads the known one;
/// registers `callback` either way. Concurrent calls for one release (two
/// replicas, or one pipeline polling twice) store it once.
pub(super) async fn create<B: Writes>(
    db: &mut B,
    new: &NewRelease,
    plan: &ReleasePlan,
    callback: Option<&PlanCallback>,
    now: DateTime<Utc>,
) -> Result<Creation, StoreError> {
    let inserted = insert_release(db, new, plan, now).await?;
    let release_id = match inserted {
        Some(release_id) => {
            queue_first_jobs(db, release_id, plan, now).await?;
            release_id
        }
        // Inserted by another transaction that has committed since.
        None => release_by_key(db, &new.key)
            .await?
            .map(|known| known.id)
            .ok_or_else(|| StoreError::Corrupt("release vanished inside its transaction".into()))?,
    };
    // Pipelines poll by posting again: a poll only reads, so polls never queue
    // on the lock; registering a callback writes, so it takes the lock.
    let snapshot = match (inserted, callback) {
        (None, None) => read(db, release_id).await?,
        _ => lock(db, release_id).await?,
    };
    if let Some(callback) = callback {
        notices::register_callback(db, &snapshot, callback, now).await?;
    }
    if inserted.is_some() && new.azure_approval_id.is_some() {
        notices::watch_deadline(db, &snapshot.release).await?;
    }
    Ok(match inserted {
        Some(_) => Creation::Created(snapshot),
        None => Creation::Existing(snapshot),
    })
}

/// Inserts the release unless it is known; its id when inserted.
async fn insert_release<B: Writes>(
    db: &mut B,
    new: &NewRelease,
    plan: &ReleasePlan,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let sql = Sql::new(
        "INSERT INTO release (team_project, external_id, stage, release_name, required_approvals,
                              deadline, azure_approval_id, requested_for, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (team_project, external_id, stage) DO NOTHING
         RETURNING release_id",
    )
    .bind(new.key.team_project.as_str())
    .bind(new.key.release_id.as_str())
    .bind(new.key.stage.as_str())
    .bind(new.name.as_str())
    .bind(plan.required_approvals.map(i64::from))
    .bind(plan.deadline)
    .bind(new.azure_approval_id.as_deref())
    .bind(new.requested_for.as_ref().map(ApproverEmail::as_str))
    .bind(now);
    let inserted = db.fetch_optional(sql).await?;
    inserted.map(|row| row.int("release_id")).transpose()
}

/// Approvals known at once are stored now, else a job resolves them; reminders
/// and the escalation are queued for their times.
async fn queue_first_jobs<B: Writes>(
    db: &mut B,
    release_id: i64,
    plan: &ReleasePlan,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match &plan.approvers {
        Some(resolved) => insert_approvals(db, release_id, resolved, now).await?,
        None => {
            let kind = JobKind::ResolveApprovers;
            queue::enqueue(db, kind, release_id, Subject::Release, now).await?;
        }
    }
    for at in &plan.reminders {
        queue::enqueue(
            db,
            JobKind::RemindApprovers,
            release_id,
            Subject::Release,
            *at,
        )
        .await?;
    }
    if let Some(at) = plan.escalate_at {
        queue::enqueue(db, JobKind::Escalate, release_id, Subject::Release, at).await?;
    }
    Ok(())
}

/// Inserts approvals with an email job (and a job per channel) each, skipping
/// approvers already present, and records the rule and where the approvers came from.
pub(super) async fn insert_approvals<B: Writes>(
    db: &mut B,
    release_id: i64,
    resolved: &ResolvedApprovers,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (position, email) in (0..).zip(&resolved.approvers) {
        let approval_id = Uuid::new_v4();
        let sql = Sql::new(
            "INSERT INTO approval (approval_id, release_id, email, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (release_id, email) DO NOTHING",
        )
        .bind(approval_id)
        .bind(release_id)
        .bind(email.as_str())
        // The position keeps the approvers in their given order.
        .bind(now + TimeDelta::milliseconds(position));
        if db.execute(sql).await? == 1 {
            let kind = JobKind::SendApprovalEmail;
            queue::enqueue(db, kind, release_id, Subject::Approval(approval_id), now).await?;
            for channel in &resolved.channels {
                let subject = Subject::Channel(approval_id, *channel);
                queue::enqueue(db, JobKind::NotifyChannel, release_id, subject, now).await?;
            }
        }
    }
    let rule = serde_json::to_string(&resolved.rule)
        .map_err(|e| StoreError::Corrupt(format!("approval rule: {e}")))?;
    let sql = Sql::new(
        "UPDATE release SET approvers_source = $1, approvers_resolved_at = $2, approver_problem = $3,
                            approval_rule = $4
         WHERE release_id = $5",
    )
    .bind(resolved.source.as_str())
    .bind(now)
    .bind(resolved.problem.as_deref())
    .bind(rule.as_str())
    .bind(release_id);
    db.execute(sql).await?;
    Ok(())
}

/// Cancels a pending release and queues its notices.
pub(super) async fn cancel<B: Writes>(
    db: &mut B,
    release_id: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CancelOutcome, StoreError> {
    let before = lock(db, release_id).await?;
    if before.outcome(now).status.is_final() {
        return Ok(CancelOutcome::AlreadyFinal(before));
    }
    let sql =
        Sql::new("UPDATE release SET cancelled_at = $1, cancel_reason = $2 WHERE release_id = $3")
            .bind(now)
            .bind(reason)
            .bind(release_id);
    db.execute(sql).await?;
    notices::queue_decision_notices(db, release_id, now).await?;
    Ok(CancelOutcome::Cancelled(read(db, release_id).await?))
}

/// Supersedes an undecided approver's links and queues a new email.
pub(super) async fn resend<B: Writes>(
    db: &mut B,
    release_id: i64,
    email: &str,
    now: DateTime<Utc>,
) -> Result<ResendOutcome, StoreError> {
    let before = lock(db, release_id).await?;
    let Some(approval) = before.approvals.iter().find(|a| a.email == email) else {
        return Ok(ResendOutcome::UnknownApprover);
    };
    if before.outcome(now).status.is_final() {
        return Ok(ResendOutcome::ReleaseFinal(before));
    }
    if approval.decided.is_some() {
        return Ok(ResendOutcome::AlreadyDecided(before));
    }
    let approval_id = approval.id;
    let sql = Sql::new(
        "UPDATE approval SET link_generation = link_generation + 1, email_sent_at = NULL
         WHERE approval_id = $1",
    )
    .bind(approval_id);
    db.execute(sql).await?;
    // A send still queued (or failing) would mail the superseded link: replace it.
    let sql = Sql::new("DELETE FROM job WHERE approval_id = $1 AND kind = $2")
        .bind(approval_id)
        .bind(JobKind::SendApprovalEmail.as_str());
    db.execute(sql).await?;
    let kind = JobKind::SendApprovalEmail;
    queue::enqueue(db, kind, release_id, Subject::Approval(approval_id), now).await?;
    Ok(ResendOutcome::Queued(read(db, release_id).await?))
}

/// Queues one reminder per undecided approver whose approval counts, if the release is pending.
pub(super) async fn queue_reminders<B: Writes>(
    db: &mut B,
    release_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let snapshot = lock(db, release_id).await?;
    if snapshot.outcome(now).status.is_final() {
        return Ok(());
    }
    let rule = &snapshot.release.rule;
    for approval in &snapshot.approvals {
        if approval.decided.is_none() && rule.counts(&approval.email) {
            let subject = Subject::Approval(approval.id);
            queue::enqueue(db, JobKind::SendReminder, release_id, subject, now).await?;
        }
    }
    Ok(())
}

/// Records that the escalation contact was told.
pub(super) fn escalated(release_id: i64, now: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE release SET escalated_at = $1 WHERE release_id = $2")
        .bind(now)
        .bind(release_id)
}

/// Records a decision unless the approver or the release has already decided;
/// a decision that makes the release final queues its notices.
pub(super) async fn decide<B: Writes>(
    db: &mut B,
    approval_id: Uuid,
    decision: Decision,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DecisionOutcome, StoreError> {
    let Some(approval) = approval(db, approval_id).await? else {
        return Ok(DecisionOutcome::UnknownApproval);
    };
    // Read again under the lock: another decision may have landed meanwhile.
    let before = lock(db, approval.release_id).await?;
    let current = before.approvals.iter().find(|a| a.id == approval_id);
    if let Some(existing) = current.and_then(|a| a.decided) {
        return Ok(if existing.decision == decision {
            DecisionOutcome::Unchanged(before)
        } else {
            DecisionOutcome::Conflicting(existing.decision)
        });
    }
    if before.outcome(now).status.is_final() {
        return Ok(DecisionOutcome::ReleaseFinal(before));
    }
    let sql = Sql::new(
        "UPDATE approval SET decision = $1, comment = $2, decided_at = $3 WHERE approval_id = $4",
    )
    .bind(decision.as_str())
    .bind(comment)
    .bind(now)
    .bind(approval_id);
    db.execute(sql).await?;
    let after = read(db, before.release.id).await?;
    if after.outcome(now).status.is_final() {
        notices::queue_decision_notices(db, approval.release_id, now).await?;
    }
    Ok(DecisionOutcome::Recorded(after))
}

/// Marks an approval's email as accepted by the mail server, unless its link
/// was superseded meanwhile (then the newer email is still to be sent).
pub(super) fn email_sent(approval_id: Uuid, link_generation: i64, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "UPDATE approval SET email_sent_at = $1 WHERE approval_id = $2 AND link_generation = $3",
    )
    .bind(now)
    .bind(approval_id)
    .bind(link_generation)
}
