//! What a view does with a record it cannot apply: its error policy, one
//! value that owns what the policy needs, so that a policy without its
//! means (a dead-letter policy without a producer) cannot be written.
//!
//! # Dead letters: what they promise
//!
//! - **Never lost (G1).** A failed record is *held* in the view's store, in
//!   the same atomic batch as the checkpoint that moves past it, and
//!   produced to the dead-letter topic only once that batch is durable,
//!   read back from the store (memory keeps only its origin and retries).
//!   It stays held until the topic acknowledged it. The offset committed to
//!   Kafka for its partition never passes a held record, so another
//!   runtime taking the partition over starts at or before it.
//! - **Many in flight.** Producing does not wait: the view goes on applying
//!   while dead letters are in flight, and their acknowledgements release
//!   them in a later batch. A refused or failed dead letter is retried with
//!   the view's backoff; after `max_attempts` its partition stops
//!   (reported), while it stays held and is retried at the longest backoff.
//! - **Written once, also across crashes.** Each dead letter carries its
//!   origin (view, topic, partition, offset) in its headers. The store
//!   keeps, per partition of the dead-letter topic, the offset below which
//!   every record of the view there is released. On start, when records
//!   are held, the topic is read from those offsets: a held record found
//!   there was acknowledged before a crash and is released without being
//!   produced again. A held record not found there may still be in flight
//!   from the killed run (a broker can append a request it read after its
//!   sender died, and make it visible later): it *settles* first. The topic
//!   is followed from where it ended at start; a held record that lands is
//!   released, and only those still missing once the producer's
//!   `message.timeout.ms` has passed since the start are produced again.
//!   Meanwhile the view applies on; only the offsets committed to Kafka
//!   wait for them, and the topic positions stay where they were at start,
//!   so that a crash meanwhile reads the topic from there again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};

use super::topic_partition::TopicPartition;
use crate::config::{BrokerConfig, OnError, ViewConfig};
use crate::kafka::{DeadLetterError, DeadLetterProducer, DeadLetterTail};
use crate::store::{DeadLetter, Origin, StoreError, ViewBatch, ViewStore};

/// How long a revocation or a shutdown waits for dead letters in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A view's error policy.
#[derive(Debug)]
pub enum ErrorPolicy {
    /// Halt the failing record's partition and report it.
    Stop,
    /// Count and log the record, and go on.
    Skip,
    /// Hold the record, produce it to the dead-letter topic, and go on.
    DeadLetter(Box<DeadLetters>),
    /// Hold the record's subject: it and every later record of the subject
    /// wait in the store until released.
    Quarantine(Quarantine),
}

