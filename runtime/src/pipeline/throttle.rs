//! A bound on the records a worker takes per second: what keeps a deploy's
//! shadow from taking the broker and the store from the live views
//! (`[deploy] shadow_max_rate`).
//!
//! [`Throttle::took`] counts each record handed to the worker and, once
//! the worker is ahead of the rate since the current second began, sleeps
//! until it is not (at most 100 ms at a time, so the worker still commits
//! and serves requests in between).

use std::time::{Duration, Instant};

/// Records per second, at most.
#[derive(Debug)]
pub struct Throttle {
    per_second: u64,
    since: Instant,
    taken: u64,
}

impl Throttle {
    /// At most `per_second` records a second (at least 1).
    pub fn new(per_second: u64) -> Self {
        Self {
            per_second: per_second.max(1),
            since: Instant::now(),
            taken: 0,
        }
    }

    /// How long to wait after one more record, to stay within the rate.
    fn wait_after_one(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= Duration::from_secs(1) {
            self.since = now;
            self.taken = 0;
        }
        self.taken += 1;
        // When `taken` records are due at this rate, from the second's start.
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(self.taken as f64 / self.per_second as f64);
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
        let mut throttle = Throttle::new(1000);
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
    }
}
