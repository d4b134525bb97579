//! The deploy part: a shadow built beside a live view that carries a share
//! of its maximum load. The customers view runs in the product's own
//! `Service` over a topic filled with `events` events; its produce-to-
//! visible latency is measured at the offered rate four times: without a
//! build; while a plain consumer reads the topic from its start at the
//! shadow's bound (the broker's share); while a deploy builds a shadow (the
//! same projection with a custom section appended: the same code, another
//! module, as a rebuilt component with an unchanged projection is; left
//! unswapped, `swap = manual`); and without a build again, last. A build
//! that ends before its measure does voids the run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use projector::config::{Config, DeployConfig};
use projector::deploy::{DeployOptions, SwapMode};
use projector::engine::{Engine, EngineConfig};
use projector::pipeline::BatchLimits;
use projector::service::Service;
use projector::shutdown::{Shutdown, Stoppable};
use projector::store::SledStore;

use crate::input::{Generator, Workload};
use crate::kafka_runs::{broker_config, input_producer, send};
use crate::latency::{Visible, visible_latencies, wait_until};
use crate::{PARTITIONS, step};

/// The figures of the deploy part.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployCost {
    /// Events the shadow replays (the topic's content when it starts).
    pub events: u64,
    /// The share of the maximum rate the live view carries meanwhile.
    pub load: f64,
    /// Events per second offered to the live view.
    pub offered_per_second: f64,
    /// The live view's produce-to-visible latency without a build.
    pub without_build: Visible,
    /// The same while the shadow builds.
    pub during_build: Visible,
    /// The same while a plain consumer (no projector) reads the topic from
    /// its start at the shadow's rate bound: the broker's share of the
    /// build's cost.
    pub during_plain_replay: Visible,
    /// The shadow's rate bound (`[deploy] shadow_max_rate`; 0: none).
    pub shadow_max_rate: u64,
    /// The live view without a build, measured again last, on the topic
    /// grown by the measures before it.
    pub without_build_after: Visible,
    /// p99 during the build over p99 without it measured last.
    pub p99_ratio_after: f64,
    /// p99 during the build over p99 without (goal: at most 2).
    pub p99_ratio: f64,
    /// Events per second the shadow applied while the live view carried
    /// the load (during the measure with a build).
    pub build_per_second_under_load: f64,
    /// Seconds from the deploy to the shadow caught up (lag 0).
    pub build_seconds: f64,
    /// Events per second over the whole build.
    pub build_per_second: f64,
}

/// `wasm` with a custom section appended: the same component, another
/// hash.
fn another_build(wasm: &[u8]) -> Vec<u8> {
    fn leb(mut value: usize, into: &mut Vec<u8>) {
        loop {
            #[allow(clippy::cast_possible_truncation)]
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                into.push(byte);
                return;
            }
            into.push(byte | 0x80);
        }
    }
    let name = b"projector-bench";
    let payload = b"rebuilt";
    let mut content = Vec::new();
    leb(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(payload);
    let mut bytes = wasm.to_vec();
    bytes.push(0); // a custom section
    leb(content.len(), &mut bytes);
    bytes.extend_from_slice(&content);
    bytes
}