/// Why the error policy could not start.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The dead-letter topic cannot be used.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorPolicy {
    /// The policy `config` names, with its producer connected to `broker`
    /// for `on_error = "dead-letter"`.
    ///
    /// # Errors
    /// When the dead-letter topic does not exist or cannot be described.
    pub fn connect(config: &ViewConfig, broker: &BrokerConfig) -> Result<Self, DeadLetterError> {
        Ok(match (config.on_error, &config.dead_letter_topic) {
            (OnError::Stop, _) => Self::Stop,
            (OnError::Skip, _) => Self::Skip,
            (OnError::Quarantine, None) => Self::Quarantine(Quarantine::default()),
            (OnError::Quarantine, Some(topic)) => Self::Quarantine(Quarantine {
                discards: Some(Box::new(DeadLetters::new(
                    DeadLetterProducer::connect(broker, topic, &config.name)?,
                    config,
                ))),
                ..Quarantine::default()
            }),
            (OnError::DeadLetter, topic) => {
                // Config validation guarantees the topic; an empty name is
                // refused by the broker check with the same error.
                let topic = topic.as_deref().unwrap_or_default();
                Self::DeadLetter(Box::new(DeadLetters::new(
                    DeadLetterProducer::connect(broker, topic, &config.name)?,
                    config,
                )))
            }
        })
    }

    /// True when a failed record is kept (held for the dead-letter topic,
    /// or in quarantine): its body must travel with it to whoever applies
    /// it.
    pub fn keeps_records(&self) -> bool {
        matches!(self, Self::DeadLetter(_) | Self::Quarantine(_))
    }

    /// What an applier holds back after a record fails, until the worker
    /// has merged the failure: the later records of its subject
    /// (`quarantine`), of its shard on its partition (`stop`), or nothing.
    pub fn held_back(&self) -> HeldBack {
        match self {
            Self::Stop => HeldBack::ShardOnPartition,
            Self::Quarantine(_) => HeldBack::Subject,
            Self::Skip | Self::DeadLetter(_) => HeldBack::Nothing,
        }
    }

    /// Take a record of `subject` (`None`: it has none) that failed:
    /// `letter` is the record as kept, given when [`Self::keeps_records`].
    /// `skip` passes it; `dead-letter` holds it in `batch` for its topic;
    /// `quarantine` holds it in `batch` under its subject (records with
    /// none together, under the empty subject), which is held from now on;
    /// `stop`, and a holding policy given no record to hold, say that its
    /// shard stops on its partition: never lose a record.
    pub fn take(
        &mut self,
        batch: &mut ViewBatch,
        subject: Option<&str>,
        letter: Option<DeadLetter>,
    ) -> Fate {
        match (self, letter) {
            (Self::Skip, _) => Fate::Skipped,
            (Self::DeadLetter(letters), Some(letter)) => {
                letters.hold(batch, letter);
                Fate::DeadLettered
            }
            (Self::Quarantine(quarantine), Some(letter)) => {
                quarantine.hold(batch, subject.unwrap_or_default(), letter);
                Fate::Quarantined
            }
            (Self::Stop | Self::DeadLetter(_) | Self::Quarantine(_), _) => Fate::Stop,
        }
    }

    /// The dead letters, when the policy has them: `dead-letter`'s, and
    /// those a quarantine with a `dead_letter_topic` discards to.
    pub fn dead_letters(&mut self) -> Option<&mut DeadLetters> {
        match self {
            Self::DeadLetter(letters) => Some(letters),
            Self::Quarantine(quarantine) => quarantine.discards.as_deref_mut(),
            Self::Stop | Self::Skip => None,
        }
    }

    /// The quarantine, when the policy is `quarantine`.
    pub fn quarantine(&mut self) -> Option<&mut Quarantine> {
        match self {
            Self::Quarantine(quarantine) => Some(quarantine),
            Self::Stop | Self::Skip | Self::DeadLetter(_) => None,
        }
    }

    /// True when `subject` is held in quarantine: its records wait.
    pub fn holds(&self, subject: &str) -> bool {
        match self {
            Self::Quarantine(quarantine) => quarantine.holds(subject),
            Self::Stop | Self::Skip | Self::DeadLetter(_) => false,
        }
    }

    /// The lowest offset of `partition` the policy holds (for the
    /// dead-letter topic, in quarantine): the offset committed to Kafka
    /// must not pass it.
    pub fn held_from(&self, partition: &TopicPartition) -> Option<i64> {
        match self {
            Self::DeadLetter(letters) => letters.held_from(partition),
            Self::Quarantine(quarantine) => {
                let discarded = quarantine
                    .discards
                    .as_ref()
                    .and_then(|letters| letters.held_from(partition));
                quarantine
                    .held_from(partition)
                    .into_iter()
                    .chain(discarded)
                    .min()
            }
            Self::Stop | Self::Skip => None,
        }
    }
}

/// What a failed record became ([`ErrorPolicy::take`]), for the caller to
/// report and act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Counted and passed (`skip`).
    Skipped,
    /// Held in the pending batch for the dead-letter topic.
    DeadLettered,
    /// Held in the pending batch under its subject, which is held now.
    Quarantined,
    /// Not taken: its shard stops on its partition, and it is applied
    /// again after a restart.
    Stop,
}

/// What an applier holds back after a record fails, until the worker has
/// merged the failure ([`ErrorPolicy::held_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBack {
    /// Nothing: later records are applied.
    Nothing,
    /// The later records of the failed record's subject.
    Subject,
    /// The later records of its shard on its partition.
    ShardOnPartition,
}

