//! Latency from produce to the row being visible: a producer sends events at
//! a fixed rate to a running view; each event's latency is the time from its
//! `send` to the moment the view's durable position passed its offset. That
//! is the moment the query API serves it (positions advance after the store
//! flush, and read-your-writes waits on them).
//!
//! The broker's own share is measured the same way just before, on a topic
//! of its own: the same rate for the same time, read by a plain consumer.
//! Both runs start with a warm-up (the consumer resolving its start offsets,
//! the store creating its files) that is not measured.

use projector::shutdown::{Shutdown, Stoppable};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use projector::pipeline::feed::Positions;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::input::{Generator, Workload};
use crate::kafka_runs::RunningView;
use crate::views::{self, ProjectionUser, Runner};

/// Events sent and made visible before measuring.
const WARM_UP: u64 = 200;

/// The latency at one offered load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    /// The share of the measured maximum rate offered.
    pub load: f64,
    /// Events per second offered.
    pub offered_per_second: f64,
    /// Events per second sent, as achieved by the producer.
    pub sent_per_second: f64,
    /// Events measured.
    pub events: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Maximum, in milliseconds.
    pub max_ms: f64,
    /// Median time from send to the broker's acknowledgement, in
    /// milliseconds.
    pub ack_p50_ms: f64,
    /// The broker alone at the same rate: median time from send to a plain
    /// consumer receiving the record, in milliseconds.
    pub consumer_p50_ms: f64,
    /// 99th percentile of the same.
    pub consumer_p99_ms: f64,
    /// A plain consumer of the view's own topic, reading beside the view in
    /// the same run: 99th percentile from send to it receiving the record,
    /// in milliseconds. The broker's share of the view's latency.
    pub beside_p99_ms: f64,
    /// The view's own share: per record, from the plain consumer beside it
    /// receiving the record to the view making it visible (fetch, apply,
    /// store commit and flush); median, in milliseconds.
    pub own_p50_ms: f64,
    /// 99th percentile of the view's own share, in milliseconds.
    pub own_p99_ms: f64,
}

/// Per record read by a plain consumer: partition, offset, arrival time.
type Arrivals = Arc<Mutex<Vec<(i32, i64, Instant)>>>;

/// A plain consumer on a thread of its own, noting when each record of a
/// topic arrives.
struct Reader {
    received: Arrivals,
    thread: Stoppable<()>,
}

impl Reader {
    fn start(bootstrap: &str, topic: &str, group: &str) -> anyhow::Result<Self> {
        let consumer = crate::kafka_runs::plain_consumer(bootstrap, topic, group)?;
        let received: Arrivals = Arc::default();
        let thread = {
            let received = Arc::clone(&received);
            Stoppable::spawn("plain-consumer", &Shutdown::new(), move |stop| {
                while !stop.requested() {
                    if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                        let now = Instant::now();
                        received
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((message.partition(), message.offset(), now));
                    }
                }
            })?
        };
        Ok(Self { received, thread })
    }

    fn count(&self) -> usize {
        count(&self.received)
    }

    /// Wait until `all` records arrived, stop, and return when each did.
    fn finish(self, all: usize) -> anyhow::Result<BTreeMap<(i32, i64), Instant>> {
        let arrived = wait_until(
            Duration::from_secs(120),
            "the plain consumer read everything",
            || count(&self.received) >= all,
        );
        self.thread.stop()?;
        arrived?;
        Ok(take(&self.received)
            .into_iter()
            .map(|(partition, offset, at)| ((partition, offset), at))
            .collect())
    }
}

/// Milliseconds from `from` to `to`, zero when `to` came first.
fn millis_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// When the record at `partition`/`offset` reached `arrivals`.
fn arrival(
    arrivals: &BTreeMap<(i32, i64), Instant>,
    partition: i32,
    offset: i64,
) -> anyhow::Result<Instant> {
    arrivals
        .get(&(partition, offset))
        .copied()
        .with_context(|| format!("record {partition}:{offset} never reached the plain consumer"))
}

/// Per acknowledged record: partition, offset, send time, ack time.
type Acks = Arc<Mutex<Vec<(i32, i64, Instant, Instant)>>>;

fn take<T>(shared: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner))
}

fn count<T>(shared: &Mutex<Vec<T>>) -> usize {
    shared.lock().unwrap_or_else(PoisonError::into_inner).len()
}

/// Records, per acknowledged record, its partition, offset and times.
struct AckContext {
    acks: Acks,
}

impl rdkafka::ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        if let Ok(message) = result {
            self.acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((message.partition(), message.offset(), *sent, Instant::now()));
        }
    }
}

/// A producer that notes when each record was sent and acknowledged.
struct Sender {
    producer: ThreadedProducer<AckContext>,
    acks: Acks,
    generator: Generator,
}

