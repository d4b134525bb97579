//! The runs against the real broker (tansu on loopback): filling a topic,
//! the raw consumer, and the view end to end with real durable commits.

use projector::shutdown::{Shutdown, Stoppable};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use projector::apply::Apply;
use projector::config::BrokerConfig;
use projector::pipeline::{BatchLimits, ViewStatus, Worker};
use projector::store::SledStore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::input::{Generator, Input, MALFORMED_EVERY, Workload};
use crate::views::{self, ProjectionUser, Runner};

/// The broker settings of every client here: the broker's address and
/// librdkafka's defaults, as an operator's config would have them.
pub fn broker_config(bootstrap: &str) -> BrokerConfig {
    BrokerConfig {
        bootstrap_servers: bootstrap.to_owned(),
        ..BrokerConfig::default()
    }
}

/// A producer for the benchmark's input: batched, as a real producer is.
///
/// # Errors
/// When the client cannot be created.
pub fn producer(
    bootstrap: &str,
    linger_ms: u32,
) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    Ok(producer_config(bootstrap, linger_ms).create()?)
}

/// The settings of the benchmark's producers: `linger_ms` of batching, a
/// deep queue, no idempotence (one producer, no retries to order).
pub fn producer_config(bootstrap: &str, linger_ms: u32) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("enable.idempotence", "false");
    config
}

/// A consumer with a view's consumer settings, in `group`, assigned every
/// partition of `topic` from the beginning (no group join to wait for).
///
/// # Errors
/// When the client cannot be created or assigned.
pub fn plain_consumer(bootstrap: &str, topic: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer =
        projector::kafka::consumer_config(&broker_config(bootstrap), group, None)
            .create()
            .context("plain consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..crate::PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Send one generated event with `producer`, waiting while its queue is
/// full.
///
/// # Errors
/// When the producer refuses the record for another reason.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    event: &crate::input::Generated,
) -> anyhow::Result<()> {
    send_record(producer, topic, event.fill(BaseRecord::to(topic)))
}

/// Produce `record`, waiting while the client's queue is full.
fn send_record(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                returned,
            )) => {
                std::thread::sleep(Duration::from_millis(1));
                record = returned;
            }
            Err((err, _)) => bail!("produce to {topic}: {err}"),
        }
    }
}

/// The producer `input` is written with: the clean input's batching
/// producer, or an application's (idempotent, `acks=all`, `linger.ms = 5`).
///
/// # Errors
/// When the client cannot be created.
pub fn input_producer(
    bootstrap: &str,
    input: Input,
) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    let mut config = match input {
        Input::Clean => producer_config(bootstrap, 20),
        Input::Application => producer_config(bootstrap, 5),
    };
    if input == Input::Application {
        config.set("enable.idempotence", "true").set("acks", "all");
    }
    Ok(config.create()?)
}

/// Fill `input`'s topic of `workload` with `events` generated events over
/// `subjects` subjects. Returns how many malformed records went in besides
/// (one before every [`MALFORMED_EVERY`]th event of an application's
/// input).
///
/// # Errors
/// When producing fails.
pub fn fill(
    bootstrap: &str,
    workload: Workload,
    input: Input,
    events: u64,
    subjects: u64,
) -> anyhow::Result<u64> {
    let producer = input_producer(bootstrap, input)?;
    let topic = input.topic(workload);
    let mut generator = Generator::new(workload, subjects, crate::PARTITIONS, 42);
    if input == Input::Application {
        generator = generator.misplacing_odd_subjects();
    }
    let mut malformed = 0;
    for (n, event) in (0_u64..).zip(generator.take(usize::try_from(events)?)) {
        if input == Input::Application && n % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
            send_malformed(&producer, &topic, event.partition)?;
            malformed += 1;
        }
        send(&producer, &topic, &event)?;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the input")?;
    Ok(malformed)
}

/// Produce a record that is no CloudEvent (no `ce_*` headers, no
/// structured content type) to `partition` of `topic`.
fn send_malformed(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
) -> anyhow::Result<()> {
    let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
        .partition(partition)
        .key(b"legacy".as_slice())
        .payload(b"{\"not\":\"a cloud event\"}".as_slice());
    send_record(producer, topic, record)
}

/// What the raw consumer measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RawConsume {
    /// The input read.
    pub input: Input,
    /// Records read.
    pub events: u64,
    /// Bytes of values read.
    pub value_bytes: u64,
    /// From the first record to the last.
    pub seconds: f64,
    /// Records per second.
    pub events_per_second: f64,
}

