//! The engine-only run: the view's real worker fed from memory, with no
//! broker, so that decode, apply and the store (one atomic sled batch and
//! one flush per 1,000 records, as in production) are measured alone.
//!
//! Input is generated in chunks outside the timed part; only the worker's
//! own calls are timed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use projector::apply::Apply;
use projector::pipeline::{BatchLimits, Source, TopicPartition, ViewStatus, Worker};
use projector::store::{SledStore, ViewStore};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::input::{Generator, Workload};
use crate::views::{self, ProjectionUser};

/// Records are handed over in order, so the worker never needs to seek
/// back or pause; if it asks, the run is void.
#[derive(Debug, Default)]
pub struct MemorySource {
    /// Where the worker started each partition, by partition.
    starts: RefCell<BTreeMap<i32, i64>>,
    seeks: Cell<u64>,
    pauses: Cell<u64>,
    commits: Cell<u64>,
}

impl Source for MemorySource {
    fn take_partitions(
        &self,
        assignment: &[(TopicPartition, Offset)],
        _incremental: bool,
    ) -> Result<(), KafkaError> {
        let mut starts = self.starts.borrow_mut();
        for ((_, partition), offset) in assignment {
            let start = match offset {
                Offset::Offset(next) => *next,
                _ => 0,
            };
            starts.insert(*partition, start);
        }
        Ok(())
    }

    fn drop_partitions(&self, _: &[TopicPartition], _: bool) -> Result<(), KafkaError> {
        Ok(())
    }

    fn seek(&self, _topic: &str, _partition: i32, _offset: i64) -> Result<(), KafkaError> {
        self.seeks.set(self.seeks.get() + 1);
        Ok(())
    }

    fn pause(&self, _topic: &str, _partition: i32) -> Result<(), KafkaError> {
        self.pauses.set(self.pauses.get() + 1);
        Ok(())
    }

    fn resume(&self, _topic: &str, _partition: i32) -> Result<(), KafkaError> {
        Ok(())
    }

    fn low_watermark(&self, _topic: &str, _partition: i32) -> Result<i64, KafkaError> {
        Ok(0)
    }

    fn commit_offsets(&self, _offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        self.commits.set(self.commits.get() + 1);
        Ok(())
    }

    fn commit_offsets_now(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        self.commit_offsets(offsets)
    }
}

/// What one engine-only run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineRun {
    /// Events applied.
    pub events: u64,
    /// Time spent in the worker.
    pub seconds: f64,
    /// Events per second (one worker thread: per core).
    pub events_per_second: f64,
    /// Rows in the view at the end.
    pub rows: u64,
    /// Batches committed (each flushed).
    pub batches: u64,
    /// Of `seconds`, the time spent committing batches to the store and
    /// flushing them.
    pub commit_seconds: f64,
    /// Average stored size of a row (JSON and metadata), over up to 1,000
    /// rows.
    pub row_bytes: usize,
    /// Threads applying the view's shards (1: the worker applies them).
    pub threads: usize,
    /// Deduplication by CloudEvents identity was on (the default `keep`).
    pub dedup: bool,
    /// The store's size on disk at the end, in bytes.
    pub disk_bytes: u64,
    /// With dedup, the memory its index of identities holds at the end,
    /// in bytes.
    pub dedup_index_bytes: usize,
}

/// Apply `events` generated events over `subjects` subjects to a fresh
/// view in `dir` (a sled store at `dir/store`, as `projector run` keeps
/// it), with the projection `runner` says.
///
/// # Errors
/// When the store or the projection fails, or an event is not applied.
pub fn run(
    workload: Workload,
    runner: views::Runner,
    events: u64,
    subjects: u64,
    threads: usize,
    dedup: bool,
    dir: &Path,
) -> anyhow::Result<EngineRun> {
    views::with_projection(
        workload,
        runner,
        &dir.join("compiled"),
        Feed {
            workload,
            events,
            subjects,
            threads,
            dedup,
            dir,
        },
    )
}

struct Feed<'a> {
    workload: Workload,
    events: u64,
    subjects: u64,
    threads: usize,
    dedup: bool,
    dir: &'a Path,
}

