//! The result of one benchmark run: every figure, the ratios the targets
//! are stated in, a printed table and the JSON document.

use std::fmt::Write as _;

use crate::kafka_runs::{EndToEnd, RawConsume};
use crate::latency::Latency;
use crate::memory::EngineRun;
use crate::restart::Restart;
use crate::scale::Scale;
use crate::store_bound::StoreBound;
use crate::system::Machine;
use crate::views::Runner;

/// One engine-only run, named.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineOnly {
    /// The view.
    pub view: crate::input::Workload,
    /// How its projection ran.
    pub runner: Runner,
    /// The figures.
    #[serde(flatten)]
    pub run: EngineRun,
}

/// What deduplication costs: engine-only runs of customers in wasm (one
/// thread), off and on alternately.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DedupCost {
    /// The runs with it off.
    pub off: Vec<EngineRun>,
    /// The runs with it on (the default `keep`; every event remembered).
    pub on: Vec<EngineRun>,
    /// The median rate off, events/s.
    pub off_median: f64,
    /// The median rate on, events/s.
    pub on_median: f64,
    /// On / off.
    pub ratio: f64,
    /// Microseconds each event costs more with it on (from the medians).
    pub extra_micros_per_event: f64,
    /// The store's size on disk with it on, less with it off, per event
    /// remembered (medians of the runs), bytes.
    pub disk_bytes_per_identity: f64,
    /// The memory of the index of identities per identity it holds, bytes
    /// (its tables' capacity at the end of a run, over the events).
    pub memory_bytes_per_identity: f64,
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

impl DedupCost {
    /// The figures of `off` and `on`.
    pub fn from_runs(off: Vec<EngineRun>, on: Vec<EngineRun>) -> Self {
        let rate = |runs: &[EngineRun]| median(runs.iter().map(|r| r.events_per_second).collect());
        #[allow(clippy::cast_precision_loss)] // Sizes and counts are far below 2^52.
        let disk = |runs: &[EngineRun]| median(runs.iter().map(|r| r.disk_bytes as f64).collect());
        let (off_median, on_median) = (rate(&off), rate(&on));
        #[allow(clippy::cast_precision_loss)]
        let events = on.first().map_or(1.0, |r| r.events.max(1) as f64);
        Self {
            off_median,
            on_median,
            ratio: on_median / off_median,
            extra_micros_per_event: 1e6 / on_median - 1e6 / off_median,
            disk_bytes_per_identity: (disk(&on) - disk(&off)) / events,
            memory_bytes_per_identity: median(
                on.iter()
                    .map(|r| r.dedup_index_bytes as f64 / events)
                    .collect(),
            ),
            off,
            on,
        }
    }
}

/// The ratios the targets are stated in, and whether each is met.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ratio {
    /// What it compares.
    pub name: String,
    /// The ratio.
    pub value: f64,
    /// The target (at least, or at most for latency).
    pub target: f64,
    /// Whether the target is met.
    pub met: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Results {
    /// The command line that produced it.
    pub command: String,
    /// When, in seconds since the Unix epoch.
    pub unix_time: u64,
    /// The machine.
    pub machine: Machine,
    /// Events per throughput run.
    pub events: u64,
    /// Distinct subjects in the throughput runs.
    pub subjects: u64,
    /// Partitions of every topic.
    pub partitions: i32,
    /// The broker of the Kafka parts.
    pub broker: crate::BrokerKind,
    /// The plain consumer on the input topics: the clean input, then an
    /// application's.
    pub raw_consume: Vec<RawConsume>,
    /// The rate the latency levels are fractions of (0 without them).
    pub latency_base_rate: f64,
    /// The row size the store bound wrote.
    pub store_row_bytes: Option<usize>,
    /// The views end to end on the broker.
    pub end_to_end: Vec<EndToEnd>,
    /// The views fed from memory.
    pub engine_only: Vec<EngineOnly>,
    /// Raw sled read-modify-write.
    pub store_bound: Option<StoreBound>,
    /// Produce-to-visible latency at fractions of the maximum rate.
    pub latency: Vec<Latency>,
    /// Cost against view size.
    pub scaling: Vec<Scale>,
    /// Restart of the binary on the largest view.
    pub restart: Option<Restart>,
    /// Deduplication by CloudEvents identity, off against on.
    pub dedup: Option<DedupCost>,
    /// The changelog off against on, and its restore against a replay.
    pub changelog: Option<crate::changelog::ChangelogCost>,
    /// A shadow built beside the live view at half its maximum load.
    pub deploy: Option<crate::deploy::DeployCost>,
    /// The targets.
    pub ratios: Vec<Ratio>,
}

