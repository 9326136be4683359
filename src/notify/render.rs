//! Rendering the approval email (subject, plain text and HTML) from templates: the
//! built-in ones, each overridable by a file of the same name in a folder of the user's.

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use lettre::{Message, message::MultiPart};
use minijinja::{Environment, context};
use uuid::Uuid;

use crate::{domain::snapshot::ReleaseRecord, settings::Sender};

/// The templates of the approval email, by file name, with their built-in sources.
const BUILT_IN: [(&str, &str); 6] = [
    (
        "approval_email_subject.txt",
        include_str!("templates/approval_email_subject.txt"),
    ),
    (
        "approval_email.txt",
        include_str!("templates/approval_email.txt"),
    ),
    (
        "approval_email.html",
        include_str!("templates/approval_email.html"),
    ),
    (
        "escalation_email_subject.txt",
        include_str!("templates/escalation_email_subject.txt"),
    ),
    (
        "escalation_email.txt",
        include_str!("templates/escalation_email.txt"),
    ),
    (
        "escalation_email.html",
        include_str!("templates/escalation_email.html"),
    ),
];

/// The email templates in use (minijinja; `.html` ones escape their values).
pub struct EmailTemplates {
    env: Environment<'static>,
}

impl EmailTemplates {
    /// The built-in templates, each replaced by the file of the same name in `dir`
    /// if it has one. A template that does not compile is an error naming the file.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, built_in) in BUILT_IN {
            let path = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source = match &path {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => built_in.to_owned(),
            };
            env.add_template_owned(name, source)
                .with_context(|| format!("email template {name}"))?;
        }
        env.set_formatter(neutralising_formatter);
        Ok(Self { env })
    }
}

/// Prints every value as minijinja does (escaped in `.html` templates), with bidi
/// controls written out (`[U+202E]`) so that no name shows as something else. The
/// pages use it too.
pub fn neutralising_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match value.as_str().map(crate::domain::bidi::neutralise) {
        Some(std::borrow::Cow::Owned(text)) => {
            let text = if value.is_safe() {
                minijinja::Value::from_safe_string(text)
            } else {
                minijinja::Value::from(text)
            };
            minijinja::escape_formatter(out, state, &text)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// One approver's approval request, as every channel receives it.
pub struct ApprovalRequest<'a> {
    /// The approval this request asks for; names the email, so a resend is recognisably the same.
    pub approval_id: Uuid,
    /// The approver.
    pub to: &'a str,
    /// The release to approve.
    pub release: &'a ReleaseRecord,
    /// The approval page link, token included.
    pub link: &'a str,
    /// The signed token, for API clients.
    pub token: &'a str,
    /// True for a reminder of a request sent before.
    pub reminder: bool,
}

/// The escalation contact's notice that a release is still undecided.
pub struct EscalationNotice<'a> {
    /// The contact.
    pub to: &'a str,
    /// The release.
    pub release: &'a ReleaseRecord,
    /// Approvers who have not decided.
    pub waiting_for: Vec<&'a str>,
    /// Where to see the release's status.
    pub status_link: &'a str,
}

/// A rendered approval email.
struct Rendered {
    subject: String,
    text: String,
    html: String,
}

impl ApprovalRequest<'_> {
    /// Builds the multipart (text and HTML) message with `Message-ID` and `Date`.
    pub fn to_message(
        &self,
        sender: &Sender,
        templates: &EmailTemplates,
    ) -> anyhow::Result<Message> {
        let rendered = self.render(templates)?;
        // A reminder is a message of its own; the request keeps one id however often it is retried.
        let id = if self.reminder {
            format!(
                "reminder.{}.{}",
                self.approval_id,
                Utc::now().timestamp_millis()
            )
        } else {
            format!("approval.{}", self.approval_id)
        };
        build(sender, self.to, &id, rendered)
    }

    fn render(&self, templates: &EmailTemplates) -> anyhow::Result<Rendered> {
        let ctx = context! {
            approver => self.to,
            link => self.link,
            token => self.token,
            reminder => self.reminder,
            ..release_fields(self.release)
        };
        templates.render("approval_email", &ctx)
    }
}

