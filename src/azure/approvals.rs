//! Writing a decision back to the Azure DevOps release approval (azure-devops.md §4).

use serde::Serialize;

use crate::domain::{
    policy::{Decision, ReleaseStatus},
    snapshot::ReleaseSnapshot,
};

/// api-version of the release approvals API (azure-devops.md §4).
pub const APPROVALS_API_VERSION: &str = "7.1";

/// The body of `PATCH …/_apis/release/approvals/{approvalId}`.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct ApprovalUpdate {
    /// `approved` or `rejected`.
    pub status: &'static str,
    /// Who decided, and why.
    pub comments: String,
}

/// `{organization URL}/{project}/_apis/release/approvals/{approvalId}?api-version=7.1`.
pub fn approval_url(organization_url: &str, project: &str, approval_id: &str) -> String {
    let segment = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "{}/{}/_apis/release/approvals/{}?api-version={APPROVALS_API_VERSION}",
        organization_url.trim_end_matches('/'),
        segment(project),
        segment(approval_id),
    )
}

/// The update for a decided release, naming who decided; `None` while pending.
pub fn approval_update(
    snapshot: &ReleaseSnapshot,
    status: ReleaseStatus,
) -> Option<ApprovalUpdate> {
    let by = |decision: Decision| -> Vec<String> {
        snapshot
            .approvals
            .iter()
            .filter(|a| a.decided.is_some_and(|d| d.decision == decision))
            .map(|a| match &a.comment {
                Some(comment) => format!("{} (\u{201c}{comment}\u{201d})", a.email),
                None => a.email.clone(),
            })
            .collect()
    };
    match status {
        ReleaseStatus::Pending => None,
        ReleaseStatus::Approved => Some(ApprovalUpdate {
            status: "approved",
            comments: format!(
                "Approved by {} via deploy-gate",
                by(Decision::Approve).join(", ")
            ),
        }),
        ReleaseStatus::Rejected => Some(ApprovalUpdate {
            status: "rejected",
            // A cancelled release has no rejecting approver: the operator's reason stands in.
            comments: match &snapshot.release.cancelled {
                Some(cancellation) => match &cancellation.reason {
                    Some(reason) => format!(
                        "Rejected by deploy-gate: cancelled by an operator (\u{201c}{reason}\u{201d})"
                    ),
                    None => "Rejected by deploy-gate: cancelled by an operator".to_owned(),
                },
                None => format!(
                    "Rejected by {} via deploy-gate",
                    by(Decision::Reject).join(", ")
                ),
            },
        }),
        ReleaseStatus::Expired => Some(ApprovalUpdate {
            status: "rejected",
            comments: "Rejected by deploy-gate: no decision before the deadline".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approval_url_follows_the_documented_shape() {
        assert_eq!(
            approval_url("https://vsrm.dev.azure.com/contoso/", "Fabrikam Web", "42"),
            "https://vsrm.dev.azure.com/contoso/Fabrikam%20Web/_apis/release/approvals/42?api-version=7.1"
        );
    }
}
