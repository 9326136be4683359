//! Releases and their approvals: the statements that read and write them.
//!
//! Every function runs on the connection or transaction it is given. The
//! lifecycle (`flow`) locks a release before it writes to it, so that on
//! PostgreSQL two replicas writing to the same release take turns, as
//! SQLite's single writer does.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    StoreError,
    connection::{Conn, Row},
    rows,
    sql::{Columns, Rows, Sql},
};
use crate::domain::{
    approver::ApproverEmail,
    job::ReleaseJob,
    link::ReleaseUrl,
    policy::Decision,
    release::{AzureApprovalRef, NewRelease, Phase, ReleaseKey},
    sign_in::SignedIdentity,
    snapshot::{
        ApprovalRecord, AzureApprovalRecord, JobTrouble, ReleaseRecord, ReleaseSnapshot, Settlement,
    },
};

/// The columns of a release's snapshot: the release's row joined with each of
/// its approvals, and the number of its failing jobs. Read by
/// [`snapshot_query!`], and by PostgreSQL's job claim for the claimed job's
/// release.
macro_rules! snapshot_columns {
    () => {
        "release.*, approval.approval_id, approval.email, approval.decision,
         approval.decided_at, approval.comment, approval.email_sent_at,
         approval.link_generation, approval.signed_in_issuer,
         approval.signed_in_subject, approval.signed_in_email,
         (SELECT COUNT(*) FROM job
          WHERE job.release_id = release.release_id AND job.last_error IS NOT NULL)
         AS failing_jobs"
    };
}
pub(super) use snapshot_columns;

/// A release's snapshot, its approvals in creation order: a gate poll is one
/// statement (on SQLite every statement is a round trip to the connection's
/// thread). `$where` picks the release.
macro_rules! snapshot_query {
    ($where:literal) => {
        concat!(
            "SELECT ",
            snapshot_columns!(),
            " FROM release LEFT JOIN approval ON approval.release_id = release.release_id
             WHERE ",
            $where,
            " ORDER BY approval.created_at, approval.email"
        )
    };
}

/// The release with this public identity.
pub(super) async fn find(
    db: &mut Conn<'_>,
    key: &ReleaseKey,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let sql = Sql::new(snapshot_query!(
        "release.team_project = $1 AND release.external_id = $2 AND release.stage = $3
         AND release.attempt = $4 AND release.phase = $5"
    ));
    snapshot_of(db, bind_key(sql, key)).await
}

/// The release with this internal id.
pub(super) async fn find_by_id(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let sql = Sql::new(snapshot_query!("release.release_id = $1")).bind(release_id);
    snapshot_of(db, sql).await
}

/// The snapshot read by a [`snapshot_query!`].
async fn snapshot_of(db: &mut Conn<'_>, sql: Sql) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let rows = db.fetch_all(sql).await?;
    snapshot_in(db, &rows).await
}

