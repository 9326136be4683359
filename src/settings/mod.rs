//! Configuration: built-in defaults, overridden by a TOML file, overridden by
//! `DEPLOY_GATE_*` environment variables (or the matching command-line flags).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;

mod secret;

pub use secret::Secret;

use crate::policies::{Policies, PolicySettings};

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Settings as given by the user; every field optional. The same names serve as
/// TOML keys (`bind = "0.0.0.0:8000"`) and, upper-cased with the
/// `DEPLOY_GATE_` prefix, as environment variables.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listen address [default: 127.0.0.1:8000].
    #[arg(long, env = "DEPLOY_GATE_BIND")]
    pub bind: Option<SocketAddr>,
    /// Base of the links in emails [default: http:// + bind].
    #[arg(long, env = "DEPLOY_GATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// `sqlite://…` or `postgres://…` [default: sqlite://deploy-gate.db].
    #[arg(long, env = "DEPLOY_GATE_DATABASE_URL")]
    pub database_url: Option<Secret>,
    /// Most database connections this process keeps open [default: 10].
    #[arg(long, env = "DEPLOY_GATE_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// PostgreSQL only: the server cancels a statement running longer than this, e.g. `30s` [default: 30s].
    #[arg(long, env = "DEPLOY_GATE_DATABASE_STATEMENT_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub database_statement_timeout: Option<Duration>,
    /// Longest wait for a database connection, new or from the busy pool; `/readyz` fails after it [default: 5s].
    #[arg(long, env = "DEPLOY_GATE_DATABASE_CONNECT_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub database_connect_timeout: Option<Duration>,
    /// URL answering GET with the approvers as JSON.
    #[arg(long, env = "DEPLOY_GATE_APPROVERS_URL")]
    pub approvers_url: Option<String>,
    /// Static approvers, comma separated; used when neither the request nor the approvers URL name any.
    #[arg(long, env = "DEPLOY_GATE_APPROVERS")]
    pub approvers: Option<String>,
    /// SMTP server, e.g. `smtp://user:pass@host:587?tls=required`; unset writes `.eml` files instead.
    #[arg(long, env = "DEPLOY_GATE_SMTP_URL")]
    pub smtp_url: Option<Secret>,
    /// Folder for `.eml` files when no SMTP server is configured [default: ./mail].
    #[arg(long, env = "DEPLOY_GATE_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Sender address of approval emails [default: deploy-gate@localhost].
    #[arg(long, env = "DEPLOY_GATE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// `Reply-To` of approval emails, e.g. the platform team's address [default: none].
    #[arg(long, env = "DEPLOY_GATE_MAIL_REPLY_TO")]
    pub mail_reply_to: Option<String>,
    /// Folder whose `approval_email.html`, `approval_email.txt` or `approval_email_subject.txt`
    /// replace the built-in email templates [default: built-in only].
    #[arg(long, env = "DEPLOY_GATE_MAIL_TEMPLATE_DIR")]
    pub mail_template_dir: Option<PathBuf>,
    /// HMAC secret for approval tokens [default: generated once and kept in the database].
    #[arg(long, env = "DEPLOY_GATE_TOKEN_SECRET")]
    pub token_secret: Option<Secret>,
    /// If set, `/release` and `/hooks/*` require it (Bearer, or Basic with it as password);
    /// several keys separated by commas are all valid, to rotate keys without downtime.
    #[arg(long, env = "DEPLOY_GATE_API_KEY")]
    pub api_key: Option<Secret>,
    /// Optional shared secret that service hooks must send in the `X-Deploy-Gate-Hook-Secret` header.
    #[arg(long, env = "DEPLOY_GATE_HOOK_SECRET")]
    pub hook_secret: Option<Secret>,
    /// Release-management URL of the organization, e.g. `https://vsrm.dev.azure.com/contoso`, for write-back.
    #[arg(long, env = "DEPLOY_GATE_AZURE_DEVOPS_URL")]
    pub azure_devops_url: Option<String>,
    /// Personal access token for write-back (release read, write and manage).
    #[arg(long, env = "DEPLOY_GATE_AZURE_DEVOPS_PAT")]
    pub azure_devops_pat: Option<Secret>,
    /// Approvals a release needs; 0 means every approver [default: 0].
    #[arg(long, env = "DEPLOY_GATE_REQUIRED_APPROVALS")]
    pub required_approvals: Option<u32>,
    /// How long a release may stay undecided before it is `expired`, e.g. `48h` [default: 48h].
    #[arg(long, env = "DEPLOY_GATE_APPROVAL_DEADLINE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub approval_deadline: Option<Duration>,
    /// Requests to `/approval` one client may make per minute; 0 disables the limit [default: 60].
    #[arg(long, env = "DEPLOY_GATE_RATE_LIMIT_APPROVAL")]
    pub rate_limit_approval: Option<u32>,
    /// Failed authentications one client may make per minute before `/release` and `/hooks/*`
    /// answer it 429 for a while; 0 disables the limit [default: 20].
    #[arg(long, env = "DEPLOY_GATE_RATE_LIMIT_AUTH_FAILURES")]
    pub rate_limit_auth_failures: Option<u32>,
    /// Header a trusted proxy sets to the client's address (e.g. `X-Forwarded-For`; the
    /// leftmost address counts) for the rate limits [default: the connection's address].
    #[arg(long, env = "DEPLOY_GATE_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Largest accepted request body in bytes [default: 65536].
    #[arg(long, env = "DEPLOY_GATE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Jobs run at once by this process [default: 4].
    #[arg(long, env = "DEPLOY_GATE_WORKERS")]
    pub workers: Option<usize>,
    /// First retry delay of a failed job; doubles each attempt [default: 1s].
    #[arg(long, env = "DEPLOY_GATE_RETRY_BASE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub retry_base: Option<Duration>,
    /// Longest retry delay [default: 5m].
    #[arg(long, env = "DEPLOY_GATE_RETRY_CAP", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub retry_cap: Option<Duration>,
    /// Failed attempts after which a job is marked dead [default: 25].
    #[arg(long, env = "DEPLOY_GATE_JOB_MAX_ATTEMPTS")]
    pub job_max_attempts: Option<u32>,
    /// How long a claimed job stays locked before another worker may take it over [default: 60s].
    #[arg(long, env = "DEPLOY_GATE_JOB_LEASE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub job_lease: Option<Duration>,
    /// How often idle workers look for due jobs [default: 1s].
    #[arg(long, env = "DEPLOY_GATE_POLL_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    pub poll_interval: Option<Duration>,
    /// Log format: `pretty` or `json` [default: pretty].
    #[arg(long, env = "DEPLOY_GATE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Approval policies per project and stage (TOML file only: `[[policies]]`).
    #[arg(skip)]
    #[serde(default)]
    pub policies: Vec<PolicySettings>,
    /// Approver groups named by policies (TOML file only: `[groups]`).
    #[arg(skip)]
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Fields set in `over` win over the ones in `self`.
    pub fn overridden_by(self, over: Settings) -> Settings {
        // Policies and groups come from the file alone: the environment cannot hold tables.
        macro_rules! pick {
            ($($field:ident),*) => { Settings {
                $($field: over.$field.or(self.$field),)*
                policies: if over.policies.is_empty() { self.policies } else { over.policies },
                groups: if over.groups.is_empty() { self.groups } else { over.groups },
            } };
        }
        pick!(
            bind,
            public_url,
            database_url,
            database_max_connections,
            database_statement_timeout,
            database_connect_timeout,
            approvers_url,
            approvers,
            smtp_url,
            mail_dir,
            mail_from,
            mail_reply_to,
            mail_template_dir,
            token_secret,
            api_key,
            hook_secret,
            azure_devops_url,
            azure_devops_pat,
            required_approvals,
            approval_deadline,
            rate_limit_approval,
            rate_limit_auth_failures,
            client_ip_header,
            max_body_bytes,
            workers,
            retry_base,
            retry_cap,
            job_max_attempts,
            job_lease,
            poll_interval,
            log_format
        )
    }
}

