//! [`Database`]: the one [`Store`] implementation, on SQLite or PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    DataVersion, ReleasePage, ReleaseQuery, Store, StoreError, Transaction, approvers, callbacks,
    connection::Conn,
    listing, pending,
    postgres::{self, Postgres},
    queue,
    releases::{self, SentEmail},
    retention, rows,
    sql::{Columns, Dialect, Rows, Sql},
    sqlite::{self, Sqlite},
    transaction::WriteTx,
};
use crate::domain::{
    callback::{CallbackRecord, FeedLine},
    job::{Job, JobKind, Lease, ReleaseJob},
    policy::NewApprovers,
    release::{NewRelease, Phase, ReleaseKey},
    snapshot::{
        ApprovalRecord, AzureApprovalRecord, ReleaseHistory, ReleaseRecord, ReleaseSnapshot,
    },
};

/// Setting that holds the generated token secret.
const TOKEN_SECRET_SETTING: &str = "token_secret";

/// The database the store runs its statements on; each method is one
/// transaction. PostgreSQL's futures are boxed, as in `connection`.
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(Sqlite),
    /// A PostgreSQL server, shared by replicas.
    Postgres(Postgres),
}

impl Database {
    /// The statements whose text differs between the databases.
    fn dialect(&self) -> &'static Dialect {
        match self {
            Self::Sqlite(_) => &sqlite::DIALECT,
            Self::Postgres(_) => &postgres::DIALECT,
        }
    }

    /// A connection for a read.
    async fn reader(&self) -> Result<Conn<'_>, StoreError> {
        Ok(match self {
            Self::Sqlite(db) => Conn::Sqlite(db.reader().await?),
            Self::Postgres(db) => Conn::Postgres(Box::pin(db.conn()).await?),
        })
    }

    /// A connection for a write outside a transaction, in the writers' turn.
    async fn write_conn(&self) -> Result<Conn<'_>, StoreError> {
        Ok(match self {
            Self::Sqlite(db) => Conn::Sqlite(db.writer().await),
            Self::Postgres(db) => Conn::Postgres(Box::pin(db.conn()).await?),
        })
    }

    /// A write transaction, in the writers' turn.
    async fn write_tx(&self) -> Result<WriteTx<'_>, StoreError> {
        self.write_tx_holding(None).await
    }

    /// A write transaction, in the writers' turn, holding release `holding`'s
    /// lock from the start when given: on PostgreSQL the lock goes with
    /// `BEGIN`, on SQLite the writers' turn is the lock.
    async fn write_tx_holding(&self, holding: Option<i64>) -> Result<WriteTx<'_>, StoreError> {
        Ok(match self {
            Self::Sqlite(db) => {
                let mut conn = Conn::Sqlite(db.begin().await?);
                if let Some(release_id) = holding {
                    releases::hold(&mut conn, release_id).await?;
                }
                WriteTx(conn, None)
            }
            Self::Postgres(db) => WriteTx(
                Conn::PostgresTx(Some(Box::pin(db.begin(holding)).await?)),
                Some(db.changes()),
            ),
        })
    }

    /// After a write of this process outside a transaction: on PostgreSQL the
    /// version moves at once, before this process's own notification arrives,
    /// so its next read sees its write. SQLite's version moves by itself.
    fn wrote(&self) {
        if let Self::Postgres(db) = self {
            db.changes().moved();
        }
    }
}

#[async_trait]
impl Store for Database {
    fn data_version(&self) -> Option<DataVersion> {
        match self {
            Self::Sqlite(db) => db.data_version(),
            Self::Postgres(db) => db.data_version(),
        }
    }

