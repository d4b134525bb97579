//! The pipeline of one view: consume → decode → apply → batch → commit to
//! the store → flush → commit offsets to Kafka.
//!
//! # What it promises, and where
//!
//! - **G1, at-least-once.** Every record is applied or handed to the error
//!   policy before its offset enters a checkpoint (`Worker::handle`).
//! - **G2, no double application.** Each partition starts at the view's
//!   checkpoint on every assignment ([`context::ViewContext`]); a record
//!   below the partition's next offset is counted as a duplicate and not
//!   applied. Rows and checkpoints commit in one atomic batch.
//! - **G3 and G5, serialised per subject, in partition order.** One worker
//!   thread applies a view's records one at a time, in the order the
//!   consumer delivers them, reading each row through the pending batch, so
//!   no read-modify-write of a row overlaps another, even when one subject
//!   arrives on several partitions.
//! - **G4.** Offsets are committed to Kafka only after the batch holding
//!   their rows was committed and flushed ([`context::ViewState::commit_batch`]),
//!   by the worker and, on revocation, by the consumer callback.
//! - **G6.** A record that fails (invalid CloudEvent, no subject, any
//!   [`ApplyError`]) goes to the view's policy after transient failures were
//!   retried with backoff: `stop` halts and pauses its partition, `skip`
//!   counts it, `dead-letter` produces it (acknowledged) before moving on.
//!   A store failure stops the view, never silently.
//!
//! # Layout
//! - this file: the worker;
//! - `context`: the state the worker shares with its consumer's callbacks,
//!   where assigned partitions start, and the commit on revocation;
//! - `feed`: committed positions and row changes, for the query API;
//! - `status`: counters and per-partition state it reports.

pub mod context;
pub mod feed;
pub mod source;
pub mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projector_sdk::{Level, Update};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use crate::apply::Apply;
use crate::config::{BrokerConfig, OnError, ViewConfig};
use crate::decode::decode;
use crate::engine::{ApplyError, Instance, WitEvent};
use crate::kafka::{self, DeadLetterProducer, FailureHeaders};
use crate::store::{Store, StoreError, StoredRow, ViewStore};

use context::{Refetch, ViewContext, ViewState, lock};
use feed::ViewFeed;

pub use context::TopicPartition;
pub use source::Source;

pub use status::{CounterValues, PartitionState, PartitionStatus, ViewStatus};

/// How events are grouped into store batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Commit once a batch holds this many records. Default 1000.
    pub max_records: usize,
    /// Commit a non-empty batch this long after its first record at the
    /// latest. Default 10 ms. A batch also commits as soon as no record is
    /// waiting, so this only bounds the latency of a steady trickle.
    pub linger: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 1000,
            linger: Duration::from_millis(10),
        }
    }
}

