//! What each kind of job does. Every job is idempotent: it checks what is
//! already done before doing it, and completes itself in its final transaction.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use tokio::time::Instant;

use crate::{
    approvers::ApproverSource,
    azure::{
        AzureClient, Organization,
        access::AzureAccess,
        approvals::{
            ApprovalList, ApprovalUpdate, PipelineApproval, PipelineApprovalUpdate,
            approval_update, approval_url, pipeline_approval_url, pipeline_approvals_url,
            release_approvals_with_status_url,
        },
        client::{Auth, Refused},
    },
    clock::Clock,
    domain::{
        approver::mask_email,
        job::{Job, JobKind, Lease},
        policy::{AzureApprovers, Decision, Found, Policies},
        release::{AzureApprovalKind, AzureApprovalRef},
        snapshot::{ApprovalRecord, ReleaseRecord, ReleaseSnapshot},
    },
    flow::{Finished, Flow},
    live::Live,
    metrics::Metrics,
    notify::{self, ApprovalRequest, EscalationNotice, Mailer},
    settings::JobSettings,
    store::{Store, StoreError},
    token::{ApprovalClaims, TokenKeys},
};

/// Everything jobs need to do their work.
pub struct JobContext {
    /// The database, read by jobs (every change goes through `flow`).
    pub store: Arc<dyn Store>,
    /// The release lifecycle.
    pub flow: Arc<Flow>,
    /// Where approvers come from.
    pub approvers: ApproverSource,
    /// Where emails go, replaced by a configuration reload: read as each email is sent.
    pub mailer: Live<Mailer>,
    /// Token signing keys.
    pub tokens: Live<TokenKeys>,
    /// Base of approval links, without trailing slash.
    pub public_url: String,
    /// Queue behaviour.
    pub jobs: JobSettings,
    /// Client for Azure DevOps calls.
    pub azure: AzureClient,
    /// Write-back target and credentials, replaced by a configuration reload.
    pub azure_devops: Live<AzureAccess>,
    /// Counters of emails, callbacks, decisions and job attempts.
    pub metrics: Arc<Metrics>,
    /// Approval policies: groups, reminders, escalation and channels (with their
    /// webhook URLs), replaced by a configuration reload.
    pub policies: Live<Policies>,
    /// Client for channel webhooks (Teams, Slack, generic).
    pub http: reqwest::Client,
    /// The time.
    pub clock: Clock,
}

/// The most jobs one job claims for its worker to run next, side by side:
/// the emails of a release's first 16 approvers; any more are claimed one by one.
const MOST_HANDED_ON: usize = 16;

/// Jobs that a job claimed for its worker to run next, and when their lease
/// was taken.
pub struct HandedOn {
    /// The jobs, each with its release.
    pub jobs: Vec<Job>,
    /// When their lease was taken.
    pub leased_at: Instant,
}

/// Runs one job to completion, or fails so that it is retried; the jobs it
/// claimed for its worker on the way, if any.
pub async fn run(ctx: &JobContext, job: &Job) -> anyhow::Result<Option<HandedOn>> {
    let done = match job.kind {
        JobKind::ResolveApprovers => return resolve_approvers(ctx, job).await,
        JobKind::SendApprovalEmail => send_approval_email(ctx, job).await,
        JobKind::ExpireRelease => expire_release(ctx, job).await,
        JobKind::PostCallback => super::callback::post_callback(ctx, job).await,
        JobKind::WriteBackApproval => write_back_approval(ctx, job).await,
        JobKind::NotifyChannel => notify_channel(ctx, job).await,
        JobKind::RemindApprovers => Ok(ctx.flow.reminders_due(job.id, job.release_id).await?),
        JobKind::SendReminder => send_reminder(ctx, job).await,
        JobKind::Escalate => escalate(ctx, job).await,
    };
    done.map(|()| None)
}

async fn expire_release(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    Ok(ctx.flow.deadline_reached(job.id, job.release_id).await?)
}

