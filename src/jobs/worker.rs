//! The worker: claims due jobs, runs them, and schedules retries with backoff.

use std::{pin::pin, sync::Arc, thread};

use tokio::{
    sync::{Notify, oneshot},
    task::JoinSet,
    time::Instant,
};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use super::{
    JobContext, backoff,
    kinds::{self, HandedOn},
};
use crate::{azure::client::Refused, domain::job::Job, metrics::JobOutcome};

/// Longest error text kept on a job.
const MAX_ERROR_CHARS: usize = 500;

/// Attempts of a job that Azure DevOps refuses outright: the first and one retry.
const PERMANENT_REFUSAL_ATTEMPTS: u32 = 2;

/// The thread running the worker loops, from [`Worker::start`]. Dropped before
/// [`JobThread::finished`] completes (the service's task was aborted), it drops
/// the jobs in hand as a crash would; their leases let another worker take them.
pub struct JobThread {
    thread: thread::JoinHandle<()>,
    done: oneshot::Receiver<()>,
    _abandon_when_dropped: DropGuard,
}

impl JobThread {
    /// Waits, without blocking the runtime, until the loops have stopped.
    pub async fn finished(self) {
        // An error means the thread ended without saying so: it panicked.
        let _ = self.done.await;
        if self.thread.join().is_err() {
            tracing::error!("the job thread panicked");
        }
    }
}

/// Runs jobs from the database; cheap to clone.
///
/// A claimed job is locked for one lease; while it runs its lease is renewed
/// every third of a lease, so a slow job is never taken over by another worker,
/// and a job whose process died is taken up again one lease later. A worker
/// that cannot renew the lease in time (the database is out of its reach)
/// drops the job before the lease ends, so two workers never run it at once.
#[derive(Clone)]
pub struct Worker {
    ctx: Arc<JobContext>,
    wake: Arc<Notify>,
}

impl Worker {
    /// A worker over `ctx`; `wake` is notified whenever a job is enqueued.
    pub fn new(ctx: Arc<JobContext>, wake: Arc<Notify>) -> Self {
        Self { ctx, wake }
    }

