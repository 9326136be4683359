//! The mail folder as a mailbox: how the emails written there are named, and
//! reading them back, decoded, for the preview at `/mail`.
//!
//! A file is named `<UTC time>-<id>.eml` (`20261206T061502Z-<approval id>.eml`):
//! sortable by time, and made only of the time and an id the service chose, so no
//! caller-chosen text reaches a path. Only names of that shape are ever read.

use std::{
    io,
    path::{Path, PathBuf},
};

use chrono::{DateTime, NaiveDateTime, Utc};
use mail_parser::{MessageParser, PartType};

/// The time at the start of a file name, e.g. `20261206T061502Z`.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Length of the time at the start of a file name.
const TIME_LENGTH: usize = "20261206T061502Z".len();

/// Longest id part of a file name: a UUID (36) and a `-99` suffix, with room to spare.
const MAX_ID_LENGTH: usize = 48;

/// The name of an email about `id` written at `at`; `copy` > 1 tells apart emails
/// about one id written within the same second.
pub fn file_name(at: DateTime<Utc>, id: &str, copy: u32) -> String {
    let time = at.format(TIME_FORMAT);
    if copy > 1 {
        format!("{time}-{id}-{copy}.eml")
    } else {
        format!("{time}-{id}.eml")
    }
}

/// Whether `name` has the shape of a name [`file_name`] gives: a time, a dash, an id
/// of lowercase hex digits and dashes, `.eml`. Nothing else is served, so no `/`,
/// `..` or other path is ever opened.
pub fn is_mail_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".eml") else {
        return false;
    };
    let (Some(time), Some(id)) = (stem.get(..TIME_LENGTH), stem.get(TIME_LENGTH..)) else {
        return false;
    };
    let Some(id) = id.strip_prefix('-') else {
        return false;
    };
    time_of(time).is_some()
        && !id.is_empty()
        && id.len() <= MAX_ID_LENGTH
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// The time a name of [`file_name`]'s shape starts with.
fn time_of(name: &str) -> Option<DateTime<Utc>> {
    let time = name.get(..TIME_LENGTH)?;
    NaiveDateTime::parse_from_str(time, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// The folder emails are written to, read as a mailbox.
#[derive(Clone, Debug)]
pub struct Mailbox {
    dir: PathBuf,
}

/// One email of the folder as a list shows it.
#[derive(Clone, Debug)]
pub struct MailSummary {
    /// The file's name.
    pub file: String,
    /// When it was written (its `Date`, else the time in its name).
    pub time: DateTime<Utc>,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// The decoded subject.
    pub subject: String,
}

/// One email, decoded.
#[derive(Clone, Debug)]
pub struct MailMessage {
    /// What a list shows of it.
    pub summary: MailSummary,
    /// The sender's address.
    pub from: Option<String>,
    /// Every header of the message, in order, unfolded (values as written).
    pub headers: Vec<(String, String)>,
    /// The plain-text part, decoded.
    pub text: Option<String>,
    /// The HTML part, decoded.
    pub html: Option<String>,
}

impl Mailbox {
    /// The mailbox of the folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest `limit` emails, newest first; files of other names, and anything
    /// but regular files (symbolic links included), are passed over.
    pub async fn list(&self, limit: usize) -> io::Result<Vec<MailSummary>> {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if is_mail_file_name(&name) && entry.file_type().await?.is_file() {
                names.push(name);
            }
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut summaries = Vec::new();
        for name in names.into_iter().take(limit) {
            if let Some(message) = self.open(&name).await? {
                summaries.push(message.summary);
            }
        }
        Ok(summaries)
    }

    /// The email in the file `name`, decoded; `None` when `name` is not of the
    /// generated shape, no such regular file exists, or it is not a message.
    pub async fn open(&self, name: &str) -> io::Result<Option<MailMessage>> {
        if !is_mail_file_name(name) {
            return Ok(None);
        }
        let path = self.dir.join(name);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        }
        let raw = tokio::fs::read(&path).await?;
        Ok(decode(name, &raw))
    }
}

/// The message in `raw`, decoded (quoted-printable, base64, multipart).
fn decode(name: &str, raw: &[u8]) -> Option<MailMessage> {
    let message = MessageParser::default().parse(raw)?;
    let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        address
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let time = message
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .or_else(|| time_of(name))
        .unwrap_or_default();
    let summary = MailSummary {
        file: name.to_owned(),
        time,
        to: addresses(message.to()),
        subject: message.subject().unwrap_or_default().to_owned(),
    };
    let headers = message
        .headers_raw()
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect();
    // The body lists name the parts a reader shows; a list may name a part of the other
    // kind (a text-only message's HTML body is its text), which is not shown as this kind.
    let text = message.text_bodies().find_map(|part| match &part.body {
        PartType::Text(text) => Some(text.to_string()),
        _ => None,
    });
    let html = message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });
    Some(MailMessage {
        summary,
        from: addresses(message.from()).into_iter().next(),
        headers,
        text,
        html,
    })
}

/// A header value on one line, as a folded header reads.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_recognised_and_nothing_else_is() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T06:15:02Z")
            .unwrap()
            .to_utc();
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let name = file_name(at, id, 1);
        assert_eq!(name, format!("20261206T061502Z-{id}.eml"));
        assert!(is_mail_file_name(&name));
        assert!(is_mail_file_name(&file_name(at, id, 2)));
        assert!(is_mail_file_name(&file_name(at, "42", 1)));
        for refused in [
            "",
            ".eml",
            "../20261206T061502Z-42.eml",
            "20261206T061502Z-../../etc/passwd.eml",
            "20261206T061502Z-42.eml/",
            "20261206T061502Z-.eml",
            "20261206T061502Z42.eml",
            "20261306T061502Z-42.eml",
            "20261206T061502Z-42.EML",
            "20261206T061502Z-4%2e2.eml",
            "20261206T061502Z-ABC.eml",
            "/tmp/20261206T061502Z-42.eml",
            "20261206T061502Z-42.eml.tmp",
        ] {
            assert!(!is_mail_file_name(refused), "{refused}");
        }
        assert!(!is_mail_file_name(&file_name(at, &"a".repeat(49), 1)));
    }
}
