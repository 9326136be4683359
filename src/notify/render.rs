//! Rendering the approval email (plain text and HTML) from templates.

use std::sync::LazyLock;

use anyhow::Context;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};
use minijinja::{Environment, context};

use crate::store::ReleaseRecord;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        (
            "approval_email.html",
            include_str!("templates/approval_email.html"),
        ),
        (
            "approval_email.txt",
            include_str!("templates/approval_email.txt"),
        ),
    ] {
        env.add_template(name, source)
            .expect("built-in email templates are valid");
    }
    env
});

/// One approver's approval request.
pub struct ApprovalEmail<'a> {
    /// Recipient.
    pub to: &'a str,
    /// The release to approve.
    pub release: &'a ReleaseRecord,
    /// The approval page link, token included.
    pub link: &'a str,
    /// The signed token, for API clients.
    pub token: &'a str,
}

impl ApprovalEmail<'_> {
    /// The subject line.
    pub fn subject(&self) -> String {
        let key = &self.release.key;
        format!(
            "Approval needed: {} ({} #{})",
            self.release.name, key.team_project, key.release_id
        )
    }

    /// Builds the multipart (text and HTML) message.
    pub fn to_message(&self, from: &Mailbox) -> anyhow::Result<Message> {
        let (text, html) = self.render_parts()?;
        Message::builder()
            .from(from.clone())
            .to(self.to.parse().context("approver address")?)
            .subject(self.subject())
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .context("building the approval email")
    }

    /// The plain-text and HTML bodies.
    fn render_parts(&self) -> anyhow::Result<(String, String)> {
        let key = &self.release.key;
        let ctx = context! {
            release_name => self.release.name,
            release_id => key.release_id,
            team_project => key.team_project,
            stage => key.stage,
            deadline => self.release.deadline.format("%Y-%m-%d %H:%M UTC").to_string(),
            link => self.link,
            token => self.token,
        };
        let text = TEMPLATES.get_template("approval_email.txt")?.render(&ctx)?;
        let html = TEMPLATES
            .get_template("approval_email.html")?
            .render(&ctx)?;
        Ok((text, html))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::release::ReleaseKey;

    fn release(name: &str) -> ReleaseRecord {
        ReleaseRecord {
            id: 1,
            key: ReleaseKey::parse("Devx", "386", "prod").unwrap(),
            name: name.to_owned(),
            required_approvals: None,
            deadline: Utc::now(),
            approvers_source: None,
            approver_problem: None,
            azure_approval_id: None,
            azure_written_back_at: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_email_has_both_parts_the_link_and_escaped_html() {
        let release = release("<script>alert(1)</script> Déploiement");
        let email = ApprovalEmail {
            to: "ana@example.com",
            release: &release,
            link: "http://gate/approval?token=abc.def.ghi",
            token: "abc.def.ghi",
        };
        let from: Mailbox = "deploy-gate@localhost".parse().unwrap();
        let raw = String::from_utf8(email.to_message(&from).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains("Message-ID:"));
        let (text, html) = email.render_parts().unwrap();
        assert!(text.contains("<script>alert(1)</script> Déploiement"));
        assert!(text.contains("http://gate/approval?token=abc.def.ghi"));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "HTML part must escape the name"
        );
        assert!(html.contains(r#"href="http:&#x2f;&#x2f;gate&#x2f;approval?token=abc.def.ghi""#));
    }
}
