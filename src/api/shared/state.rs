//! State shared by every handler, and the tags that group operations in the OpenAPI document.

use std::sync::Arc;

use super::poll_cache::PollCache;
use crate::{
    azure::assignment::Assignments, clock::Clock, domain::callback::CallbackHosts, flow::Flow,
    metrics::Metrics, secret::Secret, store::Store, token::TokenKeys,
};

/// Operation groups in the OpenAPI document.
#[derive(poem_openapi::Tags)]
pub enum ApiTags {
    /// Releases awaiting approval: create and poll.
    Release,
    /// Approvers' decisions.
    Approval,
    /// The release board: recent releases and each one's timeline.
    Board,
    /// Azure DevOps service hooks.
    Hooks,
    /// Probes.
    Health,
}

/// State shared by all handlers.
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Approval token keys.
    pub tokens: TokenKeys,
    /// API keys guarding `/release`, `/releases` and `/hooks/*` (any one is accepted); empty leaves them open.
    pub api_keys: Vec<Secret>,
    /// Header secret service hooks must send, if set.
    pub hook_secret: Option<Secret>,
    /// Hosts a callback-mode `PlanUrl` may name (`DEPLOY_GATE_CALLBACK_HOSTS`).
    pub callback_hosts: CallbackHosts,
    /// Whether `POST /release` may name its approvers (`DEPLOY_GATE_REQUEST_APPROVERS`).
    pub request_approvers: bool,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The release lifecycle: every state change goes through it.
    pub flow: Arc<Flow>,
    /// The time.
    pub clock: Clock,
    /// Answers to gate polls, kept while the database is unchanged.
    pub poll_cache: PollCache,
    /// Which Azure DevOps approvals are deploy-gate's to decide.
    pub assignments: Assignments,
}
