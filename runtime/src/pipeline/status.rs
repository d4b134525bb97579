//! What a view reports about itself: counters, and per partition its
//! checkpoint, state and last error. Shared between the view's worker (which
//! writes it) and readers (status command, metrics, tests).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde::Serialize;

use super::failure::Failure;
use super::failures::{FailureOutcome, FailureRecord, Failures};
use super::ring::unix_ms_now;
use super::samples::{PartitionSample, Sample, Samples};
use super::topic_partition::TopicPartition;
use crate::shard::ShardId;

/// State of one partition of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionState {
    /// Applying events.
    Running,
    /// Halted by `on_error = "stop"`; see `last_error`.
    Stopped,
}

/// One partition of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// The next offset to apply, as committed to the store.
    pub checkpoint: Option<i64>,
    /// The partition's high watermark (the offset the next record will
    /// get), as last reported by the consumer's statistics.
    pub high_watermark: Option<i64>,
    /// The first high watermark seen after start: how far the view must
    /// apply to have caught up with what was there when it started.
    pub start_high_watermark: Option<i64>,
    /// The partition's low watermark (its earliest offset), as last
    /// reported.
    pub low_watermark: Option<i64>,
    /// True while the partition is assigned to this runtime.
    pub assigned: bool,
    /// Running or stopped.
    pub state: PartitionState,
    /// The last failure: `offset: class: message`.
    pub last_error: Option<String>,
    /// Offset gaps taken on this partition since start (proven to hold no
    /// record: compaction, transaction markers, retention).
    pub gaps: u64,
    /// The last gap taken.
    pub last_gap: Option<GapRange>,
    /// The shards stopped on this partition (`on_error = "stop"`); the
    /// other shards go on. With one shard, a stop halts the partition.
    pub stopped_shards: Vec<u32>,
}

/// Offsets `[from, to)` of a partition proven to hold no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GapRange {
    /// The first offset of the gap.
    pub from: i64,
    /// The first offset after it (the record delivered).
    pub to: i64,
}

/// Event counters of a view.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events applied (set, delete or ignore).
    pub applied: AtomicU64,
    /// Redelivered events recognised and not applied again.
    pub duplicates: AtomicU64,
    /// Copies of an applied event (same subject, `source` and `id`, any
    /// offset) not applied again, with `dedup` on.
    pub duplicates_by_id: AtomicU64,
    /// Failed events skipped (`on_error = "skip"`).
    pub skipped: AtomicU64,
    /// Failed events dead-lettered: acknowledged by the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Failed events that stopped their partition.
    pub stopped: AtomicU64,
    /// Retries of transient failures.
    pub retries: AtomicU64,
    /// Times the broker delivered past the offset due and the partition was
    /// read again from before it.
    pub refetches: AtomicU64,
    /// Offset gaps taken after reading again from before them proved that
    /// they hold no record (compacted topics, transaction markers).
    pub gaps: AtomicU64,
    /// Batches committed to the store.
    pub batches: AtomicU64,
    /// Batches sent to the changelog and committed at the next commit,
    /// their acknowledgement waited for while the next batch applied.
    pub batches_overlapped: AtomicU64,
    /// Guest log records dropped because a call logged more than
    /// `max_log_records_per_call`.
    pub guest_logs_dropped: AtomicU64,
    /// Projection instances replaced because their linear memory kept
    /// growing across calls (past the engine's recycle mark, or to the cap
    /// on a used instance, whose event then ran again on a fresh one).
    pub instances_recycled: AtomicU64,
    /// Offset commits to Kafka that the group coordinator refused or that
    /// failed on the way. The store holds the checkpoints, so a failed
    /// commit only means redeliveries for a partition's next owner.
    pub offset_commit_failures: AtomicU64,
    /// Records held in quarantine since start: the ones that failed and
    /// those held behind them.
    pub quarantined: AtomicU64,
    /// Quarantined records discarded since start (`projector view
    /// discard`): to the dead-letter topic, or dropped.
    pub discarded: AtomicU64,
    /// Errors the Kafka consumer reported to the view (brokers down, fetch
    /// errors it does not retry itself); it goes on consuming.
    pub consumer_errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterValues {
    /// Events applied.
    pub applied: u64,
    /// Redeliveries not applied again.
    pub duplicates: u64,
    /// Copies by CloudEvents identity not applied again (`dedup`).
    pub duplicates_by_id: u64,
    /// Failed events skipped.
    pub skipped: u64,
    /// Failed events dead-lettered.
    pub dead_lettered: u64,
    /// Failed events that stopped their partition.
    pub stopped: u64,
    /// Retries of transient failures.
    pub retries: u64,
    /// Refetches after the broker skipped offsets.
    pub refetches: u64,
    /// Offset gaps accepted as real.
    pub gaps: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batches whose changelog acknowledgement overlapped the next batch.
    pub batches_overlapped: u64,
    /// Guest log records dropped.
    pub guest_logs_dropped: u64,
    /// Projection instances replaced because their memory kept growing.
    pub instances_recycled: u64,
    /// Offset commits to Kafka that failed.
    pub offset_commit_failures: u64,
    /// Records held in quarantine since start.
    pub quarantined: u64,
    /// Quarantined records discarded since start.
    pub discarded: u64,
    /// Errors the Kafka consumer reported.
    pub consumer_errors: u64,
}

