//! The state of one view that its worker, its consumer's callbacks
//! ([`super::consumer_context`]) and its applier threads ([`super::pool`])
//! share: the cursors of the assigned partitions, the pending batch, the
//! error policy and what it holds, the gap probes.
//!
//! It sits behind one mutex. Rebalance callbacks run on the worker's own
//! thread, inside `poll`, so they never contend with the worker; applier
//! threads take the lock to read the policy and to merge their results (a
//! batch of up to 64 records at a time, [`super::pool`]), so the worker
//! and the threads do contend, briefly.
//!
//! # What it promises
//!
//! - Where an assigned partition starts ([`ViewState::start_offsets`]): the
//!   next offset this view knows, what it applied in memory, else the
//!   store's checkpoint, else the earliest offset (G2).
//! - What a revocation commits ([`ViewState::release`]): the pending batch,
//!   committed to the store and flushed, with the offsets to give the group
//!   before the partitions go (G4).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{Changelog, SentBatch};
use super::cursor::Cursor;
use super::failure::Failure;
use super::failures::FailureOutcome;
use super::feed::{Change, ViewFeed};
use super::gap::GapProbes;
use super::in_flight::InFlight;
use super::policy::{DRAIN_TIMEOUT, ErrorPolicy, Fate, HeldBack, Outcome};
use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::shard::{ShardId, Shards};
use crate::store::{DeadLetter, Origin};
use crate::store::{Store, StoreError, StoredRow, ViewBatch, ViewStore};

/// What an assignment found among the partitions it brought.
#[derive(Debug, Default)]
pub struct Assigned {
    /// Stopped ones, to pause again.
    pub stopped: Vec<TopicPartition>,
    /// Ones paused earlier in this run because their start was unknown,
    /// to resume: they start again.
    pub restarted: Vec<TopicPartition>,
}

/// What the view keeps about one partition.
#[derive(Debug, Default)]
struct Partition {
    /// Assigned to the view now.
    assigned: bool,
    /// Where it stands over the shards, including work applied but not yet
    /// committed; `None` until needed while assigned (read from the store
    /// then), and after it is revoked (another runtime may move it).
    cursor: Option<Cursor>,
    /// Its cursor moved since the last commit.
    moved: bool,
    /// Records of it held in quarantine were released since the last
    /// commit: its Kafka offset may move.
    unheld: bool,
    /// The shards halted on it by `on_error = "stop"`, and where: kept for
    /// the whole run, also across reassignments.
    stops: BTreeMap<ShardId, i64>,
    /// Never applied from, and its earliest offset could not be read: not
    /// started (its records are ignored) until it is assigned again.
    unstartable: bool,
    /// When it last delivered a record (or a read of it began).
    delivered: Option<Instant>,
}

/// The view's state shared between the worker and the consumer callbacks.
#[derive(Debug)]
pub struct ViewState<S: Store> {
    /// The store.
    store: Arc<S>,
    /// The view's changelog, which logs each batch before the store
    /// commits it.
    changelog: Option<Arc<Changelog>>,
    /// The view's tree.
    view: S::View,
    /// How many shards the view is split into.
    shards: Shards,
    /// Everything the view keeps about each partition it holds or held
    /// this run: one owner for each piece of per-partition state.
    partitions: BTreeMap<TopicPartition, Partition>,
    /// Records handed to parallel appliers and not yet merged.
    in_flight: Arc<InFlight>,
    /// Partitions to pause, found stopped by an applier thread.
    pauses: Vec<TopicPartition>,
    /// A store failure met by an applier thread.
    store_failure: Option<StoreError>,
    /// Partitions read again from before an offset the broker skipped.
    gaps: GapProbes,
    /// Applied and not yet committed.
    batch: ViewBatch,
    /// Records in `batch` (applied, skipped or dead-lettered).
    batch_records: usize,
    /// When the first record of `batch` was added.
    batch_started: Option<Instant>,
    /// Where committed changes and positions are published.
    feed: Arc<ViewFeed>,
    /// What happens to a record that cannot be applied.
    policy: ErrorPolicy,
    /// Every change of `batch` in apply order, kept while someone watches.
    journal: Vec<Change>,
    /// True when `journal` holds every change of `batch` (someone watched
    /// when the batch began).
    journal_complete: bool,
    /// The batch sent to the changelog and not yet in the store, which the
    /// next commit finishes.
    sent: Option<Sent>,
}

