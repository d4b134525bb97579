//! The one path of a routed record: applied to its subject's row, or held
//! back, and what it did merged into the pending batch. The worker runs it
//! itself (one applier, or a release) and each applier thread runs it for
//! its shards ([`super::pool`]): the same code, so what happens to a record
//! does not depend on how many threads apply.
//!
//! # What it promises
//!
//! - **G3, G5.** A [`RecordApplier`] applies one record at a time, in the
//!   order it is given them, reading a row from what it changed since the
//!   last commit, else from the store; its subjects are applied by no one
//!   else.
//! - **G1, G6.** A record that fails goes to the view's policy when it is
//!   merged ([`merge`], through `ViewState::fail`); until then the applier
//!   holds back what the policy says ([`HeldBack`]): later records of the
//!   subject (`quarantine`, held behind it) or of the shard on its
//!   partition (`stop`, left to the restart).
//! - **Deduplication.** With `dedup` on, a copy of an event the subject
//!   applied within the window is not applied ([`Done::Duplicate`]), and
//!   an event applied is remembered in the batch of its row
//!   ([`super::dedup`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::applier::Applier;
use super::dedup::{Check, Dedup, StreamMarks};
use super::failure::Failure;
use super::in_flight::InFlight;
use super::policy::HeldBack;
use super::state::ViewState;
use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::apply::Apply;
use crate::event::Event;
use crate::shard::ShardId;
use crate::store::{DeadLetter, Identity, Store, StoreError, StoredRow, ViewStore};

/// The class of a record held behind an earlier failed one of its subject.
pub const HELD_BEHIND: &str = "held-behind";
/// What a record held behind says.
pub(crate) const HELD_BEHIND_MESSAGE: &str =
    "held behind an earlier record of its subject that failed";

/// One routed record to apply.
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
    pub event: Event,
    /// The record as kept (its failure filled in if it fails), when the
    /// view's policy keeps failed records and the job goes to another
    /// thread; the worker's own jobs keep their message instead, and give
    /// it to [`merge`].
    pub letter: Option<DeadLetter>,
    /// Its subject was held in quarantine when the job was made: it is held
    /// behind the subject's earlier records.
    pub quarantined: bool,
}

/// An applied event's identity to remember, and the time it counts from.
pub type Remember = Option<(Identity, i64, ShardId)>;

/// What a [`RecordApplier`] did with a job, until it is merged.
#[derive(Debug)]
pub enum Done {
    /// The row changed (`after: None`: deleted).
    Changed {
        /// The subject.
        subject: String,
        /// The row before.
        before: Option<StoredRow>,
        /// The row after.
        after: Option<StoredRow>,
        /// Its identity, with `dedup` on.
        remember: Remember,
    },
    /// Applied; the row did not change.
    Unchanged {
        /// Its identity, with `dedup` on.
        remember: Remember,
    },
    /// A copy of an event its subject applied within the `dedup` window:
    /// not applied, passed as if it were.
    Duplicate,
    /// It failed: for the policy.
    Failed(Box<(Job, Failure)>),
    /// Held in quarantine behind an earlier record of its subject.
    HeldBehind(Box<Job>),
    /// Its shard stopped on its partition earlier in this batch: left to
    /// the restart.
    Passed,
    /// The store could not be read: the view stops.
    StoreFailed(StoreError),
}

/// Applies routed records with one instance of the projection, holding
/// back what a failure holds back until the next commit.
#[derive(Debug)]
pub struct RecordApplier<A, V> {
    applier: Applier<A>,
    view: V,
    held_back: HeldBack,
    status: Arc<ViewStatus>,
    in_flight: Arc<InFlight>,
    dedup: Option<Dedup>,
    /// The stream times it last gave the view's deduplication.
    stream_marks: StreamMarks,
    /// The batch its records go to: how many batches had left the pending
    /// slot when it last looked.
    begun: u64,
    /// How many batches were in the store when it last looked.
    finished: u64,
    /// What it changed that the store may not hold yet, by subject: the
    /// rows as it left them (`None`: deleted), each with the batch it went
    /// to. A batch sent to the changelog is not in the store until the
    /// next commit, so the rows it changed are kept until then.
    changed: HashMap<String, (u64, Option<StoredRow>)>,
    /// Shards stopped on a partition since the last commit.
    stopped: HashSet<(ShardId, TopicPartition)>,
    /// Subjects quarantined since the last commit.
    quarantined: HashSet<String>,
}

impl<A: Apply, V: ViewStore> RecordApplier<A, V> {
    /// A record applier of `applier` over `view`'s rows, holding back what
    /// `held_back` says after a failure, forgetting what it changed at each
    /// commit `in_flight` counts.
    pub fn new(
        applier: Applier<A>,
        view: V,
        held_back: HeldBack,
        status: Arc<ViewStatus>,
        in_flight: Arc<InFlight>,
        dedup: Option<Dedup>,
    ) -> Self {
        let (begun, finished) = (in_flight.begun(), in_flight.epoch());
        Self {
            applier,
            view,
            held_back,
            status,
            in_flight,
            dedup,
            stream_marks: StreamMarks::default(),
            begun,
            finished,
            changed: HashMap::new(),
            stopped: HashSet::new(),
            quarantined: HashSet::new(),
        }
    }

