//! Result rows to records, the same for both backends.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, sql::Columns};
use crate::{
    domain::{
        callback::{CallbackRecord, PlanCallback},
        channel::ChannelKind,
        job::{Job, JobKind},
        policy::{Decided, Decision, ReleaseStatus, Rule},
        release::{AzureApprovalKind, AzureApprovalRef, Phase, ReleaseKey},
        sign_in::SignedIdentity,
        snapshot::{
            ApprovalRecord, AzureApprovalRecord, CallbackEntry, Cancellation, JobTrouble,
            ReleaseRecord, Settlement,
        },
    },
    secret::Secret,
};

/// A `release` row.
pub(super) fn release(row: &impl Columns) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        id: row.int("release_id")?,
        key: {
            let (attempt, phase) = round(row)?;
            ReleaseKey {
                team_project: row.text("team_project")?,
                release_id: row.text("external_id")?,
                stage: row.text("stage")?,
                attempt,
                phase,
            }
        },
        name: row.text("release_name")?,
        required_approvals: row
            .opt_int("required_approvals")?
            .map(|n| count(n, "required_approvals"))
            .transpose()?,
        rule: rule(row)?,
        requested_for: row.opt_text("requested_for")?,
        release_url: row.opt_text("release_url")?,
        definition_name: row.opt_text("definition_name")?,
        cancelled: row
            .opt_time("cancelled_at")?
            .map(|at| {
                Ok::<_, StoreError>(Cancellation {
                    at,
                    reason: row.opt_text("cancel_reason")?,
                })
            })
            .transpose()?,
        settled: match (row.opt_text("settled_status")?, row.opt_time("settled_at")?) {
            (Some(status), Some(at)) => Some(Settlement {
                status: match status.as_str() {
                    "approved" => ReleaseStatus::Approved,
                    "rejected" => ReleaseStatus::Rejected,
                    _ => return Err(StoreError::Corrupt(format!("settled_status {status}"))),
                },
                at,
                reason: row.opt_text("settled_reason")?.unwrap_or_default(),
            }),
            _ => None,
        },
        escalated_at: row.opt_time("escalated_at")?,
        deadline: row.time("deadline")?,
        approvers_source: row.opt_text("approvers_source")?,
        approvers_resolved_at: row.opt_time("approvers_resolved_at")?,
        approver_problem: row.opt_text("approver_problem")?,
        created_at: row.time("created_at")?,
    })
}

/// The `attempt` and `phase` of a `release` row.
pub(super) fn round(row: &impl Columns) -> Result<(u32, Phase), StoreError> {
    let attempt = count(row.int("attempt")?, "attempt")?;
    let phase = row.text("phase")?;
    let phase =
        Phase::parse(&phase).ok_or_else(|| StoreError::Corrupt(format!("phase {phase}")))?;
    Ok((attempt, phase))
}

/// An `azure_approval` row.
pub(super) fn azure_approval(row: &impl Columns) -> Result<AzureApprovalRecord, StoreError> {
    let kind = row.text("kind")?;
    Ok(AzureApprovalRecord {
        approval: AzureApprovalRef {
            kind: AzureApprovalKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("azure approval kind {kind}")))?,
            id: row.text("azure_approval_id")?,
        },
        release_id: row.int("release_id")?,
        written_back_at: row.opt_time("written_back_at")?,
        decided_in_azure: row
            .opt_text("decided_in_azure")?
            .map(|d| {
                Decision::from_stored(&d)
                    .ok_or_else(|| StoreError::Corrupt(format!("decided_in_azure {d}")))
            })
            .transpose()?,
        assigned_to: row
            .opt_text("assigned_to")?
            .map(|ids| ids.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

/// The stored rule; before the approvers are resolved, the one implied by the
/// default number of approvals and the requester.
fn rule(row: &impl Columns) -> Result<Rule, StoreError> {
    if let Some(text) = row.opt_text("approval_rule")? {
        return serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("approval_rule: {e}")));
    }
    let required = row
        .opt_int("required_approvals")?
        .map(|n| count(n, "required_approvals"))
        .transpose()?;
    let mut rule = Rule::from_required(required);
    rule.requester = row.opt_text("requested_for")?;
    Ok(rule)
}