/// `Option<Duration>` as a humantime string (`"90s"`, `"48h"`) in TOML.
pub(crate) mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Where approval emails go.
#[derive(Clone, Debug)]
pub enum MailTarget {
    /// An SMTP server, by URL.
    Smtp(Secret),
    /// `.eml` files in a folder.
    Directory(PathBuf),
}

/// Where decisions of service-hook releases are written back.
#[derive(Clone, Debug)]
pub struct AzureDevOps {
    /// Release-management base URL of the organization.
    pub url: url::Url,
    /// Personal access token.
    pub pat: Secret,
}

/// The database and its connection pool.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite:…`, `postgres://…` or `postgresql://…`.
    pub url: Secret,
    /// Most connections kept open.
    pub max_connections: u32,
    /// Longest a statement may run (PostgreSQL; the server cancels it).
    pub statement_timeout: Duration,
    /// Longest wait for a connection, new or from the busy pool.
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let url = s
            .database_url
            .clone()
            .unwrap_or_else(|| Secret::new("sqlite://deploy-gate.db"));
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.expose().starts_with(scheme))
        {
            bail!("DEPLOY_GATE_DATABASE_URL must start with sqlite:, postgres:// or postgresql://");
        }
        let max_connections = s.database_max_connections.unwrap_or(10);
        if max_connections == 0 {
            bail!("DEPLOY_GATE_DATABASE_MAX_CONNECTIONS must be greater than 0");
        }
        Ok(Self {
            url,
            max_connections,
            statement_timeout: at_least_a_millisecond(
                s.database_statement_timeout
                    .unwrap_or(Duration::from_secs(30)),
                "DEPLOY_GATE_DATABASE_STATEMENT_TIMEOUT",
            )?,
            connect_timeout: at_least_a_millisecond(
                s.database_connect_timeout.unwrap_or(Duration::from_secs(5)),
                "DEPLOY_GATE_DATABASE_CONNECT_TIMEOUT",
            )?,
        })
    }
}

