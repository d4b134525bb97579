//! Retrying a call that failed transiently (a deadline missed on a busy
//! machine, an instantiation that failed: [`ApplyError::is_transient`]),
//! with a doubling backoff. One rule for the pipeline and for `projector
//! test`, so a test of a component sees what the runtime would do with the
//! same event.

use std::time::Duration;

use super::ApplyError;

/// How transient failures are retried: at most `max_attempts` calls in all,
/// waiting `initial_backoff` before the first retry, doubling up to
/// `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Calls in all, the first included; 1 retries nothing.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for Retry {
    /// A view's default: 3 attempts, from 100 ms, at most 5 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (1 for the first).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1_u32 << attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Call `call` until it succeeds, fails for good, or has been called
    /// `max_attempts` times; `retrying(attempt, error, wait)` is told of
    /// each retry before its wait.
    pub fn run<T>(
        &self,
        call: impl FnMut() -> Result<T, ApplyError>,
        retrying: impl FnMut(u32, &ApplyError, Duration),
    ) -> Result<T, ApplyError> {
        self.run_while(call, ApplyError::is_transient, retrying)
    }

    /// [`Self::run`] for any error: `transient` says which are retried.
    pub fn run_while<T, E>(
        &self,
        mut call: impl FnMut() -> Result<T, E>,
        transient: impl Fn(&E) -> bool,
        mut retrying: impl FnMut(u32, &E, Duration),
    ) -> Result<T, E> {
        let mut attempt = 1;
        loop {
            match call() {
                Err(err) if transient(&err) && attempt < self.max_attempts => {
                    let wait = self.backoff(attempt);
                    retrying(attempt, &err, wait);
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline() -> ApplyError {
        ApplyError::DeadlineExceeded {
            limit: Duration::from_millis(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let retry = Retry {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        let waits: Vec<_> = (1..=4).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn transient_failures_are_retried_up_to_the_attempts_and_others_not_at_all() {
        let retry = Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let mut told = Vec::new();
        let result: Result<(), _> = retry.run(
            || {
                calls += 1;
                Err(deadline())
            },
            |attempt, _, _| told.push(attempt),
        );
        assert!(matches!(result, Err(ApplyError::DeadlineExceeded { .. })));
        assert_eq!((calls, told), (3, vec![1, 2]));

        let mut calls = 0;
        let result = retry.run(
            || {
                calls += 1;
                if calls < 2 {
                    Err(deadline())
                } else {
                    Ok(calls)
                }
            },
            |_, _, _| {},
        );
        assert_eq!(result.ok(), Some(2));

        let mut calls = 0;
        let result: Result<(), _> = retry.run(
            || {
                calls += 1;
                Err(ApplyError::Panic {
                    message: "bug".into(),
                })
            },
            |_, _, _| {},
        );
        assert!(result.is_err());
        assert_eq!(calls, 1, "a panic is not transient");
    }
}
