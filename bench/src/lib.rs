//! The end-to-end benchmark of projector, in one run: the raw consumer, the
//! views end to end on a real broker (tansu on loopback), the same views
//! with their projections compiled natively, the pipeline fed from memory,
//! produce-to-visible latency at fractions of the maximum rate, cost at
//! growing view sizes, restart time of the binary after a SIGKILL, and the
//! store's own bound. Ratios taken in one run count more than absolute
//! figures on a shared machine.
//!
//! # Layout
//! - `input`: the deterministic CloudEvents;
//! - `views`: the views and their projections (wasm or native);
//! - `kafka_runs`: filling topics, the raw consumer, end to end;
//! - `memory`: the engine-only run (the worker fed from memory);
//! - `store_bound`: raw sled read-modify-write;
//! - `latency`: produce to visible at an offered rate;
//! - `deploy`: a shadow built beside a live view under load;
//! - `scale`: cost against view size, one child process per size;
//! - `restart`: the binary's start to ready after SIGKILL;
//! - `system`: the machine, peak memory, disk use;
//! - `report`: the figures, ratios, table and JSON.

pub mod changelog;
pub mod deploy;
pub mod input;
pub mod kafka_runs;
pub mod latency;
pub mod memory;
pub mod report;
pub mod restart;
pub mod scale;
pub mod store_bound;
pub mod system;
pub mod views;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use projector_tansu::Tansu;

use input::{Input, Workload};
use report::{EngineOnly, Results};
use views::Runner;

/// Partitions of every topic (and shards of every view).
pub const PARTITIONS: i32 = 4;

/// The applier thread counts the main view is measured with.
pub const SHARD_THREADS: [usize; 3] = [1, 2, 4];

/// Which broker the Kafka parts run against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerKind {
    /// tansu on loopback, in a process of its own: a real broker.
    #[default]
    Tansu,
    /// librdkafka's mock cluster in this process: memory only, so that the
    /// broker's share of a latency is small and projector's own shows.
    Mock,
}

/// A running broker of either kind.
enum Broker {
    Tansu(Tansu),
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
}

impl Broker {
    fn start(kind: BrokerKind) -> anyhow::Result<Self> {
        Ok(match kind {
            BrokerKind::Tansu => Self::Tansu(Tansu::start()?),
            BrokerKind::Mock => Self::Mock(
                rdkafka::mocking::MockCluster::new(1).context("starting the mock cluster")?,
            ),
        })
    }

    fn bootstrap(&self) -> String {
        match self {
            Self::Tansu(tansu) => tansu.bootstrap(),
            Self::Mock(cluster) => cluster.bootstrap_servers(),
        }
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        match self {
            Self::Tansu(tansu) => tansu.create_topic(topic, partitions)?,
            Self::Mock(cluster) => cluster
                .create_topic(topic, partitions, 1)
                .with_context(|| format!("creating {topic} on the mock cluster"))?,
        }
        Ok(())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events per throughput run.
    pub events: u64,
    /// Distinct subjects in the throughput runs.
    pub subjects: u64,
    /// View sizes (distinct subjects) for the scaling runs.
    pub scales: Vec<u64>,
    /// Seconds of offered load per latency level.
    pub latency_seconds: f64,
    /// The `projector` binary, for the restart run; default next to this
    /// one.
    pub projector: Option<PathBuf>,
    /// Where the runs keep their data; removed at the end.
    pub work_dir: PathBuf,
    /// The command line, for the record.
    pub command: String,
    /// Only these parts (all when empty).
    pub only: Vec<Part>,
    /// The stored row size for the store bound when the engine-only run,
    /// which measures it, is left out.
    pub store_row_bytes: Option<usize>,
    /// The maximum rate the latency levels are fractions of, when the end
    /// to end run, which measures it, is left out.
    pub latency_base_rate: Option<f64>,
    /// The broker of the Kafka parts (the restart part always runs on
    /// tansu).
    pub broker: BrokerKind,
    /// Rows of the view the changelog part restores (two events each).
    pub changelog_rows: u64,
    /// Events the deploy part's shadow replays.
    pub deploy_events: u64,
}

/// A part of the run, to run alone while working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The plain consumer.
    Raw,
    /// The views end to end.
    EndToEnd,
    /// The views fed from memory.
    Engine,
    /// Raw sled.
    Store,
    /// Produce to visible.
    Latency,
    /// Cost against view size.
    Scaling,
    /// Restart after SIGKILL (on the largest scale).
    Restart,
    /// Deduplication by CloudEvents identity, off against on (engine only).
    Dedup,
    /// The changelog off against on end to end, and a restore from it
    /// against a replay.
    Changelog,
    /// A shadow built beside a live view at half its maximum load.
    Deploy,
}

