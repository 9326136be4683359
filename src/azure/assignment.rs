//! Whether an Azure DevOps approval is deploy-gate's to decide: Azure accepts a
//! decision only from an approval's assigned approver, so deploy-gate acts for
//! the approvals assigned to its own identity (the write-back token's owner),
//! directly or through a group.

use tokio::sync::OnceCell;

use super::{
    AzureClient, Organization,
    approvals::{
        ApprovalList, ConnectionData, Identity, assigned_approvals_url, connection_data_url,
        yaml_assigned_url,
    },
    client::Auth,
};

/// Who an approval is assigned to, as far as deploy-gate can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// deploy-gate's identity may decide it (or, without write-back, nobody
    /// can tell otherwise).
    Ours,
    /// Someone else's: named for the answer to the service hook.
    Theirs(String),
}

/// The approval an event raised, and whom the event says it is for.
pub struct RaisedApproval<'a> {
    /// The project (name or id).
    pub project: &'a str,
    /// The classic release id, or the YAML run.
    pub release_id: &'a str,
    /// Azure's id of the approval.
    pub approval_id: &'a str,
    /// The approver the event names (display name or id), if any.
    pub approver: Option<&'a str>,
    /// For YAML approvals: the identities of its steps' assigned approvers.
    pub step_approvers: Option<&'a [String]>,
}

/// Asks Azure DevOps who deploy-gate is (once) and which approvals it may decide.
pub struct Assignments {
    client: AzureClient,
    azure: Option<Organization>,
    identity: OnceCell<Identity>,
}

impl Assignments {
    /// Over `azure`, the write-back configuration; without one every approval
    /// counts as deploy-gate's, and nothing is asked.
    pub fn new(client: AzureClient, azure: Option<Organization>) -> Self {
        Self {
            client,
            azure,
            identity: OnceCell::new(),
        }
    }

    /// Whether the classic approval is assigned to deploy-gate's identity,
    /// directly or through a group (Approvals - List with `assignedToFilter`
    /// and `includeMyGroupApprovals`).
    pub async fn classic(&self, raised: &RaisedApproval<'_>) -> anyhow::Result<Assignment> {
        let Some(azure) = &self.azure else {
            return Ok(Assignment::Ours);
        };
        let identity = self.identity(azure).await?;
        let url = assigned_approvals_url(
            azure.settings.url.as_str(),
            raised.project,
            raised.release_id,
            &identity.id,
            &azure.settings.api_version,
        );
        self.listed(azure, &url, raised, identity).await
    }

    /// Whether the YAML approval is assigned to deploy-gate's identity: one of
    /// its steps names it, or Approvals - Query with `userIds` (directly or
    /// through a group) holds it.
    pub async fn yaml(&self, raised: &RaisedApproval<'_>) -> anyhow::Result<Assignment> {
        let Some(azure) = &self.azure else {
            return Ok(Assignment::Ours);
        };
        let identity = self.identity(azure).await?;
        let named = raised
            .step_approvers
            .is_some_and(|steps| steps.iter().any(|s| s.eq_ignore_ascii_case(&identity.id)));
        if named {
            return Ok(Assignment::Ours);
        }
        let url = yaml_assigned_url(
            azure.settings.org_url.as_str(),
            raised.project,
            raised.approval_id,
            &identity.id,
            &azure.settings.api_version,
        );
        self.listed(azure, &url, raised, identity).await
    }

    /// Ours when the list of approvals at `url` (Approvals - List or Query,
    /// filtered to deploy-gate's identity) holds the raised one.
    async fn listed(
        &self,
        azure: &Organization,
        url: &str,
        raised: &RaisedApproval<'_>,
        identity: &Identity,
    ) -> anyhow::Result<Assignment> {
        let list: ApprovalList = self.client.get_json(url, Auth::Own(&azure.auth)).await?;
        Ok(if list.holds(raised.approval_id) {
            Assignment::Ours
        } else {
            Assignment::Theirs(theirs(raised, identity))
        })
    }

    /// Who the write-back token belongs to (a harmless read), or `None`
    /// without write-back.
    pub async fn whoami(&self) -> anyhow::Result<Option<String>> {
        let Some(azure) = &self.azure else {
            return Ok(None);
        };
        let identity = self.identity(azure).await?;
        Ok(Some(
            identity
                .display_name
                .clone()
                .unwrap_or_else(|| identity.id.clone()),
        ))
    }

    /// The write-back token's owner, asked once (`_apis/connectionData`).
    async fn identity(&self, azure: &Organization) -> anyhow::Result<&Identity> {
        self.identity
            .get_or_try_init(|| async {
                let url = connection_data_url(azure.settings.org_url.as_str());
                let data: ConnectionData = self
                    .client
                    .get_json(&url, Auth::Own(&azure.auth))
                    .await?;
                tracing::info!(azure.identity = %data.authenticated_user.id, "deploy-gate's Azure DevOps identity");
                Ok(data.authenticated_user)
            })
            .await
    }
}

/// `approval 17 is assigned to Chuck Reinhart, not to deploy-gate's identity (…)`.
fn theirs(raised: &RaisedApproval<'_>, identity: &Identity) -> String {
    let me = identity.display_name.as_deref().unwrap_or(&identity.id);
    match raised.approver {
        Some(approver) => format!(
            "approval {} is assigned to {approver}, not to deploy-gate's identity ({me})",
            raised.approval_id
        ),
        None => format!(
            "approval {} is not assigned to deploy-gate's identity ({me})",
            raised.approval_id
        ),
    }
}