impl PartitionStatus {
    /// Records published and not yet applied: high watermark minus
    /// checkpoint, when both are known.
    pub fn lag(&self) -> Option<i64> {
        Some((self.high_watermark? - self.position()).max(0))
    }

    /// The next offset to apply: the checkpoint, else the earliest offset.
    fn position(&self) -> i64 {
        self.checkpoint.or(self.low_watermark).unwrap_or(0)
    }

    /// True when the view has applied everything the partition held when
    /// the view started.
    pub fn caught_up(&self) -> bool {
        self.start_high_watermark
            .is_some_and(|start| self.position() >= start)
    }
}

/// Latency and size distributions of a view, for metrics.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Seconds per `apply` call (including retries).
    pub apply_seconds: Histogram,
    /// Records per committed batch.
    pub batch_records: Histogram,
    /// Seconds per store commit and flush.
    pub flush_seconds: Histogram,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            apply_seconds: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
            batch_records: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            flush_seconds: Histogram::new(exponential_buckets(1e-4, 4.0, 10)),
        }
    }
}

/// Everything a view reports.
#[derive(Debug)]
pub struct ViewStatus {
    /// Event counters.
    pub counters: Counters,
    /// Latency and size distributions.
    pub histograms: Histograms,
    partitions: Mutex<BTreeMap<(String, i32), PartitionStatus>>,
    fatal: Mutex<Option<String>>,
    assignments: AtomicU64,
    held_dead_letters: AtomicU64,
    /// Event identities remembered now (`dedup`).
    pub(crate) identities: AtomicU64,
    /// The dedup watermark the expiry last found (`i64::MIN`: none).
    dedup_watermark: AtomicI64,
    /// Subjects and records held in quarantine now.
    quarantine: (AtomicU64, AtomicU64),
    /// Since when the view owns no partition: from its start (before it
    /// joined its group), or from the rebalance that took its last one.
    unassigned_since: Mutex<Option<Instant>>,
    /// Partitions per topic, as the client's metadata last said.
    partition_counts: Mutex<BTreeMap<String, i32>>,
    /// The brokers that have been the group's coordinator, in order (each
    /// once in a row), as the consumer's statistics showed them.
    coordinators: Mutex<Vec<i32>>,
    /// Recent figures, one a second, for charts.
    pub samples: Samples,
    /// Recent failed records.
    pub failures: Failures,
    /// The restore from the changelog under way, if one is.
    restoring: Mutex<Option<Restoring>>,
    /// Records the projection itself failed on (not those no module could
    /// apply: not a CloudEvent, no subject, held behind another).
    module_failures: AtomicU64,
    /// A standby copy's state; `None` for a view this runtime owns.
    standby: Mutex<Option<StandbyState>>,
    /// The standbys an owner heard from in its directory, with when it
    /// last read it; `None` when it does not read one.
    standbys: Mutex<Option<HeardStandbys>>,
}

