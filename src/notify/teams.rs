//! Microsoft Teams: an Adaptive Card in the message shape that Teams incoming
//! webhooks (Workflows, "Post to a channel when a webhook request is received") accept.

use serde_json::{Value, json};

use super::{ApprovalRequest, Notifier, http::Target};

/// Posts each approval request to a Teams channel as a card.
pub(super) struct Teams(pub(super) Target);

#[async_trait::async_trait]
impl Notifier for Teams {
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()> {
        self.0.post(&card(request)).await
    }
}

/// The message: one Adaptive Card (schema 1.4) with the release's facts and a button to the approval page.
fn card(request: &ApprovalRequest<'_>) -> Value {
    let release = request.release;
    let mut facts = vec![
        json!({"title": "Release", "value": release.name}),
        json!({"title": "Id", "value": release.key.release_id}),
        json!({"title": "Project", "value": release.key.team_project}),
    ];
    if !release.key.stage.is_empty() {
        facts.push(json!({"title": "Stage", "value": release.key.stage}));
    }
    facts.push(json!({"title": "Approver", "value": request.to}));
    facts.push(json!({"title": "Decide by", "value": release.deadline.format("%Y-%m-%d %H:%M UTC").to_string()}));
    let heading = if request.reminder {
        "Reminder: a release still awaits approval"
    } else {
        "Approval needed for a release"
    };
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": heading},
                    {"type": "FactSet", "facts": facts}
                ],
                "actions": [
                    {"type": "Action.OpenUrl", "title": format!("Review as {}", request.to), "url": request.link}
                ]
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::render::tests::{release, request};

    #[test]
    fn the_card_follows_the_adaptive_card_message_shape() {
        let release = release("R1");
        let card = card(&request(&release));
        let attachment = &card["attachments"][0];
        assert_eq!(card["type"], "message");
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(attachment["content"]["type"], "AdaptiveCard");
        let action = &attachment["content"]["actions"][0];
        assert_eq!(action["type"], "Action.OpenUrl");
        assert_eq!(action["url"], "http://gate/approval?token=abc.def.ghi");
    }
}