impl Results {
    /// Work out the ratios from the figures (customer-view's runs).
    pub fn compute_ratios(&mut self) {
        use crate::input::Input;
        use crate::input::Workload::Customers;
        let e2e_on = |runner, input, threads| {
            self.end_to_end
                .iter()
                .find(|r| {
                    r.view == Customers
                        && r.runner == runner
                        && r.input == input
                        && r.threads == threads
                })
                .map(|r| r.events_per_second)
        };
        let e2e_of = |runner, input| e2e_on(runner, input, 1);
        let e2e = |runner| e2e_of(runner, Input::Clean);
        let engine_on = |runner, threads| {
            self.engine_only
                .iter()
                .find(|r| r.view == Customers && r.runner == runner && r.run.threads == threads)
                .map(|r| r.run.events_per_second)
        };
        let engine = |runner| engine_on(runner, 1);
        // The best over thread counts, for the ratios against the bounds.
        let best = |rates: Vec<f64>| rates.into_iter().reduce(f64::max);
        let engine_best = best(
            self.engine_only
                .iter()
                .filter(|r| r.view == Customers && r.runner == Runner::Wasm)
                .map(|r| r.run.events_per_second)
                .collect(),
        );
        let e2e_best = best(
            self.end_to_end
                .iter()
                .filter(|r| {
                    r.view == Customers && r.runner == Runner::Wasm && r.input == Input::Clean
                })
                .map(|r| r.events_per_second)
                .collect(),
        );
        let bound = self.store_bound.as_ref().map(|b| b.events_per_second);
        let raw = self
            .raw_consume
            .iter()
            .find(|r| r.input == Input::Clean)
            .map(|r| r.events_per_second);
        let mut ratios = Vec::new();
        let mut at_least = |name: &str, value: Option<f64>, target: f64| {
            if let Some(value) = value {
                ratios.push(Ratio {
                    name: name.to_owned(),
                    value,
                    target,
                    met: value >= target,
                });
            }
        };
        at_least(
            "engine-only (wasm, best thread count) / store bound",
            engine_best.zip(bound).map(|(rate, bound)| rate / bound),
            0.8,
        );
        at_least(
            "end to end (wasm, best thread count) / min(raw consume, store bound)",
            e2e_best
                .zip(raw.zip(bound))
                .map(|(rate, (raw, bound))| rate / raw.min(bound)),
            0.8,
        );
        at_least(
            "engine-only (wasm), 2 threads / 1 thread",
            engine_on(Runner::Wasm, 2)
                .zip(engine(Runner::Wasm))
                .map(|(two, one)| two / one),
            1.6,
        );
        at_least(
            "end to end (wasm), 2 threads / 1 thread",
            e2e_on(Runner::Wasm, Input::Clean, 2)
                .zip(e2e(Runner::Wasm))
                .map(|(two, one)| two / one),
            1.6,
        );
        at_least(
            "engine-only wasm / native",
            engine(Runner::Wasm)
                .zip(engine(Runner::Native))
                .map(|(w, n)| w / n),
            0.85,
        );
        at_least(
            "end to end wasm / native",
            e2e(Runner::Wasm)
                .zip(e2e(Runner::Native))
                .map(|(w, n)| w / n),
            0.85,
        );
        at_least(
            "end to end, application input with dead letters / clean input",
            e2e_of(Runner::Wasm, Input::Application)
                .zip(e2e(Runner::Wasm))
                .map(|(app, clean)| app / clean),
            0.9,
        );
        if let Some(half) = self
            .latency
            .iter()
            .find(|l| (l.load - 0.5).abs() < f64::EPSILON)
        {
            ratios.push(Ratio {
                name: "p99 latency at 50% (ms)".to_owned(),
                value: half.p99_ms,
                target: 50.0,
                met: half.p99_ms <= 50.0,
            });
            let ratio = half.p99_ms / half.consumer_p99_ms;
            ratios.push(Ratio {
                name: "p99 at 50% / plain consumer's p99 at 50%".to_owned(),
                value: ratio,
                target: 2.0,
                met: ratio <= 2.0,
            });
            let ratio = half.p99_ms / half.beside_p99_ms;
            ratios.push(Ratio {
                name: "p99 at 50% / p99 of a plain consumer beside the view".to_owned(),
                value: ratio,
                target: 2.0,
                met: ratio <= 2.0,
            });
        }
        if let Some(changelog) = &self.changelog {
            ratios.push(Ratio {
                name: "end to end with the changelog on / off (customers, wasm)".to_owned(),
                value: changelog.ratio,
                target: 0.85,
                met: changelog.ratio >= 0.85,
            });
            ratios.push(Ratio {
                name: "replay of the source topic / restore from the changelog (time)".to_owned(),
                value: changelog.restore_speedup,
                target: 5.0,
                met: changelog.restore_speedup >= 5.0,
            });
        }
        if let Some(deploy) = &self.deploy {
            ratios.push(Ratio {
                name: "live p99 at 50% while a shadow builds / without a build".to_owned(),
                value: deploy.p99_ratio,
                target: 2.0,
                met: deploy.p99_ratio <= 2.0,
            });
        }
        if let Some(dedup) = &self.dedup {
            ratios.push(Ratio {
                name: "engine only with dedup on / off (customers, wasm, 1 thread)".to_owned(),
                value: dedup.ratio,
                target: 0.9,
                met: dedup.ratio >= 0.9,
            });
        }
        self.ratios = ratios;
    }

