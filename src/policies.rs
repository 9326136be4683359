//! Approval policies per project (and stage), from the `[[policies]]` and
//! `[groups]` tables of the TOML configuration: who must approve, whether the
//! requester may approve, the deadline, reminders, escalation and channels.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::{
    domain::{
        approver::{ApproverEmail, dedup},
        channel::ChannelKind,
        policy::{Needed, RELEASE_APPROVERS, Requirement, Rule},
        release::ReleaseKey,
    },
    settings::Secret,
};

/// A `[[policies]]` entry as written in the TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// The project it applies to; `*` for every project without a policy of its own.
    pub team_project: String,
    /// The stage it applies to; absent for every stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// Whether the requester's own approval counts [default: false].
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Time from creation until an undecided release expires [default: `approval_deadline`].
    #[serde(default, with = "crate::settings::humantime_serde_opt")]
    pub deadline: Option<Duration>,
    /// What must be approved; empty means every approver of the release.
    #[serde(default)]
    pub require: Vec<RequirementSettings>,
    /// When, after creation, to remind approvers who have not decided, e.g. `["4h", "20h"]`.
    #[serde(default)]
    pub reminders: Vec<String>,
    /// When, after creation, to tell `escalate_to` that the release is still undecided.
    #[serde(default, with = "crate::settings::humantime_serde_opt")]
    pub escalate_after: Option<Duration>,
    /// Who is told when the release is still undecided after `escalate_after`.
    #[serde(default)]
    pub escalate_to: Option<String>,
    /// Microsoft Teams incoming webhook (Workflows) URL; each approver's request is posted as a card.
    #[serde(default)]
    pub teams_webhook: Option<Secret>,
    /// Slack incoming webhook URL; each approver's request is posted as a message.
    #[serde(default)]
    pub slack_webhook: Option<Secret>,
    /// Any HTTP endpoint; each approver's request is posted as JSON (see the README).
    #[serde(default)]
    pub webhook: Option<Secret>,
}

/// One `require` item: `{ group = "sre", count = 2 }` or `{ group = "owners", all = true }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementSettings {
    /// A group of `[groups]` or of the approvers API's answer; `approvers` is the release's own list.
    pub group: String,
    /// Approvals needed from the group.
    #[serde(default)]
    pub count: Option<u32>,
    /// Every member must approve.
    #[serde(default)]
    pub all: bool,
}

/// Who is told when a release stays undecided.
#[derive(Clone, Debug)]
pub struct Escalation {
    /// After this long from creation.
    pub after: Duration,
    /// This address.
    pub to: ApproverEmail,
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Project, or `*`.
    pub team_project: String,
    /// Stage, if the policy is for one stage.
    pub stage: Option<String>,
    /// Whether the requester's approval counts.
    pub self_approval: bool,
    /// Deadline override.
    pub deadline: Option<Duration>,
    /// Requirements by group name; empty means all of the release's approvers.
    pub requirements: Vec<(String, Needed)>,
    /// Reminder offsets from creation.
    pub reminders: Vec<Duration>,
    /// Escalation, if configured.
    pub escalation: Option<Escalation>,
    /// Channels besides email, with their URLs.
    pub channels: Vec<(ChannelKind, Secret)>,
}

/// Every policy and group of the configuration.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    policies: Vec<Policy>,
    groups: BTreeMap<String, Vec<ApproverEmail>>,
}

/// What a release's approvers and rule came to.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// Everyone to ask.
    pub approvers: Vec<ApproverEmail>,
    /// The rule their decisions are judged by.
    pub rule: Rule,
    /// A note on what is wrong (an empty or unknown group).
    pub problem: Option<String>,
}

