//! Configuration: built-in defaults, overridden by a TOML file, overridden by
//! `DEPLOY_GATE_*` environment variables (or the matching command-line flags).
//!
//! Each setting is defined once, in the list below: its TOML key, variable,
//! default, help text and, through its type, whether it is a secret. `--help`,
//! the checks naming the bad variable, `deploy-gate config` and
//! `docs/configuration.md` all derive from that list.

mod config;
pub(crate) mod define;
#[cfg(test)]
mod entra_tests;
mod files;
mod policies;
mod reference;
mod refused;
#[cfg(test)]
mod tests;
mod unknown;
pub(crate) mod value;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;

use crate::secret::Secret;

pub use config::{
    AzureCredential, AzureDevOps, Config, ConnectionSettings, DatabaseConfig, JobSettings,
    MailTarget, RateLimitSettings, Sender, SignIn,
};
pub use define::{Definition, Fallback};
pub use files::{Source, Sources, file_key, file_variable};
pub use policies::{
    PolicySettings, RequirementSettings, channel_key, policies_from_settings,
    policies_to_masked_toml,
};
pub use reference::reference_markdown;
pub use refused::named_as_given;
pub use unknown::unknown_variables;
pub use value::LogFormat;
pub(crate) use value::humantime_serde_opt;
use value::{each_key_redacted, secret_url_masked, url_masked};