/// The standby copies an owner heard from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardStandbys {
    /// How many the view's config expects (`changelog.standby_replicas`).
    pub expected: u32,
    /// Every standby's latest word.
    pub words: Vec<crate::kafka::directory::StandbyWord>,
    /// The last error reading the directory, if the last read failed.
    pub last_error: Option<String>,
}

/// How far a standby copy of a view follows its changelog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandbyState {
    /// Per shard: the offset the copy reaches and where the partition
    /// ended when it last looked.
    pub shards: BTreeMap<ShardId, (i64, i64)>,
    /// When it last looked (`None`: not yet).
    pub followed_at: Option<Instant>,
    /// The last error reading the changelog, while it retries.
    pub last_error: Option<String>,
    /// Changelog records read and applied since the start.
    pub records: u64,
    /// Why this start dropped the copy it found and copied the changelog
    /// afresh, if it did.
    pub afresh: Option<String>,
}

impl StandbyState {
    /// Changelog records the copy lacks, over every shard.
    pub fn lag(&self) -> i64 {
        self.shards
            .values()
            .map(|(at, end)| end.saturating_sub(*at).max(0))
            .sum()
    }
}

/// A restore from the changelog under way: how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restoring {
    /// When it began.
    pub started: Instant,
    /// Changelog records applied so far.
    pub records: u64,
    /// Their bytes (keys and values).
    pub bytes: u64,
    /// Records the changelog holds past where the store's copy ends, as
    /// its offsets say (compaction makes the real count lower).
    pub total: u64,
}

impl Default for Restoring {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            records: 0,
            bytes: 0,
            total: 0,
        }
    }
}

impl Restoring {
    /// Records applied per second so far.
    pub fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // A rate.
        let records = self.records as f64;
        records / self.started.elapsed().as_secs_f64().max(0.001)
    }

    /// Seconds left at the rate so far, when it can tell.
    pub fn eta_seconds(&self) -> Option<f64> {
        let rate = self.rate();
        #[allow(clippy::cast_precision_loss)] // An estimate.
        let left = self.total.saturating_sub(self.records) as f64;
        (rate > 0.0).then(|| left / rate)
    }
}

impl Default for ViewStatus {
    fn default() -> Self {
        Self {
            counters: Counters::default(),
            histograms: Histograms::default(),
            partitions: Mutex::default(),
            fatal: Mutex::default(),
            assignments: AtomicU64::default(),
            held_dead_letters: AtomicU64::default(),
            identities: AtomicU64::default(),
            dedup_watermark: AtomicI64::new(i64::MIN),
            restoring: Mutex::default(),
            quarantine: (AtomicU64::default(), AtomicU64::default()),
            unassigned_since: Mutex::new(Some(Instant::now())),
            partition_counts: Mutex::default(),
            coordinators: Mutex::default(),
            samples: Samples::default(),
            failures: Failures::default(),
            module_failures: AtomicU64::default(),
            standby: Mutex::default(),
            standbys: Mutex::default(),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl ViewStatus {
    /// Count one event of `counter`.
    pub fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        bump(counter(&self.counters));
    }

    /// The counters now.
    pub fn counters(&self) -> CounterValues {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterValues {
            applied: load(&c.applied),
            duplicates: load(&c.duplicates),
            duplicates_by_id: load(&c.duplicates_by_id),
            skipped: load(&c.skipped),
            dead_lettered: load(&c.dead_lettered),
            stopped: load(&c.stopped),
            retries: load(&c.retries),
            refetches: load(&c.refetches),
            gaps: load(&c.gaps),
            batches: load(&c.batches),
            batches_overlapped: load(&c.batches_overlapped),
            guest_logs_dropped: load(&c.guest_logs_dropped),
            instances_recycled: load(&c.instances_recycled),
            offset_commit_failures: load(&c.offset_commit_failures),
            quarantined: load(&c.quarantined),
            discarded: load(&c.discarded),
            consumer_errors: load(&c.consumer_errors),
        }
    }

    fn with_partition(&self, topic: &str, partition: i32, f: impl FnOnce(&mut PartitionStatus)) {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let status = partitions
            .entry((topic.to_owned(), partition))
            .or_insert(PartitionStatus {
                checkpoint: None,
                high_watermark: None,
                start_high_watermark: None,
                low_watermark: None,
                assigned: false,
                state: PartitionState::Running,
                last_error: None,
                gaps: 0,
                last_gap: None,
                stopped_shards: Vec::new(),
            });
        f(status);
    }

    /// Record that `(topic, partition)` is durable up to `checkpoint`.
    pub fn committed(&self, topic: &str, partition: i32, checkpoint: i64) {
        self.with_partition(topic, partition, |status| {
            status.checkpoint = Some(checkpoint);
        });
    }

    /// Record the low and high watermarks of `(topic, partition)`.
    pub fn watermarks(&self, topic: &str, partition: i32, low: Option<i64>, high: i64) {
        self.with_partition(topic, partition, |status| {
            status.high_watermark = Some(high);
            status.start_high_watermark.get_or_insert(high);
            if low.is_some() {
                status.low_watermark = low;
            }
        });
    }

    /// Record that `topic` has `count` partitions.
    pub fn partition_count(&self, topic: &str, count: i32) {
        self.partition_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), count);
    }

