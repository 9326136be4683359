//! Reloading without a restart: on `SIGHUP`, and when the content of a secret
//! file changes (read every [`FILE_CHECK_INTERVAL`], which also catches
//! Kubernetes swapping the `..data` symlink of a mounted Secret), the
//! configuration is read again exactly as at start; only when all of it is
//! valid, and every value built from it could be built, are the API keys, token
//! keys, hook secret, mailer, Azure DevOps access and approval policies swapped
//! in. Settings read only at start keep their values, and the log names them.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::app::{log_api_keys, token_keys};
use crate::{
    azure::{AzureClient, access::AzureAccess},
    clock::Clock,
    domain::policy::Policies,
    live::Live,
    notify::{EmailTemplates, Mailer},
    secret::Secret,
    settings::{Config, MailTarget},
    store::Store,
    token::TokenKeys,
};

/// How often the secret files are read and compared with what they held.
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Reads the configuration again, as `main` did at start (TOML file, process
/// environment, secret files).
pub type Load = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// The settings a reload puts in force, besides the mail settings ([`MAIL`]), every
/// `azure_*` setting but the CA file (all of them make the one [`AzureAccess`]) and the TOML file's
/// policies and groups, which every reload replaces.
const RELOADED: &[&str] = &["api_key", "token_secret", "hook_secret"];

/// The mail settings: reloaded while emails keep going the way they went at start
/// (SMTP stays SMTP, possibly another server; the mail folder, which `/mail`
/// previews, stays that folder). A switch between the two needs a restart.
const MAIL: &[&str] = &[
    "smtp_url",
    "smtp_allow_plaintext",
    "mail_dir",
    "mail_from",
    "mail_reply_to",
    "mail_template_dir",
];

/// Settings the service does not read: the client commands' `url`.
const NOT_SERVED: &[&str] = &["url"];

/// The values a reload replaces, read by requests and jobs when they use them.
#[derive(Clone)]
pub(crate) struct Reloadable {
    /// API keys guarding `/release`, `/releases` and `/hooks/*`.
    pub api_keys: Live<Vec<Secret>>,
    /// Approval token keys.
    pub tokens: Live<TokenKeys>,
    /// The header secret service hooks must send, if set.
    pub hook_secret: Live<Option<Secret>>,
    /// Where emails go (SMTP server and credentials, sender, templates).
    pub mailer: Live<Mailer>,
    /// Azure DevOps URLs and credentials for write-back and look-ups.
    pub azure: Live<AzureAccess>,
    /// Approval policies, with their chat webhook URLs.
    pub policies: Live<Policies>,
}

impl Reloadable {
    /// The values `config` sets, as the start puts them in force.
    pub(crate) async fn build(
        config: &Config,
        store: &dyn Store,
        azure: &AzureClient,
        clock: &Clock,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            api_keys: Live::new(config.api_keys.clone()),
            tokens: Live::new(token_keys(config, store).await?),
            hook_secret: Live::new(config.hook_secret.clone()),
            mailer: Live::new(mailer(config)?),
            azure: Live::new(azure_access(config, azure, clock)?),
            policies: Live::new(config.policies.clone()),
        })
    }
}

/// Refuses a configuration whose policies require a sign-in when the service
/// started without an OpenID Connect provider: the provider starts only with a
/// restart, and without it such approvals could not be decided at all.
fn sign_in_without_provider(started: &Config, new: &Config) -> anyhow::Result<()> {
    if started.sign_in.is_none() && new.policies.policies().iter().any(|p| p.sign_in) {
        anyhow::bail!(
            "a policy now sets require_sign_in, but the OpenID Connect provider \
             (DEPLOY_GATE_OIDC_*) starts only with a restart: restart to apply it"
        );
    }
    Ok(())
}