impl Policies {
    /// Validates the TOML tables; errors name the policy and the key.
    pub fn from_settings(
        policies: &[PolicySettings],
        groups: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<Self> {
        let mut known = BTreeMap::new();
        for (name, members) in groups {
            let list = members
                .iter()
                .map(|m| ApproverEmail::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("groups.{name}"))?;
            known.insert(name.clone(), dedup(list));
        }
        let policies = policies
            .iter()
            .enumerate()
            .map(|(i, p)| Policy::from_settings(p).with_context(|| format!("policies[{i}]")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            policies,
            groups: known,
        })
    }

    /// True when no policy is configured.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy for a release: its project and stage, else its project, else
    /// `*` with its stage, else `*`. Project names compare case-insensitively, as in Azure DevOps.
    pub fn for_release(&self, key: &ReleaseKey) -> Option<&Policy> {
        let project = |p: &Policy, wanted: &str| p.team_project.eq_ignore_ascii_case(wanted);
        let stage = |p: &Policy, wanted: Option<&str>| match (p.stage.as_deref(), wanted) {
            (Some(s), Some(w)) => s.eq_ignore_ascii_case(w),
            (None, None) => true,
            _ => false,
        };
        let wanted_stage = (!key.stage.is_empty()).then_some(key.stage.as_str());
        [
            (key.team_project.as_str(), wanted_stage),
            (key.team_project.as_str(), None),
            ("*", wanted_stage),
            ("*", None),
        ]
        .into_iter()
        .find_map(|(proj, st)| {
            self.policies
                .iter()
                .find(|p| project(p, proj) && stage(p, st))
        })
    }

    /// The approvers and rule of a release under `policy` (or none): `listed` are the
    /// release's own approvers (request, approvers API or static list); `api_groups`,
    /// from the approvers API, win over `[groups]` of the same name.
    pub fn resolve(
        &self,
        policy: Option<&Policy>,
        listed: &[ApproverEmail],
        api_groups: &BTreeMap<String, Vec<ApproverEmail>>,
        requester: Option<&ApproverEmail>,
        required_approvals: Option<u32>,
    ) -> Resolution {
        let mut rule = Rule::from_required(required_approvals);
        rule.requester = requester.map(|r| r.as_str().to_owned());
        let Some(policy) = policy.filter(|p| !p.requirements.is_empty()) else {
            rule.self_approval = policy.is_some_and(|p| p.self_approval);
            return Resolution {
                approvers: listed.to_vec(),
                rule,
                problem: None,
            };
        };
        rule.self_approval = policy.self_approval;
        rule.requirements.clear();
        let mut approvers = Vec::new();
        let mut empty = Vec::new();
        for (group, needed) in &policy.requirements {
            let members: Vec<ApproverEmail> = if group == RELEASE_APPROVERS {
                listed.to_vec()
            } else {
                api_groups
                    .get(group)
                    .or_else(|| self.groups.get(group))
                    .cloned()
                    .unwrap_or_default()
            };
            if members.is_empty() {
                empty.push(group.as_str());
            }
            approvers.extend(members.iter().cloned());
            rule.requirements.push(Requirement {
                group: group.clone(),
                members: members.iter().map(|m| m.as_str().to_owned()).collect(),
                needed: *needed,
            });
        }
        let problem = (!empty.is_empty()).then(|| {
            format!(
                "no members found for group {}: the release cannot be approved and will expire",
                empty.join(", ")
            )
        });
        Resolution {
            approvers: dedup(approvers),
            rule,
            problem,
        }
    }
}

impl Policies {
    /// The `[groups]` and `[[policies]]` tables as TOML, webhook URLs masked.
    pub fn to_masked_toml(&self) -> String {
        let mut root = toml::Table::new();
        if !self.groups.is_empty() {
            let groups: toml::Table = self
                .groups
                .iter()
                .map(|(name, members)| {
                    let list = members.iter().map(|m| m.as_str().into()).collect();
                    (name.clone(), toml::Value::Array(list))
                })
                .collect();
            root.insert("groups".into(), groups.into());
        }
        let policies: Vec<toml::Value> = self.policies.iter().map(Policy::to_toml).collect();
        if !policies.is_empty() {
            root.insert("policies".into(), policies.into());
        }
        if root.is_empty() {
            return "# no [groups] and no [[policies]]\n".to_owned();
        }
        format!("\n{}", toml::to_string(&root).unwrap_or_default())
    }
}

impl Policy {
    fn to_toml(&self) -> toml::Value {
        let duration = |d: &Duration| humantime::format_duration(*d).to_string();
        let mut t = toml::Table::new();
        t.insert("team_project".into(), self.team_project.clone().into());
        if let Some(stage) = &self.stage {
            t.insert("stage".into(), stage.clone().into());
        }
        t.insert("allow_self_approval".into(), self.self_approval.into());
        if let Some(deadline) = &self.deadline {
            t.insert("deadline".into(), duration(deadline).into());
        }
        let require: Vec<toml::Value> = self
            .requirements
            .iter()
            .map(|(group, needed)| {
                let mut r = toml::Table::new();
                r.insert("group".into(), group.clone().into());
                match needed {
                    Needed::All => r.insert("all".into(), true.into()),
                    Needed::AtLeast(n) => r.insert("count".into(), i64::from(*n).into()),
                };
                r.into()
            })
            .collect();
        t.insert("require".into(), require.into());
        let reminders: Vec<toml::Value> =
            self.reminders.iter().map(|r| duration(r).into()).collect();
        t.insert("reminders".into(), reminders.into());
        if let Some(e) = &self.escalation {
            t.insert("escalate_after".into(), duration(&e.after).into());
            t.insert("escalate_to".into(), e.to.as_str().into());
        }
        for (kind, _) in &self.channels {
            t.insert(channel_key(*kind).into(), "[redacted]".into());
        }
        t.into()
    }

