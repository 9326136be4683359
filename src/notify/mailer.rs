//! Email delivery over SMTP (pooled) or into a folder of `.eml` files.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use chrono::Utc;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{
    Notifier,
    mailbox::{Mailbox, file_name},
    render::{ApprovalRequest, EmailTemplates, EscalationNotice},
};
use crate::settings::{MailTarget, Sender};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends approval emails.
pub struct Mailer {
    sender: Sender,
    templates: EmailTemplates,
    transport: Transport,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(PathBuf),
}

/// Emails written within one second about one id before the mailer gives up naming them.
const MAX_COPIES: u32 = 99;

impl Mailer {
    /// A mailer for the configured target; creates the mail folder if needed.
    pub fn new(
        target: &MailTarget,
        sender: Sender,
        templates: EmailTemplates,
    ) -> anyhow::Result<Self> {
        let transport = match target {
            MailTarget::Smtp(url) => {
                let smtp: AsyncSmtpTransport<Tokio1Executor> =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                        .context("DEPLOY_GATE_SMTP_URL")?
                        .timeout(Some(SMTP_TIMEOUT))
                        .build();
                Transport::Smtp(smtp)
            }
            MailTarget::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating mail folder {}", dir.display()))?;
                Transport::Directory(dir.clone())
            }
        };
        Ok(Self {
            sender,
            templates,
            transport,
        })
    }

    /// The folder emails are written to as `.eml` files, when they are not sent.
    pub fn directory(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Directory(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// The mail folder read as a mailbox, when emails are written there.
    pub fn mailbox(&self) -> Option<Mailbox> {
        self.directory().map(Mailbox::new)
    }

    /// Checks that mail can go out, sending nothing: the SMTP server answers
    /// (connect, EHLO, and authentication where configured), or the folder
    /// takes a file. Says what was checked.
    pub async fn check(&self) -> anyhow::Result<String> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let answered = smtp
                    .test_connection()
                    .await
                    .context("the SMTP server did not answer as one")?;
                anyhow::ensure!(answered, "the SMTP server refused the connection");
                Ok("the SMTP server answered (connect, EHLO, login where configured)".to_owned())
            }
            Transport::Directory(dir) => {
                let probe = dir.join(".deploy-gate-doctor");
                std::fs::write(&probe, b"")
                    .and_then(|()| std::fs::remove_file(&probe))
                    .with_context(|| format!("cannot write into {}", dir.display()))?;
                Ok(format!(
                    "emails are written as .eml files to {}",
                    dir.display()
                ))
            }
        }
    }

    /// Tells the escalation contact that a release is still undecided; the file
    /// written, when emails go to the mail folder.
    pub async fn escalate(&self, notice: &EscalationNotice<'_>) -> anyhow::Result<Option<PathBuf>> {
        let message = notice.to_message(&self.sender, &self.templates)?;
        self.deliver(message, &notice.release.id.to_string()).await
    }

    /// Emails one approver's request (or reminder); the file written, when emails go
    /// to the mail folder.
    pub async fn send_request(
        &self,
        request: &ApprovalRequest<'_>,
    ) -> anyhow::Result<Option<PathBuf>> {
        let message = request.to_message(&self.sender, &self.templates)?;
        self.deliver(message, &request.approval_id.to_string())
            .await
    }

    /// Delivers one message about `id` (the approval or release it concerns); fails if
    /// the server (or the folder) did not accept it. Gives the file written, if any.
    async fn deliver(&self, message: lettre::Message, id: &str) -> anyhow::Result<Option<PathBuf>> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("SMTP delivery failed")?;
                Ok(None)
            }
            Transport::Directory(dir) => {
                let path = write_new_file(dir, id, &message.formatted())
                    .await
                    .with_context(|| format!("writing email into {}", dir.display()))?;
                Ok(Some(path))
            }
        }
    }
}

/// Writes `content` as a new file of the folder named by the time and `id`, whole
/// or not at all (a reader never sees half a message), never replacing a file.
async fn write_new_file(dir: &Path, id: &str, content: &[u8]) -> std::io::Result<PathBuf> {
    let partial = dir.join(format!(".{id}.{}.partial", uuid::Uuid::new_v4()));
    tokio::fs::write(&partial, content).await?;
    let now = Utc::now();
    let mut outcome = Err(std::io::ErrorKind::AlreadyExists.into());
    for copy in 1..=MAX_COPIES {
        let path = dir.join(file_name(now, id, copy));
        // A hard link fails where the name is taken, where a rename would replace it.
        outcome = tokio::fs::hard_link(&partial, &path).await.map(|()| path);
        match &outcome {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            _ => break,
        }
    }
    tokio::fs::remove_file(&partial).await?;
    outcome
}

#[async_trait::async_trait]
impl Notifier for Mailer {
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()> {
        self.send_request(request).await.map(drop)
    }
}
