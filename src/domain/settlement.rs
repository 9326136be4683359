//! What Azure DevOps itself decided, as its service hooks tell it: an
//! approval approved or rejected in Azure's own UI, a release abandoned, a
//! stage's deployment cancelled or rejected.

use super::{policy::Decision, release::AzureApprovalRef};

/// A decision taken in Azure DevOps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureDecision {
    /// An approval was approved or rejected in Azure.
    Approval {
        /// Which approval.
        approval: AzureApprovalRef,
        /// How.
        decision: Decision,
        /// Who decided, as Azure names them.
        by: Option<String>,
    },
    /// The release was abandoned: every open round of it ends `rejected`.
    Abandoned {
        /// Project name.
        team_project: String,
        /// Release id.
        release_id: String,
    },
    /// A stage's deployment ended cancelled or rejected: its open rounds end `rejected`.
    DeploymentStopped {
        /// Project name.
        team_project: String,
        /// Release id.
        release_id: String,
        /// The stage (environment).
        stage: String,
        /// Azure's status of the deployment, e.g. `canceled`.
        status: String,
    },
}