    /// Another record applier of the same view, with its own instance of
    /// the projection.
    pub fn fork(&self) -> Self
    where
        V: Clone,
    {
        Self::new(
            self.applier.fork(),
            self.view.clone(),
            self.held_back,
            Arc::clone(&self.status),
            Arc::clone(&self.in_flight),
            self.dedup.clone(),
        )
    }

    /// The view's deduplication, when it is on.
    pub fn dedup(&self) -> Option<&Dedup> {
        self.dedup.as_ref()
    }

    /// What built the rows.
    pub fn module_hash(&self) -> &str {
        self.applier.module_hash()
    }

    /// Apply `job`, or hold it back.
    pub fn apply(&mut self, job: Job) -> Done {
        let begun = self.in_flight.begun();
        if begun != self.begun {
            // A commit took the batch: the state knows what it stopped
            // and quarantined.
            self.stopped.clear();
            self.quarantined.clear();
            self.begun = begun;
        }
        let finished = self.in_flight.epoch();
        if finished != self.finished {
            // The store has every batch before `finished`.
            self.changed.retain(|_, (batch, _)| *batch >= finished);
            self.finished = finished;
        }
        if self.stopped.contains(&(job.shard, job.partition.clone())) {
            return Done::Passed;
        }
        if job.quarantined || self.quarantined.contains(&job.subject) {
            return Done::HeldBehind(Box::new(job));
        }
        let remember = match &self.dedup {
            None => None,
            Some(dedup) => match dedup.check(
                &job.event,
                &job.subject,
                &job.partition,
                &mut self.stream_marks,
            ) {
                Check::Duplicate => {
                    self.status.count(|c| &c.duplicates_by_id);
                    return Done::Duplicate;
                }
                Check::Apply { identity, time } => Some((identity, time, job.shard)),
            },
        };
        let before = match self.changed.get(&job.subject) {
            Some((_, row)) => row.clone(),
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
                self.changed
                    .insert(job.subject.clone(), (self.begun, after.clone()));
                self.remember(remember.as_ref());
                Done::Changed {
                    subject: job.subject,
                    before,
                    after,
                    remember,
                }
            }
            Ok(None) => {
                self.status.count(|c| &c.applied);
                self.remember(remember.as_ref());
                Done::Unchanged { remember }
            }
            Err(failure) => {
                match self.held_back {
                    // Later records of the shard on this partition wait
                    // for the restart, as the worker leaves them.
                    HeldBack::ShardOnPartition => {
                        self.stopped.insert((job.shard, job.partition.clone()));
                    }
                    // Later records of the subject are held behind it.
                    HeldBack::Subject => {
                        self.quarantined.insert(job.subject.clone());
                    }
                    HeldBack::Nothing => {}
                }
                Done::Failed(Box::new((job, failure)))
            }
        }
    }
}

impl<A, V> RecordApplier<A, V> {
    fn remember(&self, remember: Option<&(Identity, i64, ShardId)>) {
        if let (Some(dedup), Some((identity, time, _))) = (&self.dedup, remember) {
            dedup.remember(*identity, *time);
        }
    }
}

/// Merge `done` into `state`'s pending batch. A job that travelled without
/// its record gets it from `letter` if the policy keeps it (as a dead
/// letter, or held in quarantine). Returns the partition to pause, when
/// the failure stopped every shard of it.
pub fn merge<S: Store>(
    state: &mut ViewState<S>,
    status: &ViewStatus,
    done: Done,
    letter: impl FnOnce() -> Option<DeadLetter>,
) -> Option<TopicPartition> {
    match done {
        Done::Changed {
            subject,
            before,
            after,
            remember,
        } => {
            state.change(&subject, before, after);
            state.remember(remember);
        }
        Done::Unchanged { remember } => state.remember(remember),
        Done::Duplicate | Done::Passed => {}
        Done::Failed(failed) => {
            let (job, failure) = *failed;
            let pause = state.fail(
                status,
                &job.partition,
                job.offset,
                job.shard,
                Some(&job.subject),
                &failure,
                || {
                    job.letter.or_else(letter).map(|mut letter| {
                        failure.class.as_ref().clone_into(&mut letter.class);
                        letter.message.clone_from(&failure.message);
                        letter
                    })
                },
            );
            if pause {
                return Some(job.partition);
            }
        }
        Done::HeldBehind(job) => {
            let Job {
                subject,
                letter: kept,
                shard: job_shard,
                ..
            } = *job;
            match kept.or_else(letter) {
                Some(mut record) => {
                    record.shard = Some(job_shard);
                    HELD_BEHIND.clone_into(&mut record.class);
                    HELD_BEHIND_MESSAGE.clone_into(&mut record.message);
                    state.quarantine(&subject, record, status);
                }
                None => {
                    // Records travel with their job, or come from the
                    // worker's message, under `quarantine`.
                    tracing::error!(subject = %subject, "a record to hold in quarantine came without its body");
                }
            }
        }
        Done::StoreFailed(err) => state.store_failed(err),
    }
    None
}
