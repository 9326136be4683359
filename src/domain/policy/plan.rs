//! Planning a new release under the configured policies: its deadline,
//! reminders and escalation, and the approvers it asks under the rule they
//! are judged by.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    configured::{Policies, Policy},
    rule::Rule,
};
use crate::domain::{
    approver::ApproverEmail, channel::ChannelKind, job::ApprovalJob, release::NewRelease,
};

/// What a release gets when no policy says otherwise.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Approvals a release needs (`None`: all approvers).
    pub required_approvals: Option<u32>,
    /// Time from creation until an undecided release expires.
    pub approval_deadline: Duration,
}

/// How a new release is to be handled, decided when it arrives.
#[derive(Clone, Debug)]
pub struct ReleasePlan {
    /// Approvals needed by default; `None` means all.
    pub required_approvals: Option<u32>,
    /// When it expires if undecided.
    pub deadline: DateTime<Utc>,
    /// Approvers known at once (named in the request); `None` queues their resolution.
    pub approvers: Option<ResolvedApprovers>,
    /// When to remind approvers who have not decided.
    pub reminders: Vec<DateTime<Utc>>,
    /// When to tell the escalation contact, if the release is still undecided.
    pub escalate_at: Option<DateTime<Utc>>,
}

/// The approvers found for a release, and what was wrong on the way.
#[derive(Clone, Debug)]
pub struct ResolvedApprovers {
    /// Valid, de-duplicated approvers.
    pub approvers: Vec<ApproverEmail>,
    /// Where they came from: `request`, `approvers_url` or `static`.
    pub source: String,
    /// A note shown on the release (no approvers, skipped invalid addresses).
    pub problem: Option<String>,
    /// The rule their decisions are judged by.
    pub rule: Rule,
    /// Channels besides email that each approver's request is posted to.
    pub channels: Vec<ChannelKind>,
}

/// A round's approvers to store, as one write: their approvals, the jobs each
/// approval needs, and where they came from.
#[derive(Clone, Copy, Debug)]
pub struct NewApprovers<'a> {
    /// The release.
    pub release_id: i64,
    /// Each approver with its approval's creation time, in their order.
    pub approvers: &'a [(&'a ApproverEmail, DateTime<Utc>)],
    /// The jobs queued, due at `now`, for each approval stored (none for an
    /// approver the release has).
    pub jobs: &'a [ApprovalJob],
    /// Where they came from and the rule their decisions are judged by.
    pub resolved: &'a ResolvedApprovers,
    /// When they were found.
    pub now: DateTime<Utc>,
}

/// What the sources gave for one release.
#[derive(Clone, Debug)]
pub struct Found {
    /// Valid, de-duplicated approvers.
    pub approvers: Vec<ApproverEmail>,
    /// Where they came from: `approvers_url`, `static` or `none`.
    pub source: String,
    /// A note shown on the release (no approvers, skipped invalid addresses).
    pub problem: Option<String>,
    /// Groups answered by the approvers API, by name.
    pub groups: BTreeMap<String, Vec<ApproverEmail>>,
}

/// The release's approvers and rule under `policy`, the one of its project and stage
/// (if any) among `policies`: `found` are its own approvers, and the groups the
/// approvers API answered.
pub fn under_policy(
    found: Found,
    policies: &Policies,
    policy: Option<&Policy>,
    requester: Option<&ApproverEmail>,
    required_approvals: Option<u32>,
) -> ResolvedApprovers {
    let resolution = policies.resolve(
        policy,
        &found.approvers,
        &found.groups,
        requester,
        required_approvals,
    );
    // With groups to ask, an empty list of the release's own is no problem.
    let groups_supplied_them = found.approvers.is_empty() && !resolution.approvers.is_empty();
    let own_problem = found.problem.filter(|_| !groups_supplied_them);
    let problem = match (resolution.problem, own_problem) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    ResolvedApprovers {
        approvers: resolution.approvers,
        source: found.source,
        problem,
        rule: resolution.rule,
        channels: policy
            .map(|p| p.channels.iter().map(|(kind, _)| *kind).collect())
            .unwrap_or_default(),
    }
}

/// How a new release is handled: the policy of its project and stage sets
/// its deadline, reminders and escalation, and judges approvers it names.
pub fn plan_release(
    policies: &Policies,
    defaults: Defaults,
    new: &NewRelease,
    now: DateTime<Utc>,
) -> ReleasePlan {
    let policy = policies.for_release(&new.key);
    let after = |d: std::time::Duration| {
        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    };
    let deadline = after(
        policy
            .and_then(|p| p.deadline)
            .unwrap_or(defaults.approval_deadline),
    );
    let listed = new.approvers.as_ref().map(|approvers| Found {
        approvers: approvers.clone(),
        source: "request".to_owned(),
        problem: None,
        groups: BTreeMap::new(),
    });
    let required_approvals = defaults.required_approvals;
    ReleasePlan {
        required_approvals,
        deadline,
        approvers: listed.map(|found| {
            let requester = new.requested_for.as_ref();
            under_policy(found, policies, policy, requester, required_approvals)
        }),
        reminders: policy
            .map(|p| {
                p.reminders
                    .iter()
                    .map(|r| after(*r))
                    .filter(|at| *at < deadline)
                    .collect()
            })
            .unwrap_or_default(),
        escalate_at: policy
            .and_then(|p| p.escalation.as_ref())
            .map(|e| after(e.after))
            .filter(|at| *at < deadline),
    }
}