/// An `approval` row.
pub(super) fn approval(row: &impl Columns) -> Result<ApprovalRecord, StoreError> {
    let decided = match (row.opt_text("decision")?, row.opt_time("decided_at")?) {
        (Some(d), Some(at)) => Some(Decided {
            decision: Decision::from_stored(&d)
                .ok_or_else(|| StoreError::Corrupt(format!("decision {d}")))?,
            at,
        }),
        _ => None,
    };
    Ok(ApprovalRecord {
        id: row.uuid("approval_id")?,
        release_id: row.int("release_id")?,
        email: row.text("email")?,
        decided,
        comment: row.opt_text("comment")?,
        email_sent_at: row.opt_time("email_sent_at")?,
        link_generation: row.int("link_generation")?,
        signed_in: signed_in(row)?,
    })
}

/// Who signed in to make an approval's decision, if anyone did.
fn signed_in(row: &impl Columns) -> Result<Option<SignedIdentity>, StoreError> {
    let issuer = row.opt_text("signed_in_issuer")?;
    let subject = row.opt_text("signed_in_subject")?;
    let email = row.opt_text("signed_in_email")?;
    Ok(match (issuer, subject, email) {
        (Some(issuer), Some(subject), Some(email)) => Some(SignedIdentity {
            issuer,
            subject,
            email,
        }),
        _ => None,
    })
}

/// A failing job, with the email of the approver it concerns.
pub(super) fn trouble(row: &impl Columns) -> Result<JobTrouble, StoreError> {
    Ok(JobTrouble {
        kind: job_kind(row)?,
        approver: row.opt_text("email")?,
        attempts: count(row.int("attempts")?, "attempts")?,
        last_error: row.text("last_error")?,
        next_attempt_at: match row.opt_time("dead_at")? {
            Some(_) => None,
            None => Some(row.time("run_at")?),
        },
    })
}

/// A `callback` row with its count of `outcome_lines`; a delivered callback's token reads as empty.
pub(super) fn callback(row: &impl Columns) -> Result<CallbackRecord, StoreError> {
    Ok(CallbackRecord {
        id: row.int("callback_id")?,
        release_id: row.int("release_id")?,
        target: PlanCallback {
            plan_url: row.text("plan_url")?,
            project_id: row.text("project_id")?,
            hub_name: row.text("hub_name")?,
            plan_id: row.text("plan_id")?,
            job_id: row.text("job_id")?,
            timeline_id: row.opt_text("timeline_id")?,
            task_instance_id: row.text("task_instance_id")?,
            auth_token: Secret::new(row.opt_text("auth_token")?.unwrap_or_default()),
        },
        started: row.opt_time("started_at")?.is_some(),
        ended: row.int("outcome_lines")? > 0,
        delivered: row.opt_time("completed_at")?.is_some(),
    })
}

/// A `callback` row as a timeline shows it; its token is not read.
pub(super) fn callback_entry(row: &impl Columns) -> Result<CallbackEntry, StoreError> {
    Ok(CallbackEntry {
        hub_name: row.text("hub_name")?,
        registered_at: row.time("created_at")?,
        result: row.opt_text("result")?,
        delivered_at: row.opt_time("completed_at")?,
    })
}

/// A claimed `job` row.
pub(super) fn job(row: &impl Columns) -> Result<Job, StoreError> {
    Ok(Job {
        id: row.int("job_id")?,
        kind: job_kind(row)?,
        release_id: row.int("release_id")?,
        approval_id: row.opt_uuid("approval_id")?,
        callback_id: row.opt_int("callback_id")?,
        channel: row
            .opt_text("channel")?
            .map(|c| {
                ChannelKind::from_stored(&c)
                    .ok_or_else(|| StoreError::Corrupt(format!("channel {c}")))
            })
            .transpose()?,
        attempts: count(row.int("attempts")?, "attempts")?,
        release: None,
    })
}

/// A row's columns under a prefix: `Prefixed(row, "claimed_")` reads `kind`
/// from `claimed_kind`, for rows that join columns of the same names.
pub(super) struct Prefixed<'a, R>(pub &'a R, pub &'static str);

impl<R: Columns> Prefixed<'_, R> {
    fn name(&self, column: &str) -> String {
        format!("{}{column}", self.1)
    }
}

impl<R: Columns> Columns for Prefixed<'_, R> {
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.0.opt_int(&self.name(column))
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.0.opt_text(&self.name(column))
    }
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.0.opt_time(&self.name(column))
    }
    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        self.0.opt_uuid(&self.name(column))
    }
}

fn job_kind(row: &impl Columns) -> Result<JobKind, StoreError> {
    let kind = row.text("kind")?;
    JobKind::from_str(&kind).map_err(|()| StoreError::Corrupt(format!("job kind {kind}")))
}

fn count(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value}")))
}