/// The subjects a view holds in quarantine (`on_error = "quarantine"`).
///
/// A subject enters it with the record that failed; every later record of
/// the subject is held behind it, in the order the view took them, in the
/// same batch as the checkpoint that passes it: the partition and every
/// other subject go on, and nothing held is lost. Releasing a subject
/// applies its records in order with the current module, each one removed
/// in the batch that holds its row change, so none is applied twice; one
/// that fails again stays, with those behind it.
///
/// The offset committed to Kafka for a partition never passes a record of
/// it held here, as for dead letters: a runtime that takes the partition
/// over reads it again, so a held record lives on when this runtime's
/// store does not.
///
/// Discarding a subject takes its held records out: to the view's
/// `dead_letter_topic` when it has one (moved from the quarantine to the
/// dead letters in one batch, then written once as any dead letter), else
/// dropped, counted and logged by origin.
#[derive(Debug, Default)]
pub struct Quarantine {
    /// Where discarded records go, when the view names a dead-letter topic.
    discards: Option<Box<DeadLetters>>,
    /// The subjects held: their later records are held behind. A subject
    /// being released is not, though its records are still in `origins`.
    held: BTreeSet<String>,
    /// The origins held, per subject, by sequence.
    origins: BTreeMap<String, BTreeMap<u64, Origin>>,
    /// The held offsets of each source partition, with how many records
    /// hold each (one, unless a record was taken twice).
    by_partition: BTreeMap<TopicPartition, BTreeMap<i64, u32>>,
    /// The sequence of the next record held: above every one stored.
    next_sequence: u64,
}

impl Quarantine {
    /// Pick up what the store holds.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn load(&mut self, view: &impl ViewStore) -> Result<(), StoreError> {
        self.held.clear();
        self.origins.clear();
        self.by_partition.clear();
        self.next_sequence = 0;
        for held in view.quarantine_summaries()? {
            self.track(&held.subject, held.sequence, held.origin);
            self.next_sequence = self.next_sequence.max(held.sequence + 1);
        }
        Ok(())
    }

    fn track(&mut self, subject: &str, sequence: u64, origin: Origin) {
        self.held.insert(subject.to_owned());
        *self
            .by_partition
            .entry((origin.topic.clone(), origin.partition))
            .or_default()
            .entry(origin.offset)
            .or_default() += 1;
        self.origins
            .entry(subject.to_owned())
            .or_default()
            .insert(sequence, origin);
    }

    /// `subject`'s record at `sequence` is no longer held (applied on
    /// release). Returns the partition it came from.
    pub fn released(&mut self, subject: &str, sequence: u64) -> Option<TopicPartition> {
        let origin = self
            .origins
            .get_mut(subject)
            .and_then(|origins| origins.remove(&sequence))?;
        if self.origins.get(subject).is_some_and(BTreeMap::is_empty) {
            self.origins.remove(subject);
        }
        let key = (origin.topic, origin.partition);
        if let Some(offsets) = self.by_partition.get_mut(&key) {
            if let Some(count) = offsets.get_mut(&origin.offset) {
                *count -= 1;
                if *count == 0 {
                    offsets.remove(&origin.offset);
                }
            }
            if offsets.is_empty() {
                self.by_partition.remove(&key);
            }
        }
        Some(key)
    }

    /// The lowest offset of `partition` held.
    pub fn held_from(&self, partition: &TopicPartition) -> Option<i64> {
        self.by_partition
            .get(partition)
            .and_then(|offsets| offsets.keys().next().copied())
    }

    /// True when `subject` is held.
    pub fn holds(&self, subject: &str) -> bool {
        self.held.contains(subject)
    }

    /// Hold `record` of `subject` in `batch`, after every record of the
    /// subject held before.
    pub fn hold(&mut self, batch: &mut ViewBatch, subject: &str, record: DeadLetter) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.track(subject, sequence, record.origin.clone());
        batch.quarantine(subject, sequence, record);
    }

    /// Subjects held now.
    pub fn subject_count(&self) -> usize {
        self.held.len()
    }

    /// Records held now, over every subject.
    pub fn record_count(&self) -> u64 {
        self.origins
            .values()
            .map(|origins| u64::try_from(origins.len()).unwrap_or(u64::MAX))
            .sum()
    }

    /// Records held for `subject`.
    pub fn records_of(&self, subject: &str) -> u64 {
        self.origins.get(subject).map_or(0, |origins| {
            u64::try_from(origins.len()).unwrap_or(u64::MAX)
        })
    }

    /// The subjects held, in order.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.held.iter().map(String::as_str)
    }

    /// Stop holding `subject` (its release begins): its later records are
    /// applied again.
    pub fn lift(&mut self, subject: &str) {
        self.held.remove(subject);
    }

    /// Hold `subject` again: a release stopped at one of its records that
    /// failed again, and it and those behind it stay.
    pub fn keep(&mut self, subject: &str) {
        self.held.insert(subject.to_owned());
    }
}

