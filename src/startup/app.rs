//! `App::build` wires configuration, database, worker and routes; `run` serves
//! until a shutdown signal, then lets requests and jobs in flight finish.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::Utc;
use poem::{
    EndpointExt, Response,
    endpoint::BoxEndpoint,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    reload::{Load, Reloadable, Reloader, Snapshot, contents},
    serve::serve,
};
use crate::{
    api::{self, AppState, PollCache},
    approvers::ApproverSource,
    azure::AzureClient,
    clock::Clock,
    domain::policy::Defaults,
    flow::Flow,
    jobs::{JobContext, Retention, Worker},
    metrics::Metrics,
    oidc::Provider,
    secret::Secret,
    settings::{Config, ConnectionSettings, MailTarget},
    store::{self, Store},
    token::TokenKeys,
};

/// How long one request to Azure DevOps may take.
const AZURE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one post to a channel webhook (Teams, Slack, generic) may take.
const CHANNEL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long shutdown waits for requests in flight.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);

/// A built application, bound to its port, not yet serving.
pub struct App {
    acceptor: TcpAcceptor,
    connections: ConnectionSettings,
    address: SocketAddr,
    endpoint: BoxEndpoint<'static, Response>,
    worker: Worker,
    retention: Retention,
    store: Arc<dyn Store>,
    /// The values a configuration reload replaces, and the configuration in force.
    reloadable: Reloadable,
    /// The client Azure DevOps is called with, for the access a reload builds.
    azure_client: AzureClient,
    /// The clock that access times its cached members on.
    clock: Clock,
    config: Config,
    /// What the secret files held as the configuration was read.
    seen: Snapshot,
    /// How to read the configuration again; `None` turns reloading off.
    load: Option<Load>,
    /// Where a new user goes next, said once the service listens.
    next_steps: NextSteps,
    /// Stops following the database's changes when the app is dropped.
    _following: DropGuard,
}

/// What the start-up log points a new user to.
#[derive(Clone, Debug)]
struct NextSteps {
    home: String,
    docs: String,
    board: String,
    mail: String,
}

impl NextSteps {
    fn new(public_url: &str, mail: &MailTarget) -> Self {
        let base = public_url.trim_end_matches('/');
        Self {
            home: format!("{base}/"),
            docs: format!("{base}/docs"),
            board: format!("{base}/releases"),
            mail: match mail {
                MailTarget::Directory(dir) => format!(
                    "written as .eml files to {}, previewed at {base}/mail",
                    dir.display()
                ),
                MailTarget::Smtp(_) => "sent to the SMTP server".to_owned(),
            },
        }
    }
}

impl App {
    /// Opens and migrates the database, binds the listen address (port 0 picks a
    /// free one), and prepares routes and the worker.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// [`App::build`] on a clock of the caller's, which tests move forward.
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<App> {
        // As close to reading the configuration as can be: a change after it is reloaded.
        let seen = contents(&config.secret_files());
        let store = store::open(&config.database)
            .await
            .context("opening the database")?;
        store.migrate().await.context("migrating the database")?;
        // Until the app is dropped (after `run`, or when a test aborts it).
        let following = CancellationToken::new();
        store.follow_changes(following.clone());
        let azure_client = AzureClient::new(AZURE_TIMEOUT, &config.azure_ca_certificates)?;
        let reloadable = Reloadable::build(&config, store.as_ref(), &azure_client, &clock).await?;
        log_api_keys(&config.api_keys);
        let acceptor = TcpListener::bind(config.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no socket address")?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        let next_steps = NextSteps::new(&public_url, &config.mail);
        let wake = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::new());
        let defaults = Defaults {
            required_approvals: config.required_approvals,
            approval_deadline: config.approval_deadline,
        };
        let flow = Arc::new(Flow::new(
            store.clone(),
            wake.clone(),
            clock.clone(),
            metrics.clone(),
            reloadable.policies.clone(),
            defaults,
        ));
        let recorded = flow
            .record_unrecorded_conclusions()
            .await
            .context("recording the rounds concluded before this version")?;
        if recorded > 0 {
            tracing::info!(
                rounds = recorded,
                "recorded when earlier rounds were decided"
            );
        }
        let state = Arc::new(AppState {
            // Gate polls and approval views read through a cache that every
            // commit, of this replica or another, leaves behind; the
            // lifecycle and the jobs read the database itself.
            store: Arc::new(store::Cached::new(store.clone())),
            tokens: reloadable.tokens.clone(),
            api_keys: reloadable.api_keys.clone(),
            hook_secret: reloadable.hook_secret.clone(),
            callback_hosts: config.callback_hosts.clone(),
            request_approvers: config.request_approvers,
            metrics: metrics.clone(),
            flow: flow.clone(),
            clock: clock.clone(),
            poll_cache: PollCache::default(),
            azure: reloadable.azure.clone(),
            own_origin: api::origin_of(&public_url),
            // Emails go into this folder until a restart: a reload keeps it.
            mailbox: reloadable.mailer.get().mailbox(),
            sign_in: config.sign_in.clone().map(Provider::new).transpose()?,
            public_url: public_url.clone(),
        });
        let retention = Retention::new(flow.clone(), config.retention);
        let ctx = Arc::new(JobContext {
            store: store.clone(),
            flow,
            approvers: ApproverSource::new(config.approvers_url.clone(), config.approvers.clone())?,
            mailer: reloadable.mailer.clone(),
            tokens: reloadable.tokens.clone(),
            public_url,
            jobs: config.jobs.clone(),
            azure: azure_client.clone(),
            azure_devops: reloadable.azure.clone(),
            metrics,
            policies: reloadable.policies.clone(),
            http: reqwest::Client::builder()
                .timeout(CHANNEL_TIMEOUT)
                .user_agent(concat!("deploy-gate/", env!("CARGO_PKG_VERSION")))
                .build()?,
            clock: clock.clone(),
        });
        let body_limits = api::BodyLimits {
            max_bytes: config.max_body_bytes,
            timeout: config.connections.body_timeout,
        };
        let endpoint = api::routes(state, body_limits, config.rate_limits.clone())
            .map_to_response()
            .boxed();
        Ok(App {
            acceptor,
            connections: config.connections,
            address,
            endpoint,
            worker: Worker::new(ctx, wake),
            retention,
            store,
            reloadable,
            azure_client,
            clock,
            config,
            seen,
            load: None,
            next_steps,
            _following: following.drop_guard(),
        })
    }