/// The Azure DevOps access `config` sets up, calling through `client`.
fn azure_access(
    config: &Config,
    client: &AzureClient,
    clock: &Clock,
) -> anyhow::Result<AzureAccess> {
    AzureAccess::new(
        client.clone(),
        config.azure_devops.as_ref(),
        config.azure_approvers_cache,
        clock.clone(),
    )
}

/// The mailer `config` sets up: its SMTP server or mail folder (created if
/// needed), sender and templates.
pub(crate) fn mailer(config: &Config) -> anyhow::Result<Mailer> {
    Mailer::new(
        &config.mail,
        config.mail_sender.clone(),
        EmailTemplates::load(config.mail_template_dir.as_deref())
            .context("DEPLOY_GATE_MAIL_TEMPLATE_DIR")?,
    )
}

/// Watches for `SIGHUP` and changed secret files, and reloads.
pub(crate) struct Reloader {
    pub load: Load,
    pub live: Reloadable,
    pub store: Arc<dyn Store>,
    /// The client a new [`AzureAccess`] calls Azure DevOps with.
    pub azure_client: AzureClient,
    /// The clock a new [`AzureAccess`] times its cached members on.
    pub clock: Clock,
    /// The configuration the service started with: what settings read only at
    /// start still hold.
    pub started: Config,
    /// The configuration in force.
    pub current: Config,
    /// What the secret files held when it was read (taken as soon as it was).
    pub seen: Snapshot,
}

/// What each secret file holds (`None`: unreadable).
pub(crate) type Snapshot = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// A new configuration and the values built from it, ready to be swapped in.
struct Next {
    config: Config,
    tokens: TokenKeys,
    /// `None` where the mail settings need a restart.
    mailer: Option<Mailer>,
    /// `None` where the Azure DevOps settings are unchanged (the identity
    /// deploy-gate asked Azure for stays known).
    azure: Option<AzureAccess>,
    /// The changed settings that keep their old values until a restart.
    restart: Vec<&'static str>,
}

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

    /// Reads and checks the whole configuration and builds what it sets, then
    /// swaps it all in; on any error keeps the values in force and logs why.
    async fn reload(&mut self, cause: &str) {
        match self.prepare().await {
            Ok(next) => self.apply(cause, next),
            Err(error) => {
                tracing::warn!(cause, error = %without_values(&error),
                    "configuration reload failed: keeping the settings in force");
            }
        }
    }

    /// The new configuration and every value built from it; nothing is in force yet.
    async fn prepare(&self) -> anyhow::Result<Next> {
        let config = (self.load)()?;
        sign_in_without_provider(&self.started, &config)?;
        let tokens = token_keys(&config, self.store.as_ref()).await?;
        let mut restart = needs_restart(&self.started, &config);
        let mailer = if same_way_of_mailing(&self.started.mail, &config.mail) {
            Some(mailer(&config)?)
        } else {
            let changed = self.started.changed_settings(&config);
            restart.extend(changed.into_iter().filter(|name| MAIL.contains(name)));
            None
        };
        let azure = if config.azure_devops == self.current.azure_devops
            && config.azure_approvers_cache == self.current.azure_approvers_cache
        {
            None
        } else {
            Some(azure_access(&config, &self.azure_client, &self.clock)?)
        };
        Ok(Next {
            config,
            tokens,
            mailer,
            azure,
            restart,
        })
    }

    /// Puts `next` in force for every request and job at once.
    fn apply(&mut self, cause: &str, next: Next) {
        let Next {
            config,
            tokens,
            mailer,
            azure,
            restart,
        } = next;
        if !restart.is_empty() {
            tracing::warn!(
                settings = ?restart,
                "changed settings that only a restart applies; they keep their old values"
            );
        }
        let changed: Vec<&str> = self
            .current
            .changed_settings(&config)
            .into_iter()
            .filter(|name| reloads(name) && !restart.contains(name))
            .collect();
        log_api_keys(&config.api_keys);
        self.live.api_keys.set(config.api_keys.clone());
        self.live.tokens.set(tokens);
        self.live.hook_secret.set(config.hook_secret.clone());
        self.live.policies.set(config.policies.clone());
        if let Some(mailer) = mailer {
            self.live.mailer.set(mailer);
        }
        if let Some(azure) = azure {
            self.live.azure.set(azure);
        }
        tracing::info!(cause, changed = ?changed, "configuration reloaded");
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

/// The settings changed since the start that only a restart applies, the mail
/// settings aside (see [`same_way_of_mailing`]).
fn needs_restart(started: &Config, new: &Config) -> Vec<&'static str> {
    started
        .changed_settings(new)
        .into_iter()
        .filter(|name| !reloads(name) && !NOT_SERVED.contains(name))
        .collect()
}

