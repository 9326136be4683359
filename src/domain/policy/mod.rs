//! The one home of approval rules: the decision rule that gives a release its
//! status (`rule`), the policies configured per project and stage
//! (`configured`), and planning a new release under them (`plan`): its
//! requirements, deadline, reminders and escalation.

mod configured;
mod plan;
mod rule;

pub use configured::{AzureApprovers, Escalation, Policies, Policy, Resolution};
pub use plan::{
    Defaults, Found, NewApprovers, ReleasePlan, ResolvedApprovers, plan_release, under_policy,
};
pub use rule::{
    Decided, Decision, Ended, Needed, Outcome, Progress, RELEASE_APPROVERS, ReleaseStatus,
    Requirement, Rule, Vote, decide,
};