/// Per-client rate limits (per minute; 0 is none).
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    /// Requests to `/approval`.
    pub approval: u32,
    /// Failed authentications to `/release*` and `/hooks/*`.
    pub auth_failures: u32,
    /// Header naming the client, set by a trusted proxy.
    pub client_ip_header: Option<poem::http::HeaderName>,
}

/// Retry and locking behaviour of the job queue.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Jobs run at once by this process.
    pub workers: usize,
    /// First retry delay; doubles with each failed attempt.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
    /// Failed attempts after which a job is dead.
    pub max_attempts: u32,
    /// How long a claimed job stays locked.
    pub lease: Duration,
    /// How often idle workers look for due jobs.
    pub poll_interval: Duration,
}

/// The validated configuration the application runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Base of approval links, without a trailing slash; `None` derives it from the bound address.
    pub public_url: Option<String>,
    /// Database and connection pool.
    pub database: DatabaseConfig,
    /// Approvers API.
    pub approvers_url: Option<url::Url>,
    /// Static approvers.
    pub approvers: Vec<crate::domain::approver::ApproverEmail>,
    /// Mail delivery.
    pub mail: MailTarget,
    /// `From` and `Reply-To` of approval emails.
    pub mail_sender: crate::notify::Sender,
    /// Folder of templates replacing the built-in ones.
    pub mail_template_dir: Option<PathBuf>,
    /// Approval token secret; `None` uses the one kept in the database.
    pub token_secret: Option<Secret>,
    /// API keys guarding `/release` and `/hooks/*` (any of them is accepted); empty leaves them open.
    pub api_keys: Vec<Secret>,
    /// Secret header value service hooks must send, if set.
    pub hook_secret: Option<Secret>,
    /// Write-back of decisions to Azure DevOps approvals, if configured.
    pub azure_devops: Option<AzureDevOps>,
    /// Approvals a release needs; `None` means all.
    pub required_approvals: Option<u32>,
    /// Time from creation until an undecided release expires.
    pub approval_deadline: Duration,
    /// Per-client rate limits.
    pub rate_limits: RateLimitSettings,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Job queue behaviour.
    pub jobs: JobSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Approval policies and groups.
    pub policies: Policies,
}

