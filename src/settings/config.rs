//! The typed configuration the application runs with, checked and converted from
//! the effective settings; every error names the variable at fault.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use lettre::message::Mailbox;

use super::{Effective, LogFormat, Settings};
use super::{policies_from_settings, policies_to_masked_toml};
use crate::domain::{callback::CallbackHosts, policy::Policies};
use crate::secret::Secret;

/// Where approval emails go.
#[derive(Clone, Debug)]
pub enum MailTarget {
    /// An SMTP server, by URL.
    Smtp(Secret),
    /// `.eml` files in a folder.
    Directory(PathBuf),
}

/// Where decisions of service-hook releases are written back.
#[derive(Clone, Debug, PartialEq)]
pub struct AzureDevOps {
    /// Release-management base URL of the organization.
    pub url: url::Url,
    /// The organization's own URL (YAML approvals, `connectionData`).
    pub org_url: url::Url,
    /// Who deploy-gate is in Azure DevOps.
    pub credential: AzureCredential,
    /// `api-version` of the approvals APIs.
    pub api_version: String,
}

/// The OpenID Connect provider approvers sign in with, where a policy asks for it.
#[derive(Clone, Debug)]
pub struct SignIn {
    /// Issuer; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: url::Url,
    /// deploy-gate's client id at the provider.
    pub client_id: String,
    /// deploy-gate's client secret, unless it is a public client.
    pub client_secret: Option<Secret>,
    /// Entra ID tenants whose accounts are trusted without `email_verified`.
    pub tenants: Vec<String>,
}

