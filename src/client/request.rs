//! The HTTP side of the client commands: where the service is, the key sent to it,
//! and what a failed request means for the user and the exit code.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use crate::{secret::Secret, settings::Config};

/// Longest wait for a connection to the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a whole answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The service the client commands talk to, and the key they send.
pub struct Target {
    base: url::Url,
    api_key: Option<Secret>,
    http: reqwest::Client,
}

/// Why a command failed; each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// `404`: no such release or approver.
    NotFound,
    /// Any other `4xx`: wrong or missing key, a bad parameter, a release already decided.
    Refused,
    /// A `5xx`, or an answer that is not what the service sends.
    Failed,
    /// No answer: nothing listens there, or it did not answer in time.
    Unreachable,
}

impl FailureKind {
    /// The process's exit code (`docs/client.md`).
    pub fn exit_code(self) -> i32 {
        match self {
            Self::NotFound => 3,
            Self::Refused => 4,
            Self::Failed => 5,
            Self::Unreachable => 6,
        }
    }
}

/// A failed command: what to tell the user, and the service's problem document, if any.
#[derive(Debug)]
pub struct Failure {
    /// Which kind of failure.
    pub kind: FailureKind,
    /// The message for standard error.
    pub message: String,
    /// The body the service answered with (a problem document), printed with `--json`.
    pub body: Option<String>,
}

impl Failure {
    /// An answer the service would not send: a `5xx`-class failure.
    pub fn unexpected(what: &str, cause: impl std::fmt::Display) -> Self {
        Self {
            kind: FailureKind::Failed,
            message: format!("the service's answer is not {what}: {cause}"),
            body: None,
        }
    }
}

/// The fields of a problem document the client shows.
#[derive(Deserialize)]
struct ProblemFields {
    title: Option<String>,
    detail: Option<String>,
}

impl Target {
    /// The service of `DEPLOY_GATE_URL`, else the one on `DEPLOY_GATE_BIND`, with the
    /// first key of `DEPLOY_GATE_API_KEY`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let base = match &config.service_url {
            Some(url) => url.clone(),
            None => url_of_bind(config.bind)?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ANSWER_TIMEOUT)
            .user_agent(concat!("deploy-gate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            base,
            api_key: config.api_keys.first().cloned(),
            http,
        })
    }

    /// The URL of the path `segments` (each percent-encoded, so a `/`, space or `+` stays
    /// inside its segment) under the service's URL, with the `query` pairs.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        // An http(s) URL always has path segments; a base path ("/gate/") is kept.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(name, value)| (name, value)));
        }
        url
    }

    /// Sends `method url` and returns the body of a `2xx` answer.
    pub async fn send(&self, method: Method, url: url::Url) -> Result<String, Failure> {
        let mut request = self
            .http
            .request(method, url)
            .header(header::ACCEPT, "application/json");
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let answer = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = answer.status();
        let retry_after = answer
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer.text().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(self.refusal(status, body, retry_after.as_deref()))
    }

    /// The failure of a `4xx` or `5xx` answer: its problem's title and detail, and what to do.
    fn refusal(&self, status: StatusCode, body: String, retry_after: Option<&str>) -> Failure {
        let said = match serde_json::from_str::<ProblemFields>(&body) {
            Ok(ProblemFields {
                title: Some(title),
                detail,
            }) => match detail {
                Some(detail) => format!("{title}: {detail}"),
                None => title,
            },
            _ => format!("the service answered {status}"),
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.api_key.is_none() => {
                "\nhint: the service requires an API key; set DEPLOY_GATE_API_KEY to one of its keys"
                    .to_owned()
            }
            StatusCode::UNAUTHORIZED => {
                "\nhint: DEPLOY_GATE_API_KEY (its first key) is not one the service accepts"
                    .to_owned()
            }
            StatusCode::TOO_MANY_REQUESTS => retry_after
                .map(|s| format!("\nhint: retry after {s} s"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let kind = match status {
            StatusCode::NOT_FOUND => FailureKind::NotFound,
            s if s.is_client_error() => FailureKind::Refused,
            _ => FailureKind::Failed,
        };
        Failure {
            kind,
            message: format!("{said}{hint}"),
            body: Some(body),
        }
    }

    /// The failure of a request that got no answer, naming the URL and what to check.
    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        let mut shown = self.base.clone();
        // Credentials in the URL are not shown.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let cause = if error.is_timeout() {
            format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())
        } else {
            innermost_cause(error)
        };
        Failure {
            kind: FailureKind::Unreachable,
            message: format!(
                "cannot reach the service at {shown}: {cause}\nhint: check that deploy-gate \
                 runs there and that DEPLOY_GATE_URL names it (without it, the client uses \
                 http:// and DEPLOY_GATE_BIND)"
            ),
            body: None,
        }
    }
}

/// Where this machine reaches a service bound to `bind`: the same address, on
/// loopback when it is bound to every interface (`0.0.0.0`, `::`).
pub fn local_address(mut bind: SocketAddr) -> SocketAddr {
    if bind.ip().is_unspecified() {
        bind.set_ip(match bind {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    bind
}

/// `http://` and the bound address, as [`local_address`] reaches it.
fn url_of_bind(bind: SocketAddr) -> anyhow::Result<url::Url> {
    Ok(url::Url::parse(&format!(
        "http://{}/",
        local_address(bind)
    ))?)
}

/// The last error of `error`'s chain: the one that says what happened
/// ("Connection refused"), where the outer ones say what was being done.
fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