    /// The figures as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "machine: {} processors ({}), {:.1} GiB; {} events over {} subjects, {} partitions; broker {:?}",
            m.nproc, m.cpu, m.memory_gib, self.events, self.subjects, self.partitions, self.broker
        );
        let _ = writeln!(
            out,
            "\n{:<68} {:>14} {:>10}",
            "throughput", "events/s", "seconds"
        );
        let mut row = |name: String, rate: f64, seconds: f64| {
            let _ = writeln!(out, "{name:<68} {rate:>14.0} {seconds:>10.2}");
        };
        for raw in &self.raw_consume {
            row(
                format!("raw consume ({} input)", raw.input.name()),
                raw.events_per_second,
                raw.seconds,
            );
        }
        for run in &self.end_to_end {
            let input = match run.dead_lettered {
                0 => format!("{} input", run.input.name()),
                n => format!("{} input, {n} dead letters", run.input.name()),
            };
            row(
                format!(
                    "end to end: {} ({:?}; {input}; {} thread{})",
                    run.view.name(),
                    run.runner,
                    run.threads,
                    if run.threads == 1 { "" } else { "s" }
                ),
                run.events_per_second,
                run.seconds,
            );
        }
        for run in &self.engine_only {
            row(
                format!(
                    "engine only: {} ({:?}; {} thread{}; {:.0}% commit)",
                    run.view.name(),
                    run.runner,
                    run.run.threads,
                    if run.run.threads == 1 { "" } else { "s" },
                    100.0 * run.run.commit_seconds / run.run.seconds
                ),
                run.run.events_per_second,
                run.run.seconds,
            );
        }
        if let Some(dedup) = &self.dedup {
            for (name, runs) in [("off", &dedup.off), ("on", &dedup.on)] {
                for run in runs {
                    row(
                        format!("engine only: customers (Wasm; dedup {name})"),
                        run.events_per_second,
                        run.seconds,
                    );
                }
            }
            row(
                format!(
                    "dedup on / off: {:.2} (+{:.2} us/event; per identity {:.0} B disk, {:.0} B memory)",
                    dedup.ratio,
                    dedup.extra_micros_per_event,
                    dedup.disk_bytes_per_identity,
                    dedup.memory_bytes_per_identity
                ),
                dedup.on_median,
                0.0,
            );
        }
        if let Some(changelog) = &self.changelog {
            for run in &changelog.runs {
                row(
                    format!(
                        "end to end: customers (Wasm; changelog {}; {} rows)",
                        if run.changelog { "on" } else { "off" },
                        changelog.rows
                    ),
                    run.events_per_second,
                    run.seconds,
                );
            }
            let restore = &changelog.restore;
            row(
                format!(
                    "restore from the changelog: {} rows, {} records, {} written, {:.1} MB/s, {:.1} s in the store (rows/s)",
                    restore.rows,
                    restore.records,
                    restore.written,
                    restore.mb_per_second,
                    restore.store_seconds
                ),
                restore.rows_per_second,
                restore.seconds,
            );
            row(
                format!(
                    "changelog on / off: {:.2}; replay {:.1} s / restore {:.1} s = {:.1}x",
                    changelog.ratio,
                    changelog.replay_seconds,
                    restore.seconds,
                    changelog.restore_speedup
                ),
                changelog.on_median,
                0.0,
            );
        }
        if let Some(deploy) = &self.deploy {
            let plain = format!("a plain consumer replaying at {}/s", deploy.shadow_max_rate);
            for (name, visible) in [
                ("no build", &deploy.without_build),
                (plain.as_str(), &deploy.during_plain_replay),
                ("a shadow building", &deploy.during_build),
                (
                    "no build, again, on the grown topic",
                    &deploy.without_build_after,
                ),
            ] {
                row(
                    format!(
                        "deploy: live view at {:.0} events/s, {name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (sent/s)",
                        deploy.offered_per_second, visible.p50_ms, visible.p99_ms, visible.max_ms
                    ),
                    visible.sent_per_second,
                    0.0,
                );
            }
            row(
                format!(
                    "deploy: shadow of {} events, 1 thread, at most {}/s: {:.0} events/s under load, {:.0} over the build; p99 ratio {:.2} (against the last measure without: {:.2})",
                    deploy.events,
                    deploy.shadow_max_rate,
                    deploy.build_per_second_under_load,
                    deploy.build_per_second,
                    deploy.p99_ratio,
                    deploy.p99_ratio_after
                ),
                deploy.build_per_second,
                deploy.build_seconds,
            );
        }
        if let Some(bound) = &self.store_bound {
            row(
                format!(
                    "store bound (sled RMW, {} B values, batch {})",
                    bound.value_bytes, bound.batch
                ),
                bound.events_per_second,
                bound.seconds,
            );
        }
        if !self.latency.is_empty() {
            let _ = writeln!(
                out,
                "\nlatency levels: fractions of {:.0} events/s",
                self.latency_base_rate
            );
        }
        let _ = writeln!(
            out,
            "\n{:<10} {:>12} {:>12} {:>10} {:>10} {:>10} {:>12} {:>18} {:>12} {:>16}",
            "latency",
            "offered/s",
            "sent/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "ack p50 ms",
            "consumer p50/p99",
            "beside p99",
            "own p50/p99"
        );
        for l in &self.latency {
            let _ = writeln!(
                out,
                "{:<10} {:>12.0} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>18} {:>12.1} {:>16}",
                format!("{:.0}%", l.load * 100.0),
                l.offered_per_second,
                l.sent_per_second,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.ack_p50_ms,
                format!("{:.1}/{:.1}", l.consumer_p50_ms, l.consumer_p99_ms),
                l.beside_p99_ms,
                format!("{:.1}/{:.1}", l.own_p50_ms, l.own_p99_ms)
            );
        }
        let _ = writeln!(
            out,
            "\n{:<10} {:>10} {:>12} {:>14} {:>10}",
            "subjects", "events", "events/s", "peak RSS MiB", "disk MiB"
        );
        for s in &self.scaling {
            let _ = writeln!(
                out,
                "{:<10} {:>10} {:>12.0} {:>14.1} {:>10.1}",
                s.subjects, s.events, s.events_per_second, s.peak_rss_mib, s.disk_mib
            );
        }
        if let Some(r) = &self.restart {
            let _ = writeln!(
                out,
                "\nrestart with {} rows: first start {:.2} s, after kill -9 {:.2} s (to /readyz 200)",
                r.rows, r.first_start_seconds, r.after_kill_seconds
            );
        }
        let _ = writeln!(
            out,
            "\n{:<68} {:>8} {:>8} {:>5}",
            "ratio", "value", "target", "met"
        );
        for r in &self.ratios {
            let _ = writeln!(
                out,
                "{:<68} {:>8.3} {:>8.2} {:>5}",
                r.name,
                r.value,
                r.target,
                if r.met { "yes" } else { "no" }
            );
        }
        out
    }
}
