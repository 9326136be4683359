//! State shared by every handler, and the tags that group operations in the OpenAPI document.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::poll_cache::PollCache;
use crate::{
    clock::Clock, config::Secret, metrics::Metrics, policies::Policies, store::Store,
    token::TokenKeys,
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
    /// Approvals a release needs (`None`: all approvers).
    pub required_approvals: Option<u32>,
    /// Time from creation until an undecided release expires.
    pub approval_deadline: Duration,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Notified when a job is enqueued, to wake the worker.
    pub wake_worker: Arc<Notify>,
    /// Approval policies and groups.
    pub policies: Arc<Policies>,
    /// The time.
    pub clock: Clock,
    /// Answers to gate polls, kept while the database is unchanged.
    pub poll_cache: PollCache,
}
