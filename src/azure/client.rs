//! Calls to Azure DevOps through azure_core's HTTP pipeline: its exponential
//! retry policy retries 408, 429 and 5xx and honours `Retry-After`.

use std::sync::Arc;

use anyhow::Context as _;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Method, Pipeline, PipelineSendOptions,
    Request, RetryOptions, Transport, Url,
};
use serde::{Serialize, de::DeserializeOwned};

use super::auth::AzureAuth;

/// How a request to Azure DevOps authenticates.
pub enum Auth<'a> {
    /// `Authorization: Bearer <job token>` (callbacks, azure-devops.md §2.1).
    Bearer(&'a str),
    /// deploy-gate's own identity: its PAT as Basic, or an Entra ID token as
    /// Bearer (approvals API, look-ups, azure-devops.md §4).
    Own(&'a AzureAuth),
}

/// A JSON client for Azure DevOps with in-request retries.
#[derive(Clone)]
pub struct AzureClient {
    pipeline: Pipeline,
    http: Arc<reqwest::Client>,
}

/// In-request retries; the job queue retries again, with its own backoff, if these run out.
fn retry_options() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: time::Duration::milliseconds(250),
        max_retries: 4,
        max_total_elapsed: time::Duration::seconds(30),
        max_delay: time::Duration::seconds(10),
    })
}

impl AzureClient {
    /// A client whose requests time out after `timeout` and never follow a redirect:
    /// the job token and the PAT go only to the URL they were meant for. It trusts
    /// `extra_roots` beside the system's CAs (`DEPLOY_GATE_AZURE_CA_FILE`).
    pub fn new(
        timeout: std::time::Duration,
        extra_roots: &[reqwest::Certificate],
    ) -> reqwest::Result<Self> {
        let http = Arc::new(
            reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .tls_certs_merge(extra_roots.iter().cloned())
                .build()?,
        );
        let pipeline = Pipeline::new(
            Some("deploy-gate"),
            Some(env!("CARGO_PKG_VERSION")),
            Self::options_over(&http),
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Self { pipeline, http })
    }

    /// Options for another pipeline (an Entra ID credential's) over the same
    /// connections, timeout, trusted CAs and retries.
    pub fn options(&self) -> ClientOptions {
        Self::options_over(&self.http)
    }

    fn options_over(http: &Arc<reqwest::Client>) -> ClientOptions {
        ClientOptions {
            retry: retry_options(),
            transport: Some(Transport::new(http.clone())),
            ..ClientOptions::default()
        }
    }

    /// Sends `body` as JSON; fails unless Azure DevOps answers 2xx (after retries).
    pub async fn send_json(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        body: &impl Serialize,
    ) -> anyhow::Result<()> {
        self.call(method, url, auth, Some(serde_json::to_vec(body)?))
            .await
            .map(drop)
    }

    /// Reads the JSON answer of a `GET`; fails unless Azure DevOps answers 2xx
    /// (after retries) with JSON of that shape.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        auth: Auth<'_>,
    ) -> anyhow::Result<T> {
        let body = self.call(Method::Get, url, auth, None).await?;
        serde_json::from_slice(&body).context("Azure DevOps answered with unexpected JSON")
    }

    /// Posts `body` as JSON and reads the JSON answer (a look-up such as
    /// Graph's subject lookup); fails unless Azure DevOps answers 2xx (after
    /// retries) with JSON of that shape.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        auth: Auth<'_>,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let body = self
            .call(Method::Post, url, auth, Some(serde_json::to_vec(body)?))
            .await?;
        serde_json::from_slice(&body).context("Azure DevOps answered with unexpected JSON")
    }

    /// One call; the answer's body when it is 2xx.
    async fn call(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Vec<u8>> {
        let url: Url = url
            .parse()
            .with_context(|| format!("invalid Azure DevOps URL {url}"))?;
        let mut request = Request::new(url.clone(), method);
        request.insert_header("accept", "application/json");
        request.insert_header("authorization", authorization(&auth).await?);
        if let Some(body) = body {
            request.insert_header("content-type", "application/json");
            request.set_body(body);
        }
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        let response = self
            .pipeline
            .send(&Context::new(), &mut request, Some(options))
            .await
            .with_context(|| format!("Azure DevOps unreachable at {}", redact(&url)))?;
        let status = response.status();
        let body = response.body().as_ref().to_vec();
        if !status.is_success() {
            // Azure's own words go to the log only, trimmed: the error becomes a
            // release's problem, which callers and approvers read.
            let answer = String::from_utf8_lossy(&body)
                .chars()
                .take(ANSWER_LOGGED_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>();
            tracing::warn!(status = u16::from(status), url = %redact(&url), answer, "Azure DevOps refused a request");
            return Err(Refused {
                status: u16::from(status),
            }
            .into());
        }
        Ok(body)
    }
}

/// Most characters of an Azure DevOps answer written to the log.
const ANSWER_LOGGED_CHARS: usize = 200;

/// Azure DevOps answered with an error status (after the in-request retries).
#[derive(Debug, thiserror::Error)]
#[error("{}", refusal(*status))]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
}

impl Refused {
    /// Whether asking again cannot help: the request, the token or its rights
    /// are wrong (400, 401, 403), or the target is gone (404).
    pub fn is_permanent(&self) -> bool {
        matches!(self.status, 400 | 401 | 403 | 404)
    }

    /// Whether `error` (or one of its causes) is such a permanent refusal.
    pub fn permanent_in(error: &anyhow::Error) -> bool {
        error
            .chain()
            .any(|cause| cause.downcast_ref::<Self>().is_some_and(Self::is_permanent))
    }
}

/// A fixed description of a refusal, e.g. `Azure DevOps answered HTTP 404 Not Found`,
/// with what to check when asking again cannot help.
fn refusal(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let said = format!("Azure DevOps answered HTTP {status} {reason}");
    let said = said.trim_end();
    match status {
        401 => format!("{said}: the token is missing, wrong or expired"),
        403 => format!(
            "{said}: the token's identity may not do this (is it an assigned approver, with the scopes the call needs?)"
        ),
        400 | 404 => format!(
            "{said}: Azure will not take this request as sent (was the approval already completed, or is the project or id wrong?)"
        ),
        _ => said.to_owned(),
    }
}

async fn authorization(auth: &Auth<'_>) -> anyhow::Result<String> {
    match auth {
        Auth::Bearer(token) => Ok(format!("Bearer {token}")),
        Auth::Own(own) => own.authorization().await,
    }
}

/// The URL without its query string, for logs and errors.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}
