//! Deduplication by CloudEvents identity in a view (`dedup` in its
//! config): the check on the record path, the identities it remembers, the
//! view's watermark, and the expiry that forgets identities past it in the
//! background.
//!
//! The rule is the SDK's ([`projector_sdk::dedup`]), which the mock hosts
//! apply too: a copy is a duplicate when its own time is less than `keep`
//! after the first copy's. What only a runtime does is forget: an identity
//! goes once the view's **watermark** is `keep` past it. The watermark is
//! the stream time (the latest record time read) of the slowest partition
//! assigned and still read (its lag above zero, or not known yet), or of
//! the fastest assigned partition when every one is caught up; never later
//! than the machine's clock, so one producer with a clock far ahead cannot
//! expire every identity at once. An assigned partition still read that no
//! record has come from yet (a start, a rebalance) holds forgetting back
//! until one does, and so does a stopped shard or a record held in
//! quarantine (they are read again, or released, later).
//!
//! # How identities are kept
//!
//! In memory, an index of the identities not yet forgotten (16 bytes each,
//! [`Identity`], and the time they count from), split into stripes by the
//! identity's first bytes so that applier threads seldom wait for each
//! other, which the check reads with no store access; in the store, each
//! batch's identities as one record, written in the batch's atomic commit,
//! so a crash keeps the row and its identity or neither. A start loads
//! every record left (an identity in several keeps its latest time). A
//! pass of the expiry forgets, in memory, the identities older than the
//! watermark's window, and in the store the records whose newest identity
//! is: the store never holds less than the index.
//!
//! # What it promises
//!
//! - **Serialised with the subject (G3).** The check runs in the
//!   [`RecordApplier`](super::record::RecordApplier) that applies the
//!   subject, wherever its records arrive (one subject, one shard, one
//!   applier), before the projection runs.
//! - **Atomic with the row.** An identity is remembered in the batch that
//!   holds its row change (or its checkpoint, for an `ignore`).
//! - **Exact inside the window, while the watermark is not past it.** The
//!   check compares the copies' own times; the expiry forgets only what
//!   the watermark is `keep` past. A copy is missed only when it is read
//!   after that: written, by its producer's clock, `keep` or more behind
//!   what every partition still read has already delivered.
//! - **In the background.** [`Expiry`] forgets on a thread of its own,
//!   each time the watermark has moved a sixteenth of the window; it holds
//!   one stripe (a 64th of the index) at a time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use projector_sdk::dedup::Window;

use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::event::Event;
use crate::shutdown::Periodic;
use crate::store::{Identity, StoreError, ViewStore};

/// A view's deduplication: its window, its partitions' stream times and
/// the identities it remembers, shared by every applier of the view.
#[derive(Debug, Clone)]
pub struct Dedup {
    window: Window,
    index: Arc<Index>,
    streams: Arc<StreamTimes>,
}

/// The latest record time read on each partition.
#[derive(Debug, Default)]
struct StreamTimes(RwLock<HashMap<TopicPartition, AtomicI64>>);

impl StreamTimes {
    /// Move `partition`'s stream time to `time` (it never goes back).
    fn advance(&self, partition: &TopicPartition, time: i64) {
        {
            let times = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(stream) = times.get(partition) {
                stream.fetch_max(time, Ordering::Relaxed);
                return;
            }
        }
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(partition.clone())
            .or_insert_with(|| AtomicI64::new(time))
            .fetch_max(time, Ordering::Relaxed);
    }

    /// `partition`'s stream time, if a record of it was read.
    fn get(&self, partition: &TopicPartition) -> Option<i64> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(partition)
            .map(|time| time.load(Ordering::Relaxed))
    }
}

/// One applier's view of the stream times it last gave the view: it gives
/// a partition's again only once it has moved a step (a second, or a
/// sixteenth of the window if shorter), so that the shared times are
/// touched about once a second per partition, not once a record. The
/// watermark is then at most a step behind, which only delays forgetting.
#[derive(Debug, Default)]
pub struct StreamMarks(Vec<(TopicPartition, i64)>);