    fn from_settings(p: &PolicySettings) -> anyhow::Result<Self> {
        if p.team_project.trim().is_empty() {
            bail!("team_project must not be empty (use \"*\" for every project)");
        }
        let requirements = p
            .require
            .iter()
            .map(|r| {
                let needed = match (r.count, r.all) {
                    (Some(_), true) => {
                        bail!("require: group {}: give count or all, not both", r.group)
                    }
                    (Some(0), false) => {
                        bail!("require: group {}: count must be at least 1", r.group)
                    }
                    (Some(n), false) => Needed::AtLeast(n),
                    (None, _) => Needed::All,
                };
                if r.group.trim().is_empty() {
                    bail!("require: group must not be empty");
                }
                Ok((r.group.clone(), needed))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let reminders = p
            .reminders
            .iter()
            .map(|r| humantime::parse_duration(r).with_context(|| format!("reminders: {r:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let escalation = match (p.escalate_after, &p.escalate_to) {
            (Some(after), Some(to)) => Some(Escalation {
                after,
                to: ApproverEmail::parse(to).context("escalate_to")?,
            }),
            (None, None) => None,
            _ => bail!("escalate_after and escalate_to go together"),
        };
        let mut channels = Vec::new();
        for (kind, url) in [
            (ChannelKind::Teams, &p.teams_webhook),
            (ChannelKind::Slack, &p.slack_webhook),
            (ChannelKind::Webhook, &p.webhook),
        ] {
            if let Some(url) = url {
                let parsed = url::Url::parse(url.expose())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"));
                if parsed.is_none() {
                    bail!("{}: must be an http:// or https:// URL", channel_key(kind));
                }
                channels.push((kind, url.clone()));
            }
        }
        Ok(Self {
            team_project: p.team_project.trim().to_owned(),
            stage: p.stage.clone().filter(|s| !s.trim().is_empty()),
            self_approval: p.allow_self_approval,
            deadline: p.deadline,
            requirements,
            reminders,
            escalation,
            channels,
        })
    }

    /// The channel's URL, if this policy posts to it.
    pub fn channel_url(&self, kind: ChannelKind) -> Option<&Secret> {
        self.channels
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, u)| u)
    }
}

/// The TOML key of a channel's URL.
pub fn channel_key(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Teams => "teams_webhook",
        ChannelKind::Slack => "slack_webhook",
        ChannelKind::Webhook => "webhook",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(toml_text: &str) -> anyhow::Result<Policies> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            policies: Vec<PolicySettings>,
            #[serde(default)]
            groups: BTreeMap<String, Vec<String>>,
        }
        let file: File = toml::from_str(toml_text)?;
        Policies::from_settings(&file.policies, &file.groups)
    }

    fn key(project: &str, stage: &str) -> ReleaseKey {
        ReleaseKey::parse(project, "1", stage).unwrap()
    }