/// Read `topic` from the beginning with a plain rdkafka consumer (the
/// settings a view's consumer has), touching each value, until `events`
/// records were read.
///
/// # Errors
/// When the consumer fails or stalls for 60 s.
pub fn raw_consume(
    bootstrap: &str,
    input: Input,
    topic: &str,
    events: u64,
) -> anyhow::Result<RawConsume> {
    let consumer = plain_consumer(bootstrap, topic, &format!("bench-raw-{}", input.name()))?;
    let mut read = 0_u64;
    let mut value_bytes = 0_u64;
    let mut first = None;
    let mut last_progress = Instant::now();
    while read < events {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Instant::now);
                value_bytes += message.payload().map_or(0, |value| value.len() as u64);
                read += 1;
                last_progress = Instant::now();
            }
            Some(Err(err)) => bail!("raw consumer: {err}"),
            None if last_progress.elapsed() > Duration::from_secs(60) => {
                bail!("raw consumer: {read} of {events} records after 60 s without progress")
            }
            None => {}
        }
    }
    let seconds = first.map_or(0.0, |first| first.elapsed().as_secs_f64());
    #[allow(clippy::cast_precision_loss)]
    let events_per_second = events as f64 / seconds;
    Ok(RawConsume {
        input,
        events,
        value_bytes,
        seconds,
        events_per_second,
    })
}

/// What one end-to-end run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndToEnd {
    /// The view.
    pub view: Workload,
    /// How its projection ran.
    pub runner: Runner,
    /// The input it read.
    pub input: Input,
    /// Events applied and durable.
    pub events: u64,
    /// Malformed records dead-lettered besides (acknowledged).
    pub dead_lettered: u64,
    /// From the first record applied to the last one durable.
    pub seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
    /// Batches committed.
    pub batches: u64,
    /// Threads applying its shards (1: the worker applies them itself).
    pub threads: usize,
}

/// Run the view of `workload` over its topic on the broker, in a fresh
/// store under `dir`, with its own consumer group, until all `events` are
/// durable.
///
/// # Errors
/// When the view fails, loses or skips anything, or stalls for 60 s.
pub fn end_to_end(
    bootstrap: &str,
    workload: Workload,
    runner: Runner,
    input: (Input, u64),
    (events, threads): (u64, usize),
    dir: &Path,
) -> anyhow::Result<EndToEnd> {
    views::with_projection(
        workload,
        runner,
        &dir.join("compiled"),
        ViewRun {
            bootstrap,
            workload,
            runner,
            input: input.0,
            malformed: input.1,
            events,
            threads,
            dir,
        },
    )
}

/// Runs so far that dead-lettered into each topic, in this process.
static RUNS_INTO: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

/// Every origin (`projector-error-topic/partition/offset`) named by a
/// record of `topic`, with how many records name it: the whole topic,
/// every partition read from its start by a plain consumer until nothing
/// came for 3 s. (Not up to the high watermark: tansu 0.6 reports the high
/// watermark as the last batch's first offset plus one, so a read that
/// stops there misses the rest of the last batch.)
///
/// # Errors
/// When the topic cannot be read.
fn origins_in(
    bootstrap: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<(String, String, String), u64>> {
    use rdkafka::message::Headers;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("bench-dlq-check-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut origins = BTreeMap::new();
    // Up to 10 s for the first record, then until nothing came for 3 s.
    let mut idle = Instant::now();
    let mut quiet = Duration::from_secs(10);
    while idle.elapsed() < quiet {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        quiet = Duration::from_secs(3);
        let message = message?;
        idle = Instant::now();
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        *origins
            .entry((
                header("projector-error-topic"),
                header("projector-error-partition"),
                header("projector-error-offset"),
            ))
            .or_insert(0) += 1;
    }
    Ok(origins)
}

/// The dead-letter topic of `input`'s view of `workload`, when it has one.
pub fn dead_letter_topic(workload: Workload, input: Input) -> Option<String> {
    (input == Input::Application).then(|| format!("{}-dlq", input.topic(workload)))
}

struct ViewRun<'a> {
    bootstrap: &'a str,
    workload: Workload,
    runner: Runner,
    input: Input,
    malformed: u64,
    events: u64,
    threads: usize,
    dir: &'a Path,
}

/// A view running on its own thread against the broker.
#[derive(Debug)]
pub struct RunningView {
    /// Its status.
    pub status: Arc<ViewStatus>,
    /// Its feed, for positions.
    pub feed: Arc<projector::pipeline::feed::ViewFeed>,
    thread: Option<Stoppable<Result<(), projector::pipeline::PipelineError>>>,
}

impl RunningView {
    /// Start the view of `workload` on `topic` with `projection`, its rows
    /// in a fresh store in `dir`, in consumer group `group`.
    ///
    /// # Errors
    /// When the store or the consumer cannot be opened.
    #[allow(clippy::too_many_arguments)]
    pub fn start_on<A: Apply + Send + 'static>(
        bootstrap: &str,
        workload: Workload,
        topic: &str,
        projection: A,
        dir: &Path,
        group: String,
        dead_letter_topic: Option<String>,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let store = Arc::new(SledStore::open(&dir.join("store"))?);
        let status = Arc::new(ViewStatus::default());
        let mut config = views::config(workload)?;
        config.group = Some(group);
        config.topics = vec![topic.to_owned()];
        if let Some(topic) = dead_letter_topic {
            config.on_error = projector::config::OnError::DeadLetter;
            config.dead_letter_topic = Some(topic);
        }
        let (worker, consumer) = Worker::new(
            &broker_config(bootstrap),
            config,
            projection,
            store,
            Arc::clone(&status),
            BatchLimits::default(),
        )?;
        let worker = worker.parallel(threads)?;
        let feed = worker.feed();
        let thread = Stoppable::spawn(
            format!("view-{}", workload.name()),
            &Shutdown::new(),
            move |shutdown| worker.run(&consumer, shutdown),
        )?;
        Ok(Self {
            status,
            feed,
            thread: Some(thread),
        })
    }

    /// Records durable so far, over all partitions.
    pub fn durable(&self) -> i64 {
        self.status
            .partitions()
            .values()
            .filter_map(|p| p.checkpoint)
            .sum()
    }

    /// Stop the view and report how it ended.
    ///
    /// # Errors
    /// When the view failed.
    pub fn stop(mut self) -> anyhow::Result<()> {
        match self.thread.take().map(Stoppable::stop) {
            Some(result) => Ok(result??),
            None => Ok(()),
        }
    }
}

