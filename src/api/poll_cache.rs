//! Answers to gate polls, kept while the database stays as it was.
//!
//! A gate asks about the same releases again and again, and between two
//! commits the answer cannot change: each one is kept with the database's
//! version read before the read it was built from, and given again only while
//! the version is the same (nothing committed since, by this process or any
//! other) and, for a pending release, only before its deadline, when it would
//! turn `expired` on the clock alone. Where the store has no version
//! (PostgreSQL, an in-memory database) nothing is kept. Any commit leaves every
//! kept answer behind, so none can outlive a decision, a cancellation or a
//! job's failure; the price is a read after each commit.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use chrono::{DateTime, Utc};

use super::status::{StatusJson, StatusValue};
use crate::{
    domain::release::ReleaseKey,
    store::{DataVersion, ReleaseSnapshot, Store},
};

/// The most answers kept; past it the cache starts over. 20,000 status bodies
/// of three approvers are about 15 MB.
const MOST_ANSWERS: usize = 20_000;

/// Gate polls' answers, by release.
#[derive(Default)]
pub struct PollCache {
    kept: Mutex<Kept>,
}

/// The answers built at one version of the database.
#[derive(Default)]
struct Kept {
    version: Option<DataVersion>,
    answers: HashMap<ReleaseKey, Answer>,
}

struct Answer {
    json: StatusJson,
    /// A pending answer holds until the release's deadline.
    until: Option<DateTime<Utc>>,
}

/// The database's version, read before a release is, so that an answer built
/// from the read can be kept.
pub struct ReadAt(Option<DataVersion>);

impl PollCache {
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
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        match kept.answers.get(key) {
            Some(answer)
                if kept.version.as_ref() == Some(current)
                    && answer.until.is_none_or(|deadline| now < deadline) =>
            {
                Ok(answer.json.clone())
            }
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
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.version.as_ref() != Some(&version) || kept.answers.len() >= MOST_ANSWERS {
            // Answers of another version are of no more use (versions never
            // come back); a read that began before the latest commit replaces
            // the newer answers, which the next poll then builds again.
            kept.answers.clear();
            kept.version = Some(version);
        }
        kept.answers.insert(
            snapshot.release.key.clone(),
            Answer {
                json: json.clone(),
                until,
            },
        );
        json
    }
}
