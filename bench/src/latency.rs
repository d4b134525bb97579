//! Latency from produce to the row being visible: a producer sends events at
//! a fixed rate to a running view; each event's latency is the time from its
//! `send` to the moment the view's durable position passed its offset. That
//! is the moment the query API serves it (positions advance after the store
//! flush, and read-your-writes waits on them).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use projector::pipeline::feed::Positions;
use rdkafka::ClientConfig;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::input::{Generator, Workload};
use crate::kafka_runs::RunningView;
use crate::views::{self, ProjectionUser, Runner};

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
    /// milliseconds: the part of the latency before the view can see it.
    pub ack_p50_ms: f64,
}

/// Per acknowledged record: partition, offset, send time, ack time.
type Acks = Arc<Mutex<Vec<(i32, i64, Instant, Instant)>>>;

/// Records, per acknowledged record, its partition, offset and send time.
struct AckContext {
    acks: Acks,
}

impl rdkafka::ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        if let Ok(message) = result {
            use rdkafka::message::Message;
            self.acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((message.partition(), message.offset(), *sent, Instant::now()));
        }
    }
}

/// Offer `rate` events per second to a fresh wasm view of `workload` on
/// `topic` (empty, `crate::PARTITIONS` partitions) for `duration`.
///
/// # Errors
/// When the view or the producer fails, or not every event becomes visible.
pub fn run(
    bootstrap: &str,
    workload: Workload,
    topic: &str,
    load: f64,
    rate: f64,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Latency> {
    views::with_projection(
        workload,
        Runner::Wasm,
        &dir.join("compiled"),
        Offered {
            bootstrap,
            workload,
            topic,
            load,
            rate,
            duration,
            dir,
        },
    )
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
        )?;
        wait_until(Duration::from_secs(60), "the view joined its group", || {
            view.status
                .partitions()
                .values()
                .filter(|p| p.assigned)
                .count()
                == usize::try_from(crate::PARTITIONS).unwrap_or(0)
        })?;

        // Every change of the durable positions, with its time.
        let snapshots: Arc<Mutex<Vec<(Instant, Positions)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let observer = {
            let mut positions = view.feed.positions();
            let snapshots = Arc::clone(&snapshots);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()?;
                runtime.block_on(async {
                    while !stop.load(Ordering::Relaxed) {
                        let changed =
                            tokio::time::timeout(Duration::from_millis(50), positions.changed())
                                .await;
                        if let Ok(result) = changed {
                            result?;
                            let now = Instant::now();
                            let current = positions.borrow_and_update().clone();
                            snapshots
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push((now, current));
                        }
                    }
                    Ok(())
                })
            })
        };

        let acks: Acks = Arc::default();
        let producer: ThreadedProducer<AckContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap)
            .set("linger.ms", "1")
            .set("enable.idempotence", "false")
            .create_with_context(AckContext {
                acks: Arc::clone(&acks),
            })?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let total = (self.rate * self.duration.as_secs_f64()) as u64;
        let started = Instant::now();
        let mut generator = Generator::new(self.workload, 10_000, crate::PARTITIONS, 7);
        let mut sent = 0_u64;
        while sent < total {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let due = ((started.elapsed().as_secs_f64() * self.rate) as u64).min(total);
            while sent < due {
                let event = generator.next().context("the generator is endless")?;
                let headers = event.headers();
                let record = BaseRecord::with_opaque_to(self.topic, Box::new(Instant::now()))
                    .partition(event.partition)
                    .key(event.subject.as_bytes())
                    .payload(event.data.as_slice())
                    .headers(headers);
                if let Err((err, _)) = producer.send::<[u8], [u8]>(record) {
                    bail!("produce: {err}");
                }
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let sending = started.elapsed().as_secs_f64();
        producer.flush(Duration::from_secs(60))?;
        let target = i64::try_from(total)?;
        wait_until(Duration::from_secs(120), "every event is visible", || {
            view.durable() >= target
        })?;
        stop.store(true, Ordering::Relaxed);
        observer
            .join()
            .map_err(|_| anyhow::anyhow!("the observer panicked"))??;
        view.stop()?;

        let snapshots =
            std::mem::take(&mut *snapshots.lock().unwrap_or_else(PoisonError::into_inner));
        let acks = std::mem::take(&mut *acks.lock().unwrap_or_else(PoisonError::into_inner));
        if acks.len() as u64 != total {
            bail!("{} of {total} records acknowledged", acks.len());
        }
        let mut latencies = latencies(self.topic, &acks, &snapshots)?;
        latencies.sort_by(f64::total_cmp);
        let mut acked: Vec<f64> = acks
            .iter()
            .map(|(_, _, sent, acked)| {
                acked.saturating_duration_since(*sent).as_secs_f64() * 1000.0
            })
            .collect();
        acked.sort_by(f64::total_cmp);
        #[allow(clippy::cast_precision_loss)]
        let sent_per_second = total as f64 / sending;
        Ok(Latency {
            load: self.load,
            offered_per_second: self.rate,
            sent_per_second,
            events: total,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(0.0),
            ack_p50_ms: percentile(&acked, 0.5),
        })
    }
}

/// Per acknowledged record, milliseconds from send to the first snapshot
/// whose position for its partition is past its offset.
fn latencies(
    topic: &str,
    acks: &[(i32, i64, Instant, Instant)],
    snapshots: &[(Instant, Positions)],
) -> anyhow::Result<Vec<f64>> {
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
        .map(|(partition, offset, sent, _)| {
            let seen = by_partition
                .get(partition)
                .and_then(|steps| {
                    let first = steps.partition_point(|(next, _)| *next <= *offset);
                    steps.get(first)
                })
                .with_context(|| {
                    format!("offset {offset} of partition {partition} never became visible")
                })?;
            Ok(seen.1.saturating_duration_since(*sent).as_secs_f64() * 1000.0)
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
        let got = latencies("t", &acks, &snapshots).unwrap();
        assert_eq!(got, vec![5.0, 8.0, 7.0]);
        assert!(latencies("t", &[(0, 4, t0, t0)], &snapshots).is_err());
    }
}