/// What every email template may show of the release.
fn release_fields(release: &ReleaseRecord) -> minijinja::Value {
    let key = &release.key;
    context! {
        release_name => release.name,
        release_id => key.release_id,
        team_project => key.team_project,
        stage => key.stage,
        definition_name => release.definition_name,
        requested_for => release.requested_for,
        release_url => release.release_url,
        requested_at => release.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        deadline => release.deadline.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

impl EscalationNotice<'_> {
    /// Builds the multipart message to the escalation contact.
    pub fn to_message(
        &self,
        sender: &Sender,
        templates: &EmailTemplates,
    ) -> anyhow::Result<Message> {
        let ctx = context! {
            waiting_for => self.waiting_for,
            status_link => self.status_link,
            ..release_fields(self.release)
        };
        let rendered = templates.render("escalation_email", &ctx)?;
        build(
            sender,
            self.to,
            &format!("escalation.{}", self.release.id),
            rendered,
        )
    }
}

impl EmailTemplates {
    /// Renders `{stem}_subject.txt`, `{stem}.txt` and `{stem}.html`.
    fn render(&self, stem: &str, ctx: &minijinja::Value) -> anyhow::Result<Rendered> {
        let render = |name: String| -> anyhow::Result<String> {
            self.env
                .get_template(&name)?
                .render(ctx)
                .with_context(|| format!("rendering email template {name}"))
        };
        // One line: a template must not be able to add header lines through the subject.
        let subject = render(format!("{stem}_subject.txt"))?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: render(format!("{stem}.txt"))?,
            html: render(format!("{stem}.html"))?,
        })
    }
}

/// A multipart (text and HTML) message with `Message-ID` `<{id}@{sender domain}>` and `Date`.
fn build(sender: &Sender, to: &str, id: &str, rendered: Rendered) -> anyhow::Result<Message> {
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .to(to.parse().context("recipient address")?)
        .subject(rendered.subject)
        .message_id(Some(format!("<{id}@{}>", sender.from.email.domain())))
        .date_now();
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .context("building the email")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::release::ReleaseKey;

    pub(in crate::notify) fn release(name: &str) -> ReleaseRecord {
        ReleaseRecord {
            id: 1,
            key: ReleaseKey::parse("Devx", "386", "prod").unwrap(),
            name: name.to_owned(),
            required_approvals: None,
            requested_for: None,
            release_url: None,
            definition_name: None,
            rule: crate::domain::policy::Rule::from_required(None),
            cancelled: None,
            settled: None,
            escalated_at: None,
            deadline: Utc::now(),
            approvers_source: None,
            approvers_resolved_at: None,
            approver_problem: None,
            created_at: Utc::now(),
        }
    }

    pub(in crate::notify) fn request(release: &ReleaseRecord) -> ApprovalRequest<'_> {
        ApprovalRequest {
            approval_id: Uuid::nil(),
            to: "ana@example.com",
            release,
            link: "http://gate/approval?token=abc.def.ghi",
            token: "abc.def.ghi",
            reminder: false,
        }
    }

    fn sender() -> Sender {
        Sender {
            from: "deploy-gate@gate.example".parse().unwrap(),
            reply_to: Some("platform@example.com".parse().unwrap()),
        }
    }

    #[test]
    fn the_email_has_both_parts_the_link_headers_and_escaped_html() {
        let release = release("<script>alert(1)</script> Déploiement");
        let templates = EmailTemplates::load(None).unwrap();
        let message = request(&release).to_message(&sender(), &templates).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(
            raw.contains(
                "Message-ID: <approval.00000000-0000-0000-0000-000000000000@gate.example>"
            )
        );
        assert!(raw.contains("Reply-To: platform@example.com"));
        assert!(raw.contains("Date: "));
        let rendered = request(&release).render(&templates).unwrap();
        assert!(rendered.subject.starts_with("Approval needed: "));
        assert!(
            rendered
                .text
                .contains("<script>alert(1)</script> Déploiement")
        );
        assert!(
            rendered
                .text
                .contains("http://gate/approval?token=abc.def.ghi")
        );
        assert!(
            rendered.html.contains("&lt;script&gt;") && !rendered.html.contains("<script>"),
            "HTML part must escape the name"
        );
        assert!(
            rendered
                .html
                .contains(r#"href="http:&#x2f;&#x2f;gate&#x2f;approval?token=abc.def.ghi""#)
        );
    }

    #[test]
    fn templates_in_a_folder_replace_the_built_in_ones_and_subjects_stay_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("approval_email_subject.txt"),
            "Deploy {{ release_name }}?\nBcc: evil@example.com",
        )
        .unwrap();
        std::fs::write(dir.path().join("approval_email.txt"), "Go to {{ link }}").unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let release = release("R1");
        let rendered = request(&release).render(&templates).unwrap();
        assert_eq!(rendered.subject, "Deploy R1? Bcc: evil@example.com");
        assert_eq!(
            rendered.text,
            "Go to http://gate/approval?token=abc.def.ghi"
        );
        assert!(
            rendered.html.contains("Review and decide"),
            "HTML stays built in"
        );
    }

    #[test]
    fn a_broken_template_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("approval_email.html"), "{% if %}").unwrap();
        let err = EmailTemplates::load(Some(dir.path())).err().unwrap();
        assert!(
            format!("{err:#}").contains("approval_email.html"),
            "{err:#}"
        );
    }
}
