//! The changelog part: the customers view end to end with its changelog off
//! and on, alternately, over the same input; then the view restored from
//! the changelog of its last run into an empty store, against the replay of
//! its source topic (what a view without a changelog does after losing its
//! store: the runs with it off). The restored rows are compared with the
//! rows of the run that logged them, every one: a restore that differs
//! voids the run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use projector::apply::Apply;
use projector::pipeline::changelog::Changelog;
use projector::pipeline::{BatchLimits, ViewStatus, Worker};
use projector::shutdown::{Shutdown, Stoppable};
use projector::store::{SledStore, Store, ViewStore};

use crate::input::{Generator, Workload};
use crate::kafka_runs::{broker_config, input_producer, send};
use crate::report::median;
use crate::views::{self, ProjectionUser};
use crate::{PARTITIONS, Runner, step};

/// Rounds of the throughput runs: off and on alternately, so that the
/// machine's drift falls on both.
const ROUNDS: usize = 2;

/// One view run end to end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangelogRun {
    /// Whether the changelog was on.
    pub changelog: bool,
    /// Events applied.
    pub events: u64,
    /// Seconds from start until every event was durable.
    pub seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
}

/// The restore of the view from its changelog into an empty store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreRun {
    /// Rows restored.
    pub rows: u64,
    /// Changelog records read and applied.
    pub records: u64,
    /// Entries written to the store (the records less the versions a later
    /// record of the same key superseded during the restore).
    pub written: u64,
    /// Their bytes (keys and values).
    pub bytes: u64,
    /// Seconds the restore took.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_second: f64,
    /// Seconds of it spent writing to the store (the rest reads the
    /// changelog).
    pub store_seconds: f64,
}

/// What the changelog costs, and what its restore gives back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangelogCost {
    /// Distinct subjects (rows of the view).
    pub rows: u64,
    /// Events in the source topic.
    pub events: u64,
    /// The runs, in the order they ran.
    pub runs: Vec<ChangelogRun>,
    /// Median rate with it off, events/s.
    pub off_median: f64,
    /// Median rate with it on, events/s.
    pub on_median: f64,
    /// On / off.
    pub ratio: f64,
    /// The restore.
    pub restore: RestoreRun,
    /// Seconds a replay of the source topic took (median of the runs with
    /// the changelog off, which replay it from its start).
    pub replay_seconds: f64,
    /// Replay time / restore time.
    pub restore_speedup: f64,
}

/// Run the part: `rows` subjects, two events each, on the broker at
/// `bootstrap`; `create_topic` makes a topic (the changelog topics too,
/// when `premake_changelogs`: librdkafka's mock cluster does not answer
/// the runtime's CreateTopics).
///
/// # Errors
/// When a run fails, stalls, or its restore differs from its rows.
pub fn run(
    bootstrap: &str,
    create_topic: &dyn Fn(&str, i32) -> anyhow::Result<()>,
    premake_changelogs: bool,
    rows: u64,
    dir: &Path,
) -> anyhow::Result<ChangelogCost> {
    let workload = Workload::Customers;
    let topic = "changelog-input";
    let events = rows * 2;
    create_topic(topic, PARTITIONS)?;
    step(&format!(
        "changelog: filling {topic} with {events} events over {rows} subjects"
    ));
    let producer = input_producer(bootstrap, crate::input::Input::Clean)?;
    let generator = Generator::new(workload, rows, PARTITIONS, 7);
    for event in generator.take(usize::try_from(events)?) {
        send(&producer, topic, &event)?;
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(300))
        .context("flushing the input")?;

    let mut runs = Vec::new();
    let mut last_on = None;
    for round in 0..ROUNDS {
        for on in [false, true] {
            let name = format!("{}-{round}", if on { "on" } else { "off" });
            step(&format!("changelog {name}"));
            let group = format!("bench-changelog-{name}");
            if on && premake_changelogs {
                create_topic(&format!("{group}-changelog"), PARTITIONS)?;
            }
            let run_dir = dir.join(&name);
            let run = views::with_projection(
                workload,
                Runner::Wasm,
                &dir.join("compiled"),
                EndToEndRun {
                    bootstrap,
                    topic,
                    group: group.clone(),
                    changelog: on,
                    events,
                    dir: &run_dir,
                },
            )?;
            runs.push(run);
            if on {
                if let Some((_, old)) = last_on.replace((group, run_dir)) {
                    crate::clean(&old)?;
                }
            } else {
                crate::clean(&run_dir)?;
            }
        }
    }
    let (group, logged_dir) = last_on.context("no run with the changelog on")?;
    step("changelog: restore into an empty store");
    let hash = views::module(workload, &dir.join("compiled"))?
        .hash()
        .to_owned();
    let restore = restore(bootstrap, &group, &hash, &logged_dir, &dir.join("restored"))?;
    crate::clean(&logged_dir)?;
    crate::clean(&dir.join("restored"))?;
    let rate = |on: bool| {
        median(
            runs.iter()
                .filter(|r| r.changelog == on)
                .map(|r| r.events_per_second)
                .collect(),
        )
    };
    let (off_median, on_median) = (rate(false), rate(true));
    let replay_seconds = median(
        runs.iter()
            .filter(|r| !r.changelog)
            .map(|r| r.seconds)
            .collect(),
    );
    Ok(ChangelogCost {
        rows,
        events,
        off_median,
        on_median,
        ratio: on_median / off_median,
        replay_seconds,
        restore_speedup: replay_seconds / restore.seconds,
        restore,
        runs,
    })
}

