//! Azure DevOps: callbacks to checks and agentless jobs, service-hook payloads,
//! whose approvals are deploy-gate's, and write-back of decisions to approvals (the calls are in `docs/azure-devops.md`, with Microsoft's documentation cited where each is made).

pub mod approvals;
pub mod assignment;
pub mod callback;
pub mod client;
pub mod graph;
pub mod hooks;

pub use client::AzureClient;
