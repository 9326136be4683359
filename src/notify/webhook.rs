//! A generic outbound webhook: one documented JSON body per approver's request
//! (see "Channels" in `docs/approvers.md`), for anything Teams and Slack do not cover.

use serde_json::{Value, json};

use super::{ApprovalRequest, Notifier, http::Target};

/// Posts each approval request as JSON.
pub(super) struct Webhook(pub(super) Target);

#[async_trait::async_trait]
impl Notifier for Webhook {
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()> {
        self.0.post(&body(request)).await
    }
}

fn body(request: &ApprovalRequest<'_>) -> Value {
    let release = request.release;
    json!({
        "event": if request.reminder { "approval.reminder" } else { "approval.requested" },
        "approval_id": request.approval_id,
        "approver": request.to,
        "approval_url": request.link,
        "token": request.token,
        "release": {
            "TeamProject": release.key.team_project,
            "ReleaseId": release.key.release_id,
            "Stage": release.key.stage,
            "ReleaseName": release.name,
            "created_at": release.created_at,
            "deadline": release.deadline,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::render::tests::{release, request};

    #[test]
    fn the_body_names_the_release_the_approver_and_the_link() {
        let release = release("R1");
        let body = body(&request(&release));
        assert_eq!(body["event"], "approval.requested");
        assert_eq!(body["approver"], "ana@example.com");
        assert_eq!(body["release"]["TeamProject"], "Devx");
        assert_eq!(
            body["approval_url"],
            "http://gate/approval?token=abc.def.ghi"
        );
    }
}