/// How deploy-gate proves who it is to Azure DevOps (write-back and look-ups;
/// job callbacks use the job's own token).
#[derive(Clone, Debug, PartialEq)]
pub enum AzureCredential {
    /// A personal access token, sent as Basic.
    Pat(Secret),
    /// An Entra ID service principal with a client secret (client credentials grant).
    ServicePrincipal {
        /// Tenant (directory) id.
        tenant_id: String,
        /// Application (client) id.
        client_id: String,
        /// Client secret.
        secret: Secret,
        /// Entra ID authority, `https://login.microsoftonline.com` in Azure's public cloud.
        authority_host: url::Url,
    },
    /// The managed identity of the Azure host deploy-gate runs on.
    ManagedIdentity {
        /// Client id of a user-assigned identity; `None` for the system-assigned one.
        client_id: Option<String>,
    },
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
    fn from_effective(e: &Effective) -> anyhow::Result<Self> {
        let url = e.database_url.value();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.expose().starts_with(scheme))
        {
            return Err(e
                .database_url
                .error("must start with sqlite:, postgres:// or postgresql://"));
        }
        let max_connections = *e.database_max_connections.value();
        if max_connections == 0 {
            return Err(e.database_max_connections.error("must be greater than 0"));
        }
        Ok(Self {
            url: url.clone(),
            max_connections,
            statement_timeout: at_least_a_millisecond(&e.database_statement_timeout)?,
            connect_timeout: at_least_a_millisecond(&e.database_connect_timeout)?,
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
    /// Trusted proxies appending to that header: the address this many from its
    /// right end names the client (at least 1).
    pub trusted_proxy_hops: usize,
}

impl RateLimitSettings {
    fn from_effective(e: &Effective) -> anyhow::Result<Self> {
        let hops = *e.trusted_proxy_hops.value();
        if hops == 0 {
            return Err(e.trusted_proxy_hops.error("must be at least 1"));
        }
        Ok(Self {
            trusted_proxy_hops: usize::try_from(hops).unwrap_or(usize::MAX),
            approval: *e.rate_limit_approval.value(),
            auth_failures: *e.rate_limit_auth_failures.value(),
            client_ip_header: e
                .client_ip_header
                .convert_some(|name| poem::http::HeaderName::try_from(name.as_str()))?,
        })
    }
}

/// Retry and locking behaviour of the job queue.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Worker loops, each running one job at a time, or the emails of the
    /// approvers it just found side by side.
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

impl JobSettings {
    fn from_effective(e: &Effective) -> anyhow::Result<Self> {
        if *e.workers.value() == 0 {
            return Err(e.workers.error("must be greater than 0"));
        }
        if *e.job_lease.value() < Duration::from_millis(100) {
            return Err(e.job_lease.error("must be at least 100ms"));
        }
        Ok(Self {
            workers: *e.workers.value(),
            retry_base: *e.retry_base.value(),
            retry_cap: *e.retry_cap.value(),
            max_attempts: (*e.job_max_attempts.value()).max(1),
            lease: *e.job_lease.value(),
            poll_interval: *e.poll_interval.value(),
        })
    }
}

/// Limits on HTTP connections, which a slow or hostile client would otherwise hold open.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    /// Time to send a request head, from the connection or the next request's first byte.
    pub header_timeout: Duration,
    /// Time to send a request body once the head arrived.
    pub body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ConnectionSettings {
    fn from_effective(e: &Effective) -> anyhow::Result<Self> {
        Ok(Self {
            header_timeout: at_least_a_millisecond(&e.http_header_timeout)?,
            body_timeout: at_least_a_millisecond(&e.http_body_timeout)?,
            idle_timeout: at_least_a_millisecond(&e.http_idle_timeout)?,
            max_connections: positive(&e.http_max_connections)?,
        })
    }
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
    /// Whether `POST /release` may name its approvers.
    pub request_approvers: bool,
    /// Mail delivery.
    pub mail: MailTarget,
    /// `From` and `Reply-To` of approval emails.
    pub mail_sender: Sender,
    /// Folder of templates replacing the built-in ones.
    pub mail_template_dir: Option<PathBuf>,
    /// Approval token keys: the first signs, all verify; empty uses the key
    /// generated and kept in the database.
    pub token_secrets: Vec<Secret>,
    /// API keys guarding `/release` and `/hooks/*` (any of them is accepted); empty leaves them open.
    pub api_keys: Vec<Secret>,
    /// Secret header value service hooks must send, if set.
    pub hook_secret: Option<Secret>,
    /// Hosts a callback-mode `PlanUrl` may name.
    pub callback_hosts: CallbackHosts,
    /// Write-back of decisions to Azure DevOps approvals, if configured.
    pub azure_devops: Option<AzureDevOps>,
    /// CA certificates trusted beside the system's for calls to Entra ID and Azure DevOps.
    pub azure_ca_certificates: Vec<reqwest::Certificate>,
    /// How long Azure DevOps group, team and approver members are reused.
    pub azure_approvers_cache: Duration,
    /// Approvals a release needs; `None` means all.
    pub required_approvals: Option<u32>,
    /// Time from creation until an undecided release expires.
    pub approval_deadline: Duration,
    /// How long decided rounds are kept; `None` keeps them all.
    pub retention: Option<Duration>,
    /// Per-client rate limits.
    pub rate_limits: RateLimitSettings,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Limits on HTTP connections.
    pub connections: ConnectionSettings,
    /// Job queue behaviour.
    pub jobs: JobSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// The service the client commands talk to; `None` means the one on `bind`.
    pub service_url: Option<url::Url>,
    /// Approval policies and groups.
    pub policies: Policies,
    /// Sign-in of approvers, if configured.
    pub sign_in: Option<SignIn>,
    /// The settings it was made from, for `deploy-gate config`.
    effective: Effective,
}

impl Config {
    /// The files the secrets were read from (`DEPLOY_GATE_<NAME>_FILE`, `<name>_file`),
    /// which a configuration reload watches.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        self.effective.sources.files()
    }

    /// The settings (TOML keys) whose value differs in `newer`; the policies and
    /// groups of the TOML file are not compared.
    pub fn changed_settings(&self, newer: &Config) -> Vec<&'static str> {
        self.effective.changed_in(&newer.effective)
    }

