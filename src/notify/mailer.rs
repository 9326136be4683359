//! Email delivery over SMTP (pooled) or into a folder of `.eml` files.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{
    Notifier,
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
    Directory(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

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
                Transport::Directory(AsyncFileTransport::new(dir), dir.clone())
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
            Transport::Directory(_, dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
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
            Transport::Directory(_, dir) => {
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

    /// Tells the escalation contact that a release is still undecided.
    pub async fn escalate(&self, notice: &EscalationNotice<'_>) -> anyhow::Result<()> {
        self.deliver(notice.to_message(&self.sender, &self.templates)?)
            .await
    }

    /// Delivers one message; fails if the server (or the folder) did not accept it.
    async fn deliver(&self, message: lettre::Message) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("SMTP delivery failed")?;
            }
            Transport::Directory(files, dir) => {
                files
                    .send(message)
                    .await
                    .with_context(|| format!("writing email into {}", dir.display()))?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Notifier for Mailer {
    async fn request_approval(&self, request: &ApprovalRequest<'_>) -> anyhow::Result<()> {
        self.deliver(request.to_message(&self.sender, &self.templates)?)
            .await
    }
}