async fn write_back_approval(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let access = ctx.azure_devops.get();
    let Some(azure) = &access.devops else {
        tracing::info!(
            "DEPLOY_GATE_AZURE_DEVOPS_URL not set: decision not written back to Azure DevOps"
        );
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let Some(snapshot) = release_of(ctx, job).await? else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let release = &snapshot.release;
    let Some(update) = approval_update(&snapshot, snapshot.outcome(ctx.clock.now()).status) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    // One approval after the other, each recorded as it lands: a retry goes on
    // with the ones left.
    for azure_approval in ctx.store.azure_approvals(release.id).await? {
        if azure_approval.written_back_at.is_some() {
            continue;
        }
        let approval = &azure_approval.approval;
        match write_back_one(ctx, azure, &release.key.team_project, approval, &update).await {
            Ok(()) => {
                tracing::info!(azure.approval_id = %approval.id, kind = approval.kind.as_str(), status = update.status, "decision written back to Azure DevOps");
                ctx.flow.written_back(approval).await?;
            }
            // Refused outright: if the approval was completed in Azure
            // meanwhile, Azure's decision settles the round instead.
            Err(err) if Refused::permanent_in(&err) => {
                let Some(decision) = decided_in_azure(ctx, azure, release, approval).await else {
                    return Err(err);
                };
                ctx.flow
                    .already_decided_in_azure(release.id, approval, decision)
                    .await?;
                break;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(ctx.store.complete_job(job.id).await?)
}

/// How the approval was decided in Azure DevOps itself, if it was; `None`
/// when it is still open or Azure cannot say.
async fn decided_in_azure(
    ctx: &JobContext,
    azure: &Organization,
    release: &ReleaseRecord,
    approval: &AzureApprovalRef,
) -> Option<Decision> {
    let auth = || Auth::Own(&azure.auth);
    let project = &release.key.team_project;
    match approval.kind {
        AzureApprovalKind::Classic => {
            for (status, decision) in [
                ("approved", Decision::Approve),
                ("rejected", Decision::Reject),
            ] {
                let url = release_approvals_with_status_url(
                    azure.settings.url.as_str(),
                    project,
                    &release.key.release_id,
                    status,
                    &azure.settings.api_version,
                );
                let list: ApprovalList = ctx.azure.get_json(&url, auth()).await.ok()?;
                if list.holds(&approval.id) {
                    return Some(decision);
                }
            }
            None
        }
        AzureApprovalKind::Yaml => {
            let url = pipeline_approval_url(
                azure.settings.org_url.as_str(),
                project,
                &approval.id,
                &azure.settings.api_version,
            );
            let found: PipelineApproval = ctx.azure.get_json(&url, auth()).await.ok()?;
            match found.status.as_str() {
                "approved" => Some(Decision::Approve),
                "rejected" => Some(Decision::Reject),
                _ => None,
            }
        }
    }
}

/// Approves or rejects one Azure DevOps approval: a classic one through the
/// release approvals API, a YAML one through the pipelines approvals API.
async fn write_back_one(
    ctx: &JobContext,
    azure: &Organization,
    project: &str,
    approval: &AzureApprovalRef,
    update: &ApprovalUpdate,
) -> anyhow::Result<()> {
    let auth = Auth::Own(&azure.auth);
    let method = azure_core::http::Method::Patch;
    match approval.kind {
        AzureApprovalKind::Classic => {
            let url = approval_url(
                azure.settings.url.as_str(),
                project,
                &approval.id,
                &azure.settings.api_version,
            );
            ctx.azure
                .send_json(method, &url, auth, update)
                .await
                .context("updating the Azure DevOps release approval")
        }
        AzureApprovalKind::Yaml => {
            let url = pipeline_approvals_url(
                azure.settings.org_url.as_str(),
                project,
                &azure.settings.api_version,
            );
            let body = [PipelineApprovalUpdate {
                approval_id: &approval.id,
                status: update.status,
                comment: &update.comments,
            }];
            ctx.azure
                .send_json(method, &url, auth, &body)
                .await
                .context("updating the Azure DevOps pipeline approval")
        }
    }
}

/// Finds and stores a release's approvers, and hands on the first of their
/// emails to the worker, claimed with the write.
async fn resolve_approvers(ctx: &JobContext, job: &Job) -> anyhow::Result<Option<HandedOn>> {
    let Some(snapshot) = release_of(ctx, job).await? else {
        ctx.store.complete_job(job.id).await?;
        return Ok(None);
    };
    let release = &snapshot.release;
    if release.approvers_source.is_some() || snapshot.outcome(ctx.clock.now()).status.is_final() {
        ctx.store.complete_job(job.id).await?;
        return Ok(None);
    }
    let found = find_approvers(ctx, release).await?;
    let leased_at = Instant::now();
    let lease = Lease {
        most: MOST_HANDED_ON,
        until: ctx.clock.now() + chrono::Duration::from_std(ctx.jobs.lease)?,
    };
    let jobs = ctx
        .flow
        .approvers_found(job.id, release, found, lease)
        .await?;
    Ok(Some(HandedOn { jobs, leased_at }))
}

/// The release's own approvers: from Azure DevOps where its policy names
/// `azure_approvers`, else from the approvers API or the static list.
async fn find_approvers(ctx: &JobContext, release: &ReleaseRecord) -> anyhow::Result<Found> {
    let policies = ctx.policies.get();
    let policy = policies.for_release(&release.key);
    let Some(source) = policy.and_then(|p| p.azure_approvers.as_ref()) else {
        return ctx.approvers.resolve(&release.key, &release.name).await;
    };
    let access = ctx.azure_devops.get();
    let azure = access
        .approvers
        .as_ref()
        .context("azure_approvers needs DEPLOY_GATE_AZURE_DEVOPS_URL and its credential")?;
    let assigned = match source {
        AzureApprovers::Assigned => ctx
            .store
            .azure_approvals(release.id)
            .await?
            .into_iter()
            .flat_map(|a| a.assigned_to)
            .collect(),
        _ => Vec::new(),
    };
    azure
        .resolve(source, &release.key.team_project, &assigned)
        .await
        .with_context(|| format!("looking up {}", source.describe()))
}

/// The job's release: as read with the claim where the claim read it, else
/// read now.
async fn release_of(ctx: &JobContext, job: &Job) -> Result<Option<ReleaseSnapshot>, StoreError> {
    match &job.release {
        Some(snapshot) => Ok(Some(snapshot.clone())),
        None => ctx.store.release_by_id(job.release_id).await,
    }
}

/// An approval and its release, while the request is still wanted: `None` (and
/// the job completed) once the approver decided or the release is final.
async fn open_approval(
    ctx: &JobContext,
    job: &Job,
) -> anyhow::Result<Option<(ApprovalRecord, ReleaseSnapshot)>> {
    let approval_id = job
        .approval_id
        .context("approval job without an approval")?;
    // The release's snapshot holds its approvals: one read, not two.
    let snapshot = release_of(ctx, job).await?;
    let approval = snapshot
        .as_ref()
        .and_then(|s| s.approval(approval_id).cloned());
    match (approval, snapshot) {
        (Some(approval), Some(snapshot))
            if approval.decided.is_none()
                && !snapshot.outcome(ctx.clock.now()).status.is_final() =>
        {
            Ok(Some((approval, snapshot)))
        }
        _ => {
            ctx.store.complete_job(job.id).await?;
            Ok(None)
        }
    }
}

/// An approval's signed token and the approval page link carrying it.
struct SignedLink {
    token: String,
    url: String,
}

impl SignedLink {
    /// The approver's request with this link, as every channel receives it.
    fn request<'a>(
        &'a self,
        approval: &'a ApprovalRecord,
        release: &'a ReleaseRecord,
        reminder: bool,
    ) -> ApprovalRequest<'a> {
        ApprovalRequest {
            approval_id: approval.id,
            to: &approval.email,
            release,
            link: &self.url,
            token: &self.token,
            reminder,
        }
    }
}

/// A fresh signed link for the approval's current link generation.
fn mint_link(ctx: &JobContext, approval: &ApprovalRecord, release: &ReleaseRecord) -> SignedLink {
    let claims = ApprovalClaims::new(
        approval.id,
        approval.link_generation,
        &approval.email,
        &release.key,
        &release.name,
        ctx.clock.now(),
        release.deadline,
    );
    let token = ctx.tokens.get().mint(&claims);
    let url = format!("{}/approval?token={token}", ctx.public_url);
    SignedLink { token, url }
}

/// Emails an approver's request (or reminder), counting the outcome; the file
/// written, when emails go to the mail folder.
async fn email(
    ctx: &JobContext,
    mailer: &Mailer,
    request: &ApprovalRequest<'_>,
) -> anyhow::Result<Option<PathBuf>> {
    let file = mailer
        .send_request(request)
        .await
        .inspect_err(|_| ctx.metrics.email(false))?;
    ctx.metrics.email(true);
    Ok(file)
}

/// Logs that `what` (an email) went out: accepted by the SMTP server, or written to
/// `file` of the mail folder, the file named so that it is found without searching.
/// The address is masked, as everywhere.
fn log_email(what: &str, to: &str, file: Option<&Path>) {
    let to = mask_email(to);
    match file {
        Some(file) => {
            tracing::info!(to = %to, file = %file.display(), "{what} written to {}", file.display())
        }
        None => tracing::info!(to = %to, "{what} accepted"),
    }
}

async fn send_approval_email(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let Some((approval, snapshot)) = open_approval(ctx, job).await? else {
        return Ok(());
    };
    if approval.email_sent_at.is_some() {
        return Ok(ctx.store.complete_job(job.id).await?);
    }
    let release = &snapshot.release;
    let link = mint_link(ctx, &approval, release);
    let mailer = ctx.mailer.get();
    let file = email(ctx, &mailer, &link.request(&approval, release, false)).await?;
    tracing::info_span!("approval_email", approval.id = %approval.id)
        .in_scope(|| log_email("approval email", &approval.email, file.as_deref()));
    // Without SMTP: the link in plain text, so it is found without decoding the .eml;
    // the file it is in, and the address masked, as everywhere.
    if let (Some(file), Some(folder)) = (&file, mailer.directory()) {
        tracing::info!(release.key = %release.key.display(), to = %mask_email(&approval.email),
            folder = %folder.display(), file = %file.display(), link = %link.url,
            "approval link (no SMTP server configured)");
    }
    // The server has accepted the mail: from here on only the bookkeeping is retried, never the send.
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let recorded = ctx
            .flow
            .email_sent(job.id, approval.id, approval.link_generation);
        match recorded.await {
            Ok(()) => return Ok(()),
            Err(err) if pause < std::time::Duration::from_secs(5) => {
                tracing::warn!(error = %err, "recording a sent email failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(err) => {
                return Err(anyhow::Error::from(err).context("email sent, but recording it failed"));
            }
        }
    }
}

async fn send_reminder(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let Some((approval, snapshot)) = open_approval(ctx, job).await? else {
        return Ok(());
    };
    let release = &snapshot.release;
    let link = mint_link(ctx, &approval, release);
    let file = email(
        ctx,
        &ctx.mailer.get(),
        &link.request(&approval, release, true),
    )
    .await?;
    tracing::info_span!("reminder", approval.id = %approval.id)
        .in_scope(|| log_email("reminder", &approval.email, file.as_deref()));
    Ok(ctx.store.complete_job(job.id).await?)
}

async fn notify_channel(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let kind = job.channel.context("channel job without a channel")?;
    let Some((approval, snapshot)) = open_approval(ctx, job).await? else {
        return Ok(());
    };
    let release = &snapshot.release;
    let policies = ctx.policies.get();
    let policy = policies.for_release(&release.key);
    let Some(url) = policy.and_then(|p| p.channel_url(kind)) else {
        tracing::warn!(
            channel = kind.as_str(),
            "channel no longer configured for this release; skipped"
        );
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let link = mint_link(ctx, &approval, release);
    notify::channel(kind, ctx.http.clone(), url)
        .request_approval(&link.request(&approval, release, false))
        .await
        .with_context(|| format!("posting to the {} channel", kind.as_str()))?;
    tracing::info!(approval.id = %approval.id, channel = kind.as_str(), "approval request posted");
    Ok(ctx.store.complete_job(job.id).await?)
}

async fn escalate(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let snapshot = release_of(ctx, job).await?;
    let now = ctx.clock.now();
    let Some(snapshot) = snapshot.filter(|s| !s.outcome(now).status.is_final()) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let release = &snapshot.release;
    let policies = ctx.policies.get();
    let escalation = policies
        .for_release(&release.key)
        .and_then(|p| p.escalation.as_ref());
    let Some(escalation) = escalation else {
        tracing::warn!("escalation no longer configured for this release; skipped");
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let waiting_for = snapshot
        .approvals
        .iter()
        .filter(|a| a.decided.is_none())
        .map(|a| a.email.as_str())
        .collect();
    let status_link = format!("{}{}", ctx.public_url, release.key.status_path());
    let notice = EscalationNotice {
        to: escalation.to.as_str(),
        release,
        waiting_for,
        status_link: &status_link,
    };
    let file = ctx.mailer.get().escalate(&notice).await?;
    log_email("escalation", escalation.to.as_str(), file.as_deref());
    let done = Finished::Escalated {
        release_id: release.id,
    };
    Ok(ctx.flow.finished(job.id, done).await?)
}