    /// Applies defaults and checks every value; the error names the bad variable.
    pub fn from_settings(s: Settings) -> anyhow::Result<Config> {
        let e = s.effective()?;
        let (mail, mail_sender) = mail(&e)?;
        let mail_template_dir = e.mail_template_dir.convert_some(|dir| {
            if dir.is_dir() {
                Ok(dir.clone())
            } else {
                Err(format!("{} is not a folder", dir.display()))
            }
        })?;
        let azure_devops = azure_devops(&e)?;
        let policies = policies_from_settings(&s.policies, &s.groups)?;
        let sign_in = sign_in(&e, &policies)?;
        needs_azure_devops(&policies, azure_devops.as_ref())?;
        Ok(Config {
            bind: *e.bind.value(),
            public_url: e.public_url.convert_some(|url| parse_public_url(url))?,
            database: DatabaseConfig::from_effective(&e)?,
            approvers_url: e.approvers_url.convert_some(|url| parse_http_url(url))?,
            approvers: e
                .approvers
                .convert_some(|list| crate::domain::approver::parse_approver_list(list))?
                .unwrap_or_default(),
            request_approvers: *e.request_approvers.value(),
            mail,
            mail_sender,
            mail_template_dir,
            token_secrets: token_secrets(&e)?,
            api_keys: api_keys(&e)?,
            hook_secret: hook_secret(&e)?,
            callback_hosts: e
                .callback_hosts
                .convert(|list| CallbackHosts::parse(list))?,
            azure_devops,
            azure_ca_certificates: azure_ca_certificates(&e)?,
            azure_approvers_cache: *e.azure_approvers_cache.value(),
            required_approvals: Some(*e.required_approvals.value()).filter(|n| *n > 0),
            approval_deadline: *e.approval_deadline.value(),
            retention: retention(&e)?,
            rate_limits: RateLimitSettings::from_effective(&e)?,
            max_body_bytes: positive(&e.max_body_bytes)?,
            connections: ConnectionSettings::from_effective(&e)?,
            jobs: JobSettings::from_effective(&e)?,
            log_format: *e.log_format.value(),
            service_url: e.url.convert_some(|url| parse_http_url(url))?,
            policies,
            sign_in,
            effective: e,
        })
    }

    /// The effective configuration as TOML, in the keys of the settings file, with
    /// secrets masked (and the password of database and SMTP URLs); unset keys are comments.
    pub fn to_masked_toml(&self) -> String {
        let mut text = self.effective.to_masked_toml();
        text.push_str(&policies_to_masked_toml(&self.policies));
        text
    }
}

/// A policy taking approvers from Azure DevOps needs its URL and credentials.
fn needs_azure_devops(policies: &Policies, azure: Option<&AzureDevOps>) -> anyhow::Result<()> {
    let wanting = policies
        .policies()
        .iter()
        .position(|p| p.azure_approvers.is_some());
    match (wanting, azure) {
        (Some(i), None) => bail!(
            "policies[{i}]: azure_approvers needs DEPLOY_GATE_AZURE_DEVOPS_URL and DEPLOY_GATE_AZURE_DEVOPS_PAT"
        ),
        _ => Ok(()),
    }
}

/// Sender headers of approval emails.
#[derive(Clone, Debug)]
pub struct Sender {
    /// `From`.
    pub from: Mailbox,
    /// `Reply-To`, if set.
    pub reply_to: Option<Mailbox>,
}

/// Where approval emails go, and their sender.
fn mail(e: &Effective) -> anyhow::Result<(MailTarget, Sender)> {
    let allow_plaintext = *e.smtp_allow_plaintext.value();
    let target = e
        .smtp_url
        .convert_some(|url| {
            check_smtp_url(url.expose(), allow_plaintext).map(|()| MailTarget::Smtp(url.clone()))
        })?
        .unwrap_or_else(|| MailTarget::Directory(e.mail_dir.value().clone()));
    let sender = Sender {
        from: e.mail_from.convert(|from| from.parse())?,
        reply_to: e.mail_reply_to.convert_some(|reply_to| reply_to.parse())?,
    };
    Ok((target, sender))
}

