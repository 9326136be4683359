//! Azure DevOps: callbacks to checks and agentless jobs, service-hook payloads,
//! whose approvals are deploy-gate's, write-back of decisions to approvals, and
//! approvers from groups, teams and assigned approvers (`graph`, `approvers_source`) (the calls are in `docs/azure-devops.md`, with Microsoft's documentation cited where each is made).

pub mod access;
pub mod approvals;
pub mod approvers_source;
pub mod assignment;
pub mod auth;
pub mod callback;
pub mod client;
pub mod graph;
pub mod hooks;

pub use auth::{AzureAuth, Organization};
pub use client::AzureClient;