impl Config {
    /// Applies defaults and checks every value; the error names the bad variable.
    pub fn from_settings(s: Settings) -> anyhow::Result<Config> {
        let database = DatabaseConfig::from_settings(&s)?;
        let bind = s
            .bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
        let public_url = s
            .public_url
            .map(|u| parse_public_url(&u))
            .transpose()
            .context("DEPLOY_GATE_PUBLIC_URL")?;
        let approvers_url = s
            .approvers_url
            .map(|u| parse_http_url(&u))
            .transpose()
            .context("DEPLOY_GATE_APPROVERS_URL")?;
        let approvers = match s.approvers {
            Some(list) => crate::domain::approver::parse_approver_list(&list)
                .map_err(|e| anyhow::anyhow!("DEPLOY_GATE_APPROVERS: {e}"))?,
            None => Vec::new(),
        };
        let mail = match s.smtp_url {
            Some(url) => {
                check_smtp_url(url.expose()).context("DEPLOY_GATE_SMTP_URL")?;
                MailTarget::Smtp(url)
            }
            None => MailTarget::Directory(s.mail_dir.unwrap_or_else(|| PathBuf::from("mail"))),
        };
        let mail_sender = crate::notify::Sender {
            from: s
                .mail_from
                .as_deref()
                .unwrap_or("deploy-gate@localhost")
                .parse()
                .map_err(|e| anyhow::anyhow!("DEPLOY_GATE_MAIL_FROM: {e}"))?,
            reply_to: s
                .mail_reply_to
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("DEPLOY_GATE_MAIL_REPLY_TO: {e}"))?,
        };
        if let Some(dir) = &s.mail_template_dir
            && !dir.is_dir()
        {
            bail!(
                "DEPLOY_GATE_MAIL_TEMPLATE_DIR: {} is not a folder",
                dir.display()
            );
        }
        if s.token_secret
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            bail!("DEPLOY_GATE_TOKEN_SECRET must be at least 16 characters");
        }
        let api_keys: Vec<Secret> = match &s.api_key {
            Some(keys) => keys
                .expose()
                .split(',')
                .map(|k| Secret::new(k.trim()))
                .collect(),
            None => Vec::new(),
        };
        if api_keys.iter().any(|k| k.expose().is_empty()) {
            bail!("DEPLOY_GATE_API_KEY must not be empty, nor contain an empty key between commas");
        }
        let azure_devops = match (s.azure_devops_url, s.azure_devops_pat) {
            (Some(url), Some(pat)) => Some(AzureDevOps {
                url: parse_http_url(&url).context("DEPLOY_GATE_AZURE_DEVOPS_URL")?,
                pat,
            }),
            (None, None) => None,
            (Some(_), None) => {
                bail!("DEPLOY_GATE_AZURE_DEVOPS_PAT must be set with DEPLOY_GATE_AZURE_DEVOPS_URL")
            }
            (None, Some(_)) => {
                bail!("DEPLOY_GATE_AZURE_DEVOPS_URL must be set with DEPLOY_GATE_AZURE_DEVOPS_PAT")
            }
        };
        if s.hook_secret
            .as_ref()
            .is_some_and(|k| k.expose().is_empty())
        {
            bail!("DEPLOY_GATE_HOOK_SECRET must not be empty when set");
        }
        let jobs = JobSettings {
            workers: positive(s.workers.unwrap_or(4), "DEPLOY_GATE_WORKERS")?,
            retry_base: s.retry_base.unwrap_or(Duration::from_secs(1)),
            retry_cap: s.retry_cap.unwrap_or(Duration::from_secs(300)),
            max_attempts: s.job_max_attempts.unwrap_or(25).max(1),
            lease: s.job_lease.unwrap_or(Duration::from_secs(60)),
            poll_interval: s.poll_interval.unwrap_or(Duration::from_secs(1)),
        };
        if jobs.lease < Duration::from_millis(100) {
            bail!("DEPLOY_GATE_JOB_LEASE must be at least 100ms");
        }
        Ok(Config {
            bind,
            public_url,
            database,
            approvers_url,
            approvers,
            mail,
            mail_sender,
            mail_template_dir: s.mail_template_dir,
            token_secret: s.token_secret,
            api_keys,
            hook_secret: s.hook_secret,
            azure_devops,
            required_approvals: s.required_approvals.filter(|n| *n > 0),
            approval_deadline: s
                .approval_deadline
                .unwrap_or(Duration::from_secs(48 * 3600)),
            rate_limits: RateLimitSettings {
                approval: s.rate_limit_approval.unwrap_or(60),
                auth_failures: s.rate_limit_auth_failures.unwrap_or(20),
                client_ip_header: s
                    .client_ip_header
                    .as_deref()
                    .map(poem::http::HeaderName::try_from)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("DEPLOY_GATE_CLIENT_IP_HEADER: {e}"))?,
            },
            max_body_bytes: positive(
                s.max_body_bytes.unwrap_or(64 * 1024),
                "DEPLOY_GATE_MAX_BODY_BYTES",
            )?,
            jobs,
            log_format: s.log_format.unwrap_or_default(),
            policies: Policies::from_settings(&s.policies, &s.groups)?,
        })
    }
}

