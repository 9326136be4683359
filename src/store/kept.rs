//! [`Kept`]: values read at one version of the database, kept for the next
//! asker while the version stays, at most a bounded number of them.
//!
//! Any commit moves the version and leaves every kept value behind. Below
//! that, the bound: values are kept in two generations, the newer one filling
//! while the older one is still read; when the newer one is full it becomes
//! the older and the older is dropped. A value asked for from the older
//! generation moves to the newer, so values asked for often outlive the
//! values asked for once, and a full cache never drops everything at once:
//! with more keys asked for at random than it holds, about the share it
//! holds is still answered from it.

use std::{
    collections::HashMap,
    hash::Hash,
    mem,
    sync::{Mutex, PoisonError},
};

use super::DataVersion;

/// Values by key, read at one version of the database; at most about
/// `most` of them.
pub struct Kept<K, V> {
    at: Mutex<Generations<K, V>>,
    /// Values held by one generation.
    per_generation: usize,
}

struct Generations<K, V> {
    version: Option<DataVersion>,
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
}

impl<K: Hash + Eq, V: Clone> Kept<K, V> {
    /// A cache holding at most `most` values (at least two).
    pub fn holding(most: usize) -> Self {
        Self {
            at: Mutex::new(Generations {
                version: None,
                newer: HashMap::new(),
                older: HashMap::new(),
            }),
            per_generation: (most / 2).max(1),
        }
    }

    /// The value kept for `key` at `version`, if any.
    pub fn get(&self, version: &DataVersion, key: &K) -> Option<V> {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        if at.version.as_ref() != Some(version) {
            return None;
        }
        if let Some(value) = at.newer.get(key) {
            return Some(value.clone());
        }
        let (key, value) = at.older.remove_entry(key)?;
        at.make_room(self.per_generation);
        at.newer.insert(key, value.clone());
        Some(value)
    }

    /// Keeps `value`, read after the database was at `version`, for `key`.
    pub fn keep(&self, version: DataVersion, key: K, value: V) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        if at.version.as_ref() != Some(&version) {
            // Values of another version are of no more use (versions never
            // come back); a read that began before the latest commit replaces
            // newer ones, which the next asker then reads again.
            at.newer.clear();
            at.older.clear();
            at.version = Some(version);
        }
        at.older.remove(&key);
        if !at.newer.contains_key(&key) {
            at.make_room(self.per_generation);
        }
        at.newer.insert(key, value);
    }
}

impl<K, V> Generations<K, V> {
    /// Starts a new generation when the newer one holds `per_generation` values.
    fn make_room(&mut self, per_generation: usize) {
        if self.newer.len() >= per_generation {
            self.older = mem::take(&mut self.newer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(count: u64) -> DataVersion {
        DataVersion::counted(count)
    }

    #[test]
    fn a_value_is_given_only_at_the_version_it_was_kept_at() {
        let kept = Kept::holding(10);
        assert_eq!(kept.get(&at(1), &"a"), None);
        kept.keep(at(1), "a", 1);
        assert_eq!(kept.get(&at(1), &"a"), Some(1));
        assert_eq!(kept.get(&at(2), &"a"), None);

        kept.keep(at(2), "b", 2);
        assert_eq!(kept.get(&at(2), &"b"), Some(2));
        assert_eq!(
            kept.get(&at(1), &"a"),
            None,
            "keeping at a new version left the old values behind"
        );
        assert_eq!(kept.get(&at(2), &"a"), None);
    }

    #[test]
    fn a_full_cache_drops_the_values_asked_for_least_lately_never_all_at_once() {
        let kept = Kept::holding(6);
        for key in 1..=4 {
            kept.keep(at(1), key, key * 10);
        }
        assert_eq!(kept.get(&at(1), &1), Some(10));
        kept.keep(at(1), 5, 50);
        kept.keep(at(1), 6, 60);

        assert_eq!(kept.get(&at(1), &2), None, "asked for least lately");
        assert_eq!(kept.get(&at(1), &3), None, "asked for least lately");
        for key in [1, 4, 5, 6] {
            assert_eq!(kept.get(&at(1), &key), Some(key * 10), "{key}");
        }
    }

    #[test]
    fn more_keys_than_it_holds_asked_at_random_are_still_mostly_answered() {
        let kept = Kept::holding(100);
        let mut seed: u64 = 7;
        let (mut asked, mut answered) = (0, 0);
        for draw in 0..3_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let key = (seed >> 33) % 150;
            match kept.get(&at(1), &key) {
                Some(value) => {
                    assert_eq!(value, key * 2);
                    answered += usize::from(draw >= 300);
                }
                None => kept.keep(at(1), key, key * 2),
            }
            asked += usize::from(draw >= 300);
        }
        // Holding between 50 and 100 of the 150 keys, it answers about half.
        assert!(
            answered * 100 >= asked * 40,
            "{answered} of {asked} answered from the cache"
        );
    }
}
