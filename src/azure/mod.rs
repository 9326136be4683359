//! Azure DevOps: callbacks to checks and agentless jobs, service-hook payloads,
//! and write-back of decisions to release approvals (contracts in `shared/azure-devops.md`).

pub mod approvals;
pub mod callback;
pub mod client;
pub mod hooks;

pub use client::AzureClient;