/// Shortest token key accepted.
const MIN_TOKEN_SECRET_CHARS: usize = 16;

fn token_secrets(e: &Effective) -> anyhow::Result<Vec<Secret>> {
    let keys = comma_separated(e.token_secret.value().as_ref());
    if let Some(at) = keys
        .iter()
        .position(|k| k.expose().len() < MIN_TOKEN_SECRET_CHARS)
    {
        return Err(e.token_secret.error(format_args!(
            "must hold keys of at least {MIN_TOKEN_SECRET_CHARS} characters each; key {} of {} \
             is shorter",
            at + 1,
            keys.len()
        )));
    }
    Ok(keys)
}

/// The keys of a comma-separated list, trimmed.
fn comma_separated(keys: Option<&Secret>) -> Vec<Secret> {
    keys.map(|keys| {
        keys.expose()
            .split(',')
            .map(|k| Secret::new(k.trim()))
            .collect()
    })
    .unwrap_or_default()
}

/// Shortest API key accepted.
const MIN_API_KEY_CHARS: usize = 24;

fn api_keys(e: &Effective) -> anyhow::Result<Vec<Secret>> {
    let keys = comma_separated(e.api_key.value().as_ref());
    if keys.iter().any(|k| k.expose().is_empty()) {
        return Err(e
            .api_key
            .error("must not be empty, nor contain an empty key between commas"));
    }
    // A valid key is never locked out by the failure limit, so keys must be long enough
    // that guessing one is hopeless.
    if let Some(at) = keys
        .iter()
        .position(|k| k.expose().chars().count() < MIN_API_KEY_CHARS)
    {
        return Err(e.api_key.error(format_args!(
            "must hold keys of at least {MIN_API_KEY_CHARS} characters each; key {} of {} \
             is shorter (e.g. `openssl rand -hex 24` makes one)",
            at + 1,
            keys.len()
        )));
    }
    Ok(keys)
}

fn hook_secret(e: &Effective) -> anyhow::Result<Option<Secret>> {
    let secret = e.hook_secret.value();
    if secret.as_ref().is_some_and(|k| k.expose().is_empty()) {
        return Err(e.hook_secret.error("must not be empty when set"));
    }
    Ok(secret.clone())
}

fn azure_devops(e: &Effective) -> anyhow::Result<Option<AzureDevOps>> {
    let url = &e.azure_devops_url;
    let credential = azure_credential(e)?;
    let (text, credential) = match (url.value(), credential) {
        (Some(text), Some(credential)) => (text, credential),
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(url.error(format_args!(
                "must be set with {} or with Entra ID ({} with {} and {}, or {}=true)",
                e.azure_devops_pat.env(),
                e.azure_tenant_id.env(),
                e.azure_client_id.env(),
                e.azure_client_secret.env(),
                e.azure_managed_identity.env()
            )));
        }
        (None, Some(credential)) => {
            let given = match credential {
                AzureCredential::Pat(_) => e.azure_devops_pat.env(),
                AzureCredential::ServicePrincipal { .. } => e.azure_client_secret.env(),
                AzureCredential::ManagedIdentity { .. } => e.azure_managed_identity.env(),
            };
            return Err(url.error(format_args!("must be set with {given}")));
        }
    };
    let url = url.convert(|_| parse_http_url(text))?;
    let org_url = match e.azure_devops_org_url.value() {
        Some(org) => e.azure_devops_org_url.convert(|_| parse_http_url(org))?,
        None => organization_url(&url),
    };
    let api_version = e.azure_devops_api_version.value().trim().to_owned();
    if api_version.is_empty()
        || !api_version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(e
            .azure_devops_api_version
            .error("must be a version such as 7.1 or 6.0-preview.1"));
    }
    Ok(Some(AzureDevOps {
        url,
        org_url,
        credential,
        api_version,
    }))
}

