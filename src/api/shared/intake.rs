//! Taking a release in, shared by `POST /release` and the service hook.

use std::collections::BTreeMap;

use super::state::AppState;
use crate::{
    api::http::problem::Problem,
    approvers::{Found, under_policy},
    azure::PlanCallback,
    domain::release::NewRelease,
    store::{Creation, ReleasePlan},
};

/// Stores a release (and its callback registration) or finds the known one; wakes the worker.
/// The policy of its project and stage sets its deadline, reminders and escalation.
pub async fn create_or_find(
    state: &AppState,
    new: &NewRelease,
    callback: Option<&PlanCallback>,
) -> Result<Creation, Problem> {
    let now = state.clock.now();
    let policy = state.policies.for_release(&new.key);
    let after = |d: std::time::Duration| {
        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    };
    let deadline = after(
        policy
            .and_then(|p| p.deadline)
            .unwrap_or(state.approval_deadline),
    );
    let listed = new.approvers.as_ref().map(|approvers| Found {
        approvers: approvers.clone(),
        source: "request".to_owned(),
        problem: None,
        groups: BTreeMap::new(),
    });
    let plan = ReleasePlan {
        required_approvals: state.required_approvals,
        deadline,
        approvers: listed.map(|found| {
            under_policy(
                found,
                &state.policies,
                policy,
                new.requested_for.as_ref(),
                state.required_approvals,
            )
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
    };
    let creation = state
        .store
        .create_release(new, &plan, callback, now)
        .await?;
    // Only a new release or a callback registration queues jobs. One idle worker
    // is enough: waking all of them on every call would have each try to claim.
    if matches!(creation, Creation::Created(_)) || callback.is_some() {
        state.wake_worker.notify_one();
    }
    if let Creation::Created(_) = creation {
        state.metrics.release_created();
        tracing::info!(release.key = %new.key.display(), callback = callback.is_some(), "release received");
    }
    Ok(creation)
}