/// A batch sent to the changelog and not yet committed to the store.
#[derive(Debug)]
struct Sent {
    sent: SentBatch,
    batch: ViewBatch,
    changes: Vec<Change>,
    records: usize,
    started: Instant,
    /// What it gives to Kafka once it is durable.
    offsets: TopicPartitionList,
    /// The dead letters it holds, sent once it is durable.
    letters_held: Vec<Origin>,
}

/// `earlier` and `later` offsets as one list, the later of each partition.
fn merge_offsets(earlier: &TopicPartitionList, later: &TopicPartitionList) -> TopicPartitionList {
    let mut merged: BTreeMap<(String, i32), Offset> = BTreeMap::new();
    for list in [earlier, later] {
        for element in list.elements() {
            merged.insert(
                (element.topic().to_owned(), element.partition()),
                element.offset(),
            );
        }
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in merged {
        if let Err(err) = offsets.add_partition_offset(&topic, partition, offset) {
            tracing::warn!(error = %err, "cannot list an offset to commit");
        }
    }
    offsets
}

impl<S: Store> ViewState<S> {
    /// Fresh state for `view` in `store`, failing records handled by
    /// `policy`.
    pub fn new(store: Arc<S>, view: S::View, feed: Arc<ViewFeed>, policy: ErrorPolicy) -> Self {
        let journal_complete = feed.is_watched();
        let shards = view.shards();
        Self {
            store,
            changelog: None,
            view,
            shards,
            partitions: BTreeMap::new(),
            in_flight: Arc::default(),
            pauses: Vec::new(),
            store_failure: None,
            gaps: GapProbes::default(),
            batch: ViewBatch::new(),
            batch_records: 0,
            batch_started: None,
            feed,
            policy,
            journal: Vec::new(),
            journal_complete,
            sent: None,
        }
    }

    /// Log every batch to `changelog` before the store commits it.
    pub fn log_to(&mut self, changelog: Arc<Changelog>) {
        self.changelog = Some(changelog);
    }

    /// How many shards the view is split into.
    pub fn shards(&self) -> Shards {
        self.shards
    }

    /// Records handed to parallel appliers and not yet merged.
    pub fn in_flight(&self) -> Arc<InFlight> {
        Arc::clone(&self.in_flight)
    }

    /// Pause `partition` at the worker's next turn: every shard stopped on
    /// it (found by an applier thread, which cannot reach the consumer).
    pub fn pause_later(&mut self, partition: TopicPartition) {
        self.pauses.push(partition);
    }

    /// The partitions to pause now.
    pub fn take_pauses(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.pauses)
    }

    /// An applier thread could not read the store.
    pub fn store_failed(&mut self, err: StoreError) {
        self.store_failure.get_or_insert(err);
    }

    /// The store failure an applier thread met, if any.
    pub fn take_store_failure(&mut self) -> Option<StoreError> {
        self.store_failure.take()
    }

    /// The view's tree.
    pub fn view(&self) -> &S::View {
        &self.view
    }

    /// Where committed changes and positions are published.
    pub fn feed(&self) -> &Arc<ViewFeed> {
        &self.feed
    }

    /// The partitions assigned now.
    pub fn assigned_partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, held)| held.assigned)
            .map(|(partition, _)| partition)
    }

    /// What the view keeps about `partition`, made when first needed.
    fn partition(&mut self, partition: &TopicPartition) -> &mut Partition {
        if !self.partitions.contains_key(partition) {
            self.partitions
                .insert(partition.clone(), Partition::default());
        }
        self.partitions
            .get_mut(partition)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// The partitions' gap probes.
    pub fn gaps(&mut self) -> &mut GapProbes {
        &mut self.gaps
    }

    /// Note that `partition` delivered a record now (or that a read of it
    /// began now, to give it its own quiet time).
    pub fn note_delivery(&mut self, partition: &TopicPartition) {
        self.partition(partition).delivered = Some(Instant::now());
    }

    /// True when `partition` delivered nothing for `idle`.
    pub fn quiet_for(&self, partition: &TopicPartition, idle: std::time::Duration) -> bool {
        self.partitions
            .get(partition)
            .and_then(|held| held.delivered)
            .is_none_or(|at| at.elapsed() >= idle)
    }

    /// True while a batch is pending.
    pub fn has_pending(&self) -> bool {
        self.batch_started.is_some() || self.sent.is_some()
    }

    /// True when the pending batch holds `max_records` or has lingered
    /// `linger`.
    pub fn batch_due(&self, max_records: usize, linger: std::time::Duration) -> bool {
        self.batch_records >= max_records
            || self
                .batch_started
                .is_some_and(|started| started.elapsed() >= linger)
    }

    /// What an applier holds back after a record fails.
    pub fn held_back(&self) -> HeldBack {
        self.policy.held_back()
    }

    /// True when a failed record is kept, so its body travels with it.
    pub fn keeps_records(&self) -> bool {
        self.policy.keeps_records()
    }

    /// The cursor of `partition`: in memory, else from the store's
    /// checkpoints, with the stops of this run. `None` for a partition the
    /// view never applied from.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn cursor(
        &mut self,
        partition: &TopicPartition,
    ) -> Result<Option<&mut Cursor>, StoreError> {
        let in_memory = self
            .partitions
            .get(partition)
            .is_some_and(|held| held.cursor.is_some());
        if !in_memory {
            let (topic, number) = (&partition.0, partition.1);
            let Some(next) = self.view.checkpoint(topic, number)? else {
                return Ok(None);
            };
            let mut cursor = Cursor::new(next, self.view.shard_checkpoints(topic, number)?);
            let held = self.partition(partition);
            // A shard stopped earlier in this run stays stopped, unless
            // another owner moved it on meanwhile: then its stop is over.
            held.stops
                .retain(|shard, at| *at >= cursor.shard_next(*shard));
            for shard in held.stops.keys() {
                cursor.stop(*shard, cursor.shard_next(*shard));
            }
            held.cursor = Some(cursor);
        }
        Ok(self
            .partitions
            .get_mut(partition)
            .and_then(|held| held.cursor.as_mut()))
    }

    /// The cursor of `partition` if it is in memory.
    pub fn cursor_in_memory(&self, partition: &TopicPartition) -> Option<&Cursor> {
        self.partitions
            .get(partition)
            .and_then(|held| held.cursor.as_ref())
    }

    /// Every record of `partition` below `next` is taken: move its cursor
    /// (made at `next` for a partition never applied from) and count the
    /// record in the pending batch.
    pub fn advance(&mut self, partition: &TopicPartition, next: i64) {
        // The partition moved on: a gap probe of it, if any, is over.
        self.gaps.clear(partition);
        let held = self.partition(partition);
        held.cursor
            .get_or_insert_with(|| Cursor::new(next, BTreeMap::new()))
            .advance(next);
        held.moved = true;
        self.batch_records += 1;
        self.batch_started.get_or_insert_with(Instant::now);
    }

    /// `shard` stops on `partition` at the record at `offset`; the others
    /// go on past it once the record is taken. Returns true when every
    /// shard of the partition is stopped now (the partition can be paused).
    fn stop(&mut self, partition: &TopicPartition, shard: ShardId, offset: i64) -> bool {
        let shards = self.shards;
        let held = self.partition(partition);
        held.stops.entry(shard).or_insert(offset);
        let cursor = held
            .cursor
            .get_or_insert_with(|| Cursor::new(offset, BTreeMap::new()));
        cursor.stop(shard, offset);
        let all = cursor.all_stopped(shards);
        held.moved = true;
        self.batch_started.get_or_insert_with(Instant::now);
        all
    }

    /// Hand the record at `offset` of `partition`, in `shard`, of
    /// `subject` (`None`: it has none), that failed with `failure` to the
    /// view's policy: `skip` counts it, `dead-letter` holds `letter()` in
    /// the pending batch, `quarantine` holds it under its subject (records
    /// with none together, under the empty subject), `stop` stops the shard
    /// on the partition. The caller takes the record (advances past it).
    /// Returns true when the partition is to be paused (every shard
    /// stopped).
    #[allow(clippy::too_many_arguments)] // One record's place, failure and body.
    pub fn fail(
        &mut self,
        status: &ViewStatus,
        partition: &TopicPartition,
        offset: i64,
        shard: ShardId,
        subject: Option<&str>,
        failure: &Failure,
        letter: impl FnOnce() -> Option<DeadLetter>,
    ) -> bool {
        let (topic, number) = (&partition.0, partition.1);
        let described = format!("offset {offset}: {}: {}", failure.class, failure.message);
        let record = |outcome| {
            status.record_failure((topic, number), offset, Some(shard), failure, outcome);
        };
        // The record as kept, for the policies that keep it.
        let kept = if self.policy.keeps_records() {
            letter().map(|mut letter| {
                letter.shard = Some(shard);
                letter
            })
        } else {
            None
        };
        match self.policy.take(&mut self.batch, subject, kept) {
            Fate::Skipped => {
                record(FailureOutcome::Skipped);
                tracing::warn!(topic = %topic, partition = number, offset, class = %failure.class, error = %failure.message, "record skipped");
                status.count(|c| &c.skipped);
                status.failed(topic, number, described, false);
                false
            }
            Fate::Quarantined => {
                record(FailureOutcome::Quarantined);
                tracing::warn!(topic = %topic, partition = number, offset, subject = subject.unwrap_or_default(), class = %failure.class, error = %failure.message, "subject quarantined: this record and every later one of the subject are held until `projector view release`");
                status.count(|c| &c.quarantined);
                self.batch_started.get_or_insert_with(Instant::now);
                self.report_quarantine(status);
                status.failed(topic, number, described, false);
                false
            }
            Fate::DeadLettered => {
                record(FailureOutcome::DeadLettered);
                if let Some(letters) = self.policy.dead_letters() {
                    status.dead_letters_held(letters.held());
                }
                tracing::warn!(topic = %topic, partition = number, offset, class = %failure.class, error = %failure.message, "record held for the dead-letter topic");
                status.failed(topic, number, described, false);
                false
            }
            Fate::Stop => {
                record(FailureOutcome::Stopped);
                let sharded = self.shards.count() > 1;
                tracing::error!(
                    topic = %topic, partition = number, offset, shard = %shard, class = %failure.class, error = %failure.message,
                    "{}",
                    if sharded {
                        "shard stopped on this partition; the other shards go on, and it resumes at this record after a restart"
                    } else {
                        "partition stopped; it resumes at this record after a restart"
                    }
                );
                status.count(|c| &c.stopped);
                let place = if sharded {
                    format!("shard {shard}, offset {offset}")
                } else {
                    format!("offset {offset}")
                };
                status.failed(
                    topic,
                    number,
                    format!("{place}: {}: {}", failure.class, failure.message),
                    true,
                );
                status.shard_stopped(topic, number, shard);
                self.stop(partition, shard, offset)
            }
        }
    }

    /// Stop every shard of `partition` where it is, without taking any
    /// record. Returns the shards stopped.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn halt(&mut self, partition: &TopicPartition) -> Result<Vec<ShardId>, StoreError> {
        let shards = self.shards;
        let Some(cursor) = self.cursor(partition)? else {
            return Ok(Vec::new());
        };
        let at: Vec<(ShardId, i64)> = shards
            .all()
            .map(|shard| (shard, cursor.shard_next(shard)))
            .collect();
        for (shard, next) in &at {
            cursor.stop(*shard, *next);
        }
        let held = self.partition(partition);
        for (shard, next) in &at {
            held.stops.entry(*shard).or_insert(*next);
        }
        held.moved = true;
        self.batch_started.get_or_insert_with(Instant::now);
        Ok(at.into_iter().map(|(shard, _)| shard).collect())
    }

    /// True when every shard of `partition` is stopped (its cursor says;
    /// the stops kept across reassignments only seed a new cursor), or the
    /// partition could not be started.
    pub fn fully_stopped(&self, partition: &TopicPartition) -> bool {
        self.partitions.get(partition).is_some_and(|held| {
            held.unstartable
                || held
                    .cursor
                    .as_ref()
                    .is_some_and(|cursor| cursor.all_stopped(self.shards))
        })
    }

    /// `partition`, never applied from, cannot be started (its earliest
    /// offset is unknown): its records are ignored until it is assigned
    /// again.
    pub fn unstartable(&mut self, partition: &TopicPartition) {
        self.partition(partition).unstartable = true;
    }

    /// Write the moved cursors' checkpoints into the pending batch.
    fn write_cursors(&mut self) {
        for (partition, held) in &mut self.partitions {
            if std::mem::take(&mut held.moved)
                && let Some(cursor) = &mut held.cursor
            {
                cursor.write(&partition.0, partition.1, self.shards, &mut self.batch);
            }
        }
    }

    /// Remember an applied event's identity in the pending batch.
    pub fn remember(&mut self, remember: super::record::Remember) {
        if let Some((identity, time, shard)) = remember {
            self.batch.remember(identity, time, shard);
        }
    }

    /// Record that `subject`'s row goes from `before` (as stored or
    /// pending) to `after`.
    pub fn change(&mut self, subject: &str, before: Option<StoredRow>, after: Option<StoredRow>) {
        if self.journal_complete {
            self.journal.push(Change {
                subject: subject.to_owned(),
                row: after.clone(),
            });
        }
        self.batch.change(subject, before, after);
    }

    /// The changes to publish for the pending batch: the journal when it is
    /// complete, else (a watcher arrived mid-batch) each row's net change.
    fn changes_to_publish(&mut self) -> Vec<Change> {
        if !self.feed.is_watched() {
            return Vec::new();
        }
        if self.journal_complete {
            return std::mem::take(&mut self.journal);
        }
        self.batch
            .changes()
            .iter()
            .map(|(subject, change)| Change {
                subject: subject.clone(),
                row: change.after.clone(),
            })
            .collect()
    }

    fn reset_batch(&mut self) {
        self.batch = ViewBatch::new();
        self.batch_records = 0;
        self.batch_started = None;
        self.journal.clear();
        self.journal_complete = self.feed.is_watched();
    }

    /// Commit the pending batch to the store and flush it, after the batch
    /// sent before it, if one is waiting ([`ViewState::commit_overlapped`]).
    /// Returns the offsets to commit to Kafka: the batches' checkpoints of
    /// partitions still assigned.
    ///
    /// # Errors
    /// When the store or the changelog fails: nothing more is committed.
    pub fn commit_batch(&mut self, status: &ViewStatus) -> Result<TopicPartitionList, StoreError> {
        let earlier = self.finish_sent(status)?;
        let later = self.commit_pending(status, false)?;
        Ok(merge_offsets(&earlier, &later))
    }

    /// Commit the batch sent before, if one is waiting, then send the
    /// pending batch to the changelog and leave it there: the worker
    /// applies the next batch while its records are acknowledged, and the
    /// next commit finishes it. A view without a changelog commits the
    /// pending batch at once. Returns the offsets the batches committed
    /// give to Kafka.
    ///
    /// # Errors
    /// When the store or the changelog fails: nothing more is committed.
    pub fn commit_overlapped(
        &mut self,
        status: &ViewStatus,
    ) -> Result<TopicPartitionList, StoreError> {
        let earlier = self.finish_sent(status)?;
        let later = self.commit_pending(status, true)?;
        Ok(merge_offsets(&earlier, &later))
    }

    /// The pending batch committed, or (`overlap`, with a changelog) sent
    /// to the changelog and kept in `sent` for the next commit. Every
    /// batch before it must be in the store: its positions records are
    /// the store's with it on top.
    fn commit_pending(
        &mut self,
        status: &ViewStatus,
        overlap: bool,
    ) -> Result<TopicPartitionList, StoreError> {
        if let Some(failure) = &self.store_failure {
            // An applier could not read a row: the batch misses its record
            // and must never be committed (the worker stops the view with
            // the failure itself).
            return Err(StoreError::Backend {
                operation: "commit",
                reason: format!(
                    "an applier could not read the store ({failure}); the pending batch misses \
                     records and is not committed"
                ),
            });
        }
        self.write_cursors();
        if self.batch.is_empty() {
            self.reset_batch();
            return Ok(TopicPartitionList::new());
        }
        let started = Instant::now();
        let changes = self.changes_to_publish();
        let Some(changelog) = self.changelog.clone() else {
            self.feed
                .commit(|| self.view.commit(&self.batch), changes)?;
            self.store.flush()?;
            self.in_flight.begin();
            let batch = std::mem::take(&mut self.batch);
            let letters_held = self.letters_held();
            self.committed(status, &batch, self.batch_records, started, letters_held);
            let offsets = self.offsets_after(&batch);
            self.reset_batch();
            return Ok(offsets);
        };
        let sent = changelog.send_batch(&self.view, &self.batch)?;
        self.in_flight.begin();
        let batch = std::mem::take(&mut self.batch);
        let offsets = self.offsets_after(&batch);
        let letters_held = self.letters_held();
        self.sent = Some(Sent {
            sent,
            batch,
            changes,
            records: self.batch_records,
            started,
            offsets,
            letters_held,
        });
        self.reset_batch();
        if overlap {
            status.count(|c| &c.batches_overlapped);
            Ok(TopicPartitionList::new())
        } else {
            self.finish_sent(status)
        }
    }

    /// Commit the batch sent to the changelog and waiting, if one is: wait
    /// for its acknowledgement, commit it to the store, flush. Returns the
    /// offsets it gives to Kafka. Every commit runs it first; the worker
    /// also runs it alone when the pending batch cannot be committed (an
    /// applier failed on it): the sent batch is whole, and the view stops
    /// only after it.
    ///
    /// # Errors
    /// When the changelog did not acknowledge it, or the store fails: it is
    /// not committed, and the view stops.
    pub fn finish_sent(&mut self, status: &ViewStatus) -> Result<TopicPartitionList, StoreError> {
        let (Some(sent), Some(changelog)) = (self.sent.take(), self.changelog.clone()) else {
            return Ok(TopicPartitionList::new());
        };
        let Sent {
            sent,
            batch,
            changes,
            records,
            started,
            offsets,
            letters_held,
        } = sent;
        changelog.finish_batch(sent, |prepared| {
            self.feed
                .commit(|| self.view.commit_prepared(prepared), changes)
        })?;
        self.store.flush()?;
        self.committed(status, &batch, records, started, letters_held);
        Ok(offsets)
    }

    /// The dead letters the batch leaving the pending slot holds.
    fn letters_held(&mut self) -> Vec<Origin> {
        self.policy
            .dead_letters()
            .map(super::policy::DeadLetters::take_unsent)
            .unwrap_or_default()
    }

    /// What follows a batch's flush: its records count as committed
    /// (appliers forget the rows they changed in it), readers see its
    /// positions, the dead letters it holds are sent.
    fn committed(
        &mut self,
        status: &ViewStatus,
        batch: &ViewBatch,
        records: usize,
        started: Instant,
        letters_held: Vec<Origin>,
    ) {
        crate::failpoint::hit("store-flushed");
        self.in_flight.committed();
        self.feed.advance(batch.checkpoints());
        let histograms = &status.histograms;
        histograms
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        #[allow(clippy::cast_precision_loss)] // Batches hold at most max_records.
        histograms.batch_records.observe(records as f64);
        status.count(|c| &c.batches);
        if let Some(letters) = self.policy.dead_letters() {
            // Held in a durable batch now: send them (not those the next
            // batch holds, which is not).
            letters.send_these(&self.view, letters_held);
        }
        for ((topic, partition), next) in batch.checkpoints() {
            status.committed(topic, *partition, *next);
        }
    }

    /// The offsets `batch` gives to Kafka once it is durable: each
    /// partition it moved, and each whose held dead letters it released;
    /// never past a record still held.
    fn offsets_after(&mut self, batch: &ViewBatch) -> TopicPartitionList {
        let mut offsets = TopicPartitionList::new();
        // Offsets to give Kafka: each partition the batch moved, and each
        // whose held dead letters it released; never past a record still
        // held.
        let mut moved: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for ((topic, partition), next) in batch.checkpoints() {
            moved.insert((topic.clone(), *partition), *next);
        }
        let released: BTreeSet<TopicPartition> = batch
            .dead_letters()
            .iter()
            .filter(|(_, l)| l.is_none())
            .map(|(origin, _)| (origin.topic.clone(), origin.partition))
            .collect();
        for (partition, held) in &mut self.partitions {
            let unheld = std::mem::take(&mut held.unheld);
            if (unheld || released.contains(partition))
                && let Some(cursor) = &held.cursor
            {
                moved.entry(partition.clone()).or_insert(cursor.position());
            }
        }
        for (partition, next) in moved {
            if !self
                .partitions
                .get(&partition)
                .is_some_and(|held| held.assigned)
            {
                continue;
            }
            let next = self
                .policy
                .held_from(&partition)
                .map_or(next, |held| held.min(next));
            if let Err(err) =
                offsets.add_partition_offset(&partition.0, partition.1, Offset::Offset(next))
            {
                tracing::warn!(error = %err, "cannot list an offset to commit");
            }
        }
        offsets
    }

    /// True when `subject` is held in quarantine: its records are held
    /// behind the one that failed.
    pub fn is_quarantined(&self, subject: &str) -> bool {
        self.policy.holds(subject)
    }

    /// The subjects held in quarantine, in order.
    pub fn quarantined_subjects(&mut self) -> Vec<String> {
        self.policy
            .quarantine()
            .map(|quarantine| quarantine.subjects().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// How many records are held in quarantine for `subject`.
    pub fn held_records_of(&mut self, subject: &str) -> u64 {
        self.policy
            .quarantine()
            .map_or(0, |quarantine| quarantine.records_of(subject))
    }

    /// Stop holding `subject`: its release begins.
    pub fn lift_quarantine(&mut self, subject: &str) {
        if let Some(quarantine) = self.policy.quarantine() {
            quarantine.lift(subject);
        }
    }

    /// `subject`'s record at `sequence` was applied on release: drop it in
    /// the pending batch.
    pub fn release_quarantined(&mut self, subject: &str, sequence: u64) {
        if let Some(partition) = self
            .policy
            .quarantine()
            .and_then(|quarantine| quarantine.released(subject, sequence))
        {
            // Its offset may be committed to Kafka now.
            self.partition(&partition).unheld = true;
        }
        self.batch.release_quarantined(subject, sequence);
        self.batch_started.get_or_insert_with(Instant::now);
    }

    /// `subject`'s record at `sequence` failed again on release: keep it
    /// (with its new failure) and those behind it, and hold the subject
    /// again.
    pub fn keep_quarantined(
        &mut self,
        subject: &str,
        sequence: u64,
        record: DeadLetter,
        status: &ViewStatus,
    ) {
        self.batch.quarantine(subject, sequence, record);
        self.batch_started.get_or_insert_with(Instant::now);
        if let Some(quarantine) = self.policy.quarantine() {
            quarantine.keep(subject);
        }
        self.report_quarantine(status);
    }

    /// Discard `subject`'s held `record` at `sequence` (the subject's
    /// release has begun: [`Self::lift_quarantine`]): taken out of the
    /// quarantine in the pending batch and, when the view has a
    /// dead-letter topic, held for it in the same batch (written once, as
    /// any dead letter); else dropped, logged by origin. Counted as
    /// discarded either way. Returns the topic it goes to, if any.
    pub fn discard_quarantined(
        &mut self,
        subject: &str,
        sequence: u64,
        record: DeadLetter,
        status: &ViewStatus,
    ) -> Option<String> {
        self.policy.quarantine()?;
        let origin = record.origin.clone();
        // Out of the quarantine as a release takes it (its offset may be
        // committed then, unless it is held for the dead-letter topic:
        // `held_from` says), and held for that topic in the same batch.
        self.release_quarantined(subject, sequence);
        let topic = self.policy.dead_letters().map(|letters| {
            letters.hold(&mut self.batch, record);
            letters.topic().to_owned()
        });
        match &topic {
            Some(topic) => {
                tracing::info!(subject, origin = %origin, topic = %topic, "quarantined record discarded to the dead-letter topic");
            }
            None => {
                tracing::warn!(subject, origin = %origin, "quarantined record discarded: dropped with the batch that removes it (the view has no dead_letter_topic)");
            }
        }
        status.count(|c| &c.discarded);
        if let Some(letters) = self.policy.dead_letters() {
            status.dead_letters_held(letters.held());
        }
        topic
    }

    /// Report how many subjects and records are held in quarantine.
    pub fn report_quarantine(&mut self, status: &ViewStatus) {
        if let Some(quarantine) = self.policy.quarantine() {
            status.quarantine_held(quarantine.subject_count(), quarantine.record_count());
        }
    }

    /// Hold `record` of `subject` in quarantine, in the pending batch.
    pub fn quarantine(&mut self, subject: &str, record: DeadLetter, status: &ViewStatus) {
        if let Some(quarantine) = self.policy.quarantine() {
            quarantine.hold(&mut self.batch, subject, record);
            status.count(|c| &c.quarantined);
            self.batch_started.get_or_insert_with(Instant::now);
        }
        self.report_quarantine(status);
    }

    /// Take the dead letters' outcomes: acknowledged ones are released in
    /// the pending batch (which then commits soon) and counted. Returns
    /// every outcome, for the worker to act on failures.
    pub fn poll_dead_letters(&mut self, status: &ViewStatus) -> Vec<Outcome> {
        let Some(letters) = self.policy.dead_letters() else {
            return Vec::new();
        };
        let outcomes = letters.poll(&mut self.batch, &self.view);
        status.dead_letters_held(letters.held());
        let mut released = false;
        for outcome in &outcomes {
            if let Outcome::Delivered(_) = outcome {
                status.count(|c| &c.dead_lettered);
                released = true;
            }
        }
        if released {
            self.batch_started.get_or_insert_with(Instant::now);
        }
        outcomes
    }

    /// Wait (bounded) for the dead letters in flight, and release those
    /// acknowledged in the pending batch.
    pub fn drain_dead_letters(&mut self, status: &ViewStatus) {
        if let Some(letters) = self.policy.dead_letters() {
            letters.flush(DRAIN_TIMEOUT);
        }
        for outcome in self.poll_dead_letters(status) {
            if let Outcome::Failed { origin, error, .. } = outcome {
                tracing::warn!(origin = %origin, error = %error, "dead letter not acknowledged; it stays held and is sent again");
            }
        }
    }

    /// Where each of `partitions` starts when assigned: the next offset
    /// this view knows (applied in memory, else the store's checkpoint, the
    /// lowest over the shards), else the earliest offset. Also the store's
    /// durable checkpoints of `partitions`, as offsets to commit to Kafka:
    /// they bring the group's offsets up to what the view holds (a crash
    /// may have come between a flush and its offset commit), never past it,
    /// and never past a record the policy still holds
    /// ([`ErrorPolicy::held_from`]).
    pub fn start_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> (Vec<Offset>, TopicPartitionList) {
        let mut durable = TopicPartitionList::new();
        let starts = partitions
            .iter()
            .map(|partition| {
                let (topic, number) = (&partition.0, partition.1);
                match self.view.checkpoint(topic, number) {
                    Ok(Some(next)) => {
                        // Never past a record the view still holds (a dead
                        // letter not yet acknowledged, a quarantined record):
                        // the group's next owner must read it again.
                        let next = self
                            .policy
                            .held_from(partition)
                            .map_or(next, |held| held.min(next));
                        if let Err(err) =
                            durable.add_partition_offset(topic, number, Offset::Offset(next))
                        {
                            tracing::warn!(error = %err, "cannot list an offset to commit");
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::error!(topic, partition = number, error = %err, "cannot read checkpoint");
                    }
                }
                let offset = match self.cursor(partition) {
                    Ok(cursor) => cursor.map_or(Offset::Beginning, |c| Offset::Offset(c.next())),
                    Err(err) => {
                        // Starting at the beginning only causes
                        // redeliveries, which the worker recognises once it
                        // can read the store again.
                        tracing::error!(topic, partition = number, error = %err, "cannot read checkpoints");
                        Offset::Beginning
                    }
                };
                tracing::info!(topic, partition = number, ?offset, "partition assigned");
                offset
            })
            .collect();
        (starts, durable)
    }

    /// The assignment failed: no partition is assigned any more.
    pub fn drop_assignment(&mut self) {
        for held in self.partitions.values_mut() {
            held.assigned = false;
        }
    }

    /// Record that `partitions` are now assigned (in addition to the
    /// others when `incremental`). Returns those of them that are stopped,
    /// to pause, and those to resume.
    pub fn assigned(
        &mut self,
        partitions: &[TopicPartition],
        incremental: bool,
        status: &ViewStatus,
    ) -> Assigned {
        if !incremental {
            for held in self.partitions.values_mut() {
                held.assigned = false;
            }
        }
        let mut restarted = Vec::new();
        for partition in partitions {
            let held = self.partition(partition);
            held.assigned = true;
            // Assigned again: its start is looked up again, and it is no
            // longer stopped for it.
            if std::mem::take(&mut held.unstartable) {
                if held.stops.is_empty() {
                    status.running(&partition.0, partition.1);
                }
                restarted.push(partition.clone());
            }
        }
        status.assignment(partitions, incremental);
        Assigned {
            stopped: partitions
                .iter()
                .filter(|p| self.fully_stopped(p))
                .cloned()
                .collect(),
            restarted,
        }
    }

    /// Give up `partitions`: commit the pending batch to the store and
    /// flush it, then forget where the partitions were, so that a later
    /// assignment resumes from the store (another runtime may apply them
    /// meanwhile). Returns the offsets to commit to Kafka before the
    /// partitions go.
    ///
    /// # Errors
    /// When the store fails; the batch then stays pending, and the
    /// worker's next commit reports it and stops the view.
    pub fn release(
        &mut self,
        partitions: &[TopicPartition],
        status: &ViewStatus,
    ) -> Result<TopicPartitionList, StoreError> {
        // Dead letters in flight get their acknowledgement first, so that
        // the offsets handed over pass as many of them as possible.
        self.drain_dead_letters(status);
        let offsets = self.commit_batch(status);
        for partition in partitions {
            status.assigned(&partition.0, partition.1, false);
            self.gaps.clear(partition);
            if let Some(held) = self.partitions.get_mut(partition) {
                // Only the stops of this run outlive the assignment.
                *held = Partition {
                    stops: std::mem::take(&mut held.stops),
                    ..Partition::default()
                };
            }
        }
        offsets
    }
}

impl<S: Store> Drop for ViewState<S> {
    /// A batch sent to the changelog and never committed (the view stopped
    /// on an error) stops every later write of the changelog, so that the
    /// dedup expiry neither waits for it nor logs positions after it.
    fn drop(&mut self) {
        if let (Some(_), Some(changelog)) = (self.sent.take(), &self.changelog) {
            changelog.abandon();
        }
    }
}

/// Lock `state`, whatever a panicking holder left behind: every field is
/// valid on its own.
pub fn lock<S: Store>(state: &Mutex<ViewState<S>>) -> MutexGuard<'_, ViewState<S>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