    /// How many partitions `topic` has, once the client's metadata said.
    pub fn partitions_of(&self, topic: &str) -> Option<i32> {
        self.partition_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied()
    }

    /// Record that `(topic, partition)` was assigned (`true`) or revoked.
    pub fn assigned(&self, topic: &str, partition: i32, assigned: bool) {
        self.with_partition(topic, partition, |status| status.assigned = assigned);
        self.note_ownership();
    }

    /// Start or end the time the view owns no partition.
    fn note_ownership(&self) {
        let owns = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .any(|p| p.assigned);
        let mut since = self
            .unassigned_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (owns, *since) {
            (true, _) => *since = None,
            (false, None) => *since = Some(Instant::now()),
            (false, Some(_)) => {}
        }
    }

    /// How long the view has owned no partition of its topics (counted from
    /// its start until it first gets one); `None` while it owns some.
    pub fn unassigned_for(&self) -> Option<Duration> {
        self.unassigned_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|since| since.elapsed())
    }

    /// Record that a rebalance gave this runtime its (possibly empty)
    /// assignment, and drop every partition not in it.
    pub fn assignment(&self, partitions: &[(String, i32)], incremental: bool) {
        bump(&self.assignments);
        if !incremental {
            let mut all = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for status in all.values_mut() {
                status.assigned = false;
            }
        }
        for (topic, partition) in partitions {
            self.assigned(topic, *partition, true);
        }
        self.note_ownership();
    }

    /// Assignments received so far: one per rebalance this view took part
    /// in.
    pub fn rebalances(&self) -> u64 {
        self.assignments.load(Ordering::Relaxed)
    }

    /// Record that broker `node` is the group's coordinator now.
    pub fn coordinator(&self, node: i32) {
        let mut seen = self
            .coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.last() != Some(&node) {
            seen.push(node);
        }
    }

    /// The brokers that have been the group's coordinator, in order.
    pub fn coordinators(&self) -> Vec<i32> {
        self.coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once the view has joined its consumer group and received an
    /// assignment (which may be empty).
    pub fn has_joined(&self) -> bool {
        self.assignments.load(Ordering::Relaxed) > 0
    }

    /// Record that offsets `[from, to)` of `(topic, partition)` were taken
    /// as a gap.
    pub fn gap(&self, topic: &str, partition: i32, from: i64, to: i64) {
        self.with_partition(topic, partition, |status| {
            status.gaps += 1;
            status.last_gap = Some(GapRange { from, to });
        });
    }

    /// Record that `partition` of `topic` runs again (a partition stopped
    /// for a reason an assignment ends); its last error stays.
    pub fn running(&self, topic: &str, partition: i32) {
        self.with_partition(topic, partition, |status| {
            status.state = PartitionState::Running;
        });
    }

    /// Record a failure on `(topic, partition)`; `stop` halts it.
    pub fn failed(&self, topic: &str, partition: i32, error: String, stop: bool) {
        self.with_partition(topic, partition, |status| {
            status.last_error = Some(error);
            if stop {
                status.state = PartitionState::Stopped;
            }
        });
    }

    /// Keep the failure of the record at `offset` of `(topic, partition)`,
    /// in `shard` (`None`: the whole partition's), and what the policy did.
    pub fn record_failure(
        &self,
        (topic, partition): (&str, i32),
        offset: i64,
        shard: Option<ShardId>,
        failure: &Failure,
        outcome: FailureOutcome,
    ) {
        if !matches!(
            failure.class.as_ref(),
            "invalid-event" | "no-subject" | "held-behind" | "dead-letter-failed"
        ) {
            self.module_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.failures.push(FailureRecord {
            unix_ms: unix_ms_now(),
            topic: topic.to_owned(),
            partition,
            offset,
            shard: shard.map(|shard| shard.0),
            class: failure.class.to_string(),
            message: failure.message.clone(),
            outcome,
        });
    }

    /// Records the projection itself failed on since start: an error,
    /// trap, deadline or limit, never a record no module could apply.
    pub fn module_failures(&self) -> u64 {
        self.module_failures.load(Ordering::Relaxed)
    }

    /// Keep a sample of the figures now, with the view's `rows`.
    pub fn take_sample(&self, rows: u64) {
        let c = self.counters();
        let partitions: Vec<PartitionSample> = self
            .held_partitions()
            .map(|((topic, partition), p)| PartitionSample {
                topic,
                partition,
                checkpoint: p.checkpoint,
                lag: p.lag(),
            })
            .collect();
        self.samples.push(Sample {
            unix_ms: unix_ms_now(),
            applied: c.applied,
            duplicates: c.duplicates,
            skipped: c.skipped,
            dead_lettered: c.dead_lettered,
            stopped: c.stopped,
            rows,
            lag: partitions.iter().filter_map(|p| p.lag).sum(),
            partitions,
        });
    }

    /// Record that `shard` stopped on `partition` of `topic`.
    pub fn shard_stopped(&self, topic: &str, partition: i32, shard: ShardId) {
        self.with_partition(topic, partition, |status| {
            if let Err(at) = status.stopped_shards.binary_search(&shard.0) {
                status.stopped_shards.insert(at, shard.0);
            }
        });
    }

    /// Record that `held` failed records wait for their dead-letter
    /// topic's acknowledgement.
    pub fn dead_letters_held(&self, held: usize) {
        self.held_dead_letters
            .store(u64::try_from(held).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Record that `subjects` subjects with `records` records in all are
    /// held in quarantine.
    pub fn quarantine_held(&self, subjects: usize, records: u64) {
        self.quarantine.0.store(
            u64::try_from(subjects).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.quarantine.1.store(records, Ordering::Relaxed);
    }

    /// Subjects and records held in quarantine now.
    pub fn quarantined(&self) -> (u64, u64) {
        (
            self.quarantine.0.load(Ordering::Relaxed),
            self.quarantine.1.load(Ordering::Relaxed),
        )
    }

    /// Failed records held for the dead-letter topic, not yet acknowledged.
    pub fn held_dead_letters(&self) -> u64 {
        self.held_dead_letters.load(Ordering::Relaxed)
    }

    /// The partitions assigned now: per partition whether it is still
    /// read (its lag above zero, or not known yet: no high watermark
    /// reported) and whether a shard of it is stopped.
    pub fn assigned_partitions(&self) -> Vec<(TopicPartition, bool, bool)> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, p)| p.assigned)
            .map(|(partition, p)| {
                (
                    partition.clone(),
                    p.lag().is_none_or(|lag| lag > 0),
                    !p.stopped_shards.is_empty(),
                )
            })
            .collect()
    }

    /// Record the dedup watermark the expiry found.
    pub fn set_dedup_watermark(&self, watermark: i64) {
        self.dedup_watermark.store(watermark, Ordering::Relaxed);
    }

    /// The dedup watermark (milliseconds since the epoch) the expiry last
    /// found: identities `keep` older are forgotten. `None` without
    /// `dedup`, or before it has read a record.
    pub fn dedup_watermark(&self) -> Option<i64> {
        Some(self.dedup_watermark.load(Ordering::Relaxed)).filter(|w| *w != i64::MIN)
    }

    /// Event identities the view remembers now (0 without `dedup`).
    pub fn identities_remembered(&self) -> u64 {
        self.identities.load(Ordering::Relaxed)
    }

    /// Record how far the restore from the changelog got (`None`: none
    /// under way).
    pub fn restoring(&self, progress: Option<Restoring>) {
        *self
            .restoring
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = progress;
    }

    /// The restore under way, if one is: rows are not served meanwhile.
    pub fn restore_progress(&self) -> Option<Restoring> {
        *self
            .restoring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Mark the view as a standby copy, or record how far it follows.
    pub fn standby(&self, state: StandbyState) {
        *self.standby.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    /// How far a standby copy follows; `None` for a view this runtime
    /// owns.
    pub fn standby_state(&self) -> Option<StandbyState> {
        self.standby
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Record the standbys the owner heard from.
    pub fn standbys_heard(&self, heard: HeardStandbys) {
        *self.standbys.lock().unwrap_or_else(PoisonError::into_inner) = Some(heard);
    }

    /// The standbys the owner heard from; `None` when it reads no
    /// directory.
    pub fn heard_standbys(&self) -> Option<HeardStandbys> {
        self.standbys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Record that the whole view stopped, and why.
    pub fn fatal(&self, error: String) {
        *self.fatal.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Why the view stopped, if it did.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every partition seen so far.
    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionStatus> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The partitions the view holds, or held and has a checkpoint of (a
    /// partition revoked by a rebalance stays with its checkpoint): what
    /// reports list.
    pub fn held_partitions(&self) -> impl Iterator<Item = ((String, i32), PartitionStatus)> {
        self.partitions()
            .into_iter()
            .filter(|(_, p)| p.assigned || p.checkpoint.is_some())
    }
}

#[cfg(test)]
mod readiness_tests {
    use super::*;

    #[test]
    fn caught_up_means_past_the_high_watermark_seen_at_start() {
        let status = ViewStatus::default();
        let partition = || status.partitions()[&("t".to_owned(), 0)].clone();
        status.assignment(&[("t".to_owned(), 0)], false);
        assert!(status.has_joined());
        assert!(!partition().caught_up(), "unknown start: not caught up");
        status.watermarks("t", 0, Some(0), 100);
        status.committed("t", 0, 60);
        assert!(!partition().caught_up());
        // New records after start do not move the goal.
        status.watermarks("t", 0, Some(0), 150);
        status.committed("t", 0, 100);
        assert!(partition().caught_up());
        assert_eq!(partition().lag(), Some(50));
    }

    #[test]
    fn the_time_without_partitions_runs_from_the_start_and_from_each_empty_assignment() {
        let status = ViewStatus::default();
        assert!(
            status.unassigned_for().is_some(),
            "not joined yet: owns none"
        );
        status.assignment(&[], false);
        assert!(status.unassigned_for().is_some());
        status.assignment(&[("t".to_owned(), 0)], true);
        assert_eq!(status.unassigned_for(), None);
        status.assigned("t", 0, false);
        assert!(status.unassigned_for().is_some());
    }

    #[test]
    fn an_empty_or_truncated_partition_counts_from_its_low_watermark() {
        let status = ViewStatus::default();
        status.watermarks("t", 1, Some(40), 40);
        assert!(status.partitions()[&("t".to_owned(), 1)].caught_up());
        status.assignment(&[("t".to_owned(), 2)], false);
        assert!(!status.partitions()[&("t".to_owned(), 1)].assigned);
        assert!(status.partitions()[&("t".to_owned(), 2)].assigned);
    }
}