impl ProjectionUser<EngineRun> for Feed<'_> {
    fn with<A: Apply + Send + 'static>(self, projection: A) -> anyhow::Result<EngineRun> {
        const CHUNK: u64 = 10_000;
        let topic = self.workload.name();
        let store = Arc::new(SledStore::open(&self.dir.join("store"))?);
        let status = Arc::new(ViewStatus::default());
        let source = MemorySource::default();
        // As many shards as partitions, as a new view of the topic gets.
        let mut config = crate::views::config(self.workload)?;
        config.shards = u32::try_from(crate::PARTITIONS).ok();
        if self.dedup {
            config.dedup = Some(projector::config::DedupConfig {
                by: "source-id".to_owned(),
                keep: projector_sdk::dedup::Window::DEFAULT_KEEP.to_owned(),
                time: "record".to_owned(),
            });
        }
        let mut worker = Worker::open(
            config,
            projection,
            Arc::clone(&store),
            Arc::clone(&status),
            BatchLimits::default(),
            projector::pipeline::policy::ErrorPolicy::Stop,
        )?
        .parallel(self.threads)?;
        let partitions: Vec<_> = (0..crate::PARTITIONS)
            .map(|p| (topic.to_owned(), p))
            .collect();
        worker.assign(&source, &partitions, false);
        let starts = source.starts.borrow().clone();
        let mut offsets = (0..crate::PARTITIONS)
            .map(|p| {
                starts
                    .get(&p)
                    .copied()
                    .with_context(|| format!("the worker did not take partition {p}"))
            })
            .collect::<anyhow::Result<Vec<i64>>>()?;
        let mut generator = Generator::new(self.workload, self.subjects, crate::PARTITIONS, 42);
        let mut spent = Duration::ZERO;
        let mut commit_spent = Duration::ZERO;
        let mut left = self.events;
        while left > 0 {
            let chunk: Vec<_> = generator
                .by_ref()
                .take(usize::try_from(left.min(CHUNK))?)
                .map(|event| {
                    let slot = &mut offsets[usize::try_from(event.partition).unwrap_or(0)];
                    let record = event.record(topic, *slot);
                    *slot += 1;
                    record
                })
                .collect();
            left -= chunk.len() as u64;
            let started = Instant::now();
            for record in &chunk {
                worker.handle(&source, record)?;
                let committing = Instant::now();
                worker.commit_if_due(&source)?;
                commit_spent += committing.elapsed();
            }
            // With applier threads, what they still apply belongs to this
            // chunk's time, not to the next chunk's generation.
            let committing = Instant::now();
            worker.commit(&source)?;
            commit_spent += committing.elapsed();
            spent += started.elapsed();
        }
        let started = Instant::now();
        worker.commit(&source)?;
        spent += started.elapsed();
        commit_spent += started.elapsed();
        let counters = status.counters();
        if source.seeks.get() > 0 || source.pauses.get() > 0 {
            bail!(
                "the worker sought back {} times and paused {} times on in-order input",
                source.seeks.get(),
                source.pauses.get()
            );
        }
        if counters.applied != self.events {
            bail!(
                "{} of {} events applied ({counters:?})",
                counters.applied,
                self.events
            );
        }
        let seconds = spent.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // Event counts are far below 2^52.
        let events_per_second = self.events as f64 / seconds;
        let rows = worker.rows();
        let sample = rows.scan("", None, 1000).context("sampling rows")?;
        let row_bytes = sample
            .iter()
            .map(|(_, row)| row.json.len() + row.last_event_id.len() + 13)
            .sum::<usize>()
            / sample.len().max(1);
        let remembered = rows.identities(i64::MIN)?.len() as u64;
        if self.dedup && remembered != self.events {
            bail!(
                "{remembered} identities remembered for {} events",
                self.events
            );
        }
        let row_count = rows.row_count();
        let dedup_index_bytes = worker.dedup().map_or(0, |dedup| dedup.index_bytes());
        Ok(EngineRun {
            dedup_index_bytes,
            dedup: self.dedup,
            disk_bytes: crate::system::disk_bytes(&self.dir.join("store")),
            events: self.events,
            seconds,
            events_per_second,
            rows: row_count,
            batches: counters.batches,
            commit_seconds: commit_spent.as_secs_f64(),
            row_bytes,
            threads: self.threads,
        })
    }
}
