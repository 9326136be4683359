//! Approvers from Azure DevOps, for a policy's `azure_approvers`: the members
//! of a group, of a team, or of whoever an approval is assigned to. Answers
//! are cached for `DEPLOY_GATE_AZURE_APPROVERS_CACHE`; past half of that a
//! release still gets the cached members while a refresh runs in the
//! background, so a release never waits for a refresh while a cached answer is
//! valid. An expired answer is looked up again before it is used; a look-up
//! that fails fails the job, which is retried (the release shows `approvers_failing`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, TimeDelta, Utc};

use super::graph::{Directory, Members};
use crate::{
    clock::Clock,
    domain::{
        approver::{ApproverEmail, dedup},
        policy::{AzureApprovers, Found},
    },
};

/// What was looked up: the cache's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lookup {
    Group(String),
    Team { project: String, team: String },
    Identities(Vec<String>),
}

struct Entry {
    members: Members,
    fetched_at: DateTime<Utc>,
    refreshing: bool,
}

struct Inner {
    directory: Directory,
    ttl: TimeDelta,
    clock: Clock,
    cache: Mutex<HashMap<Lookup, Entry>>,
}

/// Azure DevOps groups, teams and assigned approvers as approvers, cached.
#[derive(Clone)]
pub struct AzureApproverSource {
    inner: Arc<Inner>,
}

impl AzureApproverSource {
    /// Looks members up in `directory`, reusing an answer for `ttl` on `clock`.
    pub fn new(directory: Directory, ttl: std::time::Duration, clock: Clock) -> Self {
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        Self {
            inner: Arc::new(Inner {
                directory,
                ttl,
                clock,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The release's approvers from `source`: `project` is the release's (for a
    /// team), `assigned` the identity ids its Azure approvals are assigned to.
    /// Fails (so the job retries) when Azure DevOps cannot answer.
    pub async fn resolve(
        &self,
        source: &AzureApprovers,
        project: &str,
        assigned: &[String],
    ) -> anyhow::Result<Found> {
        let (lookup, name) = match source {
            AzureApprovers::Group(descriptor) => (Lookup::Group(descriptor.clone()), "azure_group"),
            AzureApprovers::Team(team) => (
                Lookup::Team {
                    project: project.to_owned(),
                    team: team.clone(),
                },
                "azure_team",
            ),
            AzureApprovers::Assigned => {
                let mut ids = assigned.to_vec();
                ids.sort();
                ids.dedup();
                (Lookup::Identities(ids), "azure_assigned")
            }
        };
        let members = match &lookup {
            Lookup::Identities(ids) if ids.is_empty() => Members::default(),
            _ => self.members(lookup).await?,
        };
        Ok(found(source, name, members))
    }

    async fn members(&self, lookup: Lookup) -> anyhow::Result<Members> {
        let now = self.inner.clock.now();
        if let Some((members, refresh)) = self.inner.cached(&lookup, now) {
            if refresh {
                let inner = self.inner.clone();
                tokio::spawn(async move { inner.refresh(lookup).await });
            }
            return Ok(members);
        }
        let members = self.inner.fetch(&lookup).await?;
        self.inner
            .keep(lookup, members.clone(), self.inner.clock.now());
        Ok(members)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Lookup, Entry>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A still valid answer, and whether to refresh it now (past half its
    /// life, and no refresh under way).
    fn cached(&self, lookup: &Lookup, now: DateTime<Utc>) -> Option<(Members, bool)> {
        let mut cache = self.lock();
        let entry = cache.get_mut(lookup)?;
        let age = now - entry.fetched_at;
        if age >= self.ttl {
            return None;
        }
        let refresh = age >= self.ttl / 2 && !entry.refreshing;
        entry.refreshing |= refresh;
        Some((entry.members.clone(), refresh))
    }

    fn keep(&self, lookup: Lookup, members: Members, fetched_at: DateTime<Utc>) {
        let entry = Entry {
            members,
            fetched_at,
            refreshing: false,
        };
        let mut cache = self.lock();
        // Answers past their expiry are never used again: drop them.
        cache.retain(|_, e| fetched_at - e.fetched_at < self.ttl);
        cache.insert(lookup, entry);
    }

    async fn refresh(&self, lookup: Lookup) {
        match self.fetch(&lookup).await {
            Ok(members) => {
                tracing::info!(lookup = ?lookup, "Azure DevOps approvers refreshed");
                self.keep(lookup, members, self.clock.now());
            }
            Err(err) => {
                // The cached answer stays until it expires; the next release tries again.
                tracing::warn!(error = format!("{err:#}"), lookup = ?lookup, "refreshing Azure DevOps approvers failed");
                if let Some(entry) = self.lock().get_mut(&lookup) {
                    entry.refreshing = false;
                }
            }
        }
    }

    async fn fetch(&self, lookup: &Lookup) -> anyhow::Result<Members> {
        match lookup {
            Lookup::Group(descriptor) => self.directory.group_members(descriptor).await,
            Lookup::Team { project, team } => self.directory.team_members(project, team).await,
            Lookup::Identities(ids) => self.directory.identity_members(ids).await,
        }
    }
}

/// Valid addresses, canonical and de-duplicated, and the invalid ones as given.
fn split_valid_addresses(addresses: Vec<String>) -> (Vec<ApproverEmail>, Vec<String>) {
    let (mut valid, mut invalid) = (Vec::new(), Vec::new());
    for address in addresses {
        match ApproverEmail::parse(&address) {
            Ok(email) => valid.push(email),
            Err(err) => invalid.push(err.address),
        }
    }
    (dedup(valid), invalid)
}

/// The members as a release's own approvers, with what was skipped on the way.
fn found(source: &AzureApprovers, name: &str, members: Members) -> Found {
    let (approvers, mut skipped) = split_valid_addresses(members.addresses);
    skipped.extend(members.without_address);
    let what = source.describe();
    let problem = if approvers.is_empty() {
        let why = match source {
            AzureApprovers::Assigned => {
                "no Azure approval of the release names an approver with a mail address"
            }
            _ => "no member has a mail address",
        };
        Some(format!(
            "no approvers found in {what}: {why}; the release cannot be approved and will expire"
        ))
    } else {
        (!skipped.is_empty()).then(|| {
            format!(
                "skipped members of {what} without a valid mail address: {}",
                skipped.join(", ")
            )
        })
    };
    Found {
        approvers,
        source: name.to_owned(),
        problem,
        groups: Default::default(),
    }
}