fn view_config(
    group: &str,
    topic: &str,
    changelog: bool,
) -> anyhow::Result<projector::config::ViewConfig> {
    let mut config = views::config(Workload::Customers)?;
    config.group = Some(group.to_owned());
    config.topics = vec![topic.to_owned()];
    config.changelog = changelog.then_some(projector::config::ChangelogConfig {
        topic: None,
        replication: 1,
        standby_replicas: 0,
    });
    Ok(config)
}

struct EndToEndRun<'a> {
    bootstrap: &'a str,
    topic: &'a str,
    group: String,
    changelog: bool,
    events: u64,
    dir: &'a Path,
}

impl ProjectionUser<ChangelogRun> for EndToEndRun<'_> {
    fn with<A: Apply + Send + 'static>(self, projection: A) -> anyhow::Result<ChangelogRun> {
        let store = Arc::new(SledStore::open(&self.dir.join("store"))?);
        let status = Arc::new(ViewStatus::default());
        let config = view_config(&self.group, self.topic, self.changelog)?;
        let started = Instant::now();
        let (worker, consumer) = Worker::new(
            &broker_config(self.bootstrap),
            config,
            projection,
            store,
            Arc::clone(&status),
            BatchLimits::default(),
        )?;
        let thread = Stoppable::spawn("view-changelog", &Shutdown::new(), move |shutdown| {
            worker.run(&consumer, shutdown)
        })?;
        let target = i64::try_from(self.events)?;
        let mut progress = (0, Instant::now());
        loop {
            let durable: i64 = status
                .partitions()
                .values()
                .filter_map(|p| p.checkpoint)
                .sum();
            if durable >= target {
                break;
            }
            if let Some(err) = status.fatal_error() {
                anyhow::bail!("the view failed: {err}");
            }
            if durable > progress.0 {
                progress = (durable, Instant::now());
            } else if progress.1.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("the view stalled at {durable} of {target} for 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let seconds = started.elapsed().as_secs_f64();
        thread.stop()??;
        #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
        Ok(ChangelogRun {
            changelog: self.changelog,
            events: self.events,
            seconds,
            events_per_second: self.events as f64 / seconds,
        })
    }
}

/// Restore the view logged by group `group` into an empty store in `into`,
/// timed, and compare every row with the store in `logged` that logged it.
fn restore(
    bootstrap: &str,
    group: &str,
    hash: &str,
    logged: &Path,
    into: &Path,
) -> anyhow::Result<RestoreRun> {
    let config = view_config(group, "changelog-input", true)?;
    let source = SledStore::open(&logged.join("store"))?;
    let source = source.open_view(&config.name, hash, &config.indexes, None)?;
    let store = SledStore::open(&into.join("store"))?;
    let view = store.open_view(&config.name, hash, &config.indexes, Some(source.shards()))?;
    let changelog = Changelog::open(&broker_config(bootstrap), &config, view.shards())?
        .context("the view has a changelog")?;
    let started = Instant::now();
    let restored = changelog.restore(&view, &|_| {})?;
    store.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    // Every row, against the store that logged it.
    let (mut after, mut compared) = (None::<String>, 0_u64);
    loop {
        let page = source.scan("", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        let last = last.clone();
        for (subject, row) in page {
            let got = view.row(&subject)?;
            anyhow::ensure!(
                got.as_ref() == Some(&row),
                "the restored row of {subject} differs: {got:?} against {row:?}"
            );
            compared += 1;
        }
        after = Some(last);
    }
    anyhow::ensure!(
        compared == view.row_count() && compared == source.row_count(),
        "rows: {compared} compared, {} restored, {} logged",
        view.row_count(),
        source.row_count()
    );
    #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
    Ok(RestoreRun {
        rows: compared,
        records: restored.records,
        written: restored.written,
        bytes: restored.bytes,
        seconds,
        rows_per_second: compared as f64 / seconds,
        mb_per_second: restored.bytes as f64 / 1e6 / seconds,
        store_seconds: restored.store_seconds,
    })
}
