//! Callback registrations: where a decision is reported to a check or an
//! agentless job in callback mode.

use crate::secret::Secret;

/// Where and how to report a decision to a check or agentless job in callback mode
/// (the "predefined variables for callback mode", azure-devops.md §1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanCallback {
    /// `PlanUrl`: the organization URL, e.g. `https://dev.azure.com/contoso/`.
    pub plan_url: String,
    /// `ProjectId`: the project GUID.
    pub project_id: String,
    /// `HubName`: `build`, `release`, `gates`, `checks`…; passed through as given.
    pub hub_name: String,
    /// `PlanId`.
    pub plan_id: String,
    /// `JobId`.
    pub job_id: String,
    /// `TimelineId`, if sent.
    pub timeline_id: Option<String>,
    /// `TaskInstanceId`: becomes `taskId` in the TaskCompleted event.
    pub task_instance_id: String,
    /// `AuthToken`: the job access token, used once for the callback and then deleted.
    pub auth_token: Secret,
}

/// A stored callback registration.
#[derive(Clone, Debug)]
pub struct CallbackRecord {
    /// Row id.
    pub id: i64,
    /// The release it reports on.
    pub release_id: i64,
    /// The target; its token is empty once delivered.
    pub target: PlanCallback,
    /// Whether the TaskStarted event was delivered (or given up).
    pub started: bool,
    /// Whether its outcome line is stored: the release is decided, and
    /// TaskCompleted follows once every line is posted.
    pub ended: bool,
    /// Whether the TaskCompleted event was delivered.
    pub delivered: bool,
}

/// What a line of a task's timeline feed tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// What the task waits for, or a decision.
    Progress,
    /// How the release was decided: the last line, which TaskCompleted follows.
    Outcome,
}

impl LineKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progress => "progress",
            Self::Outcome => "outcome",
        }
    }
}

/// A line for a task's timeline feed, stored until it is posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLine {
    /// Row id: lines are posted in this order.
    pub id: i64,
    /// The text, without its time stamp.
    pub text: String,
    /// When what it tells happened.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Hosts a `PlanUrl` may name, so that the job token only goes to Azure DevOps:
/// each entry a host name (any port), or `*.` and a domain for its subdomains.
/// Plain `http` is allowed only for a host listed by its own name (an on-premises
/// server, a test double); a subdomain pattern allows `https` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackHosts {
    entries: Vec<HostEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostEntry {
    /// `dev.azure.com`, `127.0.0.1`.
    Exact(String),
    /// `*.visualstudio.com`, kept as `.visualstudio.com`.
    Subdomains(String),
}

impl CallbackHosts {
    /// Parses a comma-separated list, e.g. `dev.azure.com,*.visualstudio.com`; fails on an
    /// empty list, an empty entry, or an entry that is not a host name.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list
            .split(',')
            .map(|entry| parse_entry(entry.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    /// Whether `plan_url` (already parsed) may receive the job token.
    pub fn allow(&self, plan_url: &url::Url) -> bool {
        let Some(host) = plan_url.host_str() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let https = plan_url.scheme() == "https";
        self.entries.iter().any(|entry| match entry {
            HostEntry::Exact(name) => *name == host && (https || plan_url.scheme() == "http"),
            HostEntry::Subdomains(suffix) => https && host.ends_with(suffix.as_str()),
        })
    }
}

fn parse_entry(entry: &str) -> Result<HostEntry, String> {
    let (pattern, name) = match entry.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, entry),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !valid {
        return Err(format!("{entry:?} is not a host name or `*.` and a domain"));
    }
    let name = name.to_ascii_lowercase();
    Ok(if pattern {
        HostEntry::Subdomains(format!(".{name}"))
    } else {
        HostEntry::Exact(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(hosts: &str, url: &str) -> bool {
        CallbackHosts::parse(hosts)
            .unwrap()
            .allow(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn the_default_allows_azure_devops_and_nothing_else() {
        let default = "dev.azure.com,*.visualstudio.com";
        for url in [
            "https://dev.azure.com/contoso/",
            "https://DEV.azure.com:443/contoso",
            "https://contoso.visualstudio.com/",
            "https://contoso.vsrm.visualstudio.com/",
        ] {
            assert!(allowed(default, url), "{url}");
        }
        for url in [
            "https://visualstudio.com/",
            "https://evilvisualstudio.com/",
            "https://dev.azure.com.evil.example/",
            "https://azure.com/",
            "http://contoso.visualstudio.com/",
            "ftp://dev.azure.com/",
            "https://127.0.0.1/",
        ] {
            assert!(!allowed(default, url), "{url}");
        }
    }

    #[test]
    fn plain_http_only_for_a_host_listed_by_name() {
        assert!(allowed("127.0.0.1", "http://127.0.0.1:8123/"));
        assert!(allowed("tfs.corp.example", "http://tfs.corp.example/tfs/"));
        assert!(!allowed("*.corp.example", "http://tfs.corp.example/"));
        assert!(allowed("*.corp.example", "https://tfs.corp.example/"));
    }

    #[test]
    fn empty_or_odd_entries_are_refused() {
        for list in ["", "dev.azure.com,", "*.", "https://dev.azure.com", "a b"] {
            assert!(CallbackHosts::parse(list).is_err(), "{list:?}");
        }
    }
}
