//! Reloading the secrets without a restart: on `SIGHUP`, and when the content of
//! a secret file changes (read every [`FILE_CHECK_INTERVAL`], which also catches
//! Kubernetes swapping the `..data` symlink of a mounted Secret), the
//! configuration is read again exactly as at start; only when all of it is
//! valid do the new API keys and token keys replace the old ones.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::app::{log_api_keys, token_keys};
use crate::{live::Live, secret::Secret, settings::Config, store::Store, token::TokenKeys};

/// How often the secret files are read and compared with what they held.
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Reads the configuration again, as `main` did at start (TOML file, process
/// environment, secret files).
pub type Load = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// The values a reload replaces, read by requests and jobs.
#[derive(Clone)]
pub(crate) struct Reloadable {
    /// API keys guarding `/release`, `/releases` and `/hooks/*`.
    pub api_keys: Live<Vec<Secret>>,
    /// Approval token keys.
    pub tokens: Live<TokenKeys>,
}

/// Watches for `SIGHUP` and changed secret files, and reloads.
pub(crate) struct Reloader {
    pub load: Load,
    pub live: Reloadable,
    pub store: Arc<dyn Store>,
    /// The configuration in force.
    pub current: Config,
    /// What the secret files held when it was read (taken as soon as it was).
    pub seen: Snapshot,
}

/// What each secret file holds (`None`: unreadable).
pub(crate) type Snapshot = BTreeMap<PathBuf, Option<Vec<u8>>>;

impl Reloader {
    /// Listens for `SIGHUP` at once, then reloads on each one or changed secret
    /// file until `stop`.
    pub(crate) fn start(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let hangup = hangup_signal();
        tokio::spawn(self.run(hangup, stop))
    }

    async fn run(mut self, mut hangup: tokio::sync::mpsc::Receiver<()>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(FILE_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let cause = tokio::select! {
                () = stop.cancelled() => return,
                Some(()) = hangup.recv() => "SIGHUP",
                _ = tick.tick() => {
                    if contents(&self.current.secret_files()) == self.seen {
                        continue;
                    }
                    "a secret file changed"
                }
            };
            // Taken before reading, so that a change while reading is seen at the next
            // check; a failed reload is not retried until something changes again.
            self.seen = contents(&self.current.secret_files());
            self.reload(cause).await;
        }
    }

    /// Reads and checks the whole configuration, then swaps in its secrets; on
    /// any error keeps the values in force and logs why.
    async fn reload(&mut self, cause: &str) {
        let config = match (self.load)() {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!(cause, error = %without_values(&error),
                    "configuration reload failed: keeping the settings in force");
                return;
            }
        };
        let tokens = match token_keys(&config, self.store.as_ref()).await {
            Ok(tokens) => tokens,
            Err(error) => {
                tracing::warn!(cause, error = %without_values(&error),
                    "configuration reload failed: keeping the settings in force");
                return;
            }
        };
        let restart = needs_restart(&self.current, &config);
        if !restart.is_empty() {
            tracing::warn!(
                settings = ?restart,
                "changed settings that only a restart applies; they keep their old values"
            );
        }
        log_api_keys(&config.api_keys);
        self.live.api_keys.set(config.api_keys.clone());
        self.live.tokens.set(tokens);
        tracing::info!(cause, "configuration reloaded: API keys and token keys");
        if config.secret_files() != self.current.secret_files() {
            self.seen = contents(&config.secret_files());
        }
        self.current = config;
    }
}

/// The receiver of `SIGHUP`s; never yields where there are none.
fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (send, receive) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    // One pending reload covers any number of signals.
                    let _ = send.try_send(());
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP: reload on signal is off");
            std::mem::forget(send);
        }
    }
    #[cfg(not(unix))]
    std::mem::forget(send);
    receive
}

/// What each file holds now.
pub(crate) fn contents(paths: &[PathBuf]) -> Snapshot {
    paths
        .iter()
        .map(|path| (path.clone(), std::fs::read(path).ok()))
        .collect()
}

/// The error's chain of messages, with a TOML syntax error reduced to its message,
/// since its excerpt of the file could show a secret.
fn without_values(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| match cause.downcast_ref::<toml::de::Error>() {
            Some(toml) => toml.message().to_owned(),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The settings, among those changed, that only a restart applies.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("bind", old.bind != new.bind),
        ("public_url", old.public_url != new.public_url),
        (
            "database_url",
            old.database.url.expose() != new.database.url.expose(),
        ),
        (
            "database_max_connections",
            old.database.max_connections != new.database.max_connections,
        ),
        ("workers", old.jobs.workers != new.jobs.workers),
        (
            "http_max_connections",
            old.connections.max_connections != new.connections.max_connections,
        ),
        ("max_body_bytes", old.max_body_bytes != new.max_body_bytes),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}
