//! Channels besides email that an approver's request is posted to.

/// A channel approval requests are posted to, besides email.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Microsoft Teams incoming webhook.
    Teams,
    /// Slack incoming webhook.
    Slack,
    /// A generic JSON webhook.
    Webhook,
}

impl ChannelKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
        }
    }

    /// Parses the stored name.
    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Teams, Self::Slack, Self::Webhook]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}