/// A dead letter's fate, reported to the worker.
#[derive(Debug)]
pub enum Outcome {
    /// The topic acknowledged it.
    Delivered(Origin),
    /// It failed `attempts` times; `exhausted` once that reached the view's
    /// `max_attempts` (its partition stops; it is retried still).
    Failed {
        /// The failed record.
        origin: Origin,
        /// Why.
        error: String,
        /// Failures so far.
        attempts: u32,
        /// True when `attempts` reached `max_attempts` just now.
        exhausted: bool,
    },
}

/// One held record: its body stays in the store (`o/` keys), read when it
/// is sent.
#[derive(Debug)]
struct Held {
    /// Failed deliveries so far.
    failures: u32,
    /// When to send it again after a failure; `None` while in flight.
    retry_at: Option<Instant>,
}

/// The dead letters of one view: held, in flight, or waiting for a retry.
#[derive(Debug)]
pub struct DeadLetters {
    producer: DeadLetterProducer,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// Every held record, by origin; the records themselves are in the
    /// store.
    held: BTreeMap<Origin, Held>,
    /// The held offsets of each source partition.
    by_partition: BTreeMap<TopicPartition, BTreeSet<i64>>,
    /// Held by the pending batch, to send once it is durable.
    unsent: Vec<Origin>,
    /// Failures of sends (refused by the client before leaving), to report
    /// with the next poll.
    refused: Vec<Outcome>,
    /// Records held by the last run that may still land from it.
    settling: Option<Settling>,
}

/// Held records of the last run, not in the topic at start, that its
/// producer may still have had in flight.
#[derive(Debug)]
struct Settling {
    /// Their origins.
    origins: BTreeSet<Origin>,
    /// The topic, followed from where it ended at start.
    tail: DeadLetterTail,
    /// When those still missing are produced again.
    until: Instant,
}

impl DeadLetters {
    fn new(producer: DeadLetterProducer, config: &ViewConfig) -> Self {
        Self {
            producer,
            max_attempts: config.max_attempts.max(1),
            initial_backoff: Duration::from_millis(config.initial_backoff_ms),
            max_backoff: Duration::from_millis(config.max_backoff_ms),
            held: BTreeMap::new(),
            by_partition: BTreeMap::new(),
            unsent: Vec::new(),
            refused: Vec::new(),
            settling: None,
        }
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        self.producer.topic()
    }

    /// Records held now (in flight or waiting for a retry).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Pick up what a previous run of the view left: the records it held,
    /// less those the topic holds already. Returns the batch that releases
    /// those and records where the topic's partitions start for this run;
    /// commit and flush it before consuming. The rest is sent.
    ///
    /// # Errors
    /// When the store or the topic cannot be read.
    pub fn recover(&mut self, view: &impl ViewStore) -> Result<ViewBatch, PolicyError> {
        let topic = self.topic().to_owned();
        let mut batch = ViewBatch::new();
        let ends = self.producer.high_watermarks()?;
        let mut from: BTreeMap<i32, i64> = view
            .dead_letter_positions()?
            .into_iter()
            .filter(|((t, _), _)| *t == topic)
            .map(|((_, partition), next)| (partition, next))
            .collect();
        for (&partition, &end) in &ends {
            // A partition with no position yet: this view produced nothing
            // there before now.
            if let std::collections::btree_map::Entry::Vacant(entry) = from.entry(partition) {
                entry.insert(end);
                batch.dead_letter_position(&topic, partition, end);
            }
        }
        let held = view.held_dead_letter_origins()?;
        if !held.is_empty() {
            let started = Instant::now();
            let produced = self.producer.produced_origins(&from)?;
            let mut settling = BTreeSet::new();
            for origin in held {
                if produced.contains(&origin) {
                    batch.release_dead_letter(origin);
                } else {
                    settling.insert(origin.clone());
                    self.keep(origin);
                }
            }
            // With nothing settling, every record of this view below the
            // ends is now released or known not to be there. With records
            // settling, the positions stay where this scan began: a record
            // the broker had placed below the ends but not yet made readable
            // (seen on tansu, under load) is still looked for, by the tail
            // and by the next start's scan.
            if settling.is_empty() {
                for (&partition, &end) in &ends {
                    batch.dead_letter_position(&topic, partition, end);
                }
            }
            tracing::info!(topic = %topic, found = produced.len(), settling = settling.len(), seconds = started.elapsed().as_secs_f64(), "dead letters held by the last run: those the topic has are released; the rest are produced again unless they land from the last run's producer meanwhile");
            if !settling.is_empty() {
                self.settling = Some(Settling {
                    origins: settling,
                    tail: self.producer.tail(&from)?,
                    until: started + self.producer.message_timeout(),
                });
            }
        }
        Ok(batch)
    }