impl Sender {
    fn new(bootstrap: &str, workload: Workload) -> anyhow::Result<Self> {
        let acks: Acks = Arc::default();
        let producer =
            crate::kafka_runs::producer_config(bootstrap, 1).create_with_context(AckContext {
                acks: Arc::clone(&acks),
            })?;
        Ok(Self {
            producer,
            acks,
            generator: Generator::new(workload, 10_000, crate::PARTITIONS, 7),
        })
    }

    fn send_one(&mut self, topic: &str) -> anyhow::Result<()> {
        let event = self.generator.next().context("the generator is endless")?;
        let record = event.fill(BaseRecord::with_opaque_to(topic, Box::new(Instant::now())));
        if let Err((err, _)) = self.producer.send(record) {
            bail!("produce to {topic}: {err}");
        }
        Ok(())
    }

    /// Send the warm-up, wait until `visible` says it arrived, and forget
    /// its acknowledgements.
    fn warm_up(&mut self, topic: &str, visible: impl Fn() -> bool) -> anyhow::Result<()> {
        for _ in 0..WARM_UP {
            self.send_one(topic)?;
        }
        self.producer.flush(Duration::from_secs(60))?;
        wait_until(Duration::from_secs(60), "the warm-up arrived", visible)?;
        take(&self.acks);
        Ok(())
    }

