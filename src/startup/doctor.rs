//! `deploy-gate doctor`: checks each dependency the configuration names,
//! changing and sending nothing, and says how to fix what fails.

use std::time::Duration;

use crate::{
    approvers::ApproverSource,
    azure::{AzureAuth, AzureClient, Organization, assignment::Assignments},
    notify::{EmailTemplates, Mailer},
    settings::{Config, MailTarget},
    store,
};

/// How long each check may take over the network.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One dependency checked.
pub struct Check {
    /// What was checked, e.g. `database`.
    pub name: &'static str,
    /// What was found, or why it failed.
    pub outcome: Result<String, String>,
    /// What to change when it failed.
    pub fix: &'static str,
}

/// Checks the database, mail, the approvers and Azure DevOps write-back.
pub async fn checks(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let database = async {
        let store = store::open(&config.database).await?;
        store.ping().await?;
        anyhow::Ok(format!(
            "{} answers",
            match config.database.url.expose().starts_with("sqlite:") {
                true => "the SQLite database",
                false => "the PostgreSQL server",
            }
        ))
    };
    checks.push(Check {
        name: "database",
        outcome: outcome(database.await),
        fix: "check DEPLOY_GATE_DATABASE_URL (and that the server runs and takes connections)",
    });
    let mail = async {
        let mailer = Mailer::new(
            &config.mail,
            config.mail_sender.clone(),
            EmailTemplates::load(config.mail_template_dir.as_deref())?,
        )?;
        tokio::time::timeout(CHECK_TIMEOUT, mailer.check()).await?
    };
    checks.push(Check {
        name: "mail",
        outcome: outcome(mail.await),
        fix: match config.mail {
            MailTarget::Smtp(_) => {
                "check DEPLOY_GATE_SMTP_URL: host, port, TLS (smtps:// or tls=required), user and password"
            }
            MailTarget::Directory(_) => "check DEPLOY_GATE_MAIL_DIR: a folder this user may write",
        },
    });
    let approvers = async {
        let source = ApproverSource::new(config.approvers_url.clone(), config.approvers.clone())?;
        source.check().await
    };
    checks.push(Check {
        name: "approvers",
        outcome: outcome(approvers.await),
        fix: "check DEPLOY_GATE_APPROVERS_URL and that the approvers API answers GET with JSON",
    });
    let azure = async {
        let client = AzureClient::new(CHECK_TIMEOUT, &config.azure_ca_certificates)?;
        let organization = config
            .azure_devops
            .as_ref()
            .map(|settings| Organization::new(settings, &client))
            .transpose()?;
        let entra = matches!(
            organization.as_ref().map(|o| &o.auth),
            Some(AzureAuth::Entra(_))
        );
        let assignments = Assignments::new(client, organization);
        Ok(match assignments.whoami().await? {
            Some(who) if entra => {
                format!("deploy-gate's Entra ID identity is {who} in Azure DevOps")
            }
            Some(who) => format!("the write-back token belongs to {who}"),
            None => "no write-back configured (DEPLOY_GATE_AZURE_DEVOPS_URL unset)".to_owned(),
        })
    };
    checks.push(Check {
        name: "azure devops",
        outcome: outcome(azure.await),
        fix: "check DEPLOY_GATE_AZURE_DEVOPS_URL (or _ORG_URL), and that DEPLOY_GATE_AZURE_DEVOPS_PAT is valid and not expired, or the Entra ID settings (DEPLOY_GATE_AZURE_TENANT_ID, _CLIENT_ID, _CLIENT_SECRET, _MANAGED_IDENTITY, _AUTHORITY_HOST, _CA_FILE) and that the identity was added to the organization",
    });
    checks
}

fn outcome(result: anyhow::Result<String>) -> Result<String, String> {
    result.map_err(|e| format!("{e:#}"))
}

/// The report, a line per check: `ok`, or `FAIL` with the fix.
pub fn report(checks: &[Check]) -> String {
    let mut text = String::new();
    for check in checks {
        match &check.outcome {
            Ok(found) => text.push_str(&format!("ok    {:<13} {found}\n", check.name)),
            Err(why) => text.push_str(&format!(
                "FAIL  {:<13} {why}\n      fix: {}\n",
                check.name, check.fix
            )),
        }
    }
    text
}
