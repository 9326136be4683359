//! Azure DevOps as configured, as one value: what write-back jobs and service
//! hooks use, built from the settings in one place so that a configuration
//! reload replaces it whole (URLs, API version and credentials together).

use super::{AzureClient, assignment::Assignments};
use crate::settings::AzureDevOps;

/// Write-back target and the approvals deploy-gate may decide, from one configuration.
pub struct AzureAccess {
    /// Where and how decisions are written back; `None` when not configured.
    pub devops: Option<AzureDevOps>,
    /// Which approvals are deploy-gate's (who it is is asked once per access).
    pub assignments: Assignments,
}

impl AzureAccess {
    /// The access `devops` configures, calling Azure DevOps through `client`.
    pub fn new(client: AzureClient, devops: Option<AzureDevOps>) -> Self {
        Self {
            assignments: Assignments::new(client, devops.clone()),
            devops,
        }
    }
}