/// The snapshot in rows of [`snapshot_columns!`], `None` when they hold no
/// release; the failing jobs, when there are any, take a second statement.
pub(super) async fn snapshot_in(
    db: &mut Conn<'_>,
    rows: &[Row],
) -> Result<Option<ReleaseSnapshot>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    if first.opt_text("team_project")?.is_none() {
        return Ok(None);
    }
    let release = rows::release(first)?;
    let mut approvals = Vec::with_capacity(rows.len());
    for row in rows {
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
pub(super) async fn troubles_of(
    db: &mut Conn<'_>,
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

/// The internal id of the release with this public identity.
pub(super) async fn id_of(db: &mut Conn<'_>, key: &ReleaseKey) -> Result<Option<i64>, StoreError> {
    let sql = Sql::new(
        "SELECT release_id FROM release WHERE team_project = $1 AND external_id = $2 AND stage = $3
         AND attempt = $4 AND phase = $5",
    );
    let found = db.fetch_optional(bind_key(sql, key)).await?;
    found.map(|row| row.int("release_id")).transpose()
}

/// Binds the five parts of a round's identity as `$1` to `$5`.
fn bind_key(sql: Sql, key: &ReleaseKey) -> Sql {
    sql.bind(key.team_project.as_str())
        .bind(key.release_id.as_str())
        .bind(key.stage.as_str())
        .bind(i64::from(key.attempt))
        .bind(key.phase.as_str())
}

/// The key of the latest round of `key`'s release and stage, of `attempt`
/// and `phase` where they are given (the parts of `key` they replace are not read).
pub(super) async fn latest_round(
    db: &mut Conn<'_>,
    key: &ReleaseKey,
    attempt: Option<u32>,
    phase: Option<Phase>,
) -> Result<Option<ReleaseKey>, StoreError> {
    let sql = Sql::new(
        "SELECT attempt, phase FROM release
         WHERE team_project = $1 AND external_id = $2 AND stage = $3
           AND ($4 IS NULL OR attempt = $4) AND ($5 IS NULL OR phase = $5)
         ORDER BY created_at DESC, release_id DESC LIMIT 1",
    )
    .bind(key.team_project.as_str())
    .bind(key.release_id.as_str())
    .bind(key.stage.as_str())
    .bind(attempt.map(i64::from))
    .bind(phase.map(Phase::as_str));
    let Some(row) = db.fetch_optional(sql).await? else {
        return Ok(None);
    };
    let (attempt, phase) = rows::round(&row)?;
    Ok(Some(ReleaseKey {
        attempt,
        phase,
        ..key.clone()
    }))
}

/// The rounds of a project's release id, by stage, attempt and phase, at most
/// [`super::MAX_ROUNDS_SHOWN`].
pub(super) async fn known_rounds(
    db: &mut Conn<'_>,
    team_project: &str,
    release_id: &str,
) -> Result<Vec<ReleaseKey>, StoreError> {
    let sql = Sql::new(
        "SELECT stage, attempt, phase FROM release
         WHERE team_project = $1 AND external_id = $2
         ORDER BY stage, attempt, phase DESC LIMIT $3",
    )
    .bind(team_project)
    .bind(release_id)
    .bind(super::MAX_ROUNDS_SHOWN as i64);
    let rows = db.fetch_all(sql).await?;
    rows.iter()
        .map(|row| {
            let (attempt, phase) = rows::round(row)?;
            Ok(ReleaseKey {
                team_project: team_project.to_owned(),
                release_id: release_id.to_owned(),
                stage: row.text("stage")?,
                attempt,
                phase,
            })
        })
        .collect()
}

/// Locks the release for the rest of the transaction and reads it.
pub(super) async fn lock(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<ReleaseSnapshot, StoreError> {
    hold(db, release_id).await?;
    read(db, release_id).await
}

/// Locks the release for the rest of the transaction, without reading it.
pub(super) async fn hold(db: &mut Conn<'_>, release_id: i64) -> Result<(), StoreError> {
    db.execute(Sql::new(db.dialect().lock_release).bind(release_id))
        .await
        .map(drop)
}

/// The release with this internal id, which must exist.
pub(super) async fn read(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<ReleaseSnapshot, StoreError> {
    find_by_id(db, release_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("release {release_id} is missing")))
}

/// An approval by id.
pub(super) async fn approval(
    db: &mut Conn<'_>,
    approval_id: Uuid,
) -> Result<Option<ApprovalRecord>, StoreError> {
    let sql = Sql::new("SELECT * FROM approval WHERE approval_id = $1").bind(approval_id);
    db.fetch_optional(sql)
        .await?
        .as_ref()
        .map(rows::approval)
        .transpose()
}

/// Inserts a release (`$1` to `$12`) unless its key is known, returning its row.
macro_rules! insert_release {
    () => {
        "INSERT INTO release (team_project, external_id, stage, attempt, phase, release_name,
                              required_approvals, deadline, requested_for, release_url,
                              definition_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (team_project, external_id, stage, attempt, phase) DO NOTHING
         RETURNING *"
    };
}

/// Binds [`insert_release!`]'s parameters.
fn bind_new_release(
    sql: Sql,
    new: &NewRelease,
    required_approvals: Option<u32>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Sql {
    bind_key(sql, &new.key)
        .bind(new.name.as_str())
        .bind(required_approvals.map(i64::from))
        .bind(deadline)
        .bind(new.requested_for.as_ref().map(ApproverEmail::as_str))
        .bind(new.release_url.as_ref().map(ReleaseUrl::as_str))
        .bind(new.definition_name.as_deref())
        .bind(now)
}

/// A new release and its first jobs, each about the release as a whole, in
/// one statement (PostgreSQL's; SQLite writes nothing in a `WITH`), for up
/// to [`Rows::MOST`] jobs; no job when the key was known.
static WITH_JOBS: Rows = Rows::after(
    13,
    concat!(
        "WITH inserted AS (",
        insert_release!(),
        "), queued AS (
            INSERT INTO job (kind, release_id, run_at, created_at)
            SELECT v.kind, inserted.release_id, v.run_at, $13
            FROM inserted CROSS JOIN ("
    ),
    2,
    ") AS v (kind, run_at)) SELECT * FROM inserted",
);

/// [`insert`] with the release's first `jobs` (each its kind and when it is
/// due) in one statement, for up to [`Rows::MOST`] jobs: the release's row
/// when inserted.
pub(super) fn insert_with_jobs(
    new: &NewRelease,
    required_approvals: Option<u32>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
    jobs: &[ReleaseJob],
) -> Sql {
    let sql = WITH_JOBS.sql(jobs.len());
    let sql = bind_new_release(sql, new, required_approvals, deadline, now).bind(Utc::now());
    (jobs.iter()).fold(sql, |sql, job| sql.bind(job.kind.as_str()).bind(job.run_at))
}

/// Inserts the release unless it is known; its row when inserted.
pub(super) async fn insert(
    db: &mut Conn<'_>,
    new: &NewRelease,
    required_approvals: Option<u32>,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<ReleaseRecord>, StoreError> {
    let sql = Sql::new(insert_release!());
    let sql = bind_new_release(sql, new, required_approvals, deadline, now);
    let inserted = db.fetch_optional(sql).await?;
    inserted.as_ref().map(rows::release).transpose()
}

/// Records an operator's cancellation of a release's approval.
pub(super) fn cancelled(release_id: i64, reason: Option<&str>, now: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE release SET cancelled_at = $1, cancel_reason = $2 WHERE release_id = $3")
        .bind(now)
        .bind(reason)
        .bind(release_id)
}

/// Makes an approval's earlier links stop working: its next email carries a new one.
pub(super) fn links_superseded(approval_id: Uuid) -> Sql {
    Sql::new(
        "UPDATE approval SET link_generation = link_generation + 1, email_sent_at = NULL
         WHERE approval_id = $1",
    )
    .bind(approval_id)
}

/// Records that the escalation contact was told.
pub(super) fn escalated(release_id: i64, now: DateTime<Utc>) -> Sql {
    Sql::new("UPDATE release SET escalated_at = $1 WHERE release_id = $2")
        .bind(now)
        .bind(release_id)
}

/// Records an approver's decision.
pub(super) fn decided(
    approval_id: Uuid,
    decision: Decision,
    comment: Option<&str>,
    identity: Option<&SignedIdentity>,
    now: DateTime<Utc>,
) -> Sql {
    Sql::new(
        "UPDATE approval SET decision = $1, comment = $2, decided_at = $3, signed_in_issuer = $4,
                signed_in_subject = $5, signed_in_email = $6
         WHERE approval_id = $7",
    )
    .bind(decision.as_str())
    .bind(comment)
    .bind(now)
    .bind(identity.map(|i| i.issuer.as_str()))
    .bind(identity.map(|i| i.subject.as_str()))
    .bind(identity.map(|i| i.email.as_str()))
    .bind(approval_id)
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

/// An email the mail server accepted, to record with its job done.
pub(super) struct SentEmail {
    /// Its job.
    pub job_id: i64,
    /// The approval it asked for.
    pub approval_id: Uuid,
    /// The generation of the link it carried.
    pub link_generation: i64,
    /// When the server accepted it.
    pub at: DateTime<Utc>,
}

/// [`email_sent`] for each email of a row of `v`, and the deletion of its
/// job, in one statement (PostgreSQL's; SQLite has no writes in a `WITH`).
static EMAILS_SENT: Rows = Rows::new(
    "WITH v (approval_id, link_generation, job_id, sent_at) AS (",
    4,
    "), sent AS (
        UPDATE approval SET email_sent_at = v.sent_at FROM v
        WHERE approval.approval_id = v.approval_id
              AND approval.link_generation = v.link_generation)
     DELETE FROM job USING v WHERE job.job_id = v.job_id",
);

/// [`EMAILS_SENT`] for `emails` (at most [`Rows::MOST`]).
pub(super) fn emails_sent_and_jobs_done(emails: &[SentEmail]) -> Sql {
    let sql = EMAILS_SENT.sql(emails.len());
    (emails.iter()).fold(sql, |sql, email| {
        sql.bind(email.approval_id)
            .bind(email.link_generation)
            .bind(email.job_id)
            .bind(email.at)
    })
}

/// Ties an Azure DevOps approval to the round that decides it, unless it is
/// tied already; whether it was new.
pub(super) async fn attach_azure_approval(
    db: &mut Conn<'_>,
    release_id: i64,
    approval: &AzureApprovalRef,
    assigned_to: &[String],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = Sql::new(
        "INSERT INTO azure_approval (azure_approval_id, kind, release_id, created_at, assigned_to)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, azure_approval_id) DO NOTHING",
    )
    .bind(approval.id.as_str())
    .bind(approval.kind.as_str())
    .bind(release_id)
    .bind(now)
    .bind(
        (!assigned_to.is_empty())
            .then(|| assigned_to.join(","))
            .as_deref(),
    );
    Ok(db.execute(sql).await? == 1)
}

/// The Azure DevOps approvals a round decides, in the order they arrived.
pub(super) async fn azure_approvals(
    db: &mut Conn<'_>,
    release_id: i64,
) -> Result<Vec<AzureApprovalRecord>, StoreError> {
    let sql = Sql::new(
        "SELECT * FROM azure_approval WHERE release_id = $1 ORDER BY created_at, azure_approval_id",
    )
    .bind(release_id);
    db.fetch_all(sql)
        .await?
        .iter()
        .map(rows::azure_approval)
        .collect()
}

/// Records the round's decision as written back to this Azure DevOps approval.
pub(super) fn written_back(approval: &AzureApprovalRef, now: DateTime<Utc>) -> Sql {
    Sql::new(
        "UPDATE azure_approval SET written_back_at = $1 WHERE kind = $2 AND azure_approval_id = $3",
    )
    .bind(now)
    .bind(approval.kind.as_str())
    .bind(approval.id.as_str())
}

/// Records that Azure DevOps itself decided the round.
pub(super) fn settled(release_id: i64, settlement: &Settlement) -> Sql {
    Sql::new(
        "UPDATE release SET settled_status = $1, settled_at = $2, settled_reason = $3
         WHERE release_id = $4",
    )
    .bind(settlement.status.as_str())
    .bind(settlement.at)
    .bind(settlement.reason.as_str())
    .bind(release_id)
}

/// Records an Azure DevOps approval's decision as taken in Azure itself.
pub(super) fn decided_in_azure(approval: &AzureApprovalRef, decision: Decision) -> Sql {
    Sql::new(
        "UPDATE azure_approval SET decided_in_azure = $1 WHERE kind = $2 AND azure_approval_id = $3",
    )
    .bind(decision.as_str())
    .bind(approval.kind.as_str())
    .bind(approval.id.as_str())
}

/// The round that decides this Azure DevOps approval, if deploy-gate follows it.
pub(super) async fn round_of(
    db: &mut Conn<'_>,
    approval: &AzureApprovalRef,
) -> Result<Option<i64>, StoreError> {
    let sql = Sql::new(
        "SELECT release_id FROM azure_approval WHERE kind = $1 AND azure_approval_id = $2",
    )
    .bind(approval.kind.as_str())
    .bind(approval.id.as_str());
    let found = db.fetch_optional(sql).await?;
    found.map(|row| row.int("release_id")).transpose()
}

/// The rounds of a release, of one stage where given, oldest first.
pub(super) async fn rounds_of(
    db: &mut Conn<'_>,
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
) -> Result<Vec<i64>, StoreError> {
    let sql = Sql::new(
        "SELECT release_id FROM release
         WHERE team_project = $1 AND external_id = $2 AND ($3 IS NULL OR stage = $3)
         ORDER BY created_at, release_id",
    )
    .bind(team_project)
    .bind(release_id)
    .bind(stage);
    db.fetch_all(sql)
        .await?
        .iter()
        .map(|row| row.int("release_id"))
        .collect()
}
