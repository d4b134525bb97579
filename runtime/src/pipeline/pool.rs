//! A view's shards applied in parallel: a fixed set of applier threads,
//! each owning the shards `s` with `s mod threads` equal to its number,
//! each with its own instance of the projection.
//!
//! # What it promises
//!
//! - **G3, G5.** A subject has one shard and a shard one thread, which
//!   applies its records one at a time in the order the worker dispatched
//!   them (each partition's delivery order). A thread reads a row from what
//!   it changed since the last commit, else from the store; no other thread
//!   writes that subject.
//! - **G1, G2, G4.** The worker takes a record (advances its partition's
//!   cursor) when it dispatches it, and commits only once every dispatched
//!   record is applied and merged into the pending batch
//!   ([`InFlight::wait_idle`]): the batch written with the checkpoints
//!   holds every row change below them.
//! - A failure goes to the view's policy when merged ([`ViewState::fail`]);
//!   records of a shard that stopped, dispatched before the worker learned
//!   of it, are passed over and left to the restart, as the worker does
//!   itself. A store failure on a thread is handed to the worker, which
//!   stops the view with it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::applier::Applier;
use super::failure::Failure;
use super::policy::HeldBack;
use super::state::{ViewState, lock};
use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::apply::Apply;
use crate::engine::WitEvent;
use crate::shard::ShardId;
use crate::store::{DeadLetter, Store, StoredRow, ViewStore};

/// How many results a thread keeps before merging them into the batch
/// (it also merges whenever it has nothing left to do).
const MERGE_EVERY: usize = 64;

/// Records dispatched and not yet merged, and how many commits there have
/// been: the worker waits for the first to reach zero before it commits,
/// and the threads forget what they changed when the second moves.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Records in flight.
    count: Mutex<u64>,
    idle: Condvar,
    /// Commits so far: read by the threads for every record, so not
    /// behind the lock.
    epoch: AtomicU64,
    /// Set when an applier thread died: its records will never be merged.
    broken: AtomicBool,
}

impl InFlight {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self, count: u64) {
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

    fn break_off(&self) {
        self.broken.store(true, Ordering::Release);
        let _count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        self.idle.notify_all();
    }

    /// A batch was committed: everything changed before is in the store.
    pub fn committed(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// One record for a thread to apply.
#[derive(Debug)]
pub struct Job {
    /// Where it comes from.
    pub partition: TopicPartition,
    /// Its offset.
    pub offset: i64,
    /// Its subject's shard.
    pub shard: ShardId,
    /// Its subject.
    pub subject: String,
    /// The event.
    pub event: WitEvent,
    /// The record as kept (its failure filled in if it fails), when the
    /// view's policy keeps failed records (`dead-letter`, `quarantine`).
    pub letter: Option<DeadLetter>,
    /// Its subject was held in quarantine when the job was made: the
    /// thread holds it behind the subject's earlier records.
    pub quarantined: bool,
}

/// What a thread did with a job, until it is merged.
enum Done {
    Changed {
        subject: String,
        before: Option<StoredRow>,
        after: Option<StoredRow>,
    },
    Unchanged,
    Failed(Box<(Job, Failure)>),
    /// Held in quarantine behind an earlier record of its subject.
    HeldBehind(Box<Job>),
    Passed,
    StoreFailed(crate::store::StoreError),
}

/// The applier threads of one view.
#[derive(Debug)]
pub struct Pool {
    senders: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    in_flight: Arc<InFlight>,
}

impl Pool {
    /// Start `threads` appliers (at most one per shard), forked from
    /// `applier`, merging into `state`.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn start<S: Store, A: Apply + Send + 'static>(
        name: &str,
        threads: usize,
        applier: &Applier<A>,
        state: &Arc<Mutex<ViewState<S>>>,
        status: &Arc<ViewStatus>,
    ) -> std::io::Result<Self> {
        let (shards, in_flight, view, held_back) = {
            let state = lock(state);
            (
                state.shards(),
                state.in_flight(),
                state.view().clone(),
                state.held_back(),
            )
        };
        let count = threads.clamp(1, shards.count() as usize);
        let mut senders = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let (sender, receiver) = mpsc::channel();
            let thread = Thread {
                applier: applier.fork(),
                held_back,
                view: view.clone(),
                state: Arc::clone(state),
                status: Arc::clone(status),
                in_flight: Arc::clone(&in_flight),
            };
            let handle = std::thread::Builder::new()
                .name(format!("apply-{name}-{index}"))
                .spawn(move || thread.run(&receiver))?;
            senders.push(sender);
            handles.push(handle);
        }
        Ok(Self {
            senders,
            threads: handles,
            in_flight,
        })
    }

    /// How many threads apply.
    pub fn threads(&self) -> usize {
        self.senders.len()
    }