impl Config {
    /// The effective configuration as TOML, in the keys of the settings file, with
    /// secrets masked (and the password of database and SMTP URLs); unset keys are comments.
    pub fn to_masked_toml(&self) -> String {
        let secret = |s: &Option<Secret>| s.as_ref().map(|_| "[redacted]".to_owned());
        let duration = |d: Duration| humantime::format_duration(d).to_string();
        let (smtp_url, mail_dir) = match &self.mail {
            MailTarget::Smtp(url) => (Some(mask_url_password(url)), None),
            MailTarget::Directory(dir) => (None, Some(dir.display().to_string())),
        };
        let entries: Vec<(&str, Option<toml::Value>)> = vec![
            ("bind", Some(self.bind.to_string().into())),
            ("public_url", self.public_url.clone().map(Into::into)),
            (
                "database_url",
                Some(mask_url_password(&self.database.url).into()),
            ),
            (
                "database_max_connections",
                Some(i64::from(self.database.max_connections).into()),
            ),
            (
                "database_statement_timeout",
                Some(duration(self.database.statement_timeout).into()),
            ),
            (
                "database_connect_timeout",
                Some(duration(self.database.connect_timeout).into()),
            ),
            (
                "approvers_url",
                self.approvers_url.as_ref().map(|u| u.to_string().into()),
            ),
            (
                "approvers",
                (!self.approvers.is_empty()).then(|| {
                    let list: Vec<&str> = self.approvers.iter().map(|a| a.as_str()).collect();
                    list.join(",").into()
                }),
            ),
            ("smtp_url", smtp_url.map(Into::into)),
            ("mail_dir", mail_dir.map(Into::into)),
            ("mail_from", Some(self.mail_sender.from.to_string().into())),
            (
                "mail_reply_to",
                self.mail_sender
                    .reply_to
                    .as_ref()
                    .map(|r| r.to_string().into()),
            ),
            (
                "mail_template_dir",
                self.mail_template_dir
                    .as_ref()
                    .map(|d| d.display().to_string().into()),
            ),
            ("token_secret", secret(&self.token_secret).map(Into::into)),
            (
                "api_key",
                (!self.api_keys.is_empty()).then(|| {
                    let masked = vec!["[redacted]"; self.api_keys.len()];
                    masked.join(",").into()
                }),
            ),
            ("hook_secret", secret(&self.hook_secret).map(Into::into)),
            (
                "azure_devops_url",
                self.azure_devops.as_ref().map(|a| a.url.to_string().into()),
            ),
            (
                "azure_devops_pat",
                self.azure_devops.as_ref().map(|_| "[redacted]".into()),
            ),
            (
                "required_approvals",
                Some(i64::from(self.required_approvals.unwrap_or(0)).into()),
            ),
            (
                "approval_deadline",
                Some(duration(self.approval_deadline).into()),
            ),
            (
                "rate_limit_approval",
                Some(i64::from(self.rate_limits.approval).into()),
            ),
            (
                "rate_limit_auth_failures",
                Some(i64::from(self.rate_limits.auth_failures).into()),
            ),
            (
                "client_ip_header",
                self.rate_limits
                    .client_ip_header
                    .as_ref()
                    .map(|h| h.as_str().into()),
            ),
            (
                "max_body_bytes",
                Some(saturating_i64(self.max_body_bytes).into()),
            ),
            ("workers", Some(saturating_i64(self.jobs.workers).into())),
            ("retry_base", Some(duration(self.jobs.retry_base).into())),
            ("retry_cap", Some(duration(self.jobs.retry_cap).into())),
            (
                "job_max_attempts",
                Some(i64::from(self.jobs.max_attempts).into()),
            ),
            ("job_lease", Some(duration(self.jobs.lease).into())),
            (
                "poll_interval",
                Some(duration(self.jobs.poll_interval).into()),
            ),
            (
                "log_format",
                Some(
                    match self.log_format {
                        LogFormat::Pretty => "pretty",
                        LogFormat::Json => "json",
                    }
                    .into(),
                ),
            ),
        ];
        let mut text: String = entries
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key} = {value}\n"),
                None => format!("# {key} is not set\n"),
            })
            .collect();
        text.push_str(&self.policies.to_masked_toml());
        text
    }
}

