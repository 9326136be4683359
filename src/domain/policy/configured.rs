//! Approval policies per project (and stage), as configured (`settings::policies`
//! reads them): who must approve, whether the requester may approve, the
//! deadline, reminders, escalation and channels; and the rule they give a release.

use std::{collections::BTreeMap, time::Duration};

use super::rule::{Needed, RELEASE_APPROVERS, Requirement, Rule};
use crate::{
    domain::{
        approver::{ApproverEmail, dedup},
        channel::ChannelKind,
        release::ReleaseKey,
    },
    secret::Secret,
};

/// Who is told when a release stays undecided.
#[derive(Clone, Debug)]
pub struct Escalation {
    /// After this long from creation.
    pub after: Duration,
    /// This address.
    pub to: ApproverEmail,
}

/// Where a policy takes the release's own approvers from in Azure DevOps,
/// instead of the approvers API and the static list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureApprovers {
    /// The members of a group (its Graph subject descriptor), nested groups expanded.
    Group(String),
    /// The members of a team (name or id) of the release's project.
    Team(String),
    /// Whoever the service-hook event's Azure approval is assigned to (a user,
    /// or a group's members).
    Assigned,
}

impl AzureApprovers {
    /// What is looked up, for logs and problems: `group vssgp.…`, `team Web`, `assigned approvers`.
    pub fn describe(&self) -> String {
        match self {
            Self::Group(descriptor) => format!("Azure DevOps group {descriptor}"),
            Self::Team(team) => format!("Azure DevOps team {team}"),
            Self::Assigned => "the Azure DevOps approval's assigned approvers".to_owned(),
        }
    }
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
    /// Whether approvers must sign in (OpenID Connect) before their decision counts.
    pub sign_in: bool,
    /// The release's own approvers from Azure DevOps, if the policy says so.
    pub azure_approvers: Option<AzureApprovers>,
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
    /// The validated `[[policies]]` and `[groups]`.
    pub fn new(policies: Vec<Policy>, groups: BTreeMap<String, Vec<ApproverEmail>>) -> Self {
        Self { policies, groups }
    }

    /// The policies, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The `[groups]`, by name.
    pub fn groups(&self) -> &BTreeMap<String, Vec<ApproverEmail>> {
        &self.groups
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
        rule.sign_in = policy.is_some_and(|p| p.sign_in);
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

impl Policy {
    /// The channel's URL, if this policy posts to it.
    pub fn channel_url(&self, kind: ChannelKind) -> Option<&Secret> {
        self.channels
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, u)| u)
    }
}
