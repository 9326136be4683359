//! The approver's pages: the approval with its buttons, and the page after a decision.

use minijinja::context;

use super::view::ApprovalView;
use crate::api::pages::render;

fn view_context(view: &ApprovalView) -> minijinja::Value {
    let release = &view.release;
    // The requester's own approval counts towards nothing (unless the policy allows it).
    let my_approval_counts = release
        .approvers
        .iter()
        .find(|a| a.email == view.approver)
        .is_none_or(|a| a.counts);
    let approvers: Vec<_> = release
        .approvers
        .iter()
        .map(|a| {
            context! {
                email => a.email,
                decision => a.decision.as_str(),
                decided_at => a.decided_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                comment => a.comment,
                is_me => a.email == view.approver,
            }
        })
        .collect();
    context! {
        release_name => release.release_name,
        release_id => release.release_id,
        team_project => release.team_project,
        stage => release.stage,
        definition_name => release.definition_name,
        requested_for => release.requested_for,
        release_url => release.release_url,
        status => release.status.as_str(),
        created_at => release.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        deadline => release.deadline.format("%Y-%m-%d %H:%M UTC").to_string(),
        required => release.approvals.required,
        approved => release.approvals.approved,
        approvers => approvers,
        approver => view.approver,
        decision => view.decision.as_str(),
        comment => view.comment,
        can_decide => view.can_decide,
        my_approval_counts => my_approval_counts,
    }
}

/// The page an approver opens from the email; `signed_in_as` is whom this browser signed
/// in as, where the policy asks for a sign-in.
pub fn approval_page(view: &ApprovalView, token: &str, signed_in_as: Option<&str>) -> String {
    let mut ctx = view_context(view);
    ctx = context! {
        token => token,
        sign_in_required => view.sign_in_required,
        signed_in_as => signed_in_as,
        ..ctx
    };
    render("approval.html", ctx)
}

/// The page shown after a decision.
pub fn result_page(view: &ApprovalView) -> String {
    render("result.html", view_context(view))
}
