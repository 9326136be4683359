//! Telling approvers: one [`Notifier`] interface, implemented by email and by
//! each channel an approval request can be posted to (Teams, Slack, a webhook).
//! A new channel is a new file here, an arm in [`channel`], and its config key.

mod http;
mod mailbox;
mod mailer;
mod render;
mod slack;
mod teams;
mod webhook;

pub use mailbox::{MailMessage, MailSummary, Mailbox};
pub use mailer::Mailer;
pub use render::{ApprovalRequest, EmailTemplates, EscalationNotice, neutralising_formatter};

use crate::{domain::channel::ChannelKind, secret::Secret};

/// A way of telling an approver that a release awaits their decision.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one approver's request; fails if the channel did not accept it.
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()>;
}

/// The notifier of a channel posting to `url` with `client`.
pub fn channel(kind: ChannelKind, client: reqwest::Client, url: &Secret) -> Box<dyn Notifier> {
    let target = http::Target::new(client, url.clone());
    match kind {
        ChannelKind::Teams => Box::new(teams::Teams(target)),
        ChannelKind::Slack => Box::new(slack::Slack(target)),
        ChannelKind::Webhook => Box::new(webhook::Webhook(target)),
    }
}
