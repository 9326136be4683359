//! Finding a release's approvers: the approvers API, else the static list.
//! (Approvers named in the request are stored with the release and never reach
//! here; a policy's Azure DevOps source is `azure::approvers_source`.)
//! The approvers API may also answer groups, which approval policies refer to.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::{
    approver::{ApproverEmail, dedup},
    policy::Found,
    release::ReleaseKey,
};

/// How long the approvers API may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest approvers API answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The approvers API (`DEPLOY_GATE_APPROVERS_URL`) and the static list (`DEPLOY_GATE_APPROVERS`).
pub struct ApproverSource {
    client: reqwest::Client,
    url: Option<url::Url>,
    static_list: Vec<ApproverEmail>,
}

/// Accepted answers: `{"approvers": [...], "groups": {"name": [...]}}` (either key may be
/// absent) or a bare list; items are addresses or objects with `email`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Wrapped {
        #[serde(default)]
        approvers: Vec<Item>,
        #[serde(default)]
        groups: BTreeMap<String, Vec<Item>>,
    },
    Bare(Vec<Item>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Address(String),
    Person { email: String },
}

impl ApproverSource {
    /// A source asking `url` first, then falling back to `static_list`.
    pub fn new(url: Option<url::Url>, static_list: Vec<ApproverEmail>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("deploy-gate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url,
            static_list,
        })
    }

    /// Checks where approvers come from: asks the approvers API for a probe
    /// release (`TeamProject` `deploy-gate-doctor`), or counts the static list.
    pub async fn check(&self) -> anyhow::Result<String> {
        let Some(url) = &self.url else {
            return Ok(format!(
                "no approvers API; {} static approver(s)",
                self.static_list.len()
            ));
        };
        let key = ReleaseKey::parse("deploy-gate-doctor", "0", "")?;
        let answer = self.fetch(url, &key, "deploy-gate doctor").await?;
        Ok(format!(
            "the approvers API answered ({} approver(s) for a probe release)",
            answer.approvers.len()
        ))
    }

    /// Resolves approvers for a release. Fails (so the job retries) when the API
    /// cannot be reached or answers garbage; an empty answer falls back to the static list.
    pub async fn resolve(&self, key: &ReleaseKey, name: &str) -> anyhow::Result<Found> {
        let mut groups = BTreeMap::new();
        if let Some(url) = &self.url {
            let answer = self.fetch(url, key, name).await?;
            let (valid, invalid) = split_valid(answer.approvers);
            let mut skipped = invalid;
            for (group, items) in answer.groups {
                let (members, invalid) = split_valid(items);
                skipped.extend(invalid);
                groups.insert(group, members);
            }
            let problem = (!skipped.is_empty()).then(|| {
                format!(
                    "skipped invalid approver addresses from the approvers API: {}",
                    skipped.join(", ")
                )
            });
            if !valid.is_empty() {
                return Ok(Found {
                    approvers: valid,
                    source: "approvers_url".into(),
                    problem,
                    groups,
                });
            }
        }
        if !self.static_list.is_empty() {
            return Ok(Found {
                approvers: self.static_list.clone(),
                source: "static".into(),
                problem: None,
                groups,
            });
        }
        Ok(Found {
            approvers: Vec::new(),
            source: "none".into(),
            problem: Some(self.nobody_found()),
            groups,
        })
    }

    fn nobody_found(&self) -> String {
        let api = if self.url.is_some() {
            "the approvers API returned no valid approver"
        } else {
            "DEPLOY_GATE_APPROVERS_URL is not set"
        };
        format!(
            "no approvers found: the request named none, {api}, and DEPLOY_GATE_APPROVERS is empty; \
             the release cannot be approved and will expire"
        )
    }

    async fn fetch(&self, url: &url::Url, key: &ReleaseKey, name: &str) -> anyhow::Result<Parsed> {
        let response = self
            .client
            .get(url.clone())
            .query(&[
                ("TeamProject", key.team_project.as_str()),
                ("ReleaseId", key.release_id.as_str()),
                ("Stage", key.stage.as_str()),
                ("ReleaseName", name),
            ])
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .context("approvers API unreachable")?;
        let status = response.status();
        if !status.is_success() {
            bail!("approvers API answered HTTP {status}");
        }
        let body = response
            .bytes()
            .await
            .context("reading the approvers API answer")?;
        if body.len() > MAX_ANSWER_BYTES {
            bail!("approvers API answer is larger than {MAX_ANSWER_BYTES} bytes");
        }
        let answer: Answer = serde_json::from_slice(&body).context(
            "approvers API answer is not {\"approvers\": [...], \"groups\": {...}} or a list of addresses or {\"email\": ...} objects",
        )?;
        Ok(Parsed::from(answer))
    }
}

/// An answer, whichever its shape.
struct Parsed {
    approvers: Vec<Item>,
    groups: BTreeMap<String, Vec<Item>>,
}

impl From<Answer> for Parsed {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Wrapped { approvers, groups } => Self { approvers, groups },
            Answer::Bare(approvers) => Self {
                approvers,
                groups: BTreeMap::new(),
            },
        }
    }
}

fn split_valid(items: Vec<Item>) -> (Vec<ApproverEmail>, Vec<String>) {
    let (mut valid, mut invalid) = (Vec::new(), Vec::new());
    for item in items {
        let (Item::Address(text) | Item::Person { email: text }) = item;
        match ApproverEmail::parse(&text) {
            Ok(email) => valid.push(email),
            Err(err) => invalid.push(err.address),
        }
    }
    (dedup(valid), invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> (Vec<String>, Vec<String>) {
        let answer: Answer = serde_json::from_str(json).unwrap();
        let (valid, invalid) = split_valid(Parsed::from(answer).approvers);
        (
            valid.iter().map(|e| e.as_str().to_owned()).collect(),
            invalid,
        )
    }

    #[test]
    fn both_documented_shapes_are_understood() {
        assert_eq!(
            parse(r#"{"approvers": ["a@x.com", "b@y.com"]}"#).0,
            ["a@x.com", "b@y.com"]
        );
        assert_eq!(
            parse(r#"[{"email": "a@x.com", "name": "A"}, "b@y.com"]"#).0,
            ["a@x.com", "b@y.com"]
        );
    }

    #[test]
    fn groups_may_come_with_or_without_approvers() {
        let answer: Answer =
            serde_json::from_str(r#"{"groups": {"sre": ["a@x.com", {"email": "b@y.com"}]}}"#)
                .unwrap();
        let parsed = Parsed::from(answer);
        assert!(parsed.approvers.is_empty());
        let (members, _) = split_valid(parsed.groups.into_values().next().unwrap());
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn invalid_addresses_are_set_aside() {
        let (valid, invalid) = parse(r#"{"approvers": ["a@x.com", "not-an-address"]}"#);
        assert_eq!(valid, ["a@x.com"]);
        assert_eq!(invalid, ["not-an-address"]);
    }
}