    /// Starts the configured number of worker loops on a thread of their own,
    /// with a runtime of its own: rendering and sending emails and their
    /// transactions then never hold up the runtime threads that answer requests
    /// (measured: a new release's answer waited behind them).
    /// The loops stop when `shutdown` is cancelled, after finishing the job in hand.
    pub fn start(&self, shutdown: CancellationToken) -> std::io::Result<JobThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let worker = self.clone();
        let (finished, done) = oneshot::channel();
        let abandon = CancellationToken::new();
        let abandoned = abandon.clone();
        let thread = thread::Builder::new()
            .name("deploy-gate-jobs".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut loops = JoinSet::new();
                    for _ in 0..worker.ctx.jobs.workers {
                        let worker = worker.clone();
                        let shutdown = shutdown.clone();
                        loops.spawn(async move { worker.run_until(shutdown).await });
                    }
                    tokio::select! {
                        _ = loops.join_all() => {}
                        () = abandoned.cancelled() => {}
                    }
                });
                // Its tasks (connections, timers) go before the loops are reported stopped.
                drop(runtime);
                // Whoever waits may have stopped waiting; nothing to tell then.
                let _ = finished.send(());
            })?;
        Ok(JobThread {
            thread,
            done,
            _abandon_when_dropped: abandon.drop_guard(),
        })
    }

    async fn run_until(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let mut woken = pin!(self.wake.notified());
            woken.as_mut().enable();
            match self.run_next().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::error!(error = %format!("{err:#}"), "job queue unavailable"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(self.ctx.jobs.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Claims and runs one due job, then the jobs it handed on, side by
    /// side; `Ok(false)` when none is due.
    pub async fn run_next(&self) -> anyhow::Result<bool> {
        let claimed = Instant::now();
        let now = self.ctx.clock.now();
        let lease = chrono::Duration::from_std(self.ctx.jobs.lease)?;
        let Some(job) = self.ctx.store.claim_job(now, now + lease).await? else {
            return Ok(false);
        };
        if let Some(next) = self.run(job, claimed).await {
            let each = next
                .jobs
                .into_iter()
                .map(|job| self.run(job, next.leased_at));
            futures_util::future::join_all(each).await;
        }
        Ok(true)
    }

    /// Runs due jobs until none is due (jobs waiting for a retry stay queued).
    pub async fn drain(&self) -> anyhow::Result<()> {
        while self.run_next().await? {}
        Ok(())
    }

    /// Runs `job`, whose lease was taken at `claimed`, in its span; the
    /// jobs it handed on when it succeeded.
    async fn run(&self, job: Job, claimed: Instant) -> Option<HandedOn> {
        let span = tracing::info_span!(
            "job",
            job.id = job.id,
            job.kind = job.kind.as_str(),
            attempt = job.attempts + 1,
            release.id = job.release_id
        );
        self.run_in_span(job, claimed).instrument(span).await
    }

    async fn run_in_span(&self, job: Job, claimed: Instant) -> Option<HandedOn> {
        let result = tokio::select! {
            result = kinds::run(&self.ctx, &job) => result,
            LeaseLost = self.keep_lease(job.id, claimed) => {
                tracing::warn!("could not renew the job lease in time; left the job to another worker");
                self.ctx.metrics.job_finished(job.kind.as_str(), JobOutcome::Abandoned);
                return None;
            }
        };
        let err = match result {
            Ok(handed_on) => {
                (self.ctx.metrics).job_finished(job.kind.as_str(), JobOutcome::Succeeded);
                return handed_on;
            }
            Err(err) => err,
        };
        let failures = job.attempts + 1;
        let error: String = format!("{err:#}").chars().take(MAX_ERROR_CHARS).collect();
        let now = self.ctx.clock.now();
        // Azure refusing outright (400/401/403/404) gets one more try, not
        // the whole backoff: it will not change its mind.
        let last = match Refused::permanent_in(&err) {
            true => PERMANENT_REFUSAL_ATTEMPTS.min(self.ctx.jobs.max_attempts),
            false => self.ctx.jobs.max_attempts,
        };
        let retry_at = (failures < last).then(|| {
            let delay = backoff(self.ctx.jobs.retry_base, self.ctx.jobs.retry_cap, failures);
            now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
        });
        let outcome = match retry_at {
            Some(at) => {
                tracing::warn!(%error, retry_at = %at, "job failed; will retry");
                JobOutcome::Retried
            }
            None => {
                tracing::error!(%error, "job failed for the last time; marked dead");
                JobOutcome::Dead
            }
        };
        self.ctx.metrics.job_finished(job.kind.as_str(), outcome);
        if let Err(store_err) = self.ctx.store.fail_job(job.id, &error, retry_at, now).await {
            // The lease expires and the job is claimed again, so nothing is lost.
            tracing::error!(error = %store_err, "could not record the job failure");
        }
        None
    }

    /// Renews the job's lease, taken at `claimed`, every third of a lease while
    /// it runs. Returns once the lease could not be renewed before its last
    /// sixth (a margin for the clocks of other hosts): the job must stop then,
    /// as another worker may take it when the lease ends.
    async fn keep_lease(&self, job_id: i64, claimed: Instant) -> LeaseLost {
        let lease = self.ctx.jobs.lease;
        let lease_chrono = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut renewed = claimed;
        loop {
            tokio::time::sleep(lease / 3).await;
            let give_up_at = renewed + lease - lease / 6;
            let started = Instant::now();
            if started >= give_up_at {
                return LeaseLost;
            }
            let renewal = self
                .ctx
                .store
                .extend_lease(job_id, self.ctx.clock.now() + lease_chrono);
            match tokio::time::timeout_at(give_up_at, renewal).await {
                Ok(Ok(())) => renewed = started,
                Ok(Err(err)) => tracing::warn!(error = %err, "could not renew the job lease"),
                Err(_) => return LeaseLost,
            }
        }
    }
}

/// A job's lease ran out before it could be renewed.
struct LeaseLost;
