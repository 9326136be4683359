//! The callback job: brings a task in callback mode up to date in Azure DevOps,
//! in order: TaskStarted, the feed lines not yet posted, and, once the outcome
//! line is among them, TaskCompleted. Nothing is posted after TaskCompleted.

use anyhow::Context as _;
use azure_core::http::Method;
use serde::Serialize;

use super::kinds::JobContext;
use crate::{
    azure::{
        callback::{events_url, feed_lines, feed_url, task_completed, task_result, task_started},
        client::{Auth, Refused},
    },
    domain::{
        callback::{CallbackRecord, PlanCallback},
        job::Job,
    },
    flow::Finished,
};

/// Failed attempts after which a TaskStarted event or feed lines that Azure
/// DevOps keeps refusing are given up, so that progress never holds back the
/// TaskCompleted event the task waits for.
const PROGRESS_ATTEMPTS: u32 = 2;

/// Posts what the registration has not yet been told; completes the job once
/// nothing is left, or once TaskCompleted is delivered.
pub(super) async fn post_callback(ctx: &JobContext, job: &Job) -> anyhow::Result<()> {
    let callback_id = job.callback_id.context("callback job without a callback")?;
    loop {
        let callback = ctx.store.callback(callback_id).await?;
        let Some(callback) = callback.filter(|c| !c.delivered) else {
            return Ok(ctx.store.complete_job(job.id).await?);
        };
        let target = &callback.target;
        if !callback.started {
            let event = task_started(target);
            post_progress(ctx, job, target, &events_url(target), &event).await?;
            ctx.flow.callback_started(callback_id).await?;
        }
        let lines = ctx.store.unposted_feed_lines(callback_id).await?;
        if let Some(last) = lines.last() {
            if let Some(url) = feed_url(target) {
                post_progress(ctx, job, target, &url, &feed_lines(&lines)).await?;
            }
            ctx.flow.feed_lines_posted(callback_id, last.id).await?;
        }
        // Read before the lines, so the outcome line was among them.
        if callback.ended {
            return complete_task(ctx, job, &callback).await;
        }
        let flow = &ctx.flow;
        if flow
            .callback_caught_up(job.id, job.release_id, callback_id)
            .await?
        {
            return Ok(());
        }
    }
}

/// Posts a TaskStarted event or feed lines; after [`PROGRESS_ATTEMPTS`] failed
/// attempts (fewer when the queue allows fewer) a refusal is logged and passed over.
async fn post_progress(
    ctx: &JobContext,
    job: &Job,
    target: &PlanCallback,
    url: &str,
    body: &impl Serialize,
) -> anyhow::Result<()> {
    let auth = Auth::Bearer(target.auth_token.expose());
    // Given up before the job's last attempt, which TaskCompleted may still
    // need; a refusal outright leaves the job one retry, so it is given up then.
    let give_up_after = PROGRESS_ATTEMPTS.min(ctx.jobs.max_attempts.saturating_sub(1));
    match ctx.azure.send_json(Method::Post, url, auth, body).await {
        Ok(()) => Ok(()),
        Err(err)
            if job.attempts >= give_up_after
                || (job.attempts >= 1 && Refused::permanent_in(&err)) =>
        {
            tracing::warn!(error = %err, job.id = job.id, "Azure DevOps keeps refusing the task's progress; going on without it");
            Ok(())
        }
        Err(err) => Err(err.context("posting the task's progress to Azure DevOps")),
    }
}

/// Posts the TaskCompleted event with the release's result and records it.
async fn complete_task(
    ctx: &JobContext,
    job: &Job,
    callback: &CallbackRecord,
) -> anyhow::Result<()> {
    let snapshot = ctx.store.release_by_id(job.release_id).await?;
    let status = snapshot.map(|s| s.outcome(ctx.clock.now()).status);
    let result = status
        .and_then(task_result)
        .context("an outcome line for a release that is not decided")?;
    let target = &callback.target;
    ctx.azure
        .send_json(
            Method::Post,
            &events_url(target),
            Auth::Bearer(target.auth_token.expose()),
            &task_completed(target, result),
        )
        .await
        .inspect_err(|_| ctx.metrics.callback("error"))
        .context("posting the TaskCompleted event")?;
    ctx.metrics.callback(result);
    tracing::info!(callback.id = callback.id, hub = %target.hub_name, result, "Azure DevOps callback delivered");
    let done = Finished::CallbackDelivered {
        callback_id: callback.id,
        result,
    };
    Ok(ctx.flow.finished(job.id, done).await?)
}