    #[test]
    fn the_most_specific_policy_wins() {
        let p = policies(
            r#"
            [[policies]]
            team_project = "*"
            deadline = "1h"
            [[policies]]
            team_project = "Devx"
            deadline = "2h"
            [[policies]]
            team_project = "devx"
            stage = "prod"
            deadline = "3h"
            "#,
        )
        .unwrap();
        let deadline = |k| p.for_release(&k).and_then(|p| p.deadline);
        assert_eq!(
            deadline(key("Devx", "PROD")),
            Some(Duration::from_secs(3 * 3600))
        );
        assert_eq!(
            deadline(key("DEVX", "qa")),
            Some(Duration::from_secs(2 * 3600))
        );
        assert_eq!(deadline(key("Other", "")), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn groups_from_the_approvers_api_win_over_configured_ones() {
        let p = policies(
            r#"
            [groups]
            sre = ["a@x.io", "b@x.io"]
            owners = ["c@x.io"]
            [[policies]]
            team_project = "Devx"
            require = [{ group = "sre", count = 1 }, { group = "owners", all = true }]
            "#,
        )
        .unwrap();
        let policy = p.for_release(&key("Devx", ""));
        let api = BTreeMap::from([(
            "owners".to_owned(),
            vec![ApproverEmail::parse("d@x.io").unwrap()],
        )]);
        let r = p.resolve(policy, &[], &api, None, None);
        let emails: Vec<&str> = r.approvers.iter().map(ApproverEmail::as_str).collect();
        assert_eq!(emails, ["a@x.io", "b@x.io", "d@x.io"]);
        assert_eq!(r.rule.requirements[1].members, ["d@x.io"]);
        assert!(r.problem.is_none());
    }

    #[test]
    fn an_unknown_group_is_reported() {
        let p =
            policies("[[policies]]\nteam_project = \"Devx\"\nrequire = [{ group = \"ghosts\" }]\n")
                .unwrap();
        let r = p.resolve(
            p.for_release(&key("Devx", "")),
            &[],
            &BTreeMap::new(),
            None,
            None,
        );
        assert!(r.problem.unwrap().contains("ghosts"));
    }

    #[test]
    fn bad_entries_name_the_policy_and_key() {
        for (text, expected) in [
            ("[[policies]]\nteam_project = \"\"\n", "team_project"),
            (
                "[[policies]]\nteam_project = \"a\"\nrequire = [{ group = \"g\", count = 0 }]\n",
                "count",
            ),
            (
                "[[policies]]\nteam_project = \"a\"\nescalate_after = \"1h\"\n",
                "escalate_to",
            ),
            (
                "[[policies]]\nteam_project = \"a\"\nslack_webhook = \"ftp://x\"\n",
                "slack_webhook",
            ),
            (
                "[[policies]]\nteam_project = \"a\"\nreminders = [\"soon\"]\n",
                "reminders",
            ),
            ("[groups]\nsre = [\"not-an-address\"]\n", "groups.sre"),
        ] {
            let err = format!("{:#}", policies(text).unwrap_err());
            assert!(err.contains(expected), "{err} does not name {expected}");
        }
    }

    /// The status of a release resolved as `r` once `approving` approved, one a minute.
    fn decided_by(r: &Resolution, approving: &[&str]) -> crate::domain::policy::Outcome {
        use crate::domain::policy::{Decided, Decision, Vote, decide};
        let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let votes: Vec<Vote<'_>> = r
            .approvers
            .iter()
            .map(|a| Vote {
                email: a.as_str(),
                decided: approving
                    .iter()
                    .position(|e| *e == a.as_str())
                    .map(|i| Decided {
                        decision: Decision::Approve,
                        at: start + chrono::Duration::minutes(i as i64 + 1),
                    }),
            })
            .collect();
        let deadline = start + chrono::Duration::hours(1);
        decide(
            &r.rule,
            &votes,
            None,
            deadline,
            start + chrono::Duration::minutes(30),
        )
    }

    const APPROVERS_AND_SRE: &str = r#"
        [groups]
        sre = ["b@x.io", "c@x.io"]
        [[policies]]
        team_project = "Devx"
        require = [{ group = "approvers", all = true }, { group = "sre", count = 1 }]
        "#;

    #[test]
    fn the_approvers_group_of_a_policy_is_the_releases_own_list_not_the_other_groups() {
        use crate::domain::policy::ReleaseStatus;
        let p = policies(APPROVERS_AND_SRE).unwrap();
        let listed = [ApproverEmail::parse("a@x.io").unwrap()];
        let policy = p.for_release(&key("Devx", ""));
        let r = p.resolve(policy, &listed, &BTreeMap::new(), None, None);
        let o = decided_by(&r, &["a@x.io", "b@x.io"]);
        assert_eq!((o.status, o.required), (ReleaseStatus::Approved, 2));
        assert_eq!(o.requirements[0].needed, 1, "only a@x.io is listed");
    }

    #[test]
    fn a_policy_whose_approvers_group_lists_nobody_is_not_approved_by_the_other_groups() {
        use crate::domain::policy::ReleaseStatus;
        let p = policies(APPROVERS_AND_SRE).unwrap();
        let policy = p.for_release(&key("Devx", ""));
        let r = p.resolve(policy, &[], &BTreeMap::new(), None, None);
        assert!(r.problem.as_deref().unwrap().contains("approvers"));
        let o = decided_by(&r, &["b@x.io", "c@x.io"]);
        assert_eq!(
            o.status,
            ReleaseStatus::Pending,
            "the problem says it will expire"
        );
        assert_eq!(
            (o.requirements[0].needed, o.requirements[0].met),
            (0, false)
        );
    }
}
