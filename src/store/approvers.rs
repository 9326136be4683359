//! A round's approvers: their approvals, the jobs each approval needs and the
//! record of where they came from, stored as one write.
//!
//! On PostgreSQL, which writes in a `WITH`, a round of up to [`Rows::MOST`]
//! approvals and jobs is one statement (where it was five round trips: the
//! fan-out of `BENCHMARKS.md`); on SQLite, and for larger rounds, the same
//! writes are made one after the other. The approvers that a job found are
//! stored by [`found_and_claimed`] where the database has that statement:
//! the transaction's writes and the claim of their emails in one round trip.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{
    AddedApprovers, StoreError, callbacks,
    connection::Conn,
    queue,
    sql::{Columns, Rows, Sql},
};
use crate::domain::{
    approver::ApproverEmail,
    job::{ApprovalJob, Job, JobKind, Lease, NewJob},
    policy::{NewApprovers, ResolvedApprovers},
};

/// Records where the approvers of release `$1`, found at `$2`, came from
/// (`$3`), what was wrong on the way (`$4`) and the rule their decisions are
/// judged by (`$5`).
macro_rules! record_approvers {
    () => {
        "UPDATE release SET approvers_source = $3, approvers_resolved_at = $2,
                            approver_problem = $4, approval_rule = $5
         WHERE release_id = $1"
    };
}

/// Stores `new` and deletes the finished job `completing`, if any.
pub(super) async fn add(
    db: &mut Conn<'_>,
    new: &NewApprovers<'_>,
    completing: Option<i64>,
) -> Result<AddedApprovers, StoreError> {
    let rows = new.approvers.len() * new.jobs.len().max(1);
    if db.dialect().writes_in_with && (1..=Rows::MOST).contains(&rows) {
        return add_in_one_statement(db, new, rows, completing).await;
    }
    let ids = insert_approvals(db, new.release_id, new.approvers).await?;
    let jobs: Vec<NewJob> = (ids.iter().flatten())
        .flat_map(|id| {
            new.jobs
                .iter()
                .map(|job| job.of(new.release_id, *id, new.now))
        })
        .collect();
    queue::enqueue(db, &jobs).await?;
    record_approvers(db, new).await?;
    if let Some(job_id) = completing {
        queue::complete(db, job_id).await?;
    }
    Ok(AddedApprovers {
        queued_jobs: !jobs.is_empty(),
        open_callbacks: callbacks::has_open(db, new.release_id).await?,
        ids,
    })
}

/// [`add`] as one statement: a row of `v` for each job of each approval (one
/// with no job when the approvals need none), the approvals inserted from
/// them, the jobs of the approvals inserted, the record of the approvers, the
/// finished job deleted, and what the caller needs back: a row for each
/// approval inserted (or one row without one) with whether the release has
/// an open callback registration.
static IN_ONE_STATEMENT: Rows = Rows::after(
    7,
    "WITH v (approval_id, email, created_at, kind, channel) AS (",
    5,
    concat!(
        "), inserted AS (
        INSERT INTO approval (approval_id, release_id, email, created_at)
        SELECT DISTINCT approval_id, $1, email, created_at FROM v
        ON CONFLICT (release_id, email) DO NOTHING RETURNING approval_id
     ), queued AS (
        INSERT INTO job (kind, release_id, approval_id, channel, run_at, created_at)
        SELECT v.kind, $1, v.approval_id, v.channel, $2, $7
        FROM v JOIN inserted USING (approval_id) WHERE v.kind IS NOT NULL
     ), recorded AS (",
        record_approvers!(),
        "), completed AS (DELETE FROM job WHERE job_id = $6)
     SELECT inserted.approval_id,
            CASE WHEN EXISTS (",
        callbacks::open!(),
        ") THEN CAST(1 AS bigint) ELSE CAST(0 AS bigint) END AS open_callbacks
     FROM (SELECT 1) AS one LEFT JOIN inserted ON TRUE"
    ),
);

/// [`IN_ONE_STATEMENT`] for `new`, whose approvals and jobs make `rows` rows of `v`.
async fn add_in_one_statement(
    db: &mut Conn<'_>,
    new: &NewApprovers<'_>,
    rows: usize,
    completing: Option<i64>,
) -> Result<AddedApprovers, StoreError> {
    let approval_ids: Vec<Uuid> = new.approvers.iter().map(|_| Uuid::new_v4()).collect();
    let mut sql = record_approvers_params(IN_ONE_STATEMENT.sql(rows), new)?
        .bind(completing)
        .bind(Utc::now());
    for row in approval_rows(new, &approval_ids) {
        sql = sql
            .bind(row.approval_id)
            .bind(row.email)
            .bind(row.created_at)
            .bind(row.kind)
            .bind(row.channel);
    }
    let rows = db.fetch_all(sql).await?;
    let open_callbacks = match rows.first() {
        Some(row) => row.int("open_callbacks")? == 1,
        None => {
            return Err(StoreError::Corrupt(
                "approvers stored without an answer".into(),
            ));
        }
    };
    let inserted = (rows.iter())
        .map(|row| row.opt_uuid("approval_id"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AddedApprovers {
        queued_jobs: !new.jobs.is_empty() && inserted.iter().any(Option::is_some),
        open_callbacks,
        ids: (approval_ids.into_iter())
            .map(|id| inserted.contains(&Some(id)).then_some(id))
            .collect(),
    })
}

/// One row of a round's approvals and jobs as both statements take them
/// (`v`): an approval with one of its jobs (`kind` `None` for an approval
/// without any); in JSON its time in milliseconds since the Unix epoch.
#[derive(Serialize)]
struct ApprovalRow<'a> {
    approval_id: Uuid,
    email: &'a str,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    created_at: DateTime<Utc>,
    kind: Option<&'static str>,
    channel: Option<&'static str>,
}

/// The rows of `new`'s approvals, each with its id from `ids`: one for each
/// of its jobs, or one with no job when the approvals need none.
fn approval_rows<'a>(
    new: &'a NewApprovers<'_>,
    ids: &'a [Uuid],
) -> impl Iterator<Item = ApprovalRow<'a>> {
    let jobs: Vec<Option<&ApprovalJob>> = match new.jobs {
        [] => vec![None],
        jobs => jobs.iter().map(Some).collect(),
    };
    (ids.iter().zip(new.approvers)).flat_map(move |(id, (email, created_at))| {
        jobs.clone().into_iter().map(move |job| ApprovalRow {
            approval_id: *id,
            email: email.as_str(),
            created_at: *created_at,
            kind: job.map(|job| job.kind.as_str()),
            channel: job.and_then(|job| job.channel).map(|c| c.as_str()),
        })
    })
}