/// Whether a reload can put the setting `name` (its TOML key) in force.
fn reloads(name: &str) -> bool {
    // The CA file is read into the one HTTP client job callbacks share as well.
    RELOADED.contains(&name)
        || MAIL.contains(&name)
        || (name.starts_with("azure_") && name != "azure_ca_file")
}

/// Whether emails would go the way they went at start: to an SMTP server (any),
/// or into the same mail folder.
fn same_way_of_mailing(started: &MailTarget, new: &MailTarget) -> bool {
    match (started, new) {
        (MailTarget::Smtp(_), MailTarget::Smtp(_)) => true,
        (MailTarget::Directory(was), MailTarget::Directory(is)) => was == is,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn config(toml_text: &str) -> Config {
        let settings = Settings::from_toml_str(toml_text, std::path::Path::new(".")).unwrap();
        Config::from_settings(settings).unwrap()
    }

    #[test]
    fn only_settings_read_at_start_alone_are_named_as_needing_a_restart() {
        let started = config("smtp_url = \"smtp://127.0.0.1:2525\"\n");
        let changed = config(
            "smtp_url = \"smtp://127.0.0.1:2526\"\nmail_from = \"gate@example.com\"\n\
             hook_secret = \"new-hook-secret\"\nazure_devops_url = \"https://vsrm.dev.azure.com/c\"\n\
             azure_devops_pat = \"pat\"\napi_key = \"key-0123456789abcdef0123456\"\n\
             workers = 2\napproval_deadline = \"1h\"\nurl = \"https://gate.example.com\"\n",
        );
        assert_eq!(
            needs_restart(&started, &changed),
            ["approval_deadline", "workers"]
        );
        assert!(same_way_of_mailing(&started.mail, &changed.mail));
    }

    #[test]
    fn a_policy_that_starts_requiring_sign_in_waits_for_the_provider_a_restart_starts() {
        let without = config("[[policies]]\nteam_project = \"Shop\"\n");
        let requiring = config(
            "oidc_issuer = \"https://login.example.com\"\noidc_client_id = \"gate\"\n\
             [[policies]]\nteam_project = \"Shop\"\nrequire_sign_in = true\n",
        );
        let error = sign_in_without_provider(&without, &requiring).unwrap_err();
        assert!(error.to_string().contains("require_sign_in"), "{error}");
        assert!(sign_in_without_provider(&requiring, &requiring).is_ok());
        assert!(sign_in_without_provider(&requiring, &without).is_ok());
        assert!(sign_in_without_provider(&without, &without).is_ok());
    }

    #[test]
    fn switching_between_smtp_and_the_mail_folder_needs_a_restart() {
        let smtp = config("smtp_url = \"smtp://127.0.0.1:2525\"\n");
        let folder = config("mail_dir = \"mail\"\n");
        let other_folder = config("mail_dir = \"elsewhere\"\n");
        assert!(!same_way_of_mailing(&smtp.mail, &folder.mail));
        assert!(!same_way_of_mailing(&folder.mail, &smtp.mail));
        assert!(!same_way_of_mailing(&folder.mail, &other_folder.mail));
        assert!(same_way_of_mailing(&folder.mail, &folder.mail));
    }
}
