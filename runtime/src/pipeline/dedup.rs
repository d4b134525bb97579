//! Deduplication by CloudEvents identity in a view (`dedup` in its
//! config): the check on the record path, the view's stream time, and the
//! expiry that forgets identities past their window in the background.
//!
//! The rule is the SDK's ([`projector_sdk::dedup`]), which the mock hosts
//! apply too; the runtime adds one bound: a record time later than the
//! machine's clock moves the stream time only up to the clock, so one
//! producer with a clock far ahead cannot expire every identity at once.
//!
//! # What it promises
//!
//! - **Serialised with the subject (G3).** The check runs in the
//!   [`RecordApplier`](super::record::RecordApplier) that applies the
//!   subject, wherever its records arrive (one subject, one shard, one
//!   applier), before the projection runs.
//! - **Atomic with the row.** An identity is remembered in the batch that
//!   holds its row change (or its checkpoint, for an `ignore`), so a crash
//!   keeps both or neither.
//! - **Exact inside the window.** An identity is forgotten only once the
//!   committed stream time is `keep` past it, and the check treats one past
//!   its window as forgotten whether or not the expiry reached it yet: what
//!   is a duplicate depends on the stream time, never on the expiry's pace.
//! - **In the background.** [`Expiry`] forgets on a thread of its own, in
//!   steps of [`Expiry::STEP`] identities, each removal conditional on the
//!   identity not being remembered again since; the view never waits for
//!   it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use projector_sdk::dedup::Window;

use crate::event::Event;
use crate::store::{Identity, StoreError, ViewStore};

/// No stream time yet.
const NONE: i64 = i64::MIN;

/// A view's deduplication: its window and its stream time, shared by every
/// applier of the view.
#[derive(Debug, Clone)]
pub struct Dedup {
    window: Window,
    clock: Arc<StreamClock>,
}

/// The stream time of a view, moved by every applier.
#[derive(Debug)]
pub struct StreamClock(AtomicI64);

impl StreamClock {
    /// The stream time now (`None`: no record checked yet).
    pub fn now(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Acquire)).filter(|t| *t != NONE)
    }
}

/// What the check found.
#[derive(Debug)]
pub enum Check {
    /// A copy of an event applied within the window: not applied again.
    Duplicate,
    /// Apply it; if it applies, remember `identity` from `time`.
    Apply {
        /// The event's identity for its subject.
        identity: Identity,
        /// The time its window counts from.
        time: i64,
    },
}

impl Dedup {
    /// Deduplication by `window`, from the stream time the store committed.
    pub fn new(window: Window, committed: Option<i64>) -> Self {
        Self {
            window,
            clock: Arc::new(StreamClock(AtomicI64::new(committed.unwrap_or(NONE)))),
        }
    }

    /// The window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The view's stream time.
    pub fn clock(&self) -> Arc<StreamClock> {
        Arc::clone(&self.clock)
    }

    /// Move the stream time to `event` and check it against the identities
    /// remembered: `pending`, what this applier remembered since the last
    /// commit, else the store.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn check(
        &self,
        event: &Event,
        subject: &str,
        pending: impl FnOnce(&Identity) -> Option<i64>,
        view: &impl ViewStore,
    ) -> Result<Check, StoreError> {
        let wall = unix_ms_now();
        let time = self
            .window
            .time_of(event.time(), event.timestamp_ms())
            .map(|time| time.min(wall));
        let (time, stream) = self.advance(time);
        let identity = Identity::new(subject, event.source(), event.id());
        let first = match pending(&identity) {
            Some(first) => Some(first),
            None => view.remembered(&identity)?,
        };
        Ok(match first {
            Some(first) if self.window.remembers(first, stream) => Check::Duplicate,
            _ => Check::Apply { identity, time },
        })
    }

    /// Move the stream time to a record of `time`, as
    /// [`projector_sdk::dedup::StreamTime::advance`] does: returns the
    /// record's time (the stream time when it has none, 0 before any) and
    /// the stream time after it.
    fn advance(&self, time: Option<i64>) -> (i64, i64) {
        let time = match time {
            Some(time) => time,
            None => self.clock.now().unwrap_or(0),
        };
        let before = self.clock.0.fetch_max(time, Ordering::AcqRel);
        (time, before.max(time))
    }
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Forgets a view's identities past their window, on a thread of its own,
/// until dropped.
#[derive(Debug)]
pub struct Expiry {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Expiry {
    /// Identities forgotten per step.
    pub const STEP: usize = 1_000;
    /// How often it looks for identities to forget.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Start forgetting `view`'s identities past `window`, by the stream
    /// time it committed.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start<V: ViewStore>(name: &str, view: V, window: Window) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let view_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("expiry-{name}"))
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(Self::EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    match forget_expired(&view, window, &stopped) {
                        Ok(0) => {}
                        Ok(forgotten) => {
                            tracing::debug!(view = %view_name, forgotten, "identities past their window forgotten");
                        }
                        Err(err) => {
                            tracing::warn!(view = %view_name, error = %err, "cannot forget identities past their window; trying again later");
                        }
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Forget every identity of `view` past `window` by its committed stream
/// time, a step at a time, until none is left or `stopped` says so.
/// Returns how many expiry entries it went through.
fn forget_expired(
    view: &impl ViewStore,
    window: Window,
    stopped: &mpsc::Receiver<()>,
) -> Result<usize, StoreError> {
    let Some(stream) = view.stream_time()? else {
        return Ok(0);
    };
    let before = stream.saturating_sub(window.keep_ms).saturating_add(1);
    let mut total = 0;
    loop {
        let done = view.forget_identities(before, Expiry::STEP)?;
        total += done;
        if done < Expiry::STEP || !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            return Ok(total);
        }
    }
}

impl Drop for Expiry {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic on it was logged by the panic hook; nothing to undo.
            let _ended = thread.join();
        }
    }
}
