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
//! - Each thread runs the view's one record path ([`RecordApplier`], the
//!   same the worker runs when it applies itself) and merges what it did
//!   in batches of up to [`MERGE_EVERY`]: a failure goes to the view's
//!   policy when merged; records of a shard that stopped, dispatched
//!   before the worker learned of it, are passed over and left to the
//!   restart. A store failure on a thread is handed to the worker, which
//!   stops the view with it.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::in_flight::InFlight;
use super::record::{self, Done, Job, RecordApplier};
use super::state::{ViewState, lock};
use super::status::ViewStatus;
use crate::apply::Apply;
use crate::store::Store;

/// How many results a thread keeps before merging them into the batch
/// (it also merges whenever it has nothing left to do).
const MERGE_EVERY: usize = 64;

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
        applier: &RecordApplier<A, S::View>,
        state: &Arc<Mutex<ViewState<S>>>,
        status: &Arc<ViewStatus>,
    ) -> std::io::Result<Self> {
        let (shards, in_flight) = {
            let state = lock(state);
            (state.shards(), state.in_flight())
        };
        let count = threads.clamp(1, shards.count() as usize);
        let mut senders = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let (sender, receiver) = mpsc::channel();
            let thread = Thread {
                applier: applier.fork(),
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

/// One applier thread: the view's record path ([`RecordApplier`]) on its
/// shards, merging what it did in batches.
struct Thread<A, S: Store> {
    applier: RecordApplier<A, S::View>,
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
            done.push(self.applier.apply(job));
            if done.len() >= MERGE_EVERY {
                self.merge(&mut done);
            }
        }
    }

    /// Merge `done` into the pending batch, in order, and count it off.
    fn merge(&self, done: &mut Vec<Done>) {
        let count = done.len() as u64;
        {
            let mut state = lock(&self.state);
            for outcome in done.drain(..) {
                // A thread's jobs travel with their records.
                if let Some(partition) = record::merge(&mut state, &self.status, outcome, || None) {
                    state.pause_later(partition);
                }
            }
        }
        self.in_flight.done(count);
    }
}