    /// Records held by the last run that wait to settle.
    pub fn settling(&self) -> usize {
        self.settling.as_ref().map_or(0, |s| s.origins.len())
    }

    /// Take the records of the last run that landed, and produce again
    /// those still missing once the wait is over.
    fn settle(
        &mut self,
        batch: &mut ViewBatch,
        view: &impl ViewStore,
        now: Instant,
        outcomes: &mut Vec<Outcome>,
    ) {
        let Some(settling) = &mut self.settling else {
            return;
        };
        let mut landed = Vec::new();
        for origin in settling.tail.landed() {
            if settling.origins.remove(&origin) {
                landed.push(origin);
            }
        }
        let over = now >= settling.until;
        let missing = if over || settling.origins.is_empty() {
            let missing = std::mem::take(&mut settling.origins);
            self.settling = None;
            missing
        } else {
            BTreeSet::new()
        };
        for origin in landed {
            tracing::info!(origin = %origin, "a dead letter of the last run landed; released");
            self.forget(&origin);
            batch.release_dead_letter(origin.clone());
            outcomes.push(Outcome::Delivered(origin));
        }
        if !missing.is_empty() {
            tracing::info!(
                topic = %self.topic(),
                again = missing.len(),
                "dead letters of the last run did not land within the producer's message.timeout.ms; producing them again"
            );
        }
        for origin in missing {
            self.send(view, &origin, now);
        }
    }

    /// Hold the record of `origin` (in the store) without sending it.
    fn keep(&mut self, origin: Origin) {
        self.by_partition
            .entry((origin.topic.clone(), origin.partition))
            .or_default()
            .insert(origin.offset);
        self.held.insert(
            origin,
            Held {
                failures: 0,
                retry_at: None,
            },
        );
    }

    /// Stop holding `origin`.
    fn forget(&mut self, origin: &Origin) {
        if self.held.remove(origin).is_some() {
            let key = (origin.topic.clone(), origin.partition);
            if let Some(offsets) = self.by_partition.get_mut(&key) {
                offsets.remove(&origin.offset);
                if offsets.is_empty() {
                    self.by_partition.remove(&key);
                }
            }
        }
    }

    /// Hold `letter` in `batch`; it is sent once the batch is durable,
    /// read back from the store then: only its origin stays in memory.
    pub fn hold(&mut self, batch: &mut ViewBatch, letter: DeadLetter) {
        let origin = letter.origin.clone();
        batch.hold_dead_letter(letter);
        self.unsent.push(origin.clone());
        self.keep(origin);
    }

    /// The batch that held the unsent records is durable in `view`: send
    /// them.
    pub fn send_held(&mut self, view: &impl ViewStore) {
        let unsent = self.take_unsent();
        self.send_these(view, unsent);
    }

    /// The records held since the last call: those of the batch leaving
    /// the pending slot, to send once it is durable
    /// ([`DeadLetters::send_these`]), and not before, while the next batch
    /// holds more.
    pub fn take_unsent(&mut self) -> Vec<Origin> {
        std::mem::take(&mut self.unsent)
    }

    /// The batch that held `origins` is durable in `view`: send them.
    pub fn send_these(&mut self, view: &impl ViewStore, origins: Vec<Origin>) {
        let now = Instant::now();
        for origin in origins {
            self.send(view, &origin, now);
        }
    }

    fn send(&mut self, view: &impl ViewStore, origin: &Origin, now: Instant) {
        let Some(held) = self.held.get_mut(origin) else {
            return;
        };
        held.retry_at = None;
        let sent = match view.held_dead_letter(origin) {
            Ok(Some(letter)) => self.producer.send(&letter).map_err(|err| err.to_string()),
            // Held here but not in the store: a bug, never a reason to
            // drop it; it is tried again after the backoff.
            Ok(None) => Err("the held record is missing from the store".to_owned()),
            Err(err) => Err(format!("cannot read the held record: {err}")),
        };
        if let Err(err) = sent {
            // Refused before it left (too large, the topic known to refuse
            // it, queue full), or unreadable: the same as a failed delivery.
            if let Some(outcome) = self.failed(origin, &err, now) {
                self.refused.push(outcome);
            }
        }
    }

