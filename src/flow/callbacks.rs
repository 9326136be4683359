//! Callback registrations: what a task in callback mode is told, in order
//! (TaskStarted, feed lines as things happen, the outcome, TaskCompleted), and
//! the bookkeeping of the job that posts it.

use chrono::{DateTime, Utc};

use super::{Change, Flow};
use crate::{
    domain::{
        callback::{LineKind, PlanCallback},
        job::{JobKind, Subject},
        progress::{outcome_line, waiting_line},
        snapshot::ReleaseSnapshot,
    },
    store::StoreError,
};

/// How long the job token Azure DevOps sends with a callback registration lasts.
const JOB_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(48);

impl Change<'_> {
    /// Stores or refreshes a callback registration. A new one on a pending
    /// release is told what the release waits for (TaskStarted first); on a
    /// decided release it is told the outcome and completed at once.
    pub(super) async fn register_callback(
        &mut self,
        snapshot: &ReleaseSnapshot,
        callback: &PlanCallback,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let release_id = snapshot.release.id;
        let new = self.tx.save_callback(release_id, callback, now).await?;
        if snapshot.outcome(now).status.is_final() {
            return self.queue_decision_notices(snapshot, now).await;
        }
        if let Some(callback_id) = new {
            if snapshot.release.deadline > now + JOB_TOKEN_LIFETIME {
                tracing::warn!(release.key = %snapshot.release.key.display(), deadline = %snapshot.release.deadline,
                    "the round's deadline outlives the 48-hour job token Azure DevOps sent: a decision after the token expires cannot complete the task");
            }
            let line = waiting_line(snapshot, now);
            self.tx.add_feed_line_to(callback_id, &line, now).await?;
            self.queue_callbacks(release_id, now).await?;
        }
        self.watch_deadline(snapshot).await
    }

    /// Adds `lines` to the feed of the release's open callback registrations and
    /// queues their delivery.
    pub(super) async fn tell_callbacks(
        &mut self,
        release_id: i64,
        lines: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for line in lines {
            let kind = LineKind::Progress;
            self.tx.add_feed_line(release_id, kind, line, now).await?;
        }
        self.queue_callbacks(release_id, now).await
    }

    /// Tells the open callback registrations of a decided release its outcome,
    /// after which only their TaskCompleted event follows, and queues their delivery.
    pub(super) async fn tell_callbacks_outcome(
        &mut self,
        snapshot: &ReleaseSnapshot,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let release_id = snapshot.release.id;
        if let Some(line) = outcome_line(snapshot, now) {
            let kind = LineKind::Outcome;
            self.tx.add_feed_line(release_id, kind, &line, now).await?;
        }
        self.queue_callbacks(release_id, now).await
    }

    /// Queues a delivery job for each undelivered registration that has none.
    async fn queue_callbacks(
        &mut self,
        release_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for callback_id in self.tx.callbacks_awaiting_delivery(release_id).await? {
            let subject = Subject::Callback(callback_id);
            self.enqueue(JobKind::PostCallback, release_id, subject, now)
                .await?;
        }
        Ok(())
    }
}

impl Flow {
    /// Records a registration's TaskStarted event as delivered (or given up).
    pub async fn callback_started(&self, callback_id: i64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        change.tx.record_callback_started(callback_id, now).await?;
        self.commit(change).await
    }

    /// Records a registration's feed lines up to `last_line_id` as posted (or given up).
    pub async fn feed_lines_posted(
        &self,
        callback_id: i64,
        last_line_id: i64,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut change = self.begin().await?;
        let tx = &mut change.tx;
        tx.record_feed_lines_posted(callback_id, last_line_id, now)
            .await?;
        self.commit(change).await
    }

    /// Completes callback job `job_id` unless its registration got something
    /// more to post meanwhile (lines are added under the release's lock, taken
    /// here too); whether it completed the job.
    pub async fn callback_caught_up(
        &self,
        job_id: i64,
        release_id: i64,
        callback_id: i64,
    ) -> Result<bool, StoreError> {
        let mut change = self.begin_holding(release_id).await?;
        if change.tx.callback_has_work(callback_id).await? {
            return Ok(false);
        }
        change.tx.complete_job(job_id).await?;
        self.commit(change).await?;
        Ok(true)
    }
}
