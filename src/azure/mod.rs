//! Azure DevOps: callbacks to checks and agentless jobs, service-hook payloads,
//! whose approvals are deploy-gate's, and write-back of decisions to approvals (contracts in `shared/azure-devops.md`).

pub mod approvals;
pub mod assignment;
pub mod callback;
pub mod client;
pub mod hooks;

pub use client::AzureClient;