define::define_settings! {
    /// Listen address; port 0 picks a free port.
    bind: SocketAddr, env "DEPLOY_GATE_BIND", default "127.0.0.1:8000";
    /// Base of the links in emails.
    public_url: String, env "DEPLOY_GATE_PUBLIC_URL", unset "`http://` + the bound address",
        shown url_masked;
    /// `sqlite://…` (`sqlite::memory:` keeps the data in a temporary file removed
    /// at exit), or `postgres://…` / `postgresql://…` (see
    /// `docs/operations.md`, *PostgreSQL and replicas*).
    database_url: Secret, env "DEPLOY_GATE_DATABASE_URL", default "sqlite://deploy-gate.db",
        shown secret_url_masked;
    /// PostgreSQL only: most connections in this process's pool (on SQLite the
    /// store keeps five: four for reads, one that writers take turns on).
    database_max_connections: u32, env "DEPLOY_GATE_DATABASE_MAX_CONNECTIONS", default "10";
    /// PostgreSQL only: the server cancels a statement running longer than this.
    database_statement_timeout: Duration, env "DEPLOY_GATE_DATABASE_STATEMENT_TIMEOUT",
        default "30s";
    /// PostgreSQL only: longest wait for a connection (a new one, or one from a
    /// busy pool); past it a request fails and `/readyz` answers `503`.
    database_connect_timeout: Duration, env "DEPLOY_GATE_DATABASE_CONNECT_TIMEOUT", default "5s";
    /// URL answering `GET` with the approvers as JSON (see `docs/approvers.md`).
    approvers_url: String, env "DEPLOY_GATE_APPROVERS_URL", unset "no approvers API",
        shown url_masked;
    /// Static approvers, comma separated; used when neither the request nor the
    /// approvers API name any.
    approvers: String, env "DEPLOY_GATE_APPROVERS", unset "no static approvers";
    /// `true` lets `POST /release` name its own approvers (`Approvers`), overriding
    /// the approvers API and the static list; otherwise such a request is refused
    /// (`400`), as whoever can edit a pipeline could name themselves.
    request_approvers: bool, env "DEPLOY_GATE_REQUEST_APPROVERS", default "false";
    /// SMTP server, e.g. `smtp://user:pass@host:587?tls=required`; `smtps://` for
    /// implicit TLS. A password needs one of the two, unless the host is loopback.
    smtp_url: Secret, env "DEPLOY_GATE_SMTP_URL",
        unset "`.eml` files in `mail_dir` and logged links", shown secret_url_masked;
    /// Lets an SMTP URL with a password reach a host other than loopback without TLS
    /// (neither `smtps://` nor `tls=required`), sending the password in clear; without
    /// it such a URL stops the start.
    smtp_allow_plaintext: bool, env "DEPLOY_GATE_SMTP_ALLOW_PLAINTEXT", default "false";
    /// Folder for `.eml` files when no SMTP server is configured, named
    /// `<UTC time>-<id>.eml` and previewed at `/mail`.
    mail_dir: PathBuf, env "DEPLOY_GATE_MAIL_DIR", default "mail";
    /// Sender address of approval emails (`Name <addr>` allowed); its domain names
    /// the `Message-ID`s.
    mail_from: String, env "DEPLOY_GATE_MAIL_FROM", default "deploy-gate@localhost";
    /// `Reply-To` of approval emails, e.g. the platform team's address.
    mail_reply_to: String, env "DEPLOY_GATE_MAIL_REPLY_TO", unset "no `Reply-To`";
    /// Folder whose `approval_email_subject.txt`, `approval_email.txt` or
    /// `approval_email.html` replace the built-in templates (minijinja; variables
    /// `release_name`, `release_id`, `team_project`, `stage`, `definition_name`,
    /// `requested_for`, `release_url`, `approver`, `requested_at`, `deadline`, `link`,
    /// `token`; those without a value are empty).
    mail_template_dir: PathBuf, env "DEPLOY_GATE_MAIL_TEMPLATE_DIR", unset "built-in templates";
    /// HMAC keys for approval tokens, 16 characters or more each; several separated by
    /// commas all verify and the first signs, so that a rotation keeps pending links
    /// (see `docs/secrets.md`). Once set, the key generated earlier keeps verifying
    /// until `deploy-gate forget-generated-token-secret` removes it.
    token_secret: Secret, env "DEPLOY_GATE_TOKEN_SECRET",
        unset "generated on first start and kept in the database", shown each_key_redacted;
    /// If set, `/release`, `/releases` and `/hooks/*` require it: `Authorization:
    /// Bearer <key>`, or Basic with the key as password. Each key is at least 24
    /// characters (e.g. `openssl rand -hex 24`); a shorter one stops the start.
    /// Several keys separated by commas are all accepted: add the new key, move
    /// clients over, remove the old one (the log names refused keys by fingerprint).
    api_key: Secret, env "DEPLOY_GATE_API_KEY", unset "open, with a warning in the log",
        shown each_key_redacted;
    /// If set, service hooks must also send it in the `X-Deploy-Gate-Hook-Secret` header.
    hook_secret: Secret, env "DEPLOY_GATE_HOOK_SECRET", unset "no hook secret";
    /// Hosts a callback-mode `PlanUrl` may name, comma separated: the job token goes
    /// only there. `*.` and a domain allows its subdomains (over `https` only); plain
    /// `http` is allowed only for a host listed by name (an on-premises server, a
    /// test double on `127.0.0.1`). Any port.
    callback_hosts: String, env "DEPLOY_GATE_CALLBACK_HOSTS",
        default "dev.azure.com,*.visualstudio.com";
    /// Release-management URL of the organization, e.g.
    /// `https://vsrm.dev.azure.com/contoso`, for write-back of decisions to Azure approvals.
    azure_devops_url: String, env "DEPLOY_GATE_AZURE_DEVOPS_URL", unset "no write-back",
        shown url_masked;
    /// Personal access token for write-back: Release (read, write & manage) for
    /// classic approvals; Build (read & execute) and Pipeline Resources (use) for YAML.
    /// Or Entra ID instead (`azure_tenant_id`, `azure_client_id`, `azure_client_secret`,
    /// or `azure_managed_identity`); setting both stops the start.
    azure_devops_pat: Secret, env "DEPLOY_GATE_AZURE_DEVOPS_PAT",
        unset "no PAT (Entra ID instead, or no write-back)";
    /// Organization URL, for YAML approvals and for who deploy-gate is in Azure
    /// DevOps (`_apis/connectionData`).
    azure_devops_org_url: String, env "DEPLOY_GATE_AZURE_DEVOPS_ORG_URL",
        unset "derived from DEPLOY_GATE_AZURE_DEVOPS_URL (`vsrm.dev.azure.com/org` → `dev.azure.com/org`, `org.vsrm.visualstudio.com` → `org.visualstudio.com`, else the same URL)",
        shown url_masked;
    /// `api-version` of the calls to the approvals APIs (older for Azure DevOps Server).
    azure_devops_api_version: String, env "DEPLOY_GATE_AZURE_DEVOPS_API_VERSION", default "7.1";
    /// Issuer of the OpenID Connect provider approvers sign in with where a policy sets
    /// `require_sign_in` (see `docs/sign-in.md`), e.g.
    /// `https://login.microsoftonline.com/<tenant id>/v2.0`; its
    /// `/.well-known/openid-configuration` is read at sign-in.
    oidc_issuer: String, env "DEPLOY_GATE_OIDC_ISSUER", unset "no sign-in", shown url_masked;
    /// Client (application) id of deploy-gate at the OpenID Connect provider; its
    /// redirect URI is `<public_url>/approval/signed-in`.
    oidc_client_id: String, env "DEPLOY_GATE_OIDC_CLIENT_ID", unset "no sign-in";
    /// Client secret of deploy-gate at the OpenID Connect provider (sent in the body
    /// of the code exchange, with PKCE).
    oidc_client_secret: Secret, env "DEPLOY_GATE_OIDC_CLIENT_SECRET",
        unset "a public client: PKCE alone";
    /// Entra ID tenant ids, comma separated: an account whose `tid` is listed is
    /// trusted by its `email` or `preferred_username` (Entra ID sends no
    /// `email_verified` for work accounts); other accounts need `email_verified=true`.
    oidc_tenants: String, env "DEPLOY_GATE_OIDC_TENANTS",
        unset "only addresses with `email_verified=true`";
    /// Entra ID tenant (directory) of the service principal deploy-gate calls Azure
    /// DevOps as, with `azure_client_id` and `azure_client_secret`, instead of a
    /// personal access token (see `docs/entra-id.md`).
    azure_tenant_id: String, env "DEPLOY_GATE_AZURE_TENANT_ID", unset "no service principal";
    /// Application (client) id of that service principal; with
    /// `azure_managed_identity`, the client id of a user-assigned managed identity.
    azure_client_id: String, env "DEPLOY_GATE_AZURE_CLIENT_ID",
        unset "no service principal (with a managed identity: the system-assigned one)";
    /// Client secret of that service principal.
    azure_client_secret: Secret, env "DEPLOY_GATE_AZURE_CLIENT_SECRET",
        unset "no service principal";
    /// `true` calls Azure DevOps as the managed identity of the Azure host deploy-gate
    /// runs on (App Service and Container Apps through `IDENTITY_ENDPOINT`, virtual
    /// machines through the instance metadata service), instead of a personal access token.
    azure_managed_identity: bool, env "DEPLOY_GATE_AZURE_MANAGED_IDENTITY", default "false";
    /// Entra ID authority the service principal signs in at (`https://` only), e.g.
    /// `https://login.microsoftonline.us` for Azure Government or
    /// `https://login.chinacloudapi.cn` for Azure China.
    azure_authority_host: String, env "DEPLOY_GATE_AZURE_AUTHORITY_HOST",
        default "https://login.microsoftonline.com", shown url_masked;
    /// PEM file of CA certificates trusted, beside the system's, for every call to
    /// Entra ID and Azure DevOps (job callbacks included): a private authority, an
    /// Azure DevOps Server with its own CA, or a TLS-inspecting proxy.
    azure_ca_file: PathBuf, env "DEPLOY_GATE_AZURE_CA_FILE", unset "the system's CAs only";
    /// How long the members of an Azure DevOps group, team or approver
    /// (`azure_approvers` of a policy) are reused before they are looked up again;
    /// past half of it a release still gets the cached members while they are
    /// refreshed in the background.
    azure_approvers_cache: Duration, env "DEPLOY_GATE_AZURE_APPROVERS_CACHE", default "10m";
    /// Approvals a release needs; `0` means every approver.
    required_approvals: u32, env "DEPLOY_GATE_REQUIRED_APPROVALS", default "0";
    /// How long a release may stay undecided before it is `expired`.
    approval_deadline: Duration, env "DEPLOY_GATE_APPROVAL_DEADLINE", default "48h";
    /// Rounds decided longer ago than this (e.g. `400d`) are deleted with their
    /// approvals, decisions, jobs and callbacks by a background task, a small batch
    /// at a time; pending rounds are never deleted. At least `1d`: a gate polling a
    /// deleted round would start a new one (see `docs/operations.md`, *Retention*).
    retention: Duration, env "DEPLOY_GATE_RETENTION", unset "every release is kept";
    /// Requests to `/approval` one client may make per minute (then `429` with
    /// `Retry-After`); `0` turns the limit off.
    rate_limit_approval: u32, env "DEPLOY_GATE_RATE_LIMIT_APPROVAL", default "60";
    /// Failed authentications per client and minute before `/release`, `/releases`
    /// and `/hooks/*` answer that client's requests without a valid key `429` for a
    /// while (a request with a valid key is always served); `0` turns the limit off.
    rate_limit_auth_failures: u32, env "DEPLOY_GATE_RATE_LIMIT_AUTH_FAILURES", default "20";
    /// Header a trusted proxy sets to the client's address (e.g. `X-Forwarded-For`)
    /// for the rate limits. Addresses count from its right end, which the proxies
    /// write; the caller writes everything left of them.
    client_ip_header: String, env "DEPLOY_GATE_CLIENT_IP_HEADER",
        unset "the connection's address";
    /// With `client_ip_header`: how many trusted proxies append to it, so that the
    /// address this many from its right end is the client as the outermost proxy saw
    /// it (1: the rightmost address).
    trusted_proxy_hops: u32, env "DEPLOY_GATE_TRUSTED_PROXY_HOPS", default "1";
    /// Largest accepted request body in bytes.
    max_body_bytes: usize, env "DEPLOY_GATE_MAX_BODY_BYTES", default "65536";
    /// How long a client may take to send a request's head (request line and headers),
    /// counted from its connection or from the first byte of its next request; then the
    /// connection is closed, however slowly the bytes kept coming.
    http_header_timeout: Duration, env "DEPLOY_GATE_HTTP_HEADER_TIMEOUT", default "10s";
    /// How long a client may take to send a request's body once its head arrived; then
    /// it is answered `408` and the connection is closed.
    http_body_timeout: Duration, env "DEPLOY_GATE_HTTP_BODY_TIMEOUT", default "30s";
    /// How long a kept-alive connection may wait for its next request before it is closed.
    http_idle_timeout: Duration, env "DEPLOY_GATE_HTTP_IDLE_TIMEOUT", default "75s";
    /// Connections served at once; past it a new connection is answered `503` with
    /// `Connection: close` and `Retry-After`. Keep it below the open-files limit.
    http_max_connections: usize, env "DEPLOY_GATE_HTTP_MAX_CONNECTIONS", default "512";
    /// Jobs run at once by this process, but for the emails of a release's approvers
    /// just found, which the worker that found them sends side by side (up to 16);
    /// each email on its way holds one SMTP connection, so more workers send faster
    /// if the mail server accepts that many connections.
    workers: usize, env "DEPLOY_GATE_WORKERS", default "4";
    /// First retry delay of a failed job; it doubles with each attempt.
    retry_base: Duration, env "DEPLOY_GATE_RETRY_BASE", default "1s";
    /// Longest retry delay of a failed job.
    retry_cap: Duration, env "DEPLOY_GATE_RETRY_CAP", default "5m";
    /// Failed attempts after which a job is dead (and the release says so).
    job_max_attempts: u32, env "DEPLOY_GATE_JOB_MAX_ATTEMPTS", default "25";
    /// How long a claimed job stays locked without a renewal (renewed every third of it
    /// while the job runs); a job whose process died is taken up again after this.
    job_lease: Duration, env "DEPLOY_GATE_JOB_LEASE", default "5s";
    /// How often idle workers look for due jobs (enqueueing also wakes them).
    poll_interval: Duration, env "DEPLOY_GATE_POLL_INTERVAL", default "1s";
    /// Log format (the filter is `RUST_LOG`, `info` by default).
    log_format: LogFormat, env "DEPLOY_GATE_LOG_FORMAT", default "pretty";
    /// The service the client commands (`releases`, `status`, `cancel`, `resend`) talk
    /// to, e.g. `https://gate.example.com`; they send the first key of `api_key` as a
    /// Bearer token.
    url: String, env "DEPLOY_GATE_URL",
        unset "`http://` + `bind` (`0.0.0.0` and `::` as loopback)", shown url_masked;
}

impl Settings {
    /// Reads a TOML settings file, and the files its `<secret>_file` keys name
    /// (relative to its folder).
    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let folder = path.parent().unwrap_or(std::path::Path::new("."));
        Self::from_toml_str(&text, folder)
            .with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Reads settings written as TOML; the files its `<secret>_file` keys name
    /// are read relative to `folder`.
    pub fn from_toml_str(text: &str, folder: &std::path::Path) -> anyhow::Result<Self> {
        let mut table: toml::Table = toml::from_str(text)?;
        let sources = files::read_toml_files(&mut table, folder)?;
        // Without file keys, the text itself is read, so that an error shows its line.
        let settings: Settings = if sources.any_from_file() {
            table.try_into()?
        } else {
            toml::from_str(text)?
        };
        Ok(Settings {
            sources,
            ..settings
        })
    }
}
