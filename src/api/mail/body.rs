//! The JSON bodies of `GET /mail` and `GET /mail/{file}`.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Example};

use crate::{
    api::http::negotiate::PageBody,
    notify::{MailMessage, MailSummary},
};

/// Path of the mail preview; each email is below it.
pub const MAIL_PATH: &str = "/mail";

/// One email of the mail folder.
#[derive(Object, Clone, Debug)]
#[oai(rename = "MailSummary")]
pub struct MailEntry {
    /// The file's name in the mail folder, `<UTC time>-<id>.eml`.
    pub file: String,
    /// When it was written (its `Date` header).
    pub time: DateTime<Utc>,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
    /// Path of the email (`GET /mail/{file}`).
    pub url: String,
}

impl From<MailSummary> for MailEntry {
    fn from(summary: MailSummary) -> Self {
        Self {
            url: format!("{MAIL_PATH}/{}", summary.file),
            file: summary.file,
            time: summary.time,
            to: summary.to,
            subject: summary.subject,
        }
    }
}

/// The emails written to the mail folder, newest first.
#[derive(Object, Clone, Debug)]
#[oai(rename = "MailList", example)]
pub struct MailList {
    /// The newest emails, at most 100.
    pub messages: Vec<MailEntry>,
}

impl PageBody for MailList {
    const DESCRIPTION: &'static str = "The emails, newest first: JSON for API clients, an HTML page when the client accepts `text/html` before `application/json`.";
}

/// A header of an email.
#[derive(Object, Clone, Debug)]
#[oai(rename = "MailHeader")]
pub struct MailHeader {
    /// Its name.
    pub name: String,
    /// Its value as written (encoded words left encoded), on one line.
    pub value: String,
}

/// One email, decoded. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(rename = "MailMessage", example, skip_serializing_if_is_none)]
pub struct MailView {
    /// The file's name in the mail folder.
    pub file: String,
    /// When it was written (its `Date` header).
    pub time: DateTime<Utc>,
    /// The sender's address.
    pub from: Option<String>,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// The subject, decoded.
    pub subject: String,
    /// Every header, in order.
    pub headers: Vec<MailHeader>,
    /// The plain-text part, decoded.
    pub text: Option<String>,
    /// The HTML part, decoded.
    pub html: Option<String>,
}

impl From<MailMessage> for MailView {
    fn from(message: MailMessage) -> Self {
        let summary = message.summary;
        Self {
            file: summary.file,
            time: summary.time,
            from: message.from,
            to: summary.to,
            subject: summary.subject,
            headers: message
                .headers
                .into_iter()
                .map(|(name, value)| MailHeader { name, value })
                .collect(),
            text: message.text,
            html: message.html,
        }
    }
}

impl PageBody for MailView {
    const DESCRIPTION: &'static str = "The email: JSON for API clients, an HTML page (the HTML part in a sandboxed frame, the text part and the headers) when the client accepts `text/html` before `application/json`.";
}

const EXAMPLE_FILE: &str = "20261206T061502Z-0f8fad5b-d9cb-469f-a165-70867728950e.eml";

fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T06:15:02Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

impl Example for MailList {
    fn example() -> Self {
        Self {
            messages: vec![MailEntry {
                file: EXAMPLE_FILE.into(),
                time: example_time(),
                to: vec!["ana@example.com".into()],
                subject: "Approval needed: Desafio-CD (Devx #386)".into(),
                url: format!("{MAIL_PATH}/{EXAMPLE_FILE}"),
            }],
        }
    }
}

impl Example for MailView {
    fn example() -> Self {
        let subject = "Approval needed: Desafio-CD (Devx #386)";
        Self {
            file: EXAMPLE_FILE.into(),
            time: example_time(),
            from: Some("deploy-gate@localhost".into()),
            to: vec!["ana@example.com".into()],
            subject: subject.into(),
            headers: vec![MailHeader {
                name: "Subject".into(),
                value: subject.into(),
            }],
            text: Some("Open http://127.0.0.1:8000/approval?token=… to decide.".into()),
            html: Some(
                "<p><a href=\"http://127.0.0.1:8000/approval?token=…\">Review and decide</a></p>"
                    .into(),
            ),
        }
    }
}
