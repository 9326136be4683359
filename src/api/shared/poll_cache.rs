//! Answers to gate polls, kept while the database stays as it was.
//!
//! A gate asks about the same releases again and again, and between two
//! commits the answer cannot change: each one is kept with the database's
//! version read before the read it was built from, and given again only while
//! the version is the same (nothing committed since, by this process or any
//! other) and, for a pending release, only before its deadline, when it would
//! turn `expired` on the clock alone. Where the store has no version
//! (PostgreSQL while nobody listens) nothing is kept. Any commit leaves every
//! kept answer behind, so none can outlive a decision, a cancellation or a
//! job's failure; the price is a read after each commit.

use chrono::{DateTime, Utc};

use super::status::{StatusJson, StatusValue};
use crate::{
    domain::{release::ReleaseKey, snapshot::ReleaseSnapshot},
    store::{DataVersion, Kept, Store},
};

/// The most answers kept; past it the answers asked for least lately go.
/// 20,000 status bodies of three approvers are about 15 MB.
const MOST_ANSWERS: usize = 20_000;

/// Gate polls' answers, by release.
pub struct PollCache {
    kept: Kept<ReleaseKey, Answer>,
}

impl Default for PollCache {
    fn default() -> Self {
        Self::holding(MOST_ANSWERS)
    }
}

#[derive(Clone)]
struct Answer {
    json: StatusJson,
    /// A pending answer holds until the release's deadline.
    until: Option<DateTime<Utc>>,
}

/// The database's version, read before a release is, so that an answer built
/// from the read can be kept.
pub struct ReadAt(Option<DataVersion>);

impl PollCache {
    /// A cache holding at most `most` answers.
    fn holding(most: usize) -> Self {
        Self {
            kept: Kept::holding(most),
        }
    }

    /// The answer kept for `key`, if it still holds; else the database's
    /// version as of now, to [`keep`](Self::keep) the answer read after it.
    pub fn answer(
        &self,
        store: &dyn Store,
        key: &ReleaseKey,
        now: DateTime<Utc>,
    ) -> Result<StatusJson, ReadAt> {
        let version = store.data_version();
        let Some(current) = &version else {
            return Err(ReadAt(None));
        };
        match self.kept.get(current, key) {
            Some(answer) if answer.until.is_none_or(|deadline| now < deadline) => Ok(answer.json),
            _ => Err(ReadAt(version)),
        }
    }

    /// The answer for `snapshot`, read after `read_at`, at `now`; kept for the
    /// next poll of its release.
    pub fn keep(
        &self,
        read_at: ReadAt,
        snapshot: &ReleaseSnapshot,
        now: DateTime<Utc>,
    ) -> StatusJson {
        let json = StatusJson::of(snapshot, now);
        let Some(version) = read_at.0 else {
            return json;
        };
        let until = (json.status == StatusValue::Pending).then_some(snapshot.release.deadline);
        self.kept.keep(
            version,
            snapshot.release.key.clone(),
            Answer {
                json: json.clone(),
                until,
            },
        );
        json
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc, time::Duration};

    use bytes::Bytes;
    use chrono::TimeDelta;
    use poem::IntoResponse;

    use super::*;
    use crate::{
        clock::Clock,
        domain::policy::{Defaults, Policies},
        domain::release::NewRelease,
        flow::{CancelOutcome, Creation, Flow},
        live::Live,
        metrics::Metrics,
        secret::Secret,
        settings::DatabaseConfig,
        store,
    };