/// The one credential configured for Azure DevOps, if any: a PAT, a service
/// principal (tenant, client id and secret, all three) or a managed identity
/// (with an optional client id). A PAT and Entra ID together are refused, so
/// that which identity acts is never a guess.
fn azure_credential(e: &Effective) -> anyhow::Result<Option<AzureCredential>> {
    let (tenant, client, secret) = (
        &e.azure_tenant_id,
        &e.azure_client_id,
        &e.azure_client_secret,
    );
    let managed = *e.azure_managed_identity.value();
    let entra =
        managed || tenant.value().is_some() || client.value().is_some() || secret.value().is_some();
    if let (Some(_), true) = (e.azure_devops_pat.value(), entra) {
        let entra_env = if managed {
            e.azure_managed_identity.env()
        } else {
            [tenant, client]
                .into_iter()
                .find(|n| n.value().is_some())
                .map_or(secret.env(), |n| n.env())
        };
        return Err(e.azure_devops_pat.error(format_args!(
            "and {entra_env} are both set: configure either a personal access token or Entra ID, not both"
        )));
    }
    if let Some(pat) = e.azure_devops_pat.value() {
        return Ok(Some(AzureCredential::Pat(pat.clone())));
    }
    let client_id = client.convert_some(|id| not_blank(id))?;
    if managed {
        let stray = [
            tenant.value().is_some().then(|| tenant.env()),
            secret.value().is_some().then(|| secret.env()),
        ];
        if let Some(stray) = stray.into_iter().flatten().next() {
            return Err(anyhow::anyhow!(
                "{stray} is set with {managed_env}=true: a managed identity has no tenant or \
                 secret; unset it, or set {managed_env}=false for a service principal",
                managed_env = e.azure_managed_identity.env()
            ));
        }
        return Ok(Some(AzureCredential::ManagedIdentity { client_id }));
    }
    if !entra {
        return Ok(None);
    }
    let tenant_id = tenant.convert_some(|id| not_blank(id))?;
    let (Some(tenant_id), Some(client_id), Some(secret)) = (tenant_id, client_id, secret.value())
    else {
        let missing: Vec<&str> = [tenant, client]
            .into_iter()
            .filter(|n| n.value().is_none())
            .map(|n| n.env())
            .chain(secret.value().is_none().then(|| secret.env()))
            .collect();
        return Err(anyhow::anyhow!(
            "a service principal needs {}, {} and {}: {} missing (or set {}=true for a managed identity)",
            tenant.env(),
            client.env(),
            secret.env(),
            missing.join(" and "),
            e.azure_managed_identity.env()
        ));
    };
    let authority_host = e.azure_authority_host.convert(|host| {
        let url = url::Url::parse(host).context("not a valid URL")?;
        if url.scheme() != "https" {
            bail!("must be an https:// URL: Entra ID tokens are asked for over TLS only");
        }
        anyhow::Ok(url)
    })?;
    Ok(Some(AzureCredential::ServicePrincipal {
        tenant_id,
        client_id,
        secret: secret.clone(),
        authority_host,
    }))
}

fn not_blank(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    if text.is_empty() {
        bail!("must not be empty when set");
    }
    Ok(text.to_owned())
}

/// The certificates of `DEPLOY_GATE_AZURE_CA_FILE`, read and checked at start.
fn azure_ca_certificates(e: &Effective) -> anyhow::Result<Vec<reqwest::Certificate>> {
    Ok(e.azure_ca_file
        .convert_some(|path| {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM file of certificates", path.display()))?;
            if certificates.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            anyhow::Ok(certificates)
        })?
        .unwrap_or_default())
}

