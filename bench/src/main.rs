//! `projector-bench`: see the library's documentation, and
//! `docs/benchmarks.md` for the figures.

use std::path::PathBuf;

/// The allocator `projector` runs with, so that the figures are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Benchmarks projector end to end, printing a table and writing a JSON
/// result.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Events per throughput run.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Distinct subjects in the throughput runs.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    subjects: u64,
    /// View sizes (distinct subjects) for the scaling runs.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [1_000_u64, 100_000, 1_000_000],
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    scales: Vec<u64>,
    /// Seconds of offered load per latency level. tansu's memory storage
    /// slows down as a topic grows (its CPU climbs at a constant rate, and a
    /// plain consumer's p99 passes 400 ms after about 6 s at 28k events/s),
    /// so longer runs measure the broker more than projector.
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    latency_seconds: f64,
    /// Where to write the JSON result.
    #[arg(long, default_value = "target/bench/result.json")]
    out: PathBuf,
    /// Where the runs keep their data (removed at the end).
    #[arg(long, default_value = "target/bench/work")]
    work_dir: PathBuf,
    /// The projector binary for the restart run; default next to this one.
    #[arg(long)]
    projector: Option<PathBuf>,
    /// Run only these parts (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<projector_bench::Part>,
    /// The stored row size (bytes) for the store bound, when `--only`
    /// leaves out the engine part that measures it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    store_row_bytes: Option<u64>,
    /// The maximum rate (events/s) the latency levels are fractions of,
    /// when `--only` leaves out the end-to-end part that measures it.
    #[arg(long, value_parser = positive_rate)]
    latency_base_rate: Option<f64>,
    /// The broker of the Kafka parts: tansu (a real broker process) or
    /// librdkafka's in-memory mock cluster, where the broker's share of a
    /// latency is small. The restart part always runs on tansu.
    #[arg(long, value_enum, default_value_t)]
    broker: projector_bench::BrokerKind,
    /// Rows of the view the changelog part builds and restores (two events
    /// each).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    changelog_rows: u64,
    /// Events the deploy part's shadow replays (the build must outlast a
    /// latency measure, `--latency-seconds`).
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    deploy_events: u64,
}

/// A rate in events per second: a finite number above zero.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        Ok(_) => Err(format!("{text} is not a rate above 0 events/s")),
        Err(err) => Err(format!("{text} is not a number of events/s: {err}")),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One scaling run, in a process of its own (used by the main run).
    #[command(hide = true)]
    Scale {
        #[arg(long)]
        subjects: u64,
        #[arg(long)]
        events: u64,
        #[arg(long)]
        dir: PathBuf,
    },
}

/// A duration in seconds: a finite number above zero, at most a day.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        Ok(_) => Err(format!("{text} is not between 0 and 86400 seconds")),
        Err(err) => Err(format!("{text} is not a number of seconds: {err}")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Scale {
        subjects,
        events,
        dir,
    }) = cli.command
    {
        return projector_bench::scale::child(subjects, events, &dir);
    }
    let options = projector_bench::Options {
        events: cli.events,
        subjects: cli.subjects,
        scales: cli.scales,
        latency_seconds: cli.latency_seconds,
        projector: cli.projector,
        work_dir: std::path::absolute(&cli.work_dir)?,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        only: cli.only,
        store_row_bytes: cli.store_row_bytes.map(usize::try_from).transpose()?,
        latency_base_rate: cli.latency_base_rate,
        broker: cli.broker,
        changelog_rows: cli.changelog_rows,
        deploy_events: cli.deploy_events,
    };
    projector_bench::clean(&cli.work_dir)?;
    let results = projector_bench::run(&options);
    projector_bench::clean(&cli.work_dir)?;
    let results = results?;
    println!("{}", results.table());
    if let Some(parent) = cli.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", cli.out.display()))?;
    println!("result written to {}", cli.out.display());
    Ok(())
}