    /// When the tests' releases are created; they expire an hour later.
    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_795_000_000_000).unwrap()
    }

    /// The key of the tests' release `release_id` (project `Devx`, no stage).
    fn key(release_id: &str) -> ReleaseKey {
        ReleaseKey::parse("Devx", release_id, "").unwrap()
    }

    /// A migrated SQLite store in `dir`, opened as the application opens it.
    async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}", dir.path().join("poll.db").display())),
            max_connections: 4,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        };
        let store = store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// The lifecycle over `store` on a clock stopped at [`start`]: releases expire an hour later.
    fn flow(store: &Arc<dyn Store>) -> Flow {
        let defaults = Defaults {
            required_approvals: None,
            approval_deadline: Duration::from_secs(3600),
        };
        let clock = Clock::stopped_at(start());
        let (wake, metrics) = (Arc::default(), Arc::new(Metrics::new()));
        Flow::new(
            store.clone(),
            wake,
            clock,
            metrics,
            Live::new(Policies::default()),
            defaults,
        )
    }

    /// Creates the pending release `release_id` (approvers not yet resolved), one commit.
    async fn created(store: &Arc<dyn Store>, release_id: &str) -> ReleaseSnapshot {
        let new = NewRelease::parse(key(release_id), "R", None).unwrap();
        match flow(store).create_or_find(&new, None).await {
            Ok(Creation::Created(snapshot)) => snapshot,
            other => panic!("release {release_id} was not created: {other:?}"),
        }
    }

    /// Polls `release_id` at `now` as `/release` does, when the cache has no
    /// answer for it: reads the release and keeps the answer; its body.
    async fn kept(
        cache: &PollCache,
        store: &dyn Store,
        release_id: &str,
        now: DateTime<Utc>,
    ) -> Bytes {
        let Err(read_at) = cache.answer(store, &key(release_id), now) else {
            panic!("release {release_id}'s answer was served before it was kept");
        };
        let snapshot = store.find_release(&key(release_id)).await.unwrap().unwrap();
        body(cache.keep(read_at, &snapshot, now)).await
    }

    /// The body the cache serves for `release_id` at `now`, if it serves one.
    async fn served(
        cache: &PollCache,
        store: &dyn Store,
        release_id: &str,
        now: DateTime<Utc>,
    ) -> Option<Bytes> {
        match cache.answer(store, &key(release_id), now) {
            Ok(json) => Some(body(json).await),
            Err(_) => None,
        }
    }

    /// The `status` of a status body.
    fn status_of(body: &Bytes) -> String {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        json["status"].as_str().unwrap().to_owned()
    }

    /// What a client receives for `json`.
    async fn body(json: StatusJson) -> Bytes {
        json.into_response().into_body().into_bytes().await.unwrap()
    }

    #[tokio::test]
    async fn a_full_cache_drops_the_answers_polled_least_lately_never_all_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let ids = ["1", "2", "3", "4", "5", "6"];
        for release_id in ids {
            created(&store, release_id).await;
        }
        let version = store.data_version();
        assert!(version.is_some(), "a WAL database has a version");
        let cache = PollCache::holding(6);

        let mut bodies = BTreeMap::new();
        for release_id in ["1", "2", "3", "4"] {
            bodies.insert(release_id, kept(&cache, &*store, release_id, start()).await);
        }
        assert_eq!(
            served(&cache, &*store, "1", start()).await.as_ref(),
            bodies.get("1")
        );
        for release_id in ["5", "6"] {
            bodies.insert(release_id, kept(&cache, &*store, release_id, start()).await);
        }

        for release_id in ["2", "3"] {
            assert_eq!(
                served(&cache, &*store, release_id, start()).await,
                None,
                "release {release_id}, polled least lately, is kept past the limit"
            );
        }
        for release_id in ["1", "4", "5", "6"] {
            assert_eq!(
                served(&cache, &*store, release_id, start()).await.as_ref(),
                bodies.get(release_id),
                "release {release_id}'s answer was dropped"
            );
        }
        assert_eq!(
            store.data_version(),
            version,
            "nothing was committed, so only the limit dropped the answers"
        );
    }

    #[tokio::test]
    async fn an_answer_kept_at_one_version_is_not_served_once_a_commit_moved_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        created(&store, "1").await;
        let cache = PollCache::default();
        let first = kept(&cache, &*store, "1", start()).await;
        assert_eq!(served(&cache, &*store, "1", start()).await, Some(first));

        created(&store, "2").await;
        assert_eq!(served(&cache, &*store, "1", start()).await, None);

        // A read that began before a commit is kept at the version before it.
        let Err(read_at) = cache.answer(&*store, &key("1"), start()) else {
            panic!("release 1's answer was served after a commit");
        };
        created(&store, "3").await;
        let snapshot = store.find_release(&key("1")).await.unwrap().unwrap();
        cache.keep(read_at, &snapshot, start());
        assert_eq!(served(&cache, &*store, "1", start()).await, None);

        let again = kept(&cache, &*store, "1", start()).await;
        assert_eq!(served(&cache, &*store, "1", start()).await, Some(again));
    }

    #[tokio::test]
    async fn a_pending_answer_is_served_until_the_instant_of_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let deadline = created(&store, "1").await.release.deadline;
        let cache = PollCache::default();
        let pending = kept(&cache, &*store, "1", start()).await;
        assert_eq!(status_of(&pending), "pending");
        let just_before = deadline - TimeDelta::nanoseconds(1);

        let before = served(&cache, &*store, "1", just_before).await;
        assert_eq!(before.as_ref(), Some(&pending));
        assert_eq!(served(&cache, &*store, "1", deadline).await, None);
        assert_eq!(
            served(&cache, &*store, "1", deadline + TimeDelta::hours(1)).await,
            None
        );
        assert_eq!(
            served(&cache, &*store, "1", just_before).await,
            Some(pending),
            "the version did not move: the deadline alone refused the answer"
        );
    }

    #[tokio::test]
    async fn a_rejected_answer_is_served_past_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let release = created(&store, "1").await.release;
        let cancelled = flow(&store)
            .cancel(release.id, Some("not today"))
            .await
            .unwrap();
        assert!(matches!(cancelled, CancelOutcome::Cancelled(_)));
        let cache = PollCache::default();
        let rejected = kept(&cache, &*store, "1", start()).await;
        assert_eq!(status_of(&rejected), "rejected");

        let later = release.deadline + TimeDelta::days(1);
        assert_eq!(served(&cache, &*store, "1", later).await, Some(rejected));
    }
}