    fn follow_changes(&self, stop: CancellationToken) {
        if let Self::Postgres(db) = self {
            db.follow_changes(stop);
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => db.migrate().await,
            Self::Postgres(db) => db.migrate().await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.reader().await?.execute(Sql::new("SELECT 1")).await?;
        Ok(())
    }

    async fn token_secret(
        &self,
        candidate: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut conn = self.write_conn().await?;
        let insert = Sql::new(
            "INSERT INTO setting (setting_id, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (setting_id) DO NOTHING",
        );
        let inserted = conn
            .execute(insert.bind(TOKEN_SECRET_SETTING).bind(candidate).bind(now))
            .await;
        self.wrote();
        inserted?;
        let select = Sql::new("SELECT value FROM setting WHERE setting_id = $1");
        let row = conn
            .fetch_optional(select.bind(TOKEN_SECRET_SETTING))
            .await?;
        row.ok_or_else(|| StoreError::Corrupt("the token secret vanished".into()))?
            .text("value")
    }

    async fn stored_token_secret(&self) -> Result<Option<String>, StoreError> {
        let select = Sql::new("SELECT value FROM setting WHERE setting_id = $1");
        self.reader()
            .await?
            .fetch_optional(select.bind(TOKEN_SECRET_SETTING))
            .await?
            .map(|row| row.text("value"))
            .transpose()
    }

    async fn forget_token_secret(&self) -> Result<bool, StoreError> {
        let delete = Sql::new("DELETE FROM setting WHERE setting_id = $1");
        let deleted = self
            .write_conn()
            .await?
            .execute(delete.bind(TOKEN_SECRET_SETTING))
            .await;
        self.wrote();
        Ok(deleted? > 0)
    }

    async fn insert_release_with_jobs(
        &self,
        new: &NewRelease,
        required_approvals: Option<u32>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
        jobs: &[ReleaseJob],
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        if self.dialect().writes_in_with && (1..=Rows::MOST).contains(&jobs.len()) {
            let sql = releases::insert_with_jobs(new, required_approvals, deadline, now, jobs);
            let inserted = self.write_conn().await?.fetch_optional(sql).await;
            self.wrote();
            return inserted?.as_ref().map(rows::release).transpose();
        }
        let mut tx = self.write_tx().await?;
        let inserted = releases::insert(&mut tx.0, new, required_approvals, deadline, now).await?;
        if let Some(release) = &inserted {
            let jobs: Vec<_> = jobs.iter().map(|job| job.of(release.id)).collect();
            queue::enqueue(&mut tx.0, &jobs).await?;
        }
        Box::new(tx).commit().await?;
        Ok(inserted)
    }

    async fn approvers_found(
        &self,
        new: &NewApprovers<'_>,
        completing: i64,
        claim: JobKind,
        lease: Lease,
    ) -> Result<Option<Vec<Job>>, StoreError> {
        if let Some(text) = self.dialect().approvers_found {
            let mut conn = self.write_conn().await?;
            let found =
                approvers::found_and_claimed(&mut conn, text, new, completing, claim, lease).await;
            self.wrote();
            return found;
        }
        let mut tx = self.write_tx_holding(Some(new.release_id)).await?;
        // Dropped, the transaction rolls back: it wrote nothing.
        if callbacks::has_open(&mut tx.0, new.release_id).await? {
            return Ok(None);
        }
        approvers::add(&mut tx.0, new, Some(completing)).await?;
        let (release_id, now) = (new.release_id, new.now);
        let claimed =
            queue::claim_of_release(&mut tx.0, release_id, claim, lease.most, now, lease.until)
                .await?;
        Box::new(tx).commit().await?;
        Ok(Some(claimed))
    }

    async fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(self.write_tx().await?))
    }

    async fn begin_holding(
        &self,
        release_id: i64,
    ) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(self.write_tx_holding(Some(release_id)).await?))
    }

    async fn find_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseSnapshot>, StoreError> {
        releases::find(&mut self.reader().await?, key).await
    }

    async fn release_history(
        &self,
        key: &ReleaseKey,
    ) -> Result<Option<ReleaseHistory>, StoreError> {
        let mut conn = self.reader().await?;
        let Some(snapshot) = releases::find(&mut conn, key).await? else {
            return Ok(None);
        };
        let callbacks = callbacks::callbacks_of(&mut conn, snapshot.release.id).await?;
        let azure_approvals = releases::azure_approvals(&mut conn, snapshot.release.id).await?;
        Ok(Some(ReleaseHistory {
            snapshot,
            callbacks,
            azure_approvals,
        }))
    }

    async fn latest_round(
        &self,
        key: &ReleaseKey,
        attempt: Option<u32>,
        phase: Option<Phase>,
    ) -> Result<Option<ReleaseKey>, StoreError> {
        releases::latest_round(&mut self.reader().await?, key, attempt, phase).await
    }

    async fn known_rounds(
        &self,
        team_project: &str,
        release_id: &str,
    ) -> Result<Vec<ReleaseKey>, StoreError> {
        releases::known_rounds(&mut self.reader().await?, team_project, release_id).await
    }

    async fn azure_approvals(
        &self,
        release_id: i64,
    ) -> Result<Vec<AzureApprovalRecord>, StoreError> {
        releases::azure_approvals(&mut self.reader().await?, release_id).await
    }

    async fn list_releases(
        &self,
        query: &ReleaseQuery,
        now: DateTime<Utc>,
    ) -> Result<ReleasePage, StoreError> {
        listing::list(&mut self.reader().await?, query, now).await
    }

    async fn release_by_id(&self, id: i64) -> Result<Option<ReleaseSnapshot>, StoreError> {
        releases::find_by_id(&mut self.reader().await?, id).await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        releases::approval(&mut self.reader().await?, id).await
    }

    async fn callback(&self, callback_id: i64) -> Result<Option<CallbackRecord>, StoreError> {
        callbacks::callback(&mut self.reader().await?, callback_id).await
    }

    async fn unposted_feed_lines(&self, callback_id: i64) -> Result<Vec<FeedLine>, StoreError> {
        callbacks::unposted_lines(&mut self.reader().await?, callback_id).await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        let claimed = queue::claim(&mut self.write_conn().await?, now, lease_until).await;
        // A claim that found nothing due changed nothing.
        if !matches!(claimed, Ok(None)) {
            self.wrote();
        }
        claimed
    }

    async fn claim_release_jobs(
        &self,
        release_id: i64,
        kind: JobKind,
        most: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        let mut conn = self.write_conn().await?;
        let claimed =
            queue::claim_of_release(&mut conn, release_id, kind, most, now, lease_until).await;
        if !matches!(&claimed, Ok(jobs) if jobs.is_empty()) {
            self.wrote();
        }
        claimed
    }

    async fn extend_lease(
        &self,
        job_id: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let extended =
            queue::extend_lease(&mut self.write_conn().await?, job_id, lease_until).await;
        self.wrote();
        extended
    }

    async fn complete_job(&self, job_id: i64) -> Result<(), StoreError> {
        let completed = queue::complete(&mut self.write_conn().await?, job_id).await;
        self.wrote();
        completed
    }

    async fn record_email_sent(
        &self,
        job_id: i64,
        approval_id: Uuid,
        link_generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Self::Postgres(db) = self else {
            let mut tx = self.write_tx().await?;
            let sent = releases::email_sent(approval_id, link_generation, now);
            tx.0.execute(sent).await?;
            queue::complete(&mut tx.0, job_id).await?;
            return Box::new(tx).commit().await;
        };
        // One statement for the emails recorded at the same time, where a
        // transaction took four round trips for each (BENCHMARKS.md, the fan-out).
        let sent = SentEmail {
            job_id,
            approval_id,
            link_generation,
            at: now,
        };
        let write = |group: Vec<SentEmail>| async move {
            let sql = releases::emails_sent_and_jobs_done(&group);
            Box::pin(db.conn()).await?.execute(sql).await.map(drop)
        };
        let recorded = db.emails_sent().write(sent, write).await;
        self.wrote();
        recorded
    }

    async fn fail_job(
        &self,
        job_id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let failed = queue::fail(&mut self.write_conn().await?, job_id, error, retry_at, now).await;
        self.wrote();
        failed
    }

    async fn due_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        queue::due_count(&mut self.reader().await?, now).await
    }

    async fn outstanding_job_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        queue::outstanding_count(&mut self.reader().await?, now).await
    }

    async fn pending_rounds(&self, now: DateTime<Utc>) -> Result<super::PendingRounds, StoreError> {
        pending::pending(&mut self.reader().await?, now).await
    }

    async fn possibly_concluded_rounds(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        pending::possibly_concluded(&mut self.reader().await?, now).await
    }

    async fn prune_decided(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<super::Pruned, StoreError> {
        let mut tx = self.write_tx().await?;
        let pruned = retention::prune_decided(&mut tx.0, cutoff, limit).await?;
        let committed = tx.0.commit().await;
        // Cached answers about the deleted rounds go at once on this replica too.
        self.wrote();
        committed?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{secret::Secret, settings::DatabaseConfig};

    fn config(url: String) -> DatabaseConfig {
        DatabaseConfig {
            url: Secret::new(url),
            max_connections: 4,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> Database {
        let path = dir.path().join("store.db");
        let config = config(format!("sqlite://{}", path.display()));
        let store = Database::Sqlite(Sqlite::connect(&config).await.unwrap());
        store.migrate().await.unwrap();
        store
    }

    fn setting(id: &str) -> Sql {
        Sql::new("SELECT value FROM setting WHERE setting_id = $1").bind(id)
    }

    #[tokio::test]
    async fn a_write_dropped_before_its_commit_leaves_nothing_and_frees_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let insert = |id: &str| {
            Sql::new("INSERT INTO setting (setting_id, value, created_at) VALUES ($1, 'v', $2)")
                .bind(id)
                .bind(Utc::now())
        };
        {
            let mut tx = store.write_tx().await.unwrap();
            tx.0.execute(insert("dropped")).await.unwrap();
            // Dropped here, as when a statement after it fails.
        }
        let mut tx = store.write_tx().await.unwrap();
        tx.0.execute(insert("kept")).await.unwrap();
        Box::new(tx).commit().await.unwrap();
        let mut reader = store.reader().await.unwrap();
        assert!(
            reader
                .fetch_optional(setting("dropped"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            reader
                .fetch_optional(setting("kept"))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_is_a_file_removed_with_the_store() {
        let sqlite = Sqlite::connect(&config("sqlite::memory:".into()))
            .await
            .unwrap();
        let dir = sqlite.file().parent().unwrap().to_owned();
        assert!(sqlite.file().is_file());
        let store = Database::Sqlite(sqlite);
        store.migrate().await.unwrap();
        let secret = store.token_secret("first", Utc::now()).await.unwrap();
        assert_eq!(
            store.token_secret("second", Utc::now()).await.unwrap(),
            secret
        );
        assert!(store.data_version().is_some(), "its WAL index is read");
        drop(store);
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}
