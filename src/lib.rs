//! deploy-gate: decides whether a release may go to production.
//!
//! A pipeline posts a release; a worker finds its approvers and emails each a
//! signed link; approvers decide; the pipeline polls the status.

pub mod api;
pub mod approvers;
pub mod azure;
pub mod client;
pub mod clock;
pub mod domain;
pub mod flow;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod secret;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token;
