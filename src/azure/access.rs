//! Azure DevOps as configured, as one value: what write-back jobs, service
//! hooks and approvers look-ups use, built from the settings in one place so
//! that a configuration reload replaces it whole (URLs, API version,
//! credential and the members cached with them).

use std::time::Duration;

use anyhow::Context as _;

use super::{
    AzureClient, Organization, approvers_source::AzureApproverSource, assignment::Assignments,
    graph::Directory,
};
use crate::{clock::Clock, settings::AzureDevOps};

/// Write-back target, the approvals deploy-gate may decide and the approvers
/// Azure DevOps names, from one configuration.
pub struct AzureAccess {
    /// Where decisions are written back and as whom; `None` when not configured.
    pub devops: Option<Organization>,
    /// Which approvals are deploy-gate's (who it is is asked once per access).
    pub assignments: Assignments,
    /// Groups, teams and assigned approvers as approvers (`azure_approvers` of a
    /// policy); `None` when Azure DevOps is not configured.
    pub approvers: Option<AzureApproverSource>,
}

impl AzureAccess {
    /// The access `devops` configures, calling Azure DevOps (and Entra ID) through
    /// `client`; one credential, so one token cache, for hooks, jobs and look-ups,
    /// whose members are reused for `members_cache` on `clock`.
    pub fn new(
        client: AzureClient,
        devops: Option<&AzureDevOps>,
        members_cache: Duration,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let devops = devops
            .map(|settings| Organization::new(settings, &client))
            .transpose()
            .context("DEPLOY_GATE_AZURE_*: the Entra ID credential")?;
        Ok(Self {
            assignments: Assignments::new(client.clone(), devops.clone()),
            approvers: devops.clone().map(|organization| {
                AzureApproverSource::new(Directory::new(client, organization), members_cache, clock)
            }),
            devops,
        })
    }
}