fn saturating_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The URL with its password, if any, replaced by `****`.
fn mask_url_password(url: &Secret) -> String {
    match url::Url::parse(url.expose()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[redacted]".to_owned(),
    }
}

fn positive(value: usize, name: &str) -> anyhow::Result<usize> {
    if value == 0 {
        bail!("{name} must be greater than 0");
    }
    Ok(value)
}

fn at_least_a_millisecond(value: Duration, name: &str) -> anyhow::Result<Duration> {
    if value < Duration::from_millis(1) {
        bail!("{name} must be at least 1ms");
    }
    Ok(value)
}

fn parse_http_url(text: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(text).context("not a valid URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("must be an http:// or https:// URL");
    }
    Ok(url)
}

fn parse_public_url(text: &str) -> anyhow::Result<String> {
    parse_http_url(text)?;
    Ok(text.trim_end_matches('/').to_owned())
}

fn check_smtp_url(text: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(text).context("not a valid URL")?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        bail!("must be an smtp:// or smtps:// URL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_settings_give_a_working_default_config() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.database.url.expose(), "sqlite://deploy-gate.db");
        assert_eq!(config.database.max_connections, 10);
        assert_eq!(config.database.statement_timeout, Duration::from_secs(30));
        assert_eq!(config.database.connect_timeout, Duration::from_secs(5));
        assert!(matches!(config.mail, MailTarget::Directory(ref d) if d == &PathBuf::from("mail")));
        assert_eq!(config.required_approvals, None);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let settings = Settings {
            approvers_url: Some("ftp://x".into()),
            ..Settings::default()
        };
        let err = format!("{:#}", Config::from_settings(settings).unwrap_err());
        assert!(err.contains("DEPLOY_GATE_APPROVERS_URL"), "{err}");
    }

    #[test]
    fn database_pool_settings_come_from_the_file_and_are_checked() {
        let file: Settings = toml::from_str(
            "database_url = \"postgres://db/gate\"\ndatabase_max_connections = 3\n\
             database_statement_timeout = \"45s\"\ndatabase_connect_timeout = \"250ms\"",
        )
        .unwrap();
        let database = Config::from_settings(file).unwrap().database;
        assert_eq!(database.max_connections, 3);
        assert_eq!(database.statement_timeout, Duration::from_secs(45));
        assert_eq!(database.connect_timeout, Duration::from_millis(250));

        let empty_pool = Settings {
            database_max_connections: Some(0),
            ..Settings::default()
        };
        let err = format!("{:#}", Config::from_settings(empty_pool).unwrap_err());
        assert!(
            err.contains("DEPLOY_GATE_DATABASE_MAX_CONNECTIONS"),
            "{err}"
        );
        let mysql = Settings {
            database_url: Some(Secret::new("mysql://db/gate")),
            ..Settings::default()
        };
        let err = format!("{:#}", Config::from_settings(mysql).unwrap_err());
        assert!(err.contains("DEPLOY_GATE_DATABASE_URL"), "{err}");
    }

    #[test]
    fn the_printed_configuration_masks_every_secret_and_reads_back() {
        let settings = Settings {
            database_url: Some(Secret::new("postgres://gate:pg-pass-123@db/gate")),
            smtp_url: Some(Secret::new("smtp://mailer:smtp-pass-456@mail:587")),
            token_secret: Some(Secret::new("token-secret-0123456789")),
            api_key: Some(Secret::new("api-key-789")),
            azure_devops_url: Some("https://vsrm.dev.azure.com/contoso".into()),
            azure_devops_pat: Some(Secret::new("pat-000")),
            ..Settings::default()
        };
        let printed = Config::from_settings(settings).unwrap().to_masked_toml();
        for secret in [
            "pg-pass-123",
            "smtp-pass-456",
            "token-secret-0123456789",
            "api-key-789",
            "pat-000",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
        }
        assert!(printed.contains("database_url = \"postgres://gate:****@db/gate\""));
        assert!(printed.contains("# hook_secret is not set"));
        // Apart from the masked values, the output is a valid settings file.
        let reread: Settings = toml::from_str(&printed).expect("valid TOML settings");
        assert_eq!(reread.workers, Some(4));
        assert_eq!(
            reread.approval_deadline,
            Some(Duration::from_secs(48 * 3600))
        );
    }

    #[test]
    fn policies_and_groups_come_from_the_file_and_print_with_webhooks_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.toml");
        std::fs::write(
            &path,
            r#"
            workers = 2
            [groups]
            sre = ["ana@example.com"]
            [[policies]]
            team_project = "Devx"
            stage = "prod"
            require = [{ group = "sre", count = 1 }]
            reminders = ["4h"]
            escalate_after = "8h"
            escalate_to = "lead@example.com"
            slack_webhook = "https://hooks.slack.test/services/T0/B0/very-secret"
            "#,
        )
        .unwrap();
        let settings = Settings::from_toml_file(&path).unwrap();
        let merged = settings.overridden_by(Settings::default());
        let printed = Config::from_settings(merged).unwrap().to_masked_toml();
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(
            printed.contains("slack_webhook = \"[redacted]\""),
            "{printed}"
        );
        let reread: Settings = toml::from_str(&printed).expect("valid TOML settings");
        assert_eq!(reread.policies.len(), 1);
        assert_eq!(reread.groups["sre"], ["ana@example.com"]);
        assert_eq!(reread.policies[0].reminders, ["4h"]);
    }

    #[test]
    fn several_api_keys_separated_by_commas_are_all_kept() {
        let settings = Settings {
            api_key: Some(Secret::new("old-key-1, new-key-2")),
            ..Settings::default()
        };
        let keys = Config::from_settings(settings).unwrap().api_keys;
        let keys: Vec<&str> = keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["old-key-1", "new-key-2"]);
        let hole = Settings {
            api_key: Some(Secret::new("a,,b")),
            ..Settings::default()
        };
        let err = format!("{:#}", Config::from_settings(hole).unwrap_err());
        assert!(err.contains("DEPLOY_GATE_API_KEY"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = Settings {
            api_key: Some(Secret::new("hunter2-hunter2")),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn environment_settings_override_the_file() {
        let file: Settings = toml::from_str("workers = 2\nmail_from = \"a@b.c\"").unwrap();
        let env = Settings {
            workers: Some(7),
            ..Settings::default()
        };
        let merged = file.overridden_by(env);
        assert_eq!(merged.workers, Some(7));
        assert_eq!(merged.mail_from.as_deref(), Some("a@b.c"));
    }
}
