//! What each kind of job does. Every job is idempotent: it checks what is
//! already done before doing it, and completes itself in its final transaction.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;

use super::{Job, JobKind};
use crate::{
    approvers::ApproverSource,
    azure::{
        AzureClient,
        approvals::{approval_update, approval_url},
        callback::{events_url, task_completed, task_result},
        client::Auth,
    },
    config::{AzureDevOps, JobSettings},
    domain::{approver::mask_email, policy::ReleaseStatus},
    metrics::Metrics,
    notify::{ApprovalEmail, Mailer},
    store::Store,
    token::{ApprovalClaims, TokenKeys},
};

/// Everything jobs need to do their work.
pub struct JobContext {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Where approvers come from.
    pub approvers: ApproverSource,
    /// Where emails go.
    pub mailer: Mailer,
    /// Token signing keys.
    pub tokens: TokenKeys,
    /// Base of approval links, without trailing slash.
    pub public_url: String,
    /// Queue behaviour.
    pub jobs: JobSettings,
    /// Client for Azure DevOps calls.
    pub azure: AzureClient,
    /// Write-back target; `None` when not configured.
    pub azure_devops: Option<AzureDevOps>,
    /// Counters of emails, callbacks, decisions and job attempts.
    pub metrics: Arc<Metrics>,
}

/// Runs one job to completion, or fails so that it is retried.
pub async fn run(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    match job.kind {
        JobKind::ResolveApprovers => resolve_approvers(ctx, job).await,
        JobKind::SendApprovalEmail => send_approval_email(ctx, job).await,
        JobKind::ExpireRelease => expire_release(ctx, job).await,
        JobKind::PostCallback => post_callback(ctx, job).await,
        JobKind::WriteBackApproval => write_back_approval(ctx, job).await,
    }
}

async fn expire_release(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let now = Utc::now();
    let was_final = match ctx.store.release_by_id(job.release_id).await? {
        Some(snapshot) => snapshot.outcome(now).status.is_final(),
        None => true,
    };
    ctx.store
        .expire_release(job.id, job.release_id, now)
        .await?;
    if !was_final
        && let Some(snapshot) = ctx.store.release_by_id(job.release_id).await?
        && snapshot.outcome(now).status == ReleaseStatus::Expired
    {
        ctx.metrics.release_decided(ReleaseStatus::Expired.as_str());
    }
    Ok(())
}

async fn post_callback(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let callback_id = job.callback_id.context("callback job without a callback")?;
    let callback = ctx.store.callback(callback_id).await?;
    let snapshot = ctx.store.release_by_id(job.release_id).await?;
    let (Some(callback), Some(snapshot)) = (callback, snapshot) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let result = task_result(snapshot.outcome(Utc::now()).status);
    let (Some(result), false) = (result, callback.delivered) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let target = &callback.target;
    ctx.azure
        .send_json(
            azure_core::http::Method::Post,
            &events_url(target),
            Auth::Bearer(target.auth_token.expose()),
            &task_completed(target, result),
        )
        .await
        .inspect_err(|_| ctx.metrics.callback("error"))
        .context("posting the TaskCompleted event")?;
    ctx.metrics.callback(result);
    tracing::info!(callback.id = callback.id, hub = %target.hub_name, result, "Azure DevOps callback delivered");
    ctx.store
        .complete_callback(job.id, callback.id, result, Utc::now())
        .await?;
    Ok(())
}

async fn write_back_approval(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let Some(azure) = &ctx.azure_devops else {
        tracing::info!(
            "DEPLOY_GATE_AZURE_DEVOPS_URL/PAT not set: decision not written back to Azure DevOps"
        );
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let Some(snapshot) = ctx.store.release_by_id(job.release_id).await? else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let release = &snapshot.release;
    let update = approval_update(&snapshot, snapshot.outcome(Utc::now()).status);
    let (Some(approval_id), Some(update), None) = (
        &release.azure_approval_id,
        update,
        release.azure_written_back_at,
    ) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let url = approval_url(azure.url.as_str(), &release.key.team_project, approval_id);
    ctx.azure
        .send_json(
            azure_core::http::Method::Patch,
            &url,
            Auth::BasicPat(azure.pat.expose()),
            &update,
        )
        .await
        .context("updating the Azure DevOps release approval")?;
    tracing::info!(azure.approval_id = %approval_id, status = update.status, "decision written back to Azure DevOps");
    ctx.store
        .mark_written_back(job.id, release.id, Utc::now())
        .await?;
    Ok(())
}

async fn resolve_approvers(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let Some(snapshot) = ctx.store.release_by_id(job.release_id).await? else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    if snapshot.release.approvers_source.is_some() || snapshot.outcome(Utc::now()).status.is_final()
    {
        return Ok(ctx.store.complete_job(job.id).await?);
    }
    let resolved = ctx
        .approvers
        .resolve(&snapshot.release.key, &snapshot.release.name)
        .await?;
    tracing::info!(
        approvers = resolved.approvers.len(),
        source = %resolved.source,
        "approvers resolved"
    );
    ctx.store
        .store_approvers(job.id, job.release_id, &resolved, Utc::now())
        .await?;
    Ok(())
}

async fn send_approval_email(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let approval_id = job.approval_id.context("email job without an approval")?;
    let approval = ctx.store.approval(approval_id).await?;
    let snapshot = ctx.store.release_by_id(job.release_id).await?;
    let (Some(approval), Some(snapshot)) = (approval, snapshot) else {
        return Ok(ctx.store.complete_job(job.id).await?);
    };
    let now = Utc::now();
    if approval.email_sent_at.is_some() || snapshot.outcome(now).status.is_final() {
        return Ok(ctx.store.complete_job(job.id).await?);
    }
    let release = &snapshot.release;
    let claims = ApprovalClaims::new(
        approval.id,
        &approval.email,
        &release.key,
        &release.name,
        now,
        release.deadline,
    );
    let token = ctx.tokens.mint(&claims);
    let link = format!("{}/approval?token={token}", ctx.public_url);
    let email = ApprovalEmail {
        approval_id: approval.id,
        to: &approval.email,
        release,
        link: &link,
        token: &token,
    };
    ctx.mailer
        .send(&email)
        .await
        .inspect_err(|_| ctx.metrics.email(false))?;
    ctx.metrics.email(true);
    tracing::info!(approval.id = %approval.id, to = %mask_email(&approval.email), "approval email accepted");
    if ctx.mailer.is_directory() {
        tracing::info!(release.key = %release.key.display(), to = %mask_email(&approval.email),
            link = %link, "approval link (no SMTP server configured)");
    }
    // The server has accepted the mail: from here on only the bookkeeping is retried, never the send.
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match ctx
            .store
            .mark_email_sent(job.id, approval.id, Utc::now())
            .await
        {
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