impl Options {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }
}

/// Print what is being measured, to stderr, so that a long run shows
/// progress.
pub(crate) fn step(what: &str) {
    eprintln!("projector-bench: {what}");
}

/// Run every measurement.
///
/// # Errors
/// When a measurement fails: a void run is an error, never a figure.
pub fn run(options: &Options) -> anyhow::Result<Results> {
    let work = &options.work_dir;
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let dir = |name: &str| -> PathBuf { work.join(name) };
    let (events, subjects) = (options.events, options.subjects);

    // Inputs taken from other parts: refuse at once, not after minutes.
    if options.runs(Part::Store) && !options.runs(Part::Engine) && options.store_row_bytes.is_none()
    {
        anyhow::bail!(
            "the store bound needs the stored row size: run the engine part too, or give --store-row-bytes"
        );
    }
    if options.runs(Part::Latency)
        && !options.runs(Part::EndToEnd)
        && options.latency_base_rate.is_none()
    {
        anyhow::bail!(
            "the latency levels are fractions of the maximum rate: run the end-to-end part too, or give --latency-base-rate"
        );
    }
    step(&format!("starting the broker ({:?})", options.broker));
    let tansu = Broker::start(options.broker)?;
    let bootstrap = tansu.bootstrap();
    // The input topics serve the raw consumer and the views end to end:
    // both inputs of customers (the clean one and an application's), the
    // clean one of orders.
    let mut malformed = std::collections::BTreeMap::new();
    if options.runs(Part::Raw) || options.runs(Part::EndToEnd) {
        for (workload, input) in [
            (Workload::Customers, Input::Clean),
            (Workload::Customers, Input::Application),
            (Workload::Orders, Input::Clean),
        ] {
            let topic = input.topic(workload);
            tansu.create_topic(&topic, PARTITIONS)?;
            if let Some(dead_letters) = kafka_runs::dead_letter_topic(workload, input) {
                tansu.create_topic(&dead_letters, 1)?;
            }
            step(&format!(
                "producing {events} events to {topic} ({} input)",
                input.name()
            ));
            let bad = kafka_runs::fill(&bootstrap, workload, input, events, subjects)?;
            malformed.insert((workload.name(), input.name()), bad);
        }
    }
    let malformed_of = |workload: Workload, input: Input| {
        malformed
            .get(&(workload.name(), input.name()))
            .copied()
            .unwrap_or(0)
    };

    let mut raw_consume = Vec::new();
    if options.runs(Part::Raw) {
        for input in [Input::Clean, Input::Application] {
            step(&format!("raw consume ({} input)", input.name()));
            raw_consume.push(kafka_runs::raw_consume(
                &bootstrap,
                input,
                &input.topic(Workload::Customers),
                events + malformed_of(Workload::Customers, input),
            )?);
        }
    }

    let mut end_to_end = Vec::new();
    let mut engine_only = Vec::new();
    for workload in [Workload::Customers, Workload::Orders] {
        for runner in [Runner::Wasm, Runner::Native] {
            let name = format!("{}-{runner:?}", workload.name());
            // Customers in wasm, the main figure, also with its shards
            // applied in parallel.
            let threads: &[usize] = if workload == Workload::Customers && runner == Runner::Wasm {
                &SHARD_THREADS
            } else {
                &[1]
            };
            if options.runs(Part::EndToEnd) {
                for &threads in threads {
                    step(&format!("end to end: {name}, {threads} thread(s)"));
                    end_to_end.push(kafka_runs::end_to_end(
                        &bootstrap,
                        workload,
                        runner,
                        (Input::Clean, 0),
                        (events, threads),
                        &dir(&format!("e2e-{name}-{threads}t")),
                    )?);
                }
                if workload == Workload::Customers && runner == Runner::Wasm {
                    step(&format!(
                        "end to end: {name}, application input, dead letters"
                    ));
                    end_to_end.push(kafka_runs::end_to_end(
                        &bootstrap,
                        workload,
                        runner,
                        (
                            Input::Application,
                            malformed_of(workload, Input::Application),
                        ),
                        (events, 1),
                        &dir(&format!("e2e-{name}-app")),
                    )?);
                }
            }
            if !options.runs(Part::Engine) {
                continue;
            }
            for &threads in threads {
                step(&format!("engine only: {name}, {threads} thread(s)"));
                engine_only.push(EngineOnly {
                    view: workload,
                    runner,
                    run: memory::run(
                        workload,
                        runner,
                        events,
                        subjects,
                        threads,
                        false,
                        &dir(&format!("engine-{name}-{threads}t")),
                    )?,
                });
            }
        }
    }

    let changelog = if options.runs(Part::Changelog) {
        let premake = matches!(options.broker, BrokerKind::Mock);
        Some(changelog::run(
            &bootstrap,
            &|topic, partitions| tansu.create_topic(topic, partitions),
            premake,
            options.changelog_rows,
            &dir("changelog"),
        )?)
    } else {
        None
    };

    let dedup = if options.runs(Part::Dedup) {
        Some(dedup_cost(events, subjects, &dir("dedup"))?)
    } else {
        None
    };

    let store_bound = if options.runs(Part::Store) {
        step("store bound");
        // The stored size of a customer row (JSON and metadata), as the
        // engine-only run found it, else as the command line says.
        let row_bytes = match (engine_only.first(), options.store_row_bytes) {
            (Some(run), _) => run.run.row_bytes,
            (None, Some(bytes)) => bytes,
            (None, None) => anyhow::bail!(
                "the store bound needs the stored row size: run the engine part too, or give --store-row-bytes"
            ),
        };
        step(&format!("store bound with {row_bytes}-byte rows"));
        Some(store_bound::run(
            Workload::Customers,
            events,
            subjects,
            row_bytes,
            &dir("store-bound"),
        )?)
    } else {
        None
    };

    let measured_rate = end_to_end
        .iter()
        .find(|r| {
            r.view == Workload::Customers
                && r.runner == Runner::Wasm
                && r.input == Input::Clean
                && r.threads == 1
        })
        .map(|r| r.events_per_second);
    let mut latency = Vec::new();
    let loads = if options.runs(Part::Latency) {
        vec![0.25_f64, 0.5, 0.8]
    } else {
        Vec::new()
    };
    let max_rate = match (measured_rate, options.latency_base_rate) {
        _ if loads.is_empty() => 0.0,
        (Some(rate), _) => rate,
        (None, Some(rate)) => rate,
        (None, None) => anyhow::bail!(
            "the latency levels are fractions of the maximum rate: run the end-to-end part too, or give --latency-base-rate"
        ),
    };
    if !loads.is_empty() {
        step(&format!(
            "latency levels are fractions of {max_rate:.0} events/s ({})",
            if measured_rate.is_some() {
                "measured end to end in this run"
            } else {
                "--latency-base-rate"
            }
        ));
    }
    for load in loads {
        let topic = format!("latency-{}", (load * 100.0).round());
        let plain_topic = format!("{topic}-plain");
        tansu.create_topic(&topic, PARTITIONS)?;
        tansu.create_topic(&plain_topic, PARTITIONS)?;
        step(&format!(
            "latency at {:.0}% ({:.0} events/s)",
            load * 100.0,
            load * max_rate
        ));
        latency.push(latency::run(
            &bootstrap,
            Workload::Customers,
            &topic,
            &plain_topic,
            load,
            load * max_rate,
            Duration::from_secs_f64(options.latency_seconds),
            &dir(&topic),
        )?);
    }

    let deploy = if options.runs(Part::Deploy) {
        let Some(rate) = measured_rate.or(options.latency_base_rate) else {
            anyhow::bail!(
                "the deploy part loads the live view at half the maximum rate: run the end-to-end part too, or give --latency-base-rate"
            );
        };
        Some(deploy::run(
            &bootstrap,
            &|topic, partitions| tansu.create_topic(topic, partitions),
            options.deploy_events,
            (0.5, 0.5 * rate),
            Duration::from_secs_f64(options.latency_seconds),
            &dir("deploy"),
        )?)
    } else {
        None
    };

    let mut scaling = Vec::new();
    let mut largest: Option<(u64, PathBuf)> = None;
    let scales = if options.runs(Part::Scaling) || options.runs(Part::Restart) {
        options.scales.clone()
    } else {
        Vec::new()
    };
    for size in scales {
        let scale_dir = dir(&format!("scale-{size}"));
        step(&format!("scaling: {size} subjects"));
        let scale = scale::measure(size, scale::events_for(size, events), &scale_dir)?;
        largest = Some((scale.rows, scale_dir));
        scaling.push(scale);
    }
    drop(tansu);

    let restart = match largest.filter(|_| options.runs(Part::Restart)) {
        Some((rows, scale_dir)) => {
            step(&format!("restart with {rows} rows"));
            // A broker of its own, with an empty input topic: the view is
            // ahead of it, so ready means joined and the store open.
            let broker = Tansu::start()?;
            broker.create_topic(Workload::Customers.name(), PARTITIONS)?;
            let binary = restart::projector_binary(options.projector.as_deref())?;
            Some(restart::run(
                &binary,
                &broker.bootstrap(),
                Workload::Customers,
                rows,
                &scale_dir,
            )?)
        }
        None => None,
    };

    let mut results = Results {
        command: options.command.clone(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: system::Machine::this(),
        events,
        subjects,
        partitions: PARTITIONS,
        broker: options.broker,
        raw_consume,
        latency_base_rate: max_rate,
        store_row_bytes: store_bound.as_ref().map(|bound| bound.value_bytes),
        end_to_end,
        engine_only,
        store_bound,
        latency,
        scaling,
        restart,
        dedup,
        changelog,
        deploy,
        ratios: Vec::new(),
    };
    results.compute_ratios();
    Ok(results)
}

/// Rounds of the dedup part: off and on alternately, so that the machine's
/// drift falls on both.
const DEDUP_ROUNDS: usize = 3;

/// The engine-only run of customers in wasm (one thread), with
/// deduplication off and on alternately, each in a fresh directory.
fn dedup_cost(events: u64, subjects: u64, dir: &Path) -> anyhow::Result<report::DedupCost> {
    let mut off = Vec::new();
    let mut on = Vec::new();
    for round in 0..DEDUP_ROUNDS {
        for dedup in [false, true] {
            step(&format!(
                "dedup {} (round {} of {DEDUP_ROUNDS})",
                if dedup { "on" } else { "off" },
                round + 1
            ));
            let run_dir = dir.join(format!("{}-{round}", if dedup { "on" } else { "off" }));
            let run = memory::run(
                Workload::Customers,
                Runner::Wasm,
                events,
                subjects,
                1,
                dedup,
                &run_dir,
            )?;
            clean(&run_dir)?;
            if dedup { &mut on } else { &mut off }.push(run);
        }
    }
    Ok(report::DedupCost::from_runs(off, on))
}

/// Remove `dir`, if it exists.
///
/// # Errors
/// When it cannot be removed.
pub fn clean(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}