impl Drop for RunningView {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.stop();
        }
    }
}

impl ProjectionUser<EndToEnd> for ViewRun<'_> {
    fn with<A: Apply + Send + 'static>(self, projection: A) -> anyhow::Result<EndToEnd> {
        let group = format!(
            "bench-{}-{:?}-{}-{}t-{}",
            self.workload.name(),
            self.runner,
            self.input.name(),
            self.threads,
            std::process::id()
        );
        let letters_topic = dead_letter_topic(self.workload, self.input);
        let view = RunningView::start_on(
            self.bootstrap,
            self.workload,
            &self.input.topic(self.workload),
            projection,
            self.dir,
            group,
            letters_topic.clone(),
            self.threads,
        )?;
        // Every record's offset is durable: events and malformed records.
        let target = i64::try_from(self.events + self.malformed)?;
        let mut first = None;
        let mut last_progress = (Instant::now(), 0);
        loop {
            let applied = view.status.counters().applied;
            if applied > 0 {
                first.get_or_insert_with(Instant::now);
            }
            let durable = view.durable();
            // Done when every record is durable and every dead letter
            // acknowledged.
            if durable >= target && view.status.counters().dead_lettered >= self.malformed {
                break;
            }
            if durable > last_progress.1 {
                last_progress = (Instant::now(), durable);
            } else if last_progress.0.elapsed() > Duration::from_secs(60) {
                bail!(
                    "view {}: {durable} of {target} records durable after 60 s without progress ({:?}; {:?})",
                    self.workload.name(),
                    view.status.counters(),
                    view.status.fatal_error()
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let seconds = first.map_or(0.0, |first| first.elapsed().as_secs_f64());
        let counters = view.status.counters();
        view.stop()?;
        if counters.applied != self.events
            || counters.gaps > 0
            || counters.skipped > 0
            || counters.dead_lettered != self.malformed
        {
            bail!(
                "view {}: {} of {} applied, {} of {} dead-lettered, {} gaps, {} skipped: the run is void",
                self.workload.name(),
                counters.applied,
                self.events,
                counters.dead_lettered,
                self.malformed,
                counters.gaps,
                counters.skipped
            );
        }
        // What left the process, read back by a plain consumer, not the
        // view's counter: every run of this input wrote each malformed
        // record once, so after the n-th each origin is there n times.
        if let Some(topic) = &letters_topic {
            let runs = {
                let mut runs = RUNS_INTO
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let runs = runs.entry(topic.clone()).or_insert(0);
                *runs += 1;
                *runs
            };
            let origins = origins_in(self.bootstrap, topic)?;
            let wrong: Vec<_> = origins
                .iter()
                .filter(|(_, n)| **n != runs)
                .take(5)
                .collect();
            if u64::try_from(origins.len())? != self.malformed || !wrong.is_empty() {
                bail!(
                    "view {}: after {runs} runs the dead-letter topic {topic} names {} origins for {} malformed records (each should be there {runs} times; not so: {wrong:?}): the run is void",
                    self.workload.name(),
                    origins.len(),
                    self.malformed
                );
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let events_per_second = self.events as f64 / seconds;
        Ok(EndToEnd {
            view: self.workload,
            runner: self.runner,
            input: self.input,
            events: self.events,
            dead_lettered: counters.dead_lettered,
            seconds,
            events_per_second,
            batches: counters.batches,
            threads: self.threads,
        })
    }
}