    /// Send at `rate` per second for `duration`, in steps of 0.5 ms, then
    /// flush. Returns the events sent and the achieved rate.
    fn paced(&mut self, topic: &str, rate: f64, duration: Duration) -> anyhow::Result<(u64, f64)> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let total = (rate * duration.as_secs_f64()) as u64;
        let started = Instant::now();
        let mut sent = 0_u64;
        while sent < total {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let due = ((started.elapsed().as_secs_f64() * rate) as u64).min(total);
            while sent < due {
                self.send_one(topic)?;
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        #[allow(clippy::cast_precision_loss)]
        let achieved = total as f64 / started.elapsed().as_secs_f64();
        self.producer.flush(Duration::from_secs(60))?;
        Ok((total, achieved))
    }
}

/// Offer `rate` events per second for `duration`, first to a plain
/// consumer on `plain_topic`, then to a fresh wasm view of `workload` on
/// `view_topic` (both empty, `crate::PARTITIONS` partitions).
///
/// # Errors
/// When the view, the consumer or the producer fails, or an event never
/// arrives.
#[allow(clippy::too_many_arguments)]
pub fn run(
    bootstrap: &str,
    workload: Workload,
    view_topic: &str,
    plain_topic: &str,
    load: f64,
    rate: f64,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Latency> {
    let plain = plain_consumer_latencies(bootstrap, workload, plain_topic, rate, duration)?;
    let mut latency = views::with_projection(
        workload,
        Runner::Wasm,
        &dir.join("compiled"),
        Offered {
            bootstrap,
            workload,
            topic: view_topic,
            load,
            rate,
            duration,
            dir,
        },
    )?;
    latency.consumer_p50_ms = percentile(&plain, 0.5);
    latency.consumer_p99_ms = percentile(&plain, 0.99);
    Ok(latency)
}

/// Sorted milliseconds from send to a plain consumer receiving each record.
fn plain_consumer_latencies(
    bootstrap: &str,
    workload: Workload,
    topic: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Vec<f64>> {
    let reader = Reader::start(bootstrap, topic, "bench-latency-plain")?;
    let mut sender = Sender::new(bootstrap, workload)?;
    let warm = usize::try_from(WARM_UP)?;
    sender.warm_up(topic, || reader.count() >= warm)?;
    let (total, _) = sender.paced(topic, rate, duration)?;
    let arrivals = reader.finish(usize::try_from(total + WARM_UP)?)?;
    let mut latencies = take(&sender.acks)
        .iter()
        .map(|(partition, offset, sent, _)| {
            arrival(&arrivals, *partition, *offset).map(|at| millis_between(*sent, at))
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Every change of a view's durable positions, with its time, noted on a
/// thread of its own.
pub(crate) struct Observer {
    snapshots: Arc<Mutex<Vec<(Instant, Positions)>>>,
    thread: Stoppable<anyhow::Result<()>>,
}

impl Observer {
    /// Observe `positions` from now on.
    pub(crate) fn start(
        mut positions: tokio::sync::watch::Receiver<Positions>,
    ) -> anyhow::Result<Self> {
        let snapshots: Arc<Mutex<Vec<(Instant, Positions)>>> = Arc::default();
        let noted = Arc::clone(&snapshots);
        let thread = Stoppable::spawn(
            "observer",
            &Shutdown::new(),
            move |stop| -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()?;
                runtime.block_on(async {
                    while !stop.requested() {
                        let changed =
                            tokio::time::timeout(Duration::from_millis(50), positions.changed())
                                .await;
                        if let Ok(result) = changed {
                            result?;
                            let now = Instant::now();
                            let current = positions.borrow_and_update().clone();
                            noted
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push((now, current));
                        }
                    }
                    Ok(())
                })
            },
        )?;
        Ok(Self { snapshots, thread })
    }

    /// Stop observing: every change seen, in order.
    pub(crate) fn finish(self) -> anyhow::Result<Vec<(Instant, Positions)>> {
        self.thread.stop()??;
        Ok(take(&self.snapshots))
    }
}

/// Produce-to-visible at one offered rate, without the broker's share.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Visible {
    /// Events sent.
    pub events: u64,
    /// Events per second sent, as achieved by the producer.
    pub sent_per_second: f64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Maximum, in milliseconds.
    pub max_ms: f64,
}

/// Offer `rate` events of `workload` per second for `duration` to `topic`,
/// which a running view reads, and measure each one's time from its send
/// to `positions` (the view's durable positions) passing it; `durable`
/// says how many records the view has made durable in all.
///
/// # Errors
/// When the producer fails, or an event never becomes visible.
pub(crate) fn visible_latencies(
    bootstrap: &str,
    workload: Workload,
    topic: &str,
    positions: tokio::sync::watch::Receiver<Positions>,
    durable: impl Fn() -> i64,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Visible> {
    let observer = Observer::start(positions)?;
    let mut sender = Sender::new(bootstrap, workload)?;
    let before = durable();
    let (total, sent_per_second) = sender.paced(topic, rate, duration)?;
    let all = before + i64::try_from(total)?;
    let visible = wait_until(Duration::from_secs(120), "every event is visible", || {
        durable() >= all
    });
    let snapshots = observer.finish()?;
    visible?;
    let acks = take(&sender.acks);
    if acks.len() as u64 != total {
        bail!("{} of {total} records acknowledged", acks.len());
    }
    let seen = visible_at(topic, &acks, &snapshots)?;
    let mut latencies: Vec<f64> = acks
        .iter()
        .zip(&seen)
        .map(|((_, _, sent, _), seen)| millis_between(*sent, *seen))
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Visible {
        events: total,
        sent_per_second,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    })
}

struct Offered<'a> {
    bootstrap: &'a str,
    workload: Workload,
    topic: &'a str,
    load: f64,
    rate: f64,
    duration: Duration,
    dir: &'a Path,
}

impl ProjectionUser<Latency> for Offered<'_> {
    fn with<A: projector::apply::Apply + Send + 'static>(
        self,
        projection: A,
    ) -> anyhow::Result<Latency> {
        let view = RunningView::start_on(
            self.bootstrap,
            self.workload,
            self.topic,
            projection,
            self.dir,
            format!("bench-latency-{}-{}", self.topic, std::process::id()),
            None,
            1,
        )?;
        wait_until(Duration::from_secs(60), "the view joined its group", || {
            view.status
                .partitions()
                .values()
                .filter(|p| p.assigned)
                .count()
                == usize::try_from(crate::PARTITIONS).unwrap_or(0)
        })?;

        let observer = Observer::start(view.feed.positions())?;

        // A plain consumer of the same topic beside the view: when the
        // broker handed each record to a reader, under the same load.
        let beside = Reader::start(
            self.bootstrap,
            self.topic,
            &format!("bench-latency-beside-{}", std::process::id()),
        )?;
        let mut sender = Sender::new(self.bootstrap, self.workload)?;
        let warm = i64::try_from(WARM_UP)?;
        // Both readers have the warm-up before the measured records: the
        // plain one resolving its start takes as long as the view's join.
        let beside_warm = usize::try_from(WARM_UP)?;
        sender.warm_up(self.topic, || {
            view.durable() >= warm && beside.count() >= beside_warm
        })?;
        let (total, sent_per_second) = sender.paced(self.topic, self.rate, self.duration)?;
        let all = i64::try_from(total + WARM_UP)?;
        let visible = wait_until(Duration::from_secs(120), "every event is visible", || {
            view.durable() >= all
        });
        let arrivals = beside.finish(usize::try_from(all)?);
        let snapshots = observer.finish()?;
        view.stop()?;
        visible?;
        let arrivals = arrivals?;

        let acks = take(&sender.acks);
        if acks.len() as u64 != total {
            bail!("{} of {total} records acknowledged", acks.len());
        }
        let seen = visible_at(self.topic, &acks, &snapshots)?;
        let mut latencies = Vec::with_capacity(acks.len());
        let mut broker_share = Vec::with_capacity(acks.len());
        let mut own_share = Vec::with_capacity(acks.len());
        for ((partition, offset, sent, _), seen) in acks.iter().zip(&seen) {
            let read = arrival(&arrivals, *partition, *offset)?;
            latencies.push(millis_between(*sent, *seen));
            broker_share.push(millis_between(*sent, read));
            own_share.push(millis_between(read, *seen));
        }
        if let Some(prefix) = std::env::var_os(TRACE_VARIABLE) {
            let path = format!("{}-{}.csv", prefix.to_string_lossy(), self.topic);
            write_trace(&path, &acks, &seen, &arrivals)?;
        }
        for sample in [&mut latencies, &mut broker_share, &mut own_share] {
            sample.sort_by(f64::total_cmp);
        }
        let mut acked: Vec<f64> = acks
            .iter()
            .map(|(_, _, sent, acked)| {
                acked.saturating_duration_since(*sent).as_secs_f64() * 1000.0
            })
            .collect();
        acked.sort_by(f64::total_cmp);
        Ok(Latency {
            load: self.load,
            offered_per_second: self.rate,
            sent_per_second,
            events: total,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(0.0),
            ack_p50_ms: percentile(&acked, 0.5),
            consumer_p50_ms: 0.0,
            consumer_p99_ms: 0.0,
            beside_p99_ms: percentile(&broker_share, 0.99),
            own_p50_ms: percentile(&own_share, 0.5),
            own_p99_ms: percentile(&own_share, 0.99),
        })
    }
}

/// The environment variable that, when set, makes each latency level write
/// its records' timeline to `<value>-<topic>.csv`: per record its partition,
/// offset, and the milliseconds (from the first send) at which it was sent,
/// acknowledged, read by the plain consumer beside the view, and visible.
pub const TRACE_VARIABLE: &str = "PROJECTOR_BENCH_TRACE";

/// Write the timeline of every record to `path` (see [`TRACE_VARIABLE`]).
fn write_trace(
    path: &str,
    acks: &[(i32, i64, Instant, Instant)],
    seen: &[Instant],
    arrivals: &BTreeMap<(i32, i64), Instant>,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let origin = acks.first().map_or_else(Instant::now, |ack| ack.2);
    let ms = |t: Instant| t.saturating_duration_since(origin).as_secs_f64() * 1000.0;
    let mut csv = String::from("partition,offset,sent,acked,read,visible\n");
    for ((partition, offset, sent, acked), seen) in acks.iter().zip(seen) {
        let read = arrival(arrivals, *partition, *offset)?;
        let _ = writeln!(
            csv,
            "{partition},{offset},{:.2},{:.2},{:.2},{:.2}",
            ms(*sent),
            ms(*acked),
            ms(read),
            ms(*seen)
        );
    }
    std::fs::write(path, csv).with_context(|| format!("writing {path}"))
}

/// Per acknowledged record, the time of the first snapshot whose position
/// for its partition is past its offset.
fn visible_at(
    topic: &str,
    acks: &[(i32, i64, Instant, Instant)],
    snapshots: &[(Instant, Positions)],
) -> anyhow::Result<Vec<Instant>> {
    let mut by_partition: BTreeMap<i32, Vec<(i64, Instant)>> = BTreeMap::new();
    for (time, positions) in snapshots {
        for ((t, partition), next) in positions {
            if t == topic {
                by_partition
                    .entry(*partition)
                    .or_default()
                    .push((*next, *time));
            }
        }
    }
    acks.iter()
        .map(|(partition, offset, _, _)| {
            let seen = by_partition
                .get(partition)
                .and_then(|steps| {
                    let first = steps.partition_point(|(next, _)| *next <= *offset);
                    steps.get(first)
                })
                .with_context(|| {
                    format!("offset {offset} of partition {partition} never became visible")
                })?;
            Ok(seen.1)
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Wait until `done`, at most `limit`.
///
/// # Errors
/// When `limit` passes first.
pub fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            bail!("not within {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&sorted, 0.5) - 50.0).abs() < f64::EPSILON);
        assert!((percentile(&sorted, 0.99) - 99.0).abs() < f64::EPSILON);
        assert!((percentile(&[3.0], 0.99) - 3.0).abs() < f64::EPSILON);
    }

    #[test]
    fn an_offset_is_visible_once_the_position_passes_it() {
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        let snapshots = vec![
            (later(5), [(("t".to_owned(), 0), 2)].into()),
            (later(9), [(("t".to_owned(), 0), 4)].into()),
        ];
        let acks = [(0, 1, t0, t0), (0, 2, later(1), t0), (0, 3, later(2), t0)];
        let got = visible_at("t", &acks, &snapshots).unwrap();
        assert_eq!(got, vec![later(5), later(9), later(9)]);
        assert!(visible_at("t", &[(0, 4, t0, t0)], &snapshots).is_err());
    }
}
