//! Slack: a message for an incoming webhook, with `text` (notifications and
//! fallback) and Block Kit `blocks` (a section with the details and a button).

use serde_json::{Value, json};

use super::{ApprovalRequest, Notifier, http::Target};

/// Posts each approval request to a Slack channel.
pub(super) struct Slack(pub(super) Target);

#[async_trait::async_trait]
impl Notifier for Slack {
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()> {
        self.0.post(&message(request)).await
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn message(request: &ApprovalRequest<'_>) -> Value {
    let release = request.release;
    let key = &release.key;
    let stage = if key.stage.is_empty() {
        String::new()
    } else {
        format!(", stage {}", escape(&key.stage))
    };
    let heading = if request.reminder {
        "Reminder: still awaiting approval"
    } else {
        "Approval needed"
    };
    let summary = format!(
        "{heading}: {} ({} #{}{stage}) from {}",
        escape(&release.name),
        escape(&key.team_project),
        escape(&key.release_id),
        escape(request.to)
    );
    let details = format!(
        "*{summary}*\nDecide by {}",
        release.deadline.format("%Y-%m-%d %H:%M UTC")
    );
    json!({
        "text": format!("{summary}: <{}|review and decide>", request.link),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": details}},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": format!("Review as {}", request.to)},
                "url": request.link,
                "style": "primary"
            }]}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::render::tests::{release, request};

    #[test]
    fn the_message_has_text_and_a_button_and_escapes_names() {
        let release = release("<!channel> R1 & co");
        let message = message(&request(&release));
        let text = message["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; R1 &amp; co"), "{text}");
        assert!(text.ends_with("<http://gate/approval?token=abc.def.ghi|review and decide>"));
        let button = &message["blocks"][1]["elements"][0];
        assert_eq!(button["type"], "button");
        assert_eq!(button["url"], "http://gate/approval?token=abc.def.ghi");
    }
}
