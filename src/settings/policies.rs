//! The `[[policies]]` and `[groups]` tables of the TOML configuration: as
//! written, validated into `domain::policy`'s policies, and shown by `deploy-gate config`.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::{
    domain::{
        approver::{ApproverEmail, dedup},
        channel::ChannelKind,
        policy::{AzureApprovers, Escalation, Needed, Policies, Policy},
    },
    secret::Secret,
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
    /// Any HTTP endpoint; each approver's request is posted as JSON (see `docs/approvers.md`).
    #[serde(default)]
    pub webhook: Option<Secret>,
    /// Approvers must sign in with the OpenID Connect provider (`DEPLOY_GATE_OIDC_*`) as
    /// themselves before their decision counts (see `docs/sign-in.md`) [default: false].
    #[serde(default)]
    pub require_sign_in: bool,
    /// The release's own approvers from Azure DevOps instead of the approvers API
    /// and the static list: `{ group = "<descriptor>" }`, `{ team = "<name or id>" }`
    /// or `{ assigned = true }` (the service-hook approval's assigned approvers).
    #[serde(default)]
    pub azure_approvers: Option<AzureApproversSettings>,
}

/// `azure_approvers`: exactly one of `group`, `team` or `assigned = true`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureApproversSettings {
    /// An Azure DevOps group's Graph subject descriptor (`vssgp.…`, `aadgp.…`).
    #[serde(default)]
    pub group: Option<String>,
    /// A team of the release's project, by name or id.
    #[serde(default)]
    pub team: Option<String>,
    /// Whoever the service-hook event's approval is assigned to.
    #[serde(default)]
    pub assigned: bool,
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

/// Validates the TOML tables; errors name the policy and the key.
pub fn policies_from_settings(
    policies: &[PolicySettings],
    groups: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<Policies> {
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
        .map(|(i, p)| policy_from_settings(p).with_context(|| format!("policies[{i}]")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Policies::new(policies, known))
}

/// The `[groups]` and `[[policies]]` tables as TOML, webhook URLs masked.
pub fn policies_to_masked_toml(policies: &Policies) -> String {
    let mut root = toml::Table::new();
    if !policies.groups().is_empty() {
        let groups: toml::Table = policies
            .groups()
            .iter()
            .map(|(name, members)| {
                let list = members.iter().map(|m| m.as_str().into()).collect();
                (name.clone(), toml::Value::Array(list))
            })
            .collect();
        root.insert("groups".into(), groups.into());
    }
    let policies: Vec<toml::Value> = policies.policies().iter().map(policy_to_toml).collect();
    if !policies.is_empty() {
        root.insert("policies".into(), policies.into());
    }
    if root.is_empty() {
        return "# no [groups] and no [[policies]]\n".to_owned();
    }
    format!("\n{}", toml::to_string(&root).unwrap_or_default())
}

/// One policy as its `[[policies]]` entry, webhook URLs masked.
fn policy_to_toml(policy: &Policy) -> toml::Value {
    let duration = |d: &Duration| humantime::format_duration(*d).to_string();
    let mut t = toml::Table::new();
    t.insert("team_project".into(), policy.team_project.clone().into());
    if let Some(stage) = &policy.stage {
        t.insert("stage".into(), stage.clone().into());
    }
    t.insert("allow_self_approval".into(), policy.self_approval.into());
    if policy.sign_in {
        t.insert("require_sign_in".into(), true.into());
    }
    if let Some(deadline) = &policy.deadline {
        t.insert("deadline".into(), duration(deadline).into());
    }
    let require: Vec<toml::Value> = policy
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
    let reminders: Vec<toml::Value> = policy
        .reminders
        .iter()
        .map(|r| duration(r).into())
        .collect();
    t.insert("reminders".into(), reminders.into());
    if let Some(e) = &policy.escalation {
        t.insert("escalate_after".into(), duration(&e.after).into());
        t.insert("escalate_to".into(), e.to.as_str().into());
    }
    if let Some(source) = &policy.azure_approvers {
        t.insert("azure_approvers".into(), azure_approvers_to_toml(source));
    }
    for (kind, _) in &policy.channels {
        t.insert(channel_key(*kind).into(), "[redacted]".into());
    }
    t.into()
}

/// One `[[policies]]` entry, validated.
fn policy_from_settings(p: &PolicySettings) -> anyhow::Result<Policy> {
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
    let azure_approvers = p
        .azure_approvers
        .as_ref()
        .map(azure_approvers_from_settings)
        .transpose()
        .context("azure_approvers")?;
    Ok(Policy {
        team_project: p.team_project.trim().to_owned(),
        stage: p.stage.clone().filter(|s| !s.trim().is_empty()),
        self_approval: p.allow_self_approval,
        deadline: p.deadline,
        requirements,
        reminders,
        escalation,
        channels,
        sign_in: p.require_sign_in,
        azure_approvers,
    })
}

/// One of `group`, `team` or `assigned = true`, not empty.
fn azure_approvers_from_settings(a: &AzureApproversSettings) -> anyhow::Result<AzureApprovers> {
    let named = |s: &Option<String>| s.as_deref().map(str::trim).map(str::to_owned);
    match (named(&a.group), named(&a.team), a.assigned) {
        (Some(group), None, false) if !group.is_empty() => Ok(AzureApprovers::Group(group)),
        (None, Some(team), false) if !team.is_empty() => Ok(AzureApprovers::Team(team)),
        (None, None, true) => Ok(AzureApprovers::Assigned),
        _ => bail!(
            "give one of group = \"<descriptor>\", team = \"<name or id>\" or assigned = true"
        ),
    }
}

/// `azure_approvers` as written: `{ group = … }`, `{ team = … }` or `{ assigned = true }`.
fn azure_approvers_to_toml(source: &AzureApprovers) -> toml::Value {
    let mut t = toml::Table::new();
    match source {
        AzureApprovers::Group(group) => t.insert("group".into(), group.clone().into()),
        AzureApprovers::Team(team) => t.insert("team".into(), team.clone().into()),
        AzureApprovers::Assigned => t.insert("assigned".into(), true.into()),
    };
    t.into()
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
    use crate::domain::{policy::Resolution, release::ReleaseKey};

    fn policies(toml_text: &str) -> anyhow::Result<Policies> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            policies: Vec<PolicySettings>,
            #[serde(default)]
            groups: BTreeMap<String, Vec<String>>,
        }
        let file: File = toml::from_str(toml_text)?;
        policies_from_settings(&file.policies, &file.groups)
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
            (
                "[[policies]]\nteam_project = \"a\"\nazure_approvers = { group = \"g\", assigned = true }\n",
                "azure_approvers",
            ),
            (
                "[[policies]]\nteam_project = \"a\"\nazure_approvers = { team = \" \" }\n",
                "azure_approvers",
            ),
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
