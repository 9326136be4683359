//! [`Live`]: a value the configuration reload replaces while requests and jobs
//! read it, each reader keeping the version it took for as long as it needs it.

use std::sync::{Arc, RwLock};

/// A shared value that a reload swaps whole. [`Live::get`] takes one read lock
/// (never contended but for the instant of a swap) and clones an `Arc`; the
/// version taken stays valid after a swap.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Live<T> {
    /// A holder of `value`.
    pub fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        // A writer only assigns an `Arc`, so a poisoned lock still holds a whole value.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `f` of the current value, under one read lock and without cloning the
    /// `Arc`: for a short look, such as an API key check on every gate poll.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the value for every holder; readers holding the old one keep it.
    pub fn set(&self, value: T) {
        let value = Arc::new(value);
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::Live;

    #[test]
    fn a_clone_sees_what_another_clone_sets() {
        let live = Live::new(vec!["a"]);
        let reader = live.clone();
        assert_eq!(*reader.get(), vec!["a"]);
        live.set(vec!["b", "c"]);
        assert_eq!(*reader.get(), vec!["b", "c"]);
        assert_eq!(reader.read(Vec::len), 2);
    }

    #[test]
    fn a_value_taken_before_a_swap_stays_as_it_was() {
        let live = Live::new(String::from("old"));
        let taken = live.get();
        live.set(String::from("new"));
        assert_eq!(*taken, "old");
        assert_eq!(*live.get(), "new");
    }

    #[test]
    fn readers_on_other_threads_see_a_whole_value_during_swaps() {
        let live = Live::new(vec![0_u32; 64]);
        let reader = live.clone();
        let readers = std::thread::spawn(move || {
            for _ in 0..10_000 {
                let seen = reader.get();
                assert!(seen.iter().all(|n| *n == seen[0]), "a torn value: {seen:?}");
            }
        });
        for round in 1..=1_000 {
            live.set(vec![round; 64]);
        }
        readers.join().unwrap();
        assert_eq!(*live.get(), vec![1_000; 64]);
    }
}