    /// The record of `origin` failed (its delivery, or its send): schedule
    /// it again after the backoff, the longest one once `max_attempts` is
    /// reached. The outcome to report, if it is still held.
    fn failed(&mut self, origin: &Origin, error: &str, now: Instant) -> Option<Outcome> {
        let held = self.held.get_mut(origin)?;
        held.failures += 1;
        let exhausted = held.failures == self.max_attempts;
        let wait = if held.failures >= self.max_attempts {
            self.max_backoff
        } else {
            backoff(self.initial_backoff, self.max_backoff, held.failures)
        };
        held.retry_at = Some(now + wait);
        Some(Outcome::Failed {
            origin: origin.clone(),
            error: error.to_owned(),
            attempts: held.failures,
            exhausted,
        })
    }

    /// Take the outcomes reported since the last call: delivered records
    /// are released in `batch`; failed ones are scheduled again. Records
    /// whose retry is due are sent.
    pub fn poll(&mut self, batch: &mut ViewBatch, view: &impl ViewStore) -> Vec<Outcome> {
        let topic = self.topic().to_owned();
        let now = Instant::now();
        let mut outcomes = std::mem::take(&mut self.refused);
        for delivery in self.producer.take_deliveries() {
            let origin = delivery.tag;
            match delivery.result {
                Ok((partition, offset)) => {
                    self.forget(&origin);
                    batch.release_dead_letter(origin.clone());
                    if self.settling.is_none() {
                        // While records of the last run may still land, a
                        // start after a crash reads the topic from where
                        // it ended at this start.
                        batch.dead_letter_position(&topic, partition, offset + 1);
                    }
                    outcomes.push(Outcome::Delivered(origin));
                }
                Err(err) => {
                    if let Some(outcome) = self.failed(&origin, &err.to_string(), now) {
                        outcomes.push(outcome);
                    }
                }
            }
        }
        self.settle(batch, view, now, &mut outcomes);
        let due: Vec<Origin> = self
            .held
            .iter()
            .filter(|(_, held)| held.retry_at.is_some_and(|at| at <= now))
            .map(|(origin, _)| origin.clone())
            .collect();
        for origin in due {
            self.send(view, &origin, now);
        }
        outcomes.append(&mut self.refused);
        outcomes
    }

    /// Wait at most `timeout` for the records in flight.
    pub fn flush(&self, timeout: Duration) {
        if !self.held.is_empty() {
            self.producer.flush(timeout);
        }
    }

    /// The lowest offset of `partition` held.
    pub fn held_from(&self, partition: &TopicPartition) -> Option<i64> {
        self.by_partition
            .get(partition)
            .and_then(|offsets| offsets.first().copied())
    }
}

fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1_u32 << failures.saturating_sub(1).min(20);
    initial.saturating_mul(factor).min(max)
}

/// The dead letter of `message`, which failed with `class` and `reason`:
/// the record as consumed, unchanged.
pub fn dead_letter_of(message: &impl Message, class: &str, reason: &str) -> DeadLetter {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    DeadLetter {
        origin: Origin {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        },
        // Its shard is set where the pipeline knows it (`ViewState::fail`).
        shard: None,
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: message.timestamp().to_millis(),
        class: class.to_owned(),
        message: reason.to_owned(),
    }
}

/// The record a dead letter or quarantined record keeps, as a message
/// again: what [`dead_letter_of`] took from it.
pub fn message_of(record: &DeadLetter) -> rdkafka::message::OwnedMessage {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
    let headers = (!record.headers.is_empty()).then(|| {
        record.headers.iter().fold(
            OwnedHeaders::new_with_capacity(record.headers.len()),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            },
        )
    });
    OwnedMessage::new(
        record.value.clone(),
        record.key.clone(),
        record.origin.topic.clone(),
        record
            .timestamp_ms
            .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
        record.origin.partition,
        record.origin.offset,
        headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_longest() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<u128> = (1..=5)
            .map(|n| backoff(initial, max, n).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
    }
}