/// Run the deploy part: `events` events in the topic, `rate` events per
/// second (the share `load` of the maximum) offered for `duration` to each
/// measure.
///
/// # Errors
/// When the broker, the runtime or a measure fails, or the build ended
/// before the measure during it did.
pub fn run(
    bootstrap: &str,
    create_topic: &dyn Fn(&str, i32) -> anyhow::Result<()>,
    events: u64,
    (load, rate): (f64, f64),
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<DeployCost> {
    let workload = Workload::Customers;
    let topic = "deploy-input";
    create_topic(topic, PARTITIONS)?;
    step(&format!("deploy: filling {topic} with {events} events"));
    let producer = input_producer(bootstrap, crate::input::Input::Clean)?;
    for event in Generator::new(workload, events / 2, PARTITIONS, 11).take(usize::try_from(events)?)
    {
        send(&producer, topic, &event)?;
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(300))
        .context("flushing the input")?;

    let mut view = crate::views::config(workload)?;
    view.topics = vec![topic.to_owned()];
    view.group = Some(format!("bench-deploy-{}", std::process::id()));
    let name = view.name.clone();
    let config = Config {
        data_dir: dir.to_path_buf(),
        broker: Some(broker_config(bootstrap)),
        engine: EngineConfig::default(),
        http: projector::config::HttpConfig::default(),
        views: vec![view],
        static_membership: false,
        instance_id: None,
        deploy: DeployConfig {
            shadow_threads: 1,
            swap_max_lag: 0,
            ..DeployConfig::default()
        },
    };
    let engine = Arc::new(Engine::new(EngineConfig {
        cache_dir: Some(dir.join("compiled")),
        ..EngineConfig::default()
    })?);
    let store = Arc::new(SledStore::open(&dir.join("store"))?);
    let service = Service::start(
        &config,
        &broker_config(bootstrap),
        &engine,
        store,
        BatchLimits::default(),
    )?;
    let live = service.views().live()[0].clone();
    let durable = || -> i64 {
        live.status
            .partitions()
            .values()
            .filter_map(|p| p.checkpoint)
            .sum()
    };
    let all = i64::try_from(events)?;
    // The live view's produce-to-visible latency, `rate` offered for
    // `duration`.
    let measure = || {
        visible_latencies(
            bootstrap,
            workload,
            topic,
            live.feed.positions(),
            durable,
            rate,
            duration,
        )
    };
    step("deploy: the live view applies the topic");
    wait_until(Duration::from_secs(600), "the live view caught up", || {
        durable() >= all
    })?;

    step(&format!(
        "deploy: live latency at {:.0}% ({rate:.0} events/s), no build",
        load * 100.0
    ));
    let without_build = measure()?;

    let bound = config.deploy.shadow_max_rate;
    step(&format!(
        "deploy: live latency while a plain consumer replays the topic at {bound} records/s"
    ));
    let during_plain_replay = {
        let stop = Shutdown::new();
        let consumer = crate::kafka_runs::plain_consumer(
            bootstrap,
            topic,
            &format!("bench-deploy-plain-{}", std::process::id()),
        )?;
        let replay = Stoppable::spawn("plain-replay", &stop, move |stop| {
            let mut throttle = projector::pipeline::throttle::Throttle::new(
                projector::pipeline::throttle::Rate::new(bound),
            );
            let mut read = 0_u64;
            while !stop.requested() {
                if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
                    read += 1;
                    throttle.took();
                }
            }
            read
        })?;
        let measured = measure();
        let read = replay.stop().map_err(|err| anyhow::anyhow!("{err}"))?;
        if read == 0 {
            bail!("the plain consumer read nothing while the live view was measured");
        }
        measured?
    };

    step("deploy: live latency while a shadow builds");
    let deployer = Arc::clone(service.deployer());
    let module = another_build(projector_examples::CUSTOMER_VIEW.wasm);
    let started = Instant::now();
    deployer.deploy(
        &name,
        &module,
        DeployOptions {
            swap: SwapMode::Manual,
            allow_partial_history: true,
        },
    )?;
    // Measured once the shadow replays (its consumer has joined).
    wait_until(Duration::from_secs(120), "the shadow replays", || {
        deployer
            .report(&name)
            .ok()
            .and_then(|report| report.shadow)
            .is_some_and(|shadow| shadow.applied > 0)
    })?;
    let applied = || -> anyhow::Result<(u64, Option<i64>)> {
        let shadow = deployer
            .report(&name)?
            .shadow
            .context("the shadow is gone")?;
        Ok((shadow.applied, shadow.lag))
    };
    let (applied_before, _) = applied()?;
    let measuring = Instant::now();
    let during_build = measure()?;
    let under_load = measuring.elapsed();
    let (applied_after, lag) = applied()?;
    if lag == Some(0) {
        bail!(
            "the shadow caught up before the measure during its build ended: give more events (--deploy-events)"
        );
    }
    // Applied, not durable: a shadow at its bound fills a batch in about
    // a second, longer than a short measure.
    #[allow(clippy::cast_precision_loss)]
    let build_per_second_under_load =
        (applied_after - applied_before) as f64 / under_load.as_secs_f64();
    wait_until(Duration::from_secs(900), "the shadow caught up", || {
        deployer
            .report(&name)
            .ok()
            .and_then(|report| report.shadow)
            .is_some_and(|shadow| shadow.lag == Some(0))
    })?;
    let build_seconds = started.elapsed().as_secs_f64();
    let replayed = deployer
        .report(&name)?
        .shadow
        .map_or(0, |shadow| shadow.replayed);
    // The broker slows as its topic grows (tansu 0.6, docs/benchmarks.md):
    // the view without a build measured again, after the others, on the
    // topic as large as the build's measure left it.
    deployer.cancel(&name)?;
    step("deploy: live latency without a build, again, on the grown topic");
    let without_build_after = measure()?;
    let stopped = service.stop();
    if let Some(Err(err)) = stopped.get(&name) {
        bail!("the view ended with an error: {err}");
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(DeployCost {
        events,
        load,
        offered_per_second: rate,
        p99_ratio: during_build.p99_ms / without_build.p99_ms,
        p99_ratio_after: during_build.p99_ms / without_build_after.p99_ms,
        without_build,
        without_build_after,
        during_build,
        during_plain_replay,
        shadow_max_rate: bound,
        build_per_second_under_load,
        build_seconds,
        build_per_second: replayed as f64 / build_seconds,
    })
}
