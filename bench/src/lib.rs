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
//! - `scale`: cost against view size, one child process per size;
//! - `restart`: the binary's start to ready after SIGKILL;
//! - `system`: the machine, peak memory, disk use;
//! - `report`: the figures, ratios, table and JSON.

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

use input::Workload;
use report::{EngineOnly, Results};
use views::Runner;

/// Partitions of every topic.
pub const PARTITIONS: i32 = 4;

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
}

impl Options {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }
}

/// Print what is being measured, to stderr, so that a long run shows
/// progress.
fn step(what: &str) {
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

    step("starting tansu");
    let tansu = Tansu::start()?;
    let bootstrap = tansu.bootstrap();
    // The input topics serve the raw consumer and the views end to end;
    // the other parts make their own input.
    if options.runs(Part::Raw) || options.runs(Part::EndToEnd) {
        for workload in [Workload::Customers, Workload::Orders] {
            tansu.create_topic(workload.name(), PARTITIONS)?;
            step(&format!("producing {events} events to {}", workload.name()));
            kafka_runs::fill(&bootstrap, workload, events, subjects)?;
        }
    }

    let raw_consume = if options.runs(Part::Raw) {
        step("raw consume");
        Some(kafka_runs::raw_consume(
            &bootstrap,
            Workload::Customers.name(),
            events,
        )?)
    } else {
        None
    };

    let mut end_to_end = Vec::new();
    let mut engine_only = Vec::new();
    for workload in [Workload::Customers, Workload::Orders] {
        for runner in [Runner::Wasm, Runner::Native] {
            let name = format!("{}-{runner:?}", workload.name());
            if options.runs(Part::EndToEnd) {
                step(&format!("end to end: {name}"));
                end_to_end.push(kafka_runs::end_to_end(
                    &bootstrap,
                    workload,
                    runner,
                    events,
                    &dir(&format!("e2e-{name}")),
                )?);
            }
            if !options.runs(Part::Engine) {
                continue;
            }
            step(&format!("engine only: {name}"));
            engine_only.push(EngineOnly {
                view: workload,
                runner,
                run: memory::run(
                    workload,
                    runner,
                    events,
                    subjects,
                    &dir(&format!("engine-{name}")),
                )?,
            });
        }
    }

    let store_bound = if options.runs(Part::Store) {
        step("store bound");
        // The stored size of a customer row (JSON and metadata), as the
        // engine-only run found it.
        let row_bytes = engine_only.first().map_or(250, |run| run.run.row_bytes);
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

    let max_rate = end_to_end
        .iter()
        .find(|r| r.view == Workload::Customers && r.runner == Runner::Wasm)
        .map_or(1000.0, |r| r.events_per_second);
    let mut latency = Vec::new();
    let loads = if options.runs(Part::Latency) {
        vec![0.25_f64, 0.5, 0.8]
    } else {
        Vec::new()
    };
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
        raw_consume,
        end_to_end,
        engine_only,
        store_bound,
        latency,
        scaling,
        restart,
        ratios: Vec::new(),
    };
    results.compute_ratios();
    Ok(results)
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
