//! The records handed to applier threads and not yet merged into the
//! pending batch, and the count of commits: the worker waits for the first
//! to reach zero before it commits (so a batch written with its
//! checkpoints holds every change below them, G1 and G4), and a record
//! applier forgets what it changed when the second moves. A module of its
//! own: the state, the record path and the pool all read it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Records dispatched and not yet merged, and how many commits there have
/// been: the worker waits for the first to reach zero before it commits,
/// and the threads forget what they changed when the second moves.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Records in flight.
    count: Mutex<u64>,
    idle: Condvar,
    /// Commits so far (batches in the store): read by the threads for
    /// every record, so not behind the lock.
    epoch: AtomicU64,
    /// Batches that left the pending slot: committed, or sent to the
    /// changelog and waiting for the next commit.
    begun: AtomicU64,
    /// Set when an applier thread died: its records will never be merged.
    broken: AtomicBool,
}

impl InFlight {
    pub(super) fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    pub(super) fn done(&self, count: u64) {
        let mut left = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *left = left.saturating_sub(count);
        if *left == 0 {
            self.idle.notify_all();
        }
    }

    /// Wait until every dispatched record is merged into the batch.
    /// False when an applier thread died instead: the batch misses records
    /// and must never be committed.
    pub fn wait_idle(&self) -> bool {
        let mut left = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *left > 0 && !self.is_broken() {
            left = self.idle.wait(left).unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_broken()
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    pub(super) fn break_off(&self) {
        self.broken.store(true, Ordering::Release);
        let _count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        self.idle.notify_all();
    }

    /// A batch left the pending slot: records from now on go to the next.
    pub fn begin(&self) {
        self.begun.fetch_add(1, Ordering::Release);
    }

    /// Batches that left the pending slot so far.
    pub fn begun(&self) -> u64 {
        self.begun.load(Ordering::Acquire)
    }

    /// A batch was committed: everything changed before is in the store.
    pub fn committed(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Commits so far: a record applier forgets what it changed when it
    /// moves.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}