/// Why a view stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The Kafka client could not be created or subscribed.
    #[error("view {view}: Kafka: {source}")]
    Kafka {
        /// The view.
        view: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The store failed; nothing after the last committed batch is lost,
    /// and the view resumes from there on restart.
    #[error("view {view}: {source}")]
    Store {
        /// The view.
        view: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
}

/// A record that could not be applied, and why.
#[derive(Debug)]
struct Failure {
    class: &'static str,
    message: String,
}

impl Failure {
    fn new(class: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

impl From<ApplyError> for Failure {
    fn from(err: ApplyError) -> Self {
        Self::new(err.class(), err.to_string())
    }
}

/// The Kafka consumer of one view, with its context.
pub type ViewConsumer<S> = BaseConsumer<ViewContext<S>>;

/// One view's worker. Runs on its own thread; see [`Worker::run`].
pub struct Worker<S: Store, A: Apply = Instance> {
    name: String,
    config: ViewConfig,
    projection: A,
    dead_letter: Option<DeadLetterProducer>,
    state: Arc<Mutex<ViewState<S>>>,
    status: Arc<ViewStatus>,
    limits: BatchLimits,
}

impl<S: Store, A: Apply> std::fmt::Debug for Worker<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("view", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S: Store, A: Apply> Worker<S, A> {
    /// A worker for `config`, applying `projection`, keeping rows in `store`,
    /// with the Kafka consumer it applies records from.
    pub fn new(
        broker: &BrokerConfig,
        config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
    ) -> Result<(Self, ViewConsumer<S>), PipelineError> {
        let name = config.name.clone();
        let kafka_error = |source| PipelineError::Kafka {
            view: name.clone(),
            source,
        };
        let dead_letter = match config.on_error {
            OnError::DeadLetter => Some(DeadLetterProducer::new(broker).map_err(kafka_error)?),
            OnError::Stop | OnError::Skip => None,
        };
        let topics = config.topics.clone();
        let group = config.group();
        let worker = Self::open(config, projection, store, status, limits, dead_letter)?;
        let consumer: ViewConsumer<S> = kafka::consumer_config(broker, &group)
            .create_with_context(ViewContext::new(
                Arc::clone(&worker.state),
                Arc::clone(&worker.status),
            ))
            .map_err(kafka_error)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(kafka_error)?;
        Ok((worker, consumer))
    }

    /// A worker for `config` without a consumer: records come from the
    /// caller, through [`Worker::assign`], [`Worker::handle`],
    /// [`Worker::commit_if_due`] and [`Worker::revoke`], as the consumer's
    /// callbacks and [`Worker::run`] call them. Failed records go to
    /// `dead_letter` when the policy says so.
    pub fn open(
        config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
        dead_letter: Option<DeadLetterProducer>,
    ) -> Result<Self, PipelineError> {
        let name = config.name.clone();
        let store_error = |source| PipelineError::Store {
            view: name.clone(),
            source,
        };
        let view = store
            .open_view(&name, projection.module_hash(), &config.indexes)
            .map_err(store_error)?;
        let positions = view
            .checkpoints()
            .map_err(store_error)?
            .into_iter()
            .map(|(topic, partition, next)| {
                // Report what is durable from the start, not only after
                // this run's first commit: readiness and lag depend on it.
                status.committed(&topic, partition, next);
                ((topic, partition), next)
            })
            .collect();
        let feed = Arc::new(ViewFeed::new(positions, ViewFeed::DEFAULT_CAPACITY));
        let state = Arc::new(Mutex::new(ViewState::new(store, view, feed)));
        Ok(Self {
            name,
            config,
            projection,
            dead_letter,
            state,
            status,
            limits,
        })
    }

    /// Partitions `partitions` are assigned to this worker (in addition to
    /// the others when `incremental`). Returns where each starts: the next
    /// offset the view knows, else the earliest. The store's checkpoints of
    /// the partitions go to `source` as offsets to commit.
    pub fn assign(
        &self,
        source: &impl Source,
        partitions: &[TopicPartition],
        incremental: bool,
    ) -> Vec<rdkafka::Offset> {
        let mut state = lock(&self.state);
        let (starts, durable) = state.start_offsets(partitions);
        state.assigned(partitions, incremental, &self.status);
        drop(state);
        give_offsets(source, &durable);
        starts
    }

    /// Partitions `partitions` are taken away: the pending batch is
    /// committed and flushed and its offsets given to `source` first.
    ///
    /// # Errors
    /// When the store fails.
    pub fn revoke(
        &self,
        source: &impl Source,
        partitions: &[TopicPartition],
    ) -> Result<(), PipelineError> {
        let offsets = lock(&self.state)
            .release(partitions, &self.status)
            .map_err(|source| self.store_error(source))?;
        give_offsets(source, &offsets);
        Ok(())
    }

    /// The view's rows, for readers.
    pub fn rows(&self) -> S::View {
        lock(&self.state).view.clone()
    }

    /// The view's feed of positions and changes, for readers.
    pub fn feed(&self) -> Arc<ViewFeed> {
        Arc::clone(&lock(&self.state).feed)
    }

    /// Consume and apply until `shutdown` is set, then commit what is
    /// pending and return. A store failure stops the view with an error.
    pub fn run(
        mut self,
        consumer: &ViewConsumer<S>,
        shutdown: &AtomicBool,
    ) -> Result<(), PipelineError> {
        let span = tracing::info_span!("view", view = %self.name);
        let _entered = span.enter();
        tracing::info!(topics = ?self.config.topics, group = %self.config.group(), "view started");
        let result = self.consume(consumer, shutdown);
        let result = result.and_then(|()| self.commit(consumer));
        if let Err(err) = &result {
            tracing::error!(error = %err, "view stopped");
            self.status.fatal(err.to_string());
        } else {
            tracing::info!("view stopped cleanly");
        }
        result
    }

    fn consume(
        &mut self,
        consumer: &ViewConsumer<S>,
        shutdown: &AtomicBool,
    ) -> Result<(), PipelineError> {
        while !shutdown.load(Ordering::Relaxed) {
            // With a batch pending, look for a waiting record without
            // blocking: none waiting means the view has caught up with what
            // was fetched, and the batch commits at once instead of
            // lingering (low latency at low load; under load records keep
            // waiting and batches fill up).
            let pending = lock(&self.state).batch_started.is_some();
            let timeout = if pending {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            match consumer.poll(timeout) {
                None if pending => self.commit(consumer)?,
                None => {}
                Some(Err(err)) => tracing::warn!(error = %err, "consumer error"),
                Some(Ok(message)) => self.handle(consumer, &message)?,
            }
            self.commit_if_due(consumer)?;
        }
        Ok(())
    }

    /// Commit the pending batch if it is full or has lingered long enough.
    ///
    /// # Errors
    /// When the store fails.
    pub fn commit_if_due(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        let due = {
            let state = lock(&self.state);
            state.batch_records >= self.limits.max_records
                || state
                    .batch_started
                    .is_some_and(|started| started.elapsed() >= self.limits.linger)
        };
        if due {
            self.commit(source)?;
        }
        Ok(())
    }

    fn store_error(&self, source: StoreError) -> PipelineError {
        PipelineError::Store {
            view: self.name.clone(),
            source,
        }
    }

    /// The next offset to apply on `partition`: what this worker applied,
    /// else the store's checkpoint.
    fn next_offset(&self, partition: &TopicPartition) -> Result<Option<i64>, PipelineError> {
        let state = lock(&self.state);
        match state.next.get(partition) {
            Some(next) => Ok(Some(*next)),
            None => state
                .view
                .checkpoint(&partition.0, partition.1)
                .map_err(|source| self.store_error(source)),
        }
    }

    /// Apply one record, or hand it to the error policy. A redelivered
    /// record is recognised and not applied again; a record past the
    /// partition's next offset makes `source` deliver from that offset
    /// again.
    ///
    /// # Errors
    /// When the store fails; the view must stop.
    pub fn handle(
        &mut self,
        source: &impl Source,
        message: &impl Message,
    ) -> Result<(), PipelineError> {
        let partition: TopicPartition = (message.topic().to_owned(), message.partition());
        let offset = message.offset();
        // A debug span: free unless PROJECTOR_LOG enables debug.
        let span =
            tracing::debug_span!("record", topic = %partition.0, partition = partition.1, offset);
        let _entered = span.enter();
        if lock(&self.state).stopped.contains(&partition) {
            // Fetched before the pause took effect; applied after a restart.
            return Ok(());
        }
        let next = self.next_offset(&partition)?;
        if let Some(next) = next
            && offset < next
        {
            self.status.count(|c| &c.duplicates);
            tracing::debug!(topic = %partition.0, partition = partition.1, offset, next, "redelivery not applied again");
            // Something repositioned the partition after a refetch's seek:
            // the next skip cannot confirm a gap.
            if let Some(refetch) = lock(&self.state).refetching.get_mut(&partition) {
                refetch.received = None;
            }
            return Ok(());
        }
        // Where this record should have been: the next offset, or for a
        // partition the view never applied from, its earliest offset.
        let due = match next {
            Some(next) => Some(next),
            None => match source.low_watermark(&partition.0, partition.1) {
                Ok(low) => Some(low),
                Err(err) => {
                    tracing::warn!(topic = %partition.0, partition = partition.1, error = %err, "cannot read the partition's earliest offset; starting at the first record delivered");
                    None
                }
            },
        };
        if let Some(due) = due
            && offset > due
            && self.refetch(source, &partition, due, offset)
        {
            return Ok(());
        }
        match self.apply(message)? {
            Ok(()) => {
                self.status.count(|c| &c.applied);
                self.advance(&partition, offset + 1);
            }
            Err(failure) => self.fail(source, message, &partition, &failure),
        }
        Ok(())
    }

    /// The broker delivered `offset` where `next` was due. Kafka leaves
    /// gaps in compacted topics and at transaction markers, but a broker
    /// may also skip records it has (tansu 0.6 does when a fetch starts
    /// inside a record batch), and taking the gap would lose them (G1). So
    /// the partition is fetched again from `next`: if the broker then
    /// delivers the same offset again, first thing after the seek, the gap
    /// is its answer and is taken (counted, logged); anything else (a stale
    /// record from before the seek, or older records first because the
    /// partition was repositioned) is dropped and the seek repeated, at most
    /// `MAX_ATTEMPTS` times.
    /// Returns true when `offset` must not be applied now.
    fn refetch(
        &mut self,
        source: &impl Source,
        partition: &TopicPartition,
        next: i64,
        offset: i64,
    ) -> bool {
        const MAX_ATTEMPTS: u32 = 5;
        let mut state = lock(&self.state);
        let refetch = match state.refetching.get(partition) {
            Some(refetch) if refetch.next == next && refetch.received == Some(offset) => {
                state.refetching.remove(partition);
                drop(state);
                self.status.count(|c| &c.gaps);
                tracing::info!(topic = %partition.0, partition = partition.1, from = next, to = offset, "the broker has no records between these offsets (confirmed by a refetch); going on");
                return false;
            }
            Some(refetch) if refetch.next == next && refetch.attempts >= MAX_ATTEMPTS => {
                state.refetching.remove(partition);
                drop(state);
                self.status.count(|c| &c.gaps);
                tracing::error!(topic = %partition.0, partition = partition.1, from = next, to = offset, attempts = MAX_ATTEMPTS, "the broker keeps delivering past the next offset; taking the gap");
                return false;
            }
            Some(refetch) if refetch.next == next => Refetch {
                next,
                received: Some(offset),
                attempts: refetch.attempts + 1,
            },
            _ => Refetch {
                next,
                received: Some(offset),
                attempts: 1,
            },
        };
        state.refetching.insert(partition.clone(), refetch);
        drop(state);
        self.status.count(|c| &c.refetches);
        tracing::warn!(topic = %partition.0, partition = partition.1, expected = next, received = offset, attempt = refetch.attempts, "the broker skipped offsets; fetching again from the expected one");
        if let Err(err) = source.seek(&partition.0, partition.1, next) {
            tracing::error!(error = %err, "cannot seek back to the skipped offset");
        }
        true
    }

    /// Decode and apply `message`. The outer error stops the view (the
    /// store failed); the inner one is the record's own failure.
    fn apply(&mut self, message: &impl Message) -> Result<Result<(), Failure>, PipelineError> {
        let event = match decode(&kafka::record(message), kafka::headers(message)) {
            Ok(event) => event,
            Err(err) => return Ok(Err(Failure::new("invalid-event", err.to_string()))),
        };
        let Some(subject) = self.subject_of(&event) else {
            let reason = if self.config.subject_from_key {
                "the event has no subject and the record no UTF-8 key"
            } else {
                "the event has no subject (subject_from_key is off)"
            };
            return Ok(Err(Failure::new("no-subject", reason)));
        };
        let before = {
            let state = lock(&self.state);
            match state.batch.pending(&subject) {
                Some(pending) => pending.cloned(),
                None => state
                    .view
                    .row(&subject)
                    .map_err(|source| self.store_error(source))?,
            }
        };
        let update =
            match self.apply_with_retries(before.as_ref().map(|row| &row.json), &event, &subject) {
                Ok(update) => update,
                Err(err) => return Ok(Err(err.into())),
            };
        match update {
            Update::Set(json) => {
                let after = StoredRow {
                    json,
                    version: before.as_ref().map_or(1, |row| row.version + 1),
                    last_event_id: event.id,
                };
                lock(&self.state).change(&subject, before, Some(after));
            }
            Update::Delete => {
                if before.is_some() {
                    lock(&self.state).change(&subject, before, None);
                }
            }
            Update::Ignore => {}
        }
        Ok(Ok(()))
    }

    fn subject_of(&self, event: &WitEvent) -> Option<String> {
        match (&event.subject, &event.origin.key) {
            (Some(subject), _) => Some(subject.clone()),
            (None, Some(key)) if self.config.subject_from_key => {
                String::from_utf8(key.clone()).ok()
            }
            _ => None,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1_u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(
            self.config
                .initial_backoff_ms
                .saturating_mul(factor)
                .min(self.config.max_backoff_ms),
        )
    }

    fn apply_with_retries(
        &mut self,
        state: Option<&String>,
        event: &WitEvent,
        subject: &str,
    ) -> Result<Update<String>, ApplyError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.projection.apply(state, event);
            self.status
                .histograms
                .apply_seconds
                .observe(started.elapsed().as_secs_f64());
            for record in self.projection.take_logs() {
                log_guest(&record, subject, event);
            }
            match result {
                Err(err) if err.is_transient() && attempt < self.config.max_attempts => {
                    let wait = self.backoff(attempt);
                    tracing::warn!(subject, event = %event.id, attempt, error = %err, ?wait, "transient failure; retrying");
                    self.status.count(|c| &c.retries);
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn advance(&mut self, partition: &TopicPartition, next: i64) {
        let mut state = lock(&self.state);
        if !state.refetching.is_empty() {
            // The partition moved on: a refetch of it, if any, is over.
            state.refetching.remove(partition);
        }
        state.batch.checkpoint(&partition.0, partition.1, next);
        state.next.insert(partition.clone(), next);
        state.batch_records += 1;
        state.batch_started.get_or_insert_with(Instant::now);
    }

    fn fail(
        &mut self,
        source: &impl Source,
        message: &impl Message,
        partition: &TopicPartition,
        failure: &Failure,
    ) {
        let offset = message.offset();
        let described = format!("offset {offset}: {}: {}", failure.class, failure.message);
        match self.config.on_error {
            OnError::Skip => {
                tracing::warn!(topic = %partition.0, partition = partition.1, offset, class = failure.class, error = %failure.message, "record skipped");
                self.status.count(|c| &c.skipped);
                self.status
                    .failed(&partition.0, partition.1, described, false);
                self.advance(partition, offset + 1);
            }
            OnError::DeadLetter => match self.dead_letter(message, failure) {
                Ok(()) => {
                    tracing::warn!(topic = %partition.0, partition = partition.1, offset, class = failure.class, error = %failure.message, "record dead-lettered");
                    self.status.count(|c| &c.dead_lettered);
                    self.status
                        .failed(&partition.0, partition.1, described, false);
                    self.advance(partition, offset + 1);
                }
                Err(err) => {
                    let failure = Failure::new(
                        "dead-letter-failed",
                        format!("{err} (record failed with {described})"),
                    );
                    self.stop(source, partition, offset, &failure);
                }
            },
            OnError::Stop => self.stop(source, partition, offset, failure),
        }
    }

    fn dead_letter(
        &self,
        message: &impl Message,
        failure: &Failure,
    ) -> Result<(), kafka::DeadLetterError> {
        let (Some(producer), Some(topic)) = (&self.dead_letter, &self.config.dead_letter_topic)
        else {
            // Config validation guarantees both with on_error = dead-letter.
            return Ok(());
        };
        let headers = FailureHeaders {
            class: failure.class,
            message: &failure.message,
            view: &self.name,
        };
        let mut attempt = 1;
        loop {
            match producer.send(topic, message, &headers) {
                Err(err) if attempt < self.config.max_attempts => {
                    tracing::warn!(error = %err, attempt, "dead-letter produce failed; retrying");
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn stop(
        &mut self,
        source: &impl Source,
        partition: &TopicPartition,
        offset: i64,
        failure: &Failure,
    ) {
        tracing::error!(
            topic = %partition.0, partition = partition.1, offset, class = failure.class, error = %failure.message,
            "partition stopped; it resumes at this record after a restart"
        );
        self.status.count(|c| &c.stopped);
        self.status.failed(
            &partition.0,
            partition.1,
            format!("offset {offset}: {}: {}", failure.class, failure.message),
            true,
        );
        lock(&self.state).stopped.insert(partition.clone());
        if let Err(err) = source.pause(&partition.0, partition.1) {
            tracing::error!(error = %err, "cannot pause the stopped partition; its records are ignored");
        }
    }

    /// Commit the pending batch to the store, flush it, then give its
    /// offsets to `source`.
    ///
    /// # Errors
    /// When the store fails.
    pub fn commit(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        let offsets: TopicPartitionList = lock(&self.state)
            .commit_batch(&self.status)
            .map_err(|source| self.store_error(source))?;
        give_offsets(source, &offsets);
        Ok(())
    }
}

/// Give `offsets`, durable in the store already, to `source`.
fn give_offsets(source: &impl Source, offsets: &TopicPartitionList) {
    if offsets.count() > 0
        && let Err(err) = source.commit_offsets(offsets)
    {
        // The store holds the checkpoint; a missed Kafka commit only means
        // redeliveries, which are recognised.
        tracing::debug!(error = %err, "offset commit failed");
    }
}

fn log_guest(record: &projector_sdk::LogRecord, subject: &str, event: &WitEvent) {
    let (id, offset) = (&event.id, event.origin.offset);
    let message = &record.message;
    match record.level {
        Level::Trace => {
            tracing::trace!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Debug => {
            tracing::debug!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Info => {
            tracing::info!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Warn => {
            tracing::warn!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Error => {
            tracing::error!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
    }
}