    /// Hand `job` to its shard's thread. Returned when the thread is gone
    /// (it panicked); the caller applies the record itself then.
    pub fn dispatch(&self, job: Job) -> Result<(), Box<Job>> {
        let index = job.shard.0 as usize % self.senders.len();
        self.in_flight.add();
        match self.senders[index].send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::SendError(job)) => {
                self.in_flight.done(1);
                Err(Box::new(job))
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the channels ends each thread once it merged its work.
        self.senders.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One applier thread.
struct Thread<A, S: Store> {
    applier: Applier<A>,
    /// What a failure holds back until the worker merged it.
    held_back: HeldBack,
    view: S::View,
    state: Arc<Mutex<ViewState<S>>>,
    status: Arc<ViewStatus>,
    in_flight: Arc<InFlight>,
}

/// Tells the worker when its thread dies unwinding.
struct Unwinding(Arc<InFlight>);

impl Drop for Unwinding {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("an applier thread panicked; the view stops without committing");
            self.0.break_off();
        }
    }
}

impl<A: Apply, S: Store> Thread<A, S> {
    fn run(mut self, jobs: &Receiver<Job>) {
        let _unwinding = Unwinding(Arc::clone(&self.in_flight));
        // What this thread changed since the last commit, by subject: the
        // rows as it left them (`None`: deleted).
        let mut changed: HashMap<String, Option<StoredRow>> = HashMap::new();
        // Shards stopped on a partition since the last commit, found here
        // before the worker knows.
        let mut stopped: HashSet<(ShardId, TopicPartition)> = HashSet::new();
        // Subjects quarantined since the last commit, found here before the
        // worker knows: their later records are held behind.
        let mut quarantined: HashSet<String> = HashSet::new();
        let mut epoch = self.in_flight.epoch();
        let mut done: Vec<Done> = Vec::new();
        loop {
            let job = if done.is_empty() {
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => {
                        self.merge(&mut done);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => {
                        self.merge(&mut done);
                        return;
                    }
                }
            };
            let now = self.in_flight.epoch();
            if now != epoch {
                // Committed: the store has everything changed before.
                changed.clear();
                stopped.clear();
                quarantined.clear();
                epoch = now;
            }
            done.push(self.apply(job, &mut changed, &mut stopped, &mut quarantined));
            if done.len() >= MERGE_EVERY {
                self.merge(&mut done);
            }
        }
    }

    fn apply(
        &mut self,
        job: Job,
        changed: &mut HashMap<String, Option<StoredRow>>,
        stopped: &mut HashSet<(ShardId, TopicPartition)>,
        quarantined: &mut HashSet<String>,
    ) -> Done {
        if stopped.contains(&(job.shard, job.partition.clone())) {
            return Done::Passed;
        }
        if job.quarantined || quarantined.contains(&job.subject) {
            return Done::HeldBehind(Box::new(job));
        }
        let before = match changed.get(&job.subject) {
            Some(row) => row.clone(),
            None => match self.view.row(&job.subject) {
                Ok(row) => row,
                Err(err) => return Done::StoreFailed(err),
            },
        };
        match self
            .applier
            .apply(before.as_ref(), &job.event, &job.subject)
        {
            Ok(Some(after)) => {
                self.status.count(|c| &c.applied);
                changed.insert(job.subject.clone(), after.clone());
                Done::Changed {
                    subject: job.subject,
                    before,
                    after,
                }
            }
            Ok(None) => {
                self.status.count(|c| &c.applied);
                Done::Unchanged
            }
            Err(failure) => {
                match self.held_back {
                    // Later records of the shard on this partition wait
                    // for the restart, as the worker leaves them.
                    HeldBack::ShardOnPartition => {
                        stopped.insert((job.shard, job.partition.clone()));
                    }
                    // Later records of the subject are held behind it.
                    HeldBack::Subject => {
                        quarantined.insert(job.subject.clone());
                    }
                    HeldBack::Nothing => {}
                }
                Done::Failed(Box::new((job, failure)))
            }
        }
    }

    /// Merge `done` into the pending batch, in order, and count it off.
    fn merge(&self, done: &mut Vec<Done>) {
        let count = done.len() as u64;
        {
            let mut state = lock(&self.state);
            for outcome in done.drain(..) {
                match outcome {
                    Done::Changed {
                        subject,
                        before,
                        after,
                    } => state.change(&subject, before, after),
                    Done::Unchanged | Done::Passed => {}
                    Done::Failed(failed) => {
                        let (job, failure) = *failed;
                        let pause = state.fail(
                            &self.status,
                            &job.partition,
                            job.offset,
                            job.shard,
                            Some(&job.subject),
                            &failure,
                            || {
                                job.letter.map(|mut letter| {
                                    failure.class.clone_into(&mut letter.class);
                                    letter.message.clone_from(&failure.message);
                                    letter
                                })
                            },
                        );
                        if pause {
                            state.pause_later(job.partition);
                        }
                    }
                    Done::HeldBehind(job) => {
                        let Job {
                            subject, letter, ..
                        } = *job;
                        if let Some(mut letter) = letter {
                            super::HELD_BEHIND.clone_into(&mut letter.class);
                            super::HELD_BEHIND_MESSAGE.clone_into(&mut letter.message);
                            state.quarantine(&subject, letter, &self.status);
                        } else {
                            // Jobs travel with their record under
                            // `quarantine` (`ErrorPolicy::keeps_records`).
                            tracing::error!(subject = %subject, "a record to hold in quarantine came without its body");
                        }
                    }
                    Done::StoreFailed(err) => state.store_failed(err),
                }
            }
        }
        self.in_flight.done(count);
    }
}
