//! What keeps a release from progressing (approvers missing, jobs failing), in its status body.

use poem_openapi::Object;

use crate::{jobs::JobKind, store::ReleaseSnapshot};

/// Something that keeps a release from progressing, shown so nobody waits in silence.
#[derive(Object, Clone, Debug)]
pub struct ReleaseProblem {
    /// Stable code: `no_approvers`, `invalid_approvers`, `approvers_failing`, `email_failing`,
    /// `channel_failing`, `reminder_failing`, `escalation_failing`, `callback_failing`,
    /// `write_back_failing`, `expiry_failing`, `job_dead`.
    pub code: String,
    /// Plain-language explanation, including the latest error.
    pub detail: String,
}

/// The troubles of `snapshot`; once it is final, only those of reporting the decision.
pub fn problems(snapshot: &ReleaseSnapshot, is_final: bool) -> Vec<ReleaseProblem> {
    let mut list = Vec::new();
    if let Some(note) = &snapshot.release.approver_problem {
        let code = if snapshot.approvals.is_empty() {
            "no_approvers"
        } else {
            "invalid_approvers"
        };
        list.push(ReleaseProblem {
            code: code.into(),
            detail: note.clone(),
        });
    }
    for trouble in &snapshot.troubles {
        let (code, what) = match trouble.kind {
            JobKind::ResolveApprovers => ("approvers_failing", "resolving approvers".to_owned()),
            JobKind::SendApprovalEmail => (
                "email_failing",
                match &trouble.approver {
                    Some(to) => format!("sending the approval email to {to}"),
                    None => "sending an approval email".to_owned(),
                },
            ),
            JobKind::ExpireRelease => ("expiry_failing", "handling the deadline".to_owned()),
            JobKind::PostCallback => (
                "callback_failing",
                "reporting the decision to Azure DevOps".to_owned(),
            ),
            JobKind::WriteBackApproval => (
                "write_back_failing",
                "writing the decision back to the Azure DevOps approval".to_owned(),
            ),
            JobKind::NotifyChannel => (
                "channel_failing",
                match &trouble.approver {
                    Some(to) => format!("posting the approval request for {to} to a channel"),
                    None => "posting an approval request to a channel".to_owned(),
                },
            ),
            JobKind::RemindApprovers | JobKind::SendReminder => {
                ("reminder_failing", "sending reminders".to_owned())
            }
            JobKind::Escalate => ("escalation_failing", "sending the escalation".to_owned()),
        };
        // Once decided, failures of the approval fan-out no longer matter; reporting failures do.
        if is_final
            && matches!(
                trouble.kind,
                JobKind::ResolveApprovers
                    | JobKind::SendApprovalEmail
                    | JobKind::NotifyChannel
                    | JobKind::RemindApprovers
                    | JobKind::SendReminder
                    | JobKind::Escalate
            )
        {
            continue;
        }
        let (code, detail) = match trouble.next_attempt_at {
            Some(at) => (
                code,
                format!(
                    "{what} failed {} time(s), next attempt at {}: {}",
                    trouble.attempts,
                    at.to_rfc3339(),
                    trouble.last_error
                ),
            ),
            None => (
                "job_dead",
                format!(
                    "{what} failed {} times and was given up: {}",
                    trouble.attempts, trouble.last_error
                ),
            ),
        };
        list.push(ReleaseProblem {
            code: code.into(),
            detail,
        });
    }
    list
}
