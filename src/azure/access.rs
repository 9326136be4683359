//! Azure DevOps as configured, as one value: what write-back jobs and service
//! hooks use, built from the settings in one place so that a configuration
//! reload replaces it whole (URLs, API version and credential together).

use anyhow::Context as _;

use super::{AzureClient, Organization, assignment::Assignments};
use crate::settings::AzureDevOps;

/// Write-back target and the approvals deploy-gate may decide, from one configuration.
pub struct AzureAccess {
    /// Where decisions are written back and as whom; `None` when not configured.
    pub devops: Option<Organization>,
    /// Which approvals are deploy-gate's (who it is is asked once per access).
    pub assignments: Assignments,
}

impl AzureAccess {
    /// The access `devops` configures, calling Azure DevOps (and Entra ID) through
    /// `client`; one credential, so one token cache, for hooks and jobs.
    pub fn new(client: AzureClient, devops: Option<&AzureDevOps>) -> anyhow::Result<Self> {
        let devops = devops
            .map(|settings| Organization::new(settings, &client))
            .transpose()
            .context("DEPLOY_GATE_AZURE_*: the Entra ID credential")?;
        Ok(Self {
            assignments: Assignments::new(client, devops.clone()),
            devops,
        })
    }
}