/// The sign-in provider: issuer and client id go together, and a policy that
/// requires sign-in needs them.
fn sign_in(e: &Effective, policies: &Policies) -> anyhow::Result<Option<SignIn>> {
    let (issuer, client_id) = (&e.oidc_issuer, &e.oidc_client_id);
    let sign_in = match (issuer.value(), client_id.value()) {
        (Some(text), Some(id)) if !id.trim().is_empty() => Some(SignIn {
            issuer: issuer.convert(|_| parse_http_url(text))?,
            client_id: id.trim().to_owned(),
            client_secret: e.oidc_client_secret.value().clone(),
            tenants: e
                .oidc_tenants
                .value()
                .iter()
                .flat_map(|list| list.split(','))
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        }),
        (Some(_), Some(_)) => return Err(client_id.error("must not be empty")),
        (None, None) => None,
        (Some(_), None) => {
            return Err(client_id.error(format_args!("must be set with {}", issuer.env())));
        }
        (None, Some(_)) => {
            return Err(issuer.error(format_args!("must be set with {}", client_id.env())));
        }
    };
    if sign_in.is_none() && policies.policies().iter().any(|p| p.sign_in) {
        return Err(issuer.error(
            "must be set (with DEPLOY_GATE_OIDC_CLIENT_ID) since a policy sets require_sign_in",
        ));
    }
    Ok(sign_in)
}

/// The organization URL behind a release-management URL:
/// `vsrm.dev.azure.com/org` → `dev.azure.com/org`, `org.vsrm.visualstudio.com`
/// → `org.visualstudio.com`; any other URL (a server, a test double) is its own.
pub fn organization_url(release_url: &url::Url) -> url::Url {
    let mut org = release_url.clone();
    let host = release_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let derived = if host == "vsrm.dev.azure.com" {
        Some("dev.azure.com".to_owned())
    } else {
        host.strip_suffix(".vsrm.visualstudio.com")
            .map(|account| format!("{account}.visualstudio.com"))
    };
    if let Some(host) = derived {
        // Both are valid host names, so setting one cannot fail.
        let _ = org.set_host(Some(&host));
    }
    org
}

/// Shortest retention accepted: a gate may poll a round again after its decision
/// (a re-evaluation, a retried stage), and a round deleted by then would start over.
const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

fn retention(e: &Effective) -> anyhow::Result<Option<Duration>> {
    match *e.retention.value() {
        Some(keep) if keep < MIN_RETENTION => Err(e.retention.error("must be at least 1d")),
        keep => Ok(keep),
    }
}

fn positive(value: &super::define::Named<usize>) -> anyhow::Result<usize> {
    if *value.value() == 0 {
        return Err(value.error("must be greater than 0"));
    }
    Ok(*value.value())
}

fn at_least_a_millisecond(value: &super::define::Named<Duration>) -> anyhow::Result<Duration> {
    if *value.value() < Duration::from_millis(1) {
        return Err(value.error("must be at least 1ms"));
    }
    Ok(*value.value())
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

/// Checks the scheme, and that a password only travels encrypted: over `smtps://` or
/// `smtp://…?tls=required` (read as lettre reads it: the first `tls` parameter), to a
/// loopback host, or where plaintext is allowed explicitly.
fn check_smtp_url(text: &str, allow_plaintext: bool) -> anyhow::Result<()> {
    let url = url::Url::parse(text).context("not a valid URL")?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        bail!("must be an smtp:// or smtps:// URL");
    }
    let tls_required = url.scheme() == "smtps"
        || url
            .query_pairs()
            .find(|(name, _)| name == "tls")
            .is_some_and(|(_, value)| value == "required");
    let loopback = match url.host() {
        // An smtp:// URL's host is opaque to the URL parser, an IPv4 address included.
        Some(url::Host::Domain(name)) => {
            name.trim_end_matches('.').eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.password().is_some() && !tls_required && !loopback && !allow_plaintext {
        bail!(
            "holds a password but no TLS, so the password would cross the network in clear: \
             use smtps:// (implicit TLS) or add ?tls=required (STARTTLS), or set \
             DEPLOY_GATE_SMTP_ALLOW_PLAINTEXT=true to accept that"
        );
    }
    Ok(())
}
