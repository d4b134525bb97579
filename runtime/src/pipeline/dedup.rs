//! Deduplication by CloudEvents identity in a view (`dedup` in its
//! config): the check on the record path, the identities it remembers, the
//! view's stream time, and the expiry that forgets identities past their
//! window in the background.
//!
//! The rule is the SDK's ([`projector_sdk::dedup`]), which the mock hosts
//! apply too; the runtime adds one bound: a record time later than the
//! machine's clock moves the stream time only up to the clock, so one
//! producer with a clock far ahead cannot expire every identity at once.
//!
//! # How identities are kept
//!
//! In memory, an index of the identities inside the window (16 bytes each,
//! [`Identity`], and the time they count from), split into stripes by the
//! identity's first bytes so that applier threads seldom wait for each
//! other, which the check reads with no store access; in the store, each batch's identities as one
//! record, written in the batch's atomic commit, so a crash keeps the row
//! and its identity or neither. A start loads the records inside the window
//! into the index. The store's records are forgotten whole, once the newest
//! identity of one is past the window.
//!
//! # What it promises
//!
//! - **Serialised with the subject (G3).** The check runs in the
//!   [`RecordApplier`](super::record::RecordApplier) that applies the
//!   subject, wherever its records arrive (one subject, one shard, one
//!   applier), before the projection runs.
//! - **Atomic with the row.** An identity is remembered in the batch that
//!   holds its row change (or its checkpoint, for an `ignore`).
//! - **Exact inside the window.** The check treats an identity past its
//!   window as forgotten whether or not the expiry reached it yet, and the
//!   expiry forgets only what the committed stream time is past: what is a
//!   duplicate depends on the stream time, never on the expiry's pace.
//! - **In the background.** [`Expiry`] forgets on a thread of its own,
//!   each time the committed stream time has moved a sixteenth of the
//!   window; the view never waits for it (it holds one stripe's lock at a
//!   time).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use projector_sdk::dedup::Window;

use super::status::ViewStatus;
use crate::event::Event;
use crate::store::{Identity, StoreError, ViewStore};

/// No stream time yet.
const NONE: i64 = i64::MIN;

/// A view's deduplication: its window, its stream time and the identities
/// it remembers, shared by every applier of the view.
#[derive(Debug, Clone)]
pub struct Dedup {
    window: Window,
    clock: Arc<StreamClock>,
    index: Arc<Index>,
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

/// A map keyed by identities, hashed by the identity's own bytes (already
/// a SHA-256's), not hashed again.
type IdentityMap = HashMap<Identity, i64, BuildHasherDefault<IdentityHasher>>;

/// Takes an [`Identity`]'s bytes as they are.
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // An identity hashes as its 16 bytes; keep the last 8.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = u64::from_le_bytes(word);
        }
    }
}

/// The identities inside the window, in stripes.
#[derive(Debug)]
struct Index {
    stripes: Vec<Mutex<IdentityMap>>,
    /// How many: reported in the view's status.
    status: Arc<ViewStatus>,
}

impl Index {
    /// Stripes of the index.
    const STRIPES: usize = 64;

    fn stripe(&self, identity: &Identity) -> MutexGuard<'_, IdentityMap> {
        self.stripes[identity.stripe(self.stripes.len())]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the check found.
#[derive(Debug)]
pub enum Check {
    /// A copy of an event applied within the window: not applied again.
    Duplicate,
    /// Apply it; if it applies, [`Dedup::remember`] `identity` from `time`.
    Apply {
        /// The event's identity for its subject.
        identity: Identity,
        /// The time its window counts from.
        time: i64,
    },
}

impl Dedup {
    /// Deduplication by `window` for `view`: the stream time the store
    /// committed, and the identities it remembers inside the window, whose
    /// number `status` reports.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn open(
        window: Window,
        view: &impl ViewStore,
        status: Arc<ViewStatus>,
    ) -> Result<Self, StoreError> {
        let committed = view.stream_time()?;
        status.identities.store(0, Ordering::Relaxed);
        let index = Index {
            stripes: (0..Index::STRIPES).map(|_| Mutex::default()).collect(),
            status,
        };
        let dedup = Self {
            window,
            clock: Arc::new(StreamClock(AtomicI64::new(committed.unwrap_or(NONE)))),
            index: Arc::new(index),
        };
        if let Some(stream) = committed {
            for (identity, time) in view.identities(dedup.first_kept(stream))? {
                dedup.remember(identity, time);
            }
        }
        Ok(dedup)
    }