impl StreamMarks {
    fn advance(
        &mut self,
        streams: &StreamTimes,
        window: Window,
        partition: &TopicPartition,
        time: i64,
    ) {
        let step = (window.keep_ms / 16).clamp(1, 1_000);
        let mark = self
            .0
            .iter_mut()
            .find(|(known, _)| known.1 == partition.1 && known.0 == partition.0);
        match mark {
            Some((_, given)) if time < given.saturating_add(step) => {}
            Some((_, given)) => {
                *given = time;
                streams.advance(partition, time);
            }
            None => {
                self.0.push((partition.clone(), time));
                streams.advance(partition, time);
            }
        }
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

/// The identities remembered, in stripes.
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
    /// Deduplication by `window` for `view`, with the identities its store
    /// remembers, whose number `status` reports.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn open(
        window: Window,
        view: &impl ViewStore,
        status: Arc<ViewStatus>,
    ) -> Result<Self, StoreError> {
        status.identities.store(0, Ordering::Relaxed);
        let dedup = Self {
            window,
            index: Arc::new(Index {
                stripes: (0..Index::STRIPES).map(|_| Mutex::default()).collect(),
                status,
            }),
            streams: Arc::default(),
        };
        view.each_identity(i64::MIN, &mut |identity, time| {
            dedup.remember(identity, time);
        })?;
        Ok(dedup)
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

    /// Check `event` of `subject`, read on `partition`, against the
    /// identities remembered, and move the partition's stream time to it
    /// (through `marks`, the caller's own).
    pub fn check(
        &self,
        event: &Event,
        subject: &str,
        partition: &TopicPartition,
        marks: &mut StreamMarks,
    ) -> Check {
        let time = self.window.time_of(event.time(), event.timestamp_ms());
        marks.advance(&self.streams, self.window, partition, time);
        let identity = Identity::new(subject, event.source(), event.id());
        match self.index.stripe(&identity).get(&identity) {
            Some(&first) if self.window.is_duplicate(first, time) => Check::Duplicate,
            _ => Check::Apply { identity, time },
        }
    }

    /// Remember that the event of `identity` was applied, from `time`; an
    /// identity remembered already keeps the later time (a copy applied
    /// past the window is later than its first; a start may load an
    /// identity's records in any order).
    pub fn remember(&self, identity: Identity, time: i64) {
        let mut stripe = self.index.stripe(&identity);
        match stripe.get_mut(&identity) {
            Some(known) => *known = (*known).max(time),
            None => {
                stripe.insert(identity, time);
                self.index.status.identities.fetch_add(1, Ordering::Relaxed);
            }
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
            let gone = (had - stripe.len()) as u64;
            self.index
                .status
                .identities
                .fetch_sub(gone, Ordering::Relaxed);
            forgotten += gone;
        }
        forgotten
    }

    /// The view's watermark now, and whether forgetting waits (a stopped
    /// shard, a record held in quarantine): see the module's
    /// documentation. `None` when nothing may be forgotten.
    fn watermark(&self, now_ms: i64) -> (Option<i64>, bool) {
        let status = &self.index.status;
        let mut waits = status.quarantined().1 > 0;
        let partitions: Vec<(bool, Option<i64>)> = status
            .assigned_partitions()
            .into_iter()
            .map(|(partition, reading, stopped)| {
                waits |= stopped;
                (reading, self.streams.get(&partition))
            })
            .collect();
        (watermark(&partitions, now_ms), waits)
    }
}

/// The watermark of the assigned partitions, each `(still read, stream
/// time)`: the slowest still read, else the fastest; at most `now_ms`.
/// `None` when none is assigned, or one still read has no stream time yet.
fn watermark(partitions: &[(bool, Option<i64>)], now_ms: i64) -> Option<i64> {
    let mut slowest: Option<i64> = None;
    let mut fastest: Option<i64> = None;
    for (reading, time) in partitions {
        match (reading, time) {
            (true, None) => return None,
            (true, Some(time)) => slowest = Some(slowest.map_or(*time, |s| s.min(*time))),
            (false, Some(time)) => fastest = Some(fastest.map_or(*time, |f| f.max(*time))),
            (false, None) => {}
        }
    }
    slowest.or(fastest).map(|time| time.min(now_ms))
}

/// Forgets a view's identities past the window of its watermark, on a
/// thread of its own, until dropped.
#[derive(Debug)]
pub struct Expiry {
    /// Kept for its drop, which stops the thread.
    _thread: Periodic,
}

impl Expiry {
    /// How often it looks at the watermark.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Start forgetting `dedup`'s identities past its watermark's window,
    /// in memory and in `view`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start<V: ViewStore>(
        name: &str,
        view: V,
        dedup: Dedup,
        changelog: Option<std::sync::Arc<super::changelog::Changelog>>,
    ) -> std::io::Result<Self> {
        let view_name = name.to_owned();
        // The bound of the last pass: the next waits until the watermark
        // has moved a sixteenth of the window past it.
        let mut last: Option<i64> = None;
        let step = (dedup.window.keep_ms / 16).max(1);
        Periodic::start(format!("expiry-{name}"), Self::EVERY, move || {
            let (watermark, waits) = dedup.watermark(crate::clock::unix_ms());
            let Some(watermark) = watermark else {
                return true;
            };
            dedup.index.status.set_dedup_watermark(watermark);
            let before = watermark
                .saturating_sub(dedup.window.keep_ms)
                .saturating_add(1);
            if waits || last.is_some_and(|last| before < last.saturating_add(step)) {
                return true;
            }
            last = Some(before);
            let forgotten = dedup.forget(before);
            // Logged as forgotten first, then removed from the store.
            let removed = view.forget_identities(before, &mut |removed| match &changelog {
                Some(changelog) => changelog.log_removals(&view, removed),
                None => Ok(()),
            });
            match removed {
                Ok(records) => {
                    tracing::debug!(view = %view_name, forgotten, records, watermark, "identities past their window forgotten");
                }
                Err(err) => {
                    tracing::warn!(view = %view_name, error = %err, "cannot forget identities past their window in the store; trying again later");
                    last = None;
                }
            }
            true
        })
        .map(|thread| Self { _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_slowest_partition_still_read_else_the_fastest_never_past_the_clock() {
        let (read, caught_up) = (true, false);
        // Partition 1 is still read: it holds the watermark back; 0 and 2
        // are caught up.
        let partitions = [
            (caught_up, Some(1_000)),
            (read, Some(5_000)),
            (caught_up, Some(9_000)),
        ];
        assert_eq!(watermark(&partitions, 100_000), Some(5_000));
        assert_eq!(
            watermark(&[(read, Some(1_000)), (read, Some(5_000))], 100_000),
            Some(1_000)
        );
        // Every one caught up: the fastest.
        assert_eq!(
            watermark(
                &[(caught_up, Some(1_000)), (caught_up, Some(9_000))],
                100_000
            ),
            Some(9_000)
        );
        // A record time past the clock counts as the clock.
        assert_eq!(watermark(&[(caught_up, Some(9_000))], 7_000), Some(7_000));
        // One still read that nothing came from yet holds everything back;
        // one caught up that nothing came from does not count.
        assert_eq!(
            watermark(&[(read, None), (caught_up, Some(9_000))], 100_000),
            None
        );
        assert_eq!(
            watermark(&[(caught_up, None), (caught_up, Some(9_000))], 100_000),
            Some(9_000)
        );
        // None assigned: nothing to go by.
        assert_eq!(watermark(&[], 7_000), None);
    }

    #[test]
    fn a_start_keeps_the_latest_time_of_an_identity_whatever_order_its_records_come_in() {
        use crate::store::{SledStore, Store, ViewBatch};
        let dir = std::env::temp_dir().join(format!("projector-dedup-load-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let store = SledStore::open(&dir).unwrap();
        let view = store.open_view("v", "h", &[], None).unwrap();
        let (x, y) = (
            Identity::new("s", "/src", "x"),
            Identity::new("s", "/src", "y"),
        );
        // A batch with x's first copy beside a live event (its record's
        // newest time is 10,000), then one from a late partition where x
        // was applied again past the window, at 5,000: that record sorts
        // first.
        let mut batch = ViewBatch::new();
        batch.remember(x, 1_000, crate::shard::ShardId(0));
        batch.remember(y, 10_000, crate::shard::ShardId(0));
        view.commit(&batch).unwrap();
        let mut batch = ViewBatch::new();
        batch.remember(x, 5_000, crate::shard::ShardId(0));
        view.commit(&batch).unwrap();
        let status = Arc::new(ViewStatus::default());
        let window = Window::new(
            Duration::from_secs(1),
            projector_sdk::dedup::TimeSource::Record,
        );
        let dedup = Dedup::open(window, &view, Arc::clone(&status)).unwrap();
        assert_eq!(dedup.index.stripe(&x).get(&x), Some(&5_000));
        assert_eq!(dedup.index.stripe(&y).get(&y), Some(&10_000));
        assert_eq!(status.identities_remembered(), 2);
        drop((dedup, view, store));
        std::fs::remove_dir_all(&dir).ok();
    }
}
