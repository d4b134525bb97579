//! A bound on the records a worker takes per second: what keeps a deploy's
//! shadow from taking the CPU, the broker and the store from the live views
//! (`[deploy] shadow_max_rate`), lifted when the shadow is swapped in.
//!
//! [`Throttle::took`] counts each record handed to the worker and, once
//! the worker is ahead of the rate since the current second began, sleeps
//! (at most 100 ms a record, so the worker still commits and serves
//! requests in between; a bound under 10 records a second therefore
//! allows about 10). [`Rate`] is the bound, shared: 0 lifts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Records a second, at most; 0: no bound. Clones share one value.
#[derive(Debug, Clone, Default)]
pub struct Rate(Arc<AtomicU64>);

impl Rate {
    /// At most `per_second` records a second (0: no bound).
    pub fn new(per_second: u64) -> Self {
        Self(Arc::new(AtomicU64::new(per_second)))
    }

    /// Lift the bound.
    pub fn lift(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// The bound now (0: none).
    pub fn per_second(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A worker's count against its [`Rate`].
#[derive(Debug)]
pub struct Throttle {
    rate: Rate,
    since: Instant,
    taken: u64,
}

impl Throttle {
    /// A count against `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            since: Instant::now(),
            taken: 0,
        }
    }

    /// How long to wait after one more record, to stay within the rate.
    fn wait_after_one(&mut self, now: Instant) -> Duration {
        let per_second = self.rate.per_second();
        if per_second == 0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= Duration::from_secs(1) {
            self.since = now;
            self.taken = 0;
        }
        self.taken += 1;
        // When `taken` records are due at this rate, from the second's start.
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(self.taken as f64 / per_second as f64);
        due.saturating_sub(now.saturating_duration_since(self.since))
            .min(Duration::from_millis(100))
    }

    /// One record taken: sleep while the worker is ahead of the rate.
    pub fn took(&mut self) {
        let wait = self.wait_after_one(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_ahead_of_the_rate_waits_and_one_behind_it_does_not() {
        let start = Instant::now();
        let rate = Rate::new(1000);
        let mut throttle = Throttle::new(rate.clone());
        throttle.since = start;
        // The first record is due at 1 ms: taken at once, it waits 1 ms.
        assert_eq!(throttle.wait_after_one(start), Duration::from_millis(1));
        // 500 records taken at once: the 501st is due at 501 ms, cut to 100.
        for _ in 0..499 {
            throttle.wait_after_one(start);
        }
        assert_eq!(throttle.wait_after_one(start), Duration::from_millis(100));
        // Taken late (at 900 ms, due at 502 ms): no wait.
        assert_eq!(
            throttle.wait_after_one(start + Duration::from_millis(900)),
            Duration::ZERO
        );
        // A new second starts the count again.
        assert_eq!(
            throttle.wait_after_one(start + Duration::from_millis(1500)),
            Duration::from_millis(1)
        );
        // Lifted: no wait, however far ahead.
        rate.lift();
        for _ in 0..10_000 {
            assert_eq!(
                throttle.wait_after_one(start + Duration::from_millis(1500)),
                Duration::ZERO
            );
        }
    }
}