/// Stores `new`, completes job `completing` and claims the release's due
/// jobs of `claim` under `lease` in the one statement `text`
/// ([`Dialect::approvers_found`](super::sql::Dialect::approvers_found)):
/// the jobs claimed with their release, or `None` when it wrote nothing.
pub(super) async fn found_and_claimed(
    db: &mut Conn<'_>,
    text: &'static str,
    new: &NewApprovers<'_>,
    completing: i64,
    claim: JobKind,
    lease: Lease,
) -> Result<Option<Vec<Job>>, StoreError> {
    let approval_ids: Vec<Uuid> = new.approvers.iter().map(|_| Uuid::new_v4()).collect();
    let rows: Vec<_> = approval_rows(new, &approval_ids).collect();
    let rows = serde_json::to_string(&rows)
        .map_err(|e| StoreError::Corrupt(format!("approvers to store: {e}")))?;
    let sql = record_approvers_params(Sql::new(text), new)?
        .bind(completing)
        .bind(Utc::now())
        .bind(rows.as_str())
        .bind(claim.as_str())
        .bind(i64::try_from(lease.most).unwrap_or(i64::MAX))
        .bind(lease.until);
    let answered = db.fetch_all(sql).await?;
    match answered.first() {
        None => Ok(None),
        Some(first) if first.opt_int("claimed_job_id")?.is_none() => Ok(Some(Vec::new())),
        Some(_) => queue::claimed_with_their_release(db, &answered)
            .await
            .map(Some),
    }
}

/// The approval insert, for up to [`Rows::MOST`] approvers; one already in
/// the release is skipped.
static APPROVALS: Rows = Rows::new(
    "INSERT INTO approval (approval_id, release_id, email, created_at)",
    4,
    " ON CONFLICT (release_id, email) DO NOTHING RETURNING approval_id",
);

/// Inserts approvals (each approver with its creation time), skipping
/// approvers the release has; for each, its id when inserted, in the order given.
async fn insert_approvals(
    db: &mut Conn<'_>,
    release_id: i64,
    approvers: &[(&ApproverEmail, DateTime<Utc>)],
) -> Result<Vec<Option<Uuid>>, StoreError> {
    let mut ids = Vec::with_capacity(approvers.len());
    for chunk in approvers.chunks(Rows::MOST) {
        let chunk_ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::new_v4()).collect();
        let mut sql = APPROVALS.sql(chunk.len());
        for (approval_id, (email, created_at)) in chunk_ids.iter().zip(chunk) {
            sql = sql
                .bind(*approval_id)
                .bind(release_id)
                .bind(email.as_str())
                .bind(*created_at);
        }
        let inserted = db
            .fetch_all(sql)
            .await?
            .iter()
            .map(|row| row.uuid("approval_id"))
            .collect::<Result<Vec<_>, _>>()?;
        ids.extend(
            chunk_ids
                .into_iter()
                .map(|id| inserted.contains(&id).then_some(id)),
        );
    }
    Ok(ids)
}

/// Binds [`record_approvers!`]'s parameters `$1` to `$5`.
fn record_approvers_params(sql: Sql, new: &NewApprovers<'_>) -> Result<Sql, StoreError> {
    Ok(sql
        .bind(new.release_id)
        .bind(new.now)
        .bind(new.resolved.source.as_str())
        .bind(new.resolved.problem.as_deref())
        .bind(rule_text(new.resolved)?.as_str()))
}

/// The rule, as stored.
fn rule_text(resolved: &ResolvedApprovers) -> Result<String, StoreError> {
    serde_json::to_string(&resolved.rule)
        .map_err(|e| StoreError::Corrupt(format!("approval rule: {e}")))
}

/// Records the rule the approvers' decisions are judged by and where they came from.
async fn record_approvers(db: &mut Conn<'_>, new: &NewApprovers<'_>) -> Result<(), StoreError> {
    let sql = record_approvers_params(Sql::new(record_approvers!()), new)?;
    db.execute(sql).await?;
    Ok(())
}
