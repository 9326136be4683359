//! The time as the service sees it: the system clock, which tests may move
//! forward to reach reminders, escalations and deadlines without sleeping.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock plus an offset shared by every copy (zero unless advanced).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    /// Where a stopped clock stands before its offset; `None` follows the system clock.
    stopped_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock standing still at `at` until [`advance`](Self::advance)d (for tests that
    /// need an exact instant, such as a deadline to the millisecond).
    pub fn stopped_at(at: DateTime<Utc>) -> Self {
        Self {
            stopped_at: Some(at),
            ..Self::default()
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.stopped_at.unwrap_or_else(Utc::now)
            + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock and all its copies forward by `by` (for tests).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_moves_every_copy() {
        let clock = Clock::system();
        let copy = clock.clone();
        clock.advance(Duration::from_secs(3600));
        let ahead = copy.now() - Utc::now();
        assert!(ahead >= TimeDelta::minutes(59) && ahead <= TimeDelta::minutes(61));
    }

    #[test]
    fn a_stopped_clock_moves_only_when_advanced() {
        let at = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let clock = Clock::stopped_at(at);
        assert_eq!(clock.now(), at);
        clock.clone().advance(Duration::from_millis(1));
        assert_eq!(clock.now(), at + TimeDelta::milliseconds(1));
    }
}
