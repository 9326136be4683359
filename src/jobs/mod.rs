//! Durable background work: jobs live in the database, workers claim and run them.

mod callback;
mod kinds;
mod retention;
mod worker;

use std::time::Duration;

pub use kinds::JobContext;
pub use retention::Retention;
pub use worker::{JobThread, Worker};

/// Delay before retry number `failures` (1 for the first retry): `base · 2^(failures-1)`, at most `cap`.
pub fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let delays: Vec<u64> = (1..=11).map(|n| backoff(base, cap, n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(base, cap, 1000), cap);
    }
}