    /// Reloads the secrets on `SIGHUP` and when a secret file changes, reading the
    /// configuration again with `load` (see `docs/secrets.md`, *Reload*).
    pub fn reloading(mut self, load: Load) -> Self {
        self.load = Some(load);
        self
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The job worker, e.g. to drain the queue in tests.
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// The retention task's work, e.g. to prune a batch in tests.
    pub fn retention(&self) -> Retention {
        self.retention.clone()
    }

    /// The database.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The routes with all their middleware, as [`App::run`] serves them; the fuzz
    /// targets call it in-process, without a socket.
    pub fn endpoint(&self) -> &BoxEndpoint<'static, Response> {
        &self.endpoint
    }

    /// Serves requests and runs jobs until `shutdown` resolves; then stops
    /// accepting, finishes requests (up to 30 s) and the jobs in hand.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "deploy-gate listening");
        let next = &self.next_steps;
        tracing::info!(home = %next.home, docs = %next.docs, board = %next.board,
            approval_emails = %next.mail, "open in a browser: home, docs (the API), board (releases)");
        let stop_workers = CancellationToken::new();
        let jobs = self
            .worker
            .start(stop_workers.clone())
            .context("starting the job thread")?;
        let pruner = self.retention.start(stop_workers.clone());
        let reloader = self.load.map(|load| {
            Reloader {
                load,
                live: self.reloadable,
                store: self.store.clone(),
                azure_client: self.azure_client,
                clock: self.clock,
                started: self.config.clone(),
                current: self.config,
                seen: self.seen,
            }
            .start(stop_workers.clone())
        });
        serve(
            self.acceptor,
            self.endpoint,
            self.connections,
            shutdown,
            GRACEFUL_TIMEOUT,
        )
        .await;
        stop_workers.cancel();
        jobs.finished().await;
        if let Some(reloader) = reloader {
            let _ = reloader.await;
        }
        if let Some(pruner) = pruner {
            let _ = pruner.await;
        }
        tracing::info!("deploy-gate stopped");
        Ok(())
    }
}

/// Logs the API keys in force by fingerprint, or warns that none guards the API.
pub(super) fn log_api_keys(api_keys: &[Secret]) {
    if api_keys.is_empty() {
        tracing::warn!(
            "DEPLOY_GATE_API_KEY is not set: /release is open to anyone who can reach it"
        );
    } else {
        let fingerprints: Vec<String> = api_keys.iter().map(Secret::fingerprint).collect();
        tracing::info!(api_keys = ?fingerprints, "API keys accepted");
    }
}

/// The configured keys (the first signs), and after them the generated one kept
/// in the database, if any, which keeps verifying the links it signed until
/// `deploy-gate forget-generated-token-secret` removes it. Without configured
/// keys, the generated one signs (it is made on first start).
pub(super) async fn token_keys(config: &Config, store: &dyn Store) -> anyhow::Result<TokenKeys> {
    let Some((signing, others)) = config.token_secrets.split_first() else {
        let generated = generated_token_secret(store).await?;
        let keys = TokenKeys::new(generated.as_bytes());
        tracing::info!(token_key_ids = ?keys.key_ids(), "token secret kept in the database");
        return Ok(keys);
    };
    let mut verifying: Vec<&[u8]> = others.iter().map(|k| k.expose().as_bytes()).collect();
    let generated = store
        .stored_token_secret()
        .await
        .context("loading the generated token secret")?;
    if let Some(generated) = &generated {
        verifying.push(generated.as_bytes());
    }
    let keys = TokenKeys::rotating(signing.expose().as_bytes(), &verifying);
    tracing::info!(
        token_key_ids = ?keys.key_ids(),
        generated_key_kept = generated.is_some(),
        "token keys from the configuration: the first signs, all verify"
    );
    Ok(keys)
}

/// Removes the generated token secret from the database, so that the links it
/// signed stop verifying at the next start; `false` when none was kept. Refused
/// while no token secret is configured: the service would then generate a new
/// one at its next start, and every pending link would break.
pub async fn forget_generated_token_secret(config: &Config) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !config.token_secrets.is_empty(),
        "DEPLOY_GATE_TOKEN_SECRET is not set: the generated token secret is the one in use, \
         and without it every pending approval link would stop working; set \
         DEPLOY_GATE_TOKEN_SECRET first (see docs/secrets.md)"
    );
    let store = store::open(&config.database)
        .await
        .context("opening the database")?;
    store.migrate().await.context("migrating the database")?;
    store
        .forget_token_secret()
        .await
        .context("removing the generated token secret")
}

/// The secret kept in the database, generated and stored on first start.
async fn generated_token_secret(store: &dyn Store) -> anyhow::Result<String> {
    let candidate = Secret::generate();
    let secret = store
        .token_secret(candidate.expose(), Utc::now())
        .await
        .context("loading the token secret")?;
    Ok(secret)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing requests and jobs in flight");
}
