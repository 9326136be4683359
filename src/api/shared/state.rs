//! State shared by every handler, and the tags that group operations in the OpenAPI document.

use std::sync::Arc;

use poem::Request;

use super::poll_cache::PollCache;
use crate::{
    api::http::{auth::Credentials, cross_site::refuse_cross_site, problem::Problem},
    azure::access::AzureAccess,
    clock::Clock,
    domain::callback::CallbackHosts,
    flow::Flow,
    live::Live,
    metrics::Metrics,
    notify::Mailbox,
    oidc::Provider,
    secret::Secret,
    store::Store,
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
    /// The preview of the emails written to the mail folder (only without SMTP).
    Mail,
}

/// State shared by all handlers.
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Approval token keys, replaced by a configuration reload.
    pub tokens: Live<TokenKeys>,
    /// API keys guarding `/release`, `/releases` and `/hooks/*` (any one is accepted); empty leaves them open.
    /// Replaced by a configuration reload.
    pub api_keys: Live<Vec<Secret>>,
    /// Header secret service hooks must send, if set; replaced by a configuration reload.
    pub hook_secret: Live<Option<Secret>>,
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
    /// Azure DevOps write-back, and which approvals are deploy-gate's to decide;
    /// replaced by a configuration reload.
    pub azure: Live<AzureAccess>,
    /// The origin of `DEPLOY_GATE_PUBLIC_URL`: a browser's `Origin` on this service's own pages.
    pub own_origin: Option<String>,
    /// The mail folder, when emails are written there instead of sent (`/mail` previews it).
    pub mailbox: Option<Mailbox>,
    /// The identity provider approvers sign in with, where a policy asks for it.
    pub sign_in: Option<Provider>,
    /// The base of links to this service (`DEPLOY_GATE_PUBLIC_URL`, or the bound address).
    pub public_url: String,
}

impl AppState {
    /// Guards an operation that changes state and takes the API key: refuses a request a
    /// browser sent from another site (`403`), then checks the key (`401`).
    pub fn authorize_change(
        &self,
        req: &Request,
        credentials: &Credentials,
    ) -> Result<(), Problem> {
        refuse_cross_site(req, self.own_origin.as_deref())?;
        self.api_keys.read(|keys| credentials.check(keys))
    }
}
