//! Writing a decision back to the Azure DevOps release approval (azure-devops.md §4).

use serde::{Deserialize, Serialize};

use crate::domain::{
    policy::{Decision, ReleaseStatus},
    snapshot::ReleaseSnapshot,
};

/// The body of `PATCH …/_apis/release/approvals/{approvalId}` (classic).
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct ApprovalUpdate {
    /// `approved` or `rejected`.
    pub status: &'static str,
    /// Who decided, and why.
    pub comments: String,
}

/// One element of the body of `PATCH …/_apis/pipelines/approvals` (YAML).
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineApprovalUpdate<'a> {
    /// The approval's GUID.
    pub approval_id: &'a str,
    /// `approved` or `rejected`.
    pub status: &'static str,
    /// Who decided, and why.
    pub comment: &'a str,
}

/// A path segment, percent-encoded.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `{release-management URL}/{project}/_apis/release/approvals/{approvalId}?api-version=…`.
pub fn approval_url(
    release_url: &str,
    project: &str,
    approval_id: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/{}/_apis/release/approvals/{}?api-version={}",
        release_url.trim_end_matches('/'),
        segment(project),
        segment(approval_id),
        segment(api_version),
    )
}

/// `{organization URL}/{project}/_apis/pipelines/approvals?api-version=…` (YAML approvals).
pub fn pipeline_approvals_url(org_url: &str, project: &str, api_version: &str) -> String {
    format!(
        "{}/{}/_apis/pipelines/approvals?api-version={}",
        org_url.trim_end_matches('/'),
        segment(project),
        segment(api_version),
    )
}

/// `{organization URL}/_apis/connectionData`: who the token belongs to.
pub fn connection_data_url(org_url: &str) -> String {
    format!("{}/_apis/connectionData", org_url.trim_end_matches('/'))
}

/// Approvals - List: the release's pending approvals that `identity` may
/// decide, directly or through a group.
pub fn assigned_approvals_url(
    release_url: &str,
    project: &str,
    release_id: &str,
    identity: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/{}/_apis/release/approvals?assignedToFilter={}&includeMyGroupApprovals=true&releaseIdsFilter={}&statusFilter=pending&api-version={}",
        release_url.trim_end_matches('/'),
        segment(project),
        segment(identity),
        segment(release_id),
        segment(api_version),
    )
}

/// Approvals - List of a classic release's approvals with `status`
/// (`approved` or `rejected`), whoever they are assigned to.
pub fn release_approvals_with_status_url(
    release_url: &str,
    project: &str,
    release_id: &str,
    status: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/{}/_apis/release/approvals?releaseIdsFilter={}&statusFilter={}&api-version={}",
        release_url.trim_end_matches('/'),
        segment(project),
        segment(release_id),
        segment(status),
        segment(api_version),
    )
}

/// Approvals - Get (YAML): one approval, with its status.
pub fn pipeline_approval_url(
    org_url: &str,
    project: &str,
    approval_id: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/{}/_apis/pipelines/approvals/{}?api-version={}",
        org_url.trim_end_matches('/'),
        segment(project),
        segment(approval_id),
        segment(api_version),
    )
}

/// The status of a YAML approval, as Approvals - Get answers.
#[derive(Deserialize, Debug)]
pub struct PipelineApproval {
    /// `pending`, `approved`, `rejected`, `canceled`…
    #[serde(default)]
    pub status: String,
}

/// Approvals - Query (YAML): the approval, if it is assigned to `identity`
/// (`userIds`), directly or through a group.
pub fn yaml_assigned_url(
    org_url: &str,
    project: &str,
    approval_id: &str,
    identity: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/{}/_apis/pipelines/approvals?approvalIds={}&userIds={}&api-version={}",
        org_url.trim_end_matches('/'),
        segment(project),
        segment(approval_id),
        segment(identity),
        segment(api_version),
    )
}

/// The part of `connectionData` that names the token's owner.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionData {
    /// The identity the requests are made as.
    pub authenticated_user: Identity,
}

/// An Azure DevOps identity as the APIs give it.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Its GUID.
    pub id: String,
    /// Its display name, when given.
    #[serde(default, alias = "providerDisplayName")]
    pub display_name: Option<String>,
}

/// The answer of Approvals - List (classic) or Approvals - Query (YAML): the
/// approvals, each with its id, wrapped in `value` or as a bare array.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum ApprovalList {
    /// `{"count": n, "value": [...]}`, as Azure DevOps wraps lists.
    Wrapped {
        /// The approvals.
        #[serde(default)]
        value: Vec<ListedApproval>,
    },
    /// A bare array, as the REST specification describes Approvals - Query.
    Bare(Vec<ListedApproval>),
}

/// One approval of an [`ApprovalList`].
#[derive(Deserialize, Debug)]
pub struct ListedApproval {
    /// Its id (a number).
    pub id: serde_json::Value,
}

impl ApprovalList {
    /// Whether the list holds the approval with this id.
    pub fn holds(&self, approval_id: &str) -> bool {
        let (Self::Wrapped { value: listed } | Self::Bare(listed)) = self;
        listed.iter().any(|a| match &a.id {
            serde_json::Value::Number(n) => n.to_string() == approval_id,
            serde_json::Value::String(s) => s.eq_ignore_ascii_case(approval_id),
            _ => false,
        })
    }
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
    fn the_approval_urls_follow_the_documented_shapes() {
        assert_eq!(
            approval_url(
                "https://vsrm.dev.azure.com/contoso/",
                "Fabrikam Web",
                "42",
                "7.1"
            ),
            "https://vsrm.dev.azure.com/contoso/Fabrikam%20Web/_apis/release/approvals/42?api-version=7.1"
        );
        assert_eq!(
            pipeline_approvals_url("https://dev.azure.com/contoso", "Fabrikam", "7.1"),
            "https://dev.azure.com/contoso/Fabrikam/_apis/pipelines/approvals?api-version=7.1"
        );
        assert_eq!(
            assigned_approvals_url(
                "https://vsrm.dev.azure.com/contoso",
                "Fabrikam",
                "1",
                "4247c988",
                "7.1"
            ),
            "https://vsrm.dev.azure.com/contoso/Fabrikam/_apis/release/approvals?assignedToFilter=4247c988&includeMyGroupApprovals=true&releaseIdsFilter=1&statusFilter=pending&api-version=7.1"
        );
        assert_eq!(
            connection_data_url("https://dev.azure.com/contoso/"),
            "https://dev.azure.com/contoso/_apis/connectionData"
        );
    }
}