    /// The window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The view's stream time.
    pub fn clock(&self) -> Arc<StreamClock> {
        Arc::clone(&self.clock)
    }

    /// How many identities the view remembers now.
    pub fn remembered(&self) -> u64 {
        self.index.status.identities_remembered()
    }

    /// The memory the index holds now, in bytes: each stripe's table (its
    /// capacity, each slot an identity, a time and a control byte).
    pub fn index_bytes(&self) -> usize {
        self.index
            .stripes
            .iter()
            .map(|stripe| {
                let stripe = stripe.lock().unwrap_or_else(PoisonError::into_inner);
                stripe.capacity() * (std::mem::size_of::<(Identity, i64)>() + 1)
            })
            .sum()
    }

    /// The earliest time an identity is kept at, at stream time `stream`.
    fn first_kept(&self, stream: i64) -> i64 {
        stream.saturating_sub(self.window.keep_ms).saturating_add(1)
    }

    /// Move the stream time to `event` of `subject` and check it against
    /// the identities remembered.
    pub fn check(&self, event: &Event, subject: &str) -> Check {
        let wall = unix_ms_now();
        let time = self
            .window
            .time_of(event.time(), event.timestamp_ms())
            .map(|time| time.min(wall));
        let (time, stream) = self.advance(time);
        let identity = Identity::new(subject, event.source(), event.id());
        match self.index.stripe(&identity).get(&identity) {
            Some(&first) if self.window.remembers(first, stream) => Check::Duplicate,
            _ => Check::Apply { identity, time },
        }
    }

    /// Remember that the event of `identity` was applied, from `time` (a
    /// later time than one remembered replaces it: a copy applied past the
    /// window).
    pub fn remember(&self, identity: Identity, time: i64) {
        let previous = self.index.stripe(&identity).insert(identity, time);
        if previous.is_none() {
            self.index.status.identities.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forget the identities remembered before `before`, a stripe at a
    /// time. Returns how many.
    fn forget(&self, before: i64) -> u64 {
        let mut forgotten = 0;
        for stripe in &self.index.stripes {
            let mut stripe = stripe.lock().unwrap_or_else(PoisonError::into_inner);
            let had = stripe.len();
            stripe.retain(|_, time| *time >= before);
            forgotten += (had - stripe.len()) as u64;
        }
        self.index
            .status
            .identities
            .fetch_sub(forgotten, Ordering::Relaxed);
        forgotten
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
    /// How often it looks at the committed stream time.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Start forgetting `dedup`'s identities past its window, in memory and
    /// in `view`, by the stream time `view` committed.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start<V: ViewStore>(name: &str, view: V, dedup: Dedup) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let view_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("expiry-{name}"))
            .spawn(move || {
                // The bound of the last pass: the next waits until the
                // stream time has moved a sixteenth of the window past it.
                let mut last: Option<i64> = None;
                let step = (dedup.window.keep_ms / 16).max(1);
                loop {
                    match stopped.recv_timeout(Self::EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let before = match view.stream_time() {
                        Ok(Some(stream)) => dedup.first_kept(stream),
                        Ok(None) => continue,
                        Err(err) => {
                            tracing::warn!(view = %view_name, error = %err, "cannot read the stream time; identities are forgotten later");
                            continue;
                        }
                    };
                    if last.is_some_and(|last| before < last.saturating_add(step)) {
                        continue;
                    }
                    last = Some(before);
                    let forgotten = dedup.forget(before);
                    match view.forget_identities(before) {
                        Ok(records) => {
                            tracing::debug!(view = %view_name, forgotten, records, "identities past their window forgotten");
                        }
                        Err(err) => {
                            tracing::warn!(view = %view_name, error = %err, "cannot forget identities past their window in the store; trying again later");
                            last = None;
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

impl Drop for Expiry {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic on it was logged by the panic hook; nothing to undo.
            let _ended = thread.join();
        }
    }
}
