//! What keeps a release from progressing (approvers missing, jobs failing), in its status body.

use poem_openapi::Object;

use crate::domain::snapshot::ReleaseSnapshot;

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
        let (code, what) = trouble.kind.failing(trouble.approver.as_deref());
        // Once decided, failures of the approval fan-out no longer matter; reporting failures do.
        if is_final && trouble.kind.asks_for_decisions() {
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
