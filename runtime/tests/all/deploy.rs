//! Live redeploy: a new module builds a shadow of its view while the live
//! version serves and an application's producer writes, then is swapped in
//! at one instant; readers polling the API throughout see only one
//! version's rows per answer, old before the swap and new after it, never
//! a 404 for a subject that exists; a read that waits for its write sees it
//! across the swap; a rollback restores the old rows exactly and
//! `drop-previous` frees them. A shadow whose module fails stops itself;
//! refusals change nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use projector::config::{DeployConfig, OnError};
use projector::deploy::{DeployError, DeployOptions, SwapMode};
use projector::engine::EngineConfig;
use projector::store::{Store, ViewStore};
use rdkafka::producer::FutureRecord;

use crate::kit::{
    Api, Broker, TempDir, checkpoint_sum, try_start_deploying, view, wait_committed, wait_until,
};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

const VIEW: &str = "counter";
/// The topic the read-your-writes reader writes to, beside the stream's.
const WRITES: &str = "writes";
const SUBJECTS: usize = 150;
const PARTITIONS: i32 = 3;

fn counter_view() -> projector::config::ViewConfig {
    view(
        VIEW,
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Skip,
    )
}

/// A runtime running the counter view over `broker`, storing in `dir`,
/// deploying with `deploy`.
fn start_counter(
    broker: &Broker,
    dir: &TempDir,
    deploy: DeployConfig,
) -> projector::service::Service {
    try_start_deploying(
        broker,
        &broker.config(),
        dir,
        vec![counter_view()],
        EngineConfig::default(),
        deploy,
    )
    .unwrap()
}

fn auto() -> DeployOptions {
    DeployOptions {
        swap: SwapMode::Auto,
        allow_partial_history: false,
    }
}

/// Which module built a row: version 2 adds `subject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Built {
    Old,
    New,
}

fn built(row: &serde_json::Value) -> Built {
    if row.get("subject").is_some() {
        Built::New
    } else {
        Built::Old
    }
}

/// What the readers saw: per reader, the module of each answer in order,
/// and anything that must never happen.
#[derive(Default)]
struct Seen {
    answers: Vec<Built>,
    wrong: Vec<String>,
}

/// Read pages of every row until `stop`: each page one module's rows.
fn page_reader(base: &str, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        let mut response = ureq::get(&format!("{base}/v1/views/{VIEW}/rows?limit=1000"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.body_mut().read_json().unwrap();
        if status != 200 {
            seen.wrong.push(format!("a page answered {status}: {body}"));
            continue;
        }
        let rows = body["rows"].as_array().unwrap();
        let kinds: std::collections::BTreeSet<Built> =
            rows.iter().map(|entry| built(&entry["row"])).collect();
        match kinds.len() {
            0 => {}
            1 => seen.answers.extend(kinds),
            _ => seen.wrong.push(format!(
                "a page mixes rows of both modules ({} rows)",
                rows.len()
            )),
        }
        if rows.len() < SUBJECTS {
            seen.wrong.push(format!(
                "a page held {} rows of {SUBJECTS} subjects that exist",
                rows.len()
            ));
        }
    }
    seen
}

/// Read single rows of subjects that exist until `stop`: never a 404.
fn row_reader(base: &str, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let subject = format!("s-{}", i % SUBJECTS);
        i += 7;
        let mut response = ureq::get(&format!("{base}/v1/views/{VIEW}/rows/{subject}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.body_mut().read_json().unwrap();
        if status == 200 {
            seen.answers.push(built(&body));
        } else {
            seen.wrong
                .push(format!("{subject} answered {status}: {body}"));
        }
    }
    seen
}

/// Publish one event of `subject` with an acknowledged producer and read
/// its row with `min_offsets` until `stop`: every answer holds the write.
fn read_your_writes(base: &str, bootstrap: &str, stop: &AtomicBool) -> Seen {
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let subject = format!("rw-{}", n % 5);
        let id = format!("rw-event-{n}");
        let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
            id: &id,
            source: "/read-your-writes",
            ty: "Tick",
            subject: Some(&subject),
            datacontenttype: Some("application/json"),
        });
        let delivered = runtime
            .block_on(
                producer.send(
                    FutureRecord::to(WRITES)
                        .key(subject.as_bytes())
                        .payload(b"{}".as_slice())
                        .headers(headers),
                    Duration::from_secs(30),
                ),
            )
            .map_err(|(err, _)| err)
            .unwrap();
        let token = format!("{WRITES}:{}:{}", delivered.partition, delivered.offset);
        let mut response = ureq::get(&format!(
            "{base}/v1/views/{VIEW}/rows/{subject}?min_offsets={token}&timeout_ms=30000"
        ))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.body_mut().read_json().unwrap();
        if status != 200 {
            seen.wrong
                .push(format!("{token} answered {status}: {body}"));
            continue;
        }
        let row = &body;
        let last = row["partitions"][format!("{WRITES}/{}", delivered.partition)]["last"].as_i64();
        if last.is_none_or(|last| last < delivered.offset) {
            seen.wrong.push(format!(
                "{token}: the row does not hold the write (last offset {last:?}): {row}"
            ));
        }
        seen.answers.push(built(row));
    }
    seen
}

/// Once a reader saw the new module's rows, never the old one's again.
fn assert_one_instant(name: &str, seen: &Seen) {
    assert!(
        seen.wrong.is_empty(),
        "{name}: {:?}",
        &seen.wrong[..seen.wrong.len().min(5)]
    );
    let first_new = seen.answers.iter().position(|b| *b == Built::New);
    let Some(first_new) = first_new else {
        panic!(
            "{name} never saw the new module's rows ({} answers)",
            seen.answers.len()
        );
    };
    assert!(
        first_new > 0,
        "{name} never saw the old module's rows: it read nothing before the swap"
    );
    assert!(
        seen.answers[first_new..].iter().all(|b| *b == Built::New),
        "{name} saw the old module's rows after the new one's"
    );
}

/// A malformed record (no CloudEvents attributes) at the next offset of
/// `partition`: handed to the policy by both versions.
fn publish_malformed(broker: &Broker, stream: &mut Stream, partition: i32) {
    broker.publish_raw(
        TOPIC,
        partition,
        Some(b"no-event".as_slice()),
        Some(b"not a cloudevent".as_slice()),
        rdkafka::message::OwnedHeaders::new(),
    );
    stream.leave_gap(partition, 1);
}

#[test]
fn a_deploy_under_load_swaps_at_one_instant_and_a_rollback_restores_the_old_rows_exactly() {
    let broker = Broker::tansu(&[(TOPIC, PARTITIONS), (WRITES, 1)]).application_producer();
    let dir = TempDir::new("deploy");
    let mut stream = Stream::default();
    stream.publish(
        &broker,
        3000,
        SUBJECTS,
        PARTITIONS,
        Partitioning::HalfMisplaced,
    );
    for partition in 0..PARTITIONS {
        publish_malformed(&broker, &mut stream, partition);
    }
    broker.flush();
    let mut view = counter_view();
    view.topics.push(WRITES.to_owned());
    // The readers poll without pause and leave no CPU idle: the shadow
    // replays unbounded here, so that it catches up with the producer. The
    // shadow's share of the machine is the benchmark's subject; here it is
    // the swap.
    let deploy = DeployConfig {
        shadow_max_rate: 0,
        ..DeployConfig::default()
    };
    let service = try_start_deploying(
        &broker,
        &broker.config(),
        &dir,
        vec![view],
        EngineConfig::default(),
        deploy,
    )
    .unwrap();
    let live = service.statuses()[VIEW].clone();
    wait_committed(&live, i64::try_from(stream.events()).unwrap() + 3);
    let api = Api::start(&service, None);

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<(&str, std::thread::JoinHandle<Seen>)> = vec![
        ("the page reader", {
            let (base, stop) = (api.base.clone(), Arc::clone(&stop));
            std::thread::spawn(move || page_reader(&base, &stop))
        }),
        ("the row reader", {
            let (base, stop) = (api.base.clone(), Arc::clone(&stop));
            std::thread::spawn(move || row_reader(&base, &stop))
        }),
        ("the read-your-writes reader", {
            let (base, stop, bootstrap) = (api.base.clone(), Arc::clone(&stop), broker.bootstrap());
            std::thread::spawn(move || read_your_writes(&base, &bootstrap, &stop))
        }),
    ];
    let watched = crate::api::watch(format!("{}/v1/views/{VIEW}/rows/s-1/watch", api.base));
    std::thread::sleep(Duration::from_millis(500));

    // The deploy, while the application keeps writing in batches.
    let deployer = Arc::clone(service.deployer());
    let report = deployer
        .deploy(VIEW, projector_examples::EVENT_COUNTER_V2.wasm, auto())
        .unwrap();
    let shadow = report.shadow.expect("a shadow is building");
    assert_eq!((report.live.version, shadow.version), (1, 2));
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut batches, mut malformed) = (0, 3);
    while deployer.report(VIEW).unwrap().live.version != 2 {
        assert!(
            Instant::now() < deadline,
            "no swap within 180 s: {:?}",
            deployer.report(VIEW)
        );
        stream.send(
            &broker,
            100,
            SUBJECTS,
            PARTITIONS,
            Partitioning::HalfMisplaced,
        );
        if batches % 10 == 0 {
            publish_malformed(&broker, &mut stream, batches % PARTITIONS);
            malformed += 1;
        }
        batches += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    // Writes go on past the swap.
    for _ in 0..10 {
        stream.send(
            &broker,
            100,
            SUBJECTS,
            PARTITIONS,
            Partitioning::HalfMisplaced,
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.flush();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<(&str, Seen)> = readers
        .into_iter()
        .map(|(name, reader)| (name, reader.join().unwrap()))
        .collect();
    for (name, seen) in &seen {
        assert_one_instant(name, seen);
    }
    // The watcher got the old module's row, then a resync with the new
    // one's, then only the new one's.
    let mut kinds = Vec::new();
    while let Ok((event, data)) = watched.recv_timeout(Duration::from_secs(5)) {
        kinds.push((event, built(&data["row"])));
        if kinds.len() > 10_000 {
            break;
        }
    }
    let resync = kinds
        .iter()
        .position(|(event, kind)| event == "resync" && *kind == Built::New)
        .unwrap_or_else(|| {
            panic!(
                "no resync with the new row: {:?}",
                &kinds[kinds.len().saturating_sub(5)..]
            )
        });
    assert_eq!(kinds[0], ("current".to_owned(), Built::Old));
    assert!(
        kinds[..resync].iter().all(|(_, kind)| *kind == Built::Old),
        "before the resync, old rows only"
    );
    assert!(
        kinds[resync..].iter().all(|(_, kind)| *kind == Built::New),
        "after it, new rows only"
    );
    let writes = seen
        .iter()
        .find(|(name, _)| name.contains("read-your-writes"))
        .map_or(0, |(_, seen)| seen.answers.len());

    let (_, metrics) = api.get("/metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains(&format!("projector_view_version{{view=\"{VIEW}\"}} 2")),
        "{metrics}"
    );

    // Every record published (the readers' writes and the malformed ones
    // included), committed by both versions.
    let report = deployer.report(VIEW).unwrap();
    assert_eq!(report.live.version, 2);
    assert_eq!(report.previous.as_ref().map(|p| p.version), Some(1));
    let total =
        i64::try_from(stream.events()).unwrap() + i64::try_from(writes).unwrap() + malformed;
    let new = service.views().live()[0].clone();
    wait_committed(&new.status, total);
    wait_committed(&live, total);
    assert_eq!(
        checkpoint_sum(&new.status),
        total,
        "the new version read every record once"
    );

    // The new version equals its module's oracle: version 1's counts, and
    // the subject named in each row.
    let rows = &new.rows;
    let rw_subjects = (0..5).filter(|n| (1..=writes).any(|w| w % 5 == *n)).count() as u64;
    let oracle = |rows: &projector::store::SledView| {
        let mut off = oracle_discrepancies(rows, &stream);
        // The read-your-writes subjects are not in the stream's oracle: the
        // row count is checked here instead.
        off.retain(|d| !d.ends_with("subjects"));
        let count = rows.row_count();
        if count != SUBJECTS as u64 + rw_subjects {
            off.push(format!(
                "{count} rows for {SUBJECTS} + {rw_subjects} subjects"
            ));
        }
        off
    };
    let off = oracle(rows);
    assert!(
        off.is_empty(),
        "the new version differs from its oracle: {off:?}"
    );
    for i in 0..SUBJECTS {
        let subject = format!("s-{i}");
        let row: serde_json::Value =
            serde_json::from_str(&rows.row(&subject).unwrap().unwrap().json).unwrap();
        assert_eq!(row["subject"], subject.as_str());
    }

    // A rollback: version 1, which kept applying, is live again and equals
    // version 1's oracle exactly.
    let report = deployer.rollback(VIEW).unwrap();
    assert_eq!(report.live.version, 1);
    let old = service.views().live()[0].clone();
    assert_eq!(old.info.version, 1);
    let off = oracle(&old.rows);
    assert!(
        off.is_empty(),
        "the rolled-back version differs from its oracle: {off:?}"
    );
    let (status, body) = api.get(&format!("/v1/views/{VIEW}/rows/s-1"));
    assert_eq!(status, 200);
    assert_eq!(
        built(&body),
        Built::Old,
        "reads see version 1 again: {body}"
    );
    let (_, views) = api.get("/v1/views");
    assert_eq!(views["views"][0]["version"], 1, "{views}");
    assert_eq!(
        views["views"][0]["deployment"]["previous"]["version"], 2,
        "{views}"
    );

    // drop-previous frees version 2's rows.
    let store = service.store().clone();
    let before = store.view_names().unwrap();
    assert!(before.contains(&"counter@2".to_owned()), "{before:?}");
    let dropped = deployer.drop_previous(VIEW).unwrap();
    assert_eq!(dropped.version, 2);
    assert!(
        dropped.bytes > 100 * SUBJECTS as u64,
        "its rows were freed: {} bytes",
        dropped.bytes
    );
    assert!(
        !store
            .view_names()
            .unwrap()
            .contains(&"counter@2".to_owned())
    );
    assert!(matches!(
        deployer.rollback(VIEW),
        Err(DeployError::NoPrevious(_))
    ));
    drop(api);
    assert_eq!(service.stop()[VIEW], Ok(()));
}

#[test]
fn a_failing_shadow_stops_itself_and_the_live_view_keeps_applying() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("deploy-failing");
    let mut stream = Stream::default();
    stream.publish(&broker, 200, 20, 2, Partitioning::BySubject);
    // Events the misbehaving module refuses, 30 of them: more than the
    // bound of 10 failures. The live event-counter counts them.
    for i in 0..30 {
        broker.publish(
            TOPIC,
            i % 2,
            "misbehave.error",
            &format!("bad-{i}"),
            Some("bad"),
            b"{}",
        );
    }
    broker.flush();
    let deploy = DeployConfig {
        max_shadow_failures: 10,
        ..DeployConfig::default()
    };
    let service = start_counter(&broker, &dir, deploy);
    let live = service.statuses()[VIEW].clone();
    wait_committed(&live, 230);
    let deployer = Arc::clone(service.deployer());
    deployer
        .deploy(VIEW, projector_examples::MISBEHAVING.wasm, auto())
        .unwrap();
    wait_until("the shadow fails", Duration::from_secs(60), || {
        deployer
            .report(VIEW)
            .unwrap()
            .shadow
            .is_some_and(|s| s.state == "failed")
    });
    let report = deployer.report(VIEW).unwrap();
    let shadow = report.shadow.unwrap();
    let reason = shadow.failed.unwrap();
    assert!(reason.contains("max_shadow_failures = 10"), "{reason}");
    assert_eq!(report.live.version, 1);
    // Its rows go once the failure is recorded (the record first, so a
    // crash in between drops them at the next start); the live view goes
    // on applying.
    wait_until(
        "the failed shadow's rows are dropped",
        Duration::from_secs(30),
        || {
            !service
                .store()
                .view_names()
                .unwrap()
                .iter()
                .any(|n| n.starts_with("counter@"))
        },
    );
    stream.publish(&broker, 100, 20, 2, Partitioning::BySubject);
    wait_committed(&live, 330);
    let rows = &service.views().live()[0].rows;
    assert_eq!(rows.row("bad").unwrap().map(|r| r.version), Some(30));
    // A new deploy may follow the failed one.
    let report = deployer
        .deploy(VIEW, projector_examples::EVENT_COUNTER_V2.wasm, auto())
        .unwrap();
    assert_eq!(report.shadow.map(|s| s.version), Some(3));
    assert_eq!(service.stop()[VIEW], Ok(()));
}

#[test]
fn refused_deploys_change_nothing() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("deploy-refused");
    let mut stream = Stream::default();
    stream.publish(&broker, 50, 10, 2, Partitioning::BySubject);
    let service = start_counter(
        &broker,
        &dir,
        DeployConfig {
            // A shadow that never counts as caught up: the deploy stays
            // under way for the second one to meet.
            swap_max_lag: 0,
            ..DeployConfig::default()
        },
    );
    wait_committed(&service.statuses()[VIEW], 50);
    let deployer = Arc::clone(service.deployer());
    let store = service.store().clone();
    let unchanged = |what: &str| {
        assert_eq!(
            store.deployment(VIEW).unwrap(),
            None,
            "{what}: no record written"
        );
        assert_eq!(
            store.view_names().unwrap(),
            vec![VIEW.to_owned()],
            "{what}: no shadow"
        );
        assert!(
            !dir.0.join("modules").exists()
                || std::fs::read_dir(dir.0.join("modules"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{what}: no module kept"
        );
    };
    // Not a component at all.
    let err = deployer.deploy(VIEW, b"not wasm", auto()).unwrap_err();
    assert!(matches!(err, DeployError::NotAComponent(_)), "{err}");
    unchanged("bytes that are not wasm");
    // A core module, not a component.
    let core = b"\0asm\x01\0\0\0";
    let err = deployer.deploy(VIEW, core, auto()).unwrap_err();
    assert!(matches!(err, DeployError::NotAComponent(_)), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    unchanged("a core module");
    // A component that fails the world check: it exports no `apply`.
    let no_apply = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "run") (canon lift (core func $i "f"))))"#,
    )
    .unwrap();
    let err = deployer.deploy(VIEW, &no_apply, auto()).unwrap_err();
    assert!(matches!(err, DeployError::NotAComponent(_)), "{err}");
    assert!(err.to_string().contains("does not export `apply`"), "{err}");
    unchanged("a component that fails the world check");
    // The module it runs already.
    let err = deployer
        .deploy(VIEW, projector_examples::EVENT_COUNTER.wasm, auto())
        .unwrap_err();
    assert!(matches!(err, DeployError::SameModule { .. }), "{err}");
    unchanged("the same module");
    // A second deploy while one runs.
    let manual = DeployOptions {
        swap: SwapMode::Manual,
        allow_partial_history: false,
    };
    deployer
        .deploy(VIEW, projector_examples::EVENT_COUNTER_V2.wasm, manual)
        .unwrap();
    let err = deployer
        .deploy(VIEW, projector_examples::CUSTOMER_VIEW.wasm, auto())
        .unwrap_err();
    assert!(matches!(err, DeployError::Busy { version: 2, .. }), "{err}");
    assert!(err.to_string().contains("--cancel"), "{err}");
    let report = deployer.report(VIEW).unwrap();
    assert_eq!(
        (report.live.version, report.shadow.map(|s| s.version)),
        (1, Some(2)),
        "the second deploy changed nothing"
    );
    assert_eq!(
        store.view_names().unwrap().len(),
        2,
        "the view and the first deploy's shadow, nothing more"
    );
    assert_eq!(service.stop()[VIEW], Ok(()));
}

/// Publish 6 MB to `partition`: the mock cluster keeps 5 MB of a
/// partition and deletes its oldest batches beyond that, as retention
/// would (no broker here serves DeleteRecords: the mock cluster answers
/// UnsupportedFeature, tansu drops the connection). The earliest offset the
/// broker then reports, read with a plain consumer.
fn outgrow_retention(broker: &Broker, partition: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let pad = format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000));
    for i in 0..60 {
        broker.publish(
            TOPIC,
            partition,
            "Tick",
            &format!("big-{i}"),
            Some("big"),
            pad.as_bytes(),
        );
    }
    broker.flush();
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
        .unwrap()
        .0
}

#[test]
fn a_topic_whose_history_is_gone_is_refused_unless_allowed() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("deploy-history");
    let mut stream = Stream::default();
    stream.publish(&broker, 100, 10, 2, Partitioning::BySubject);
    let service = start_counter(&broker, &dir, DeployConfig::default());
    // Retention took the first records of partition 1.
    let earliest = outgrow_retention(&broker, 1);
    assert!(earliest > 0, "the oldest records are gone");
    wait_committed(&service.statuses()[VIEW], 160);
    let deployer = Arc::clone(service.deployer());
    let err = deployer
        .deploy(VIEW, projector_examples::EVENT_COUNTER_V2.wasm, auto())
        .unwrap_err();
    assert!(
        matches!(&err, DeployError::HistoryGone { topic, partition: 1, earliest: e } if topic == TOPIC && *e == earliest),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-partial-history"), "{err}");
    assert_eq!(
        service.store().deployment(VIEW).unwrap(),
        None,
        "nothing changed"
    );
    // Allowed: the shadow builds from what is left.
    let report = deployer
        .deploy(
            VIEW,
            projector_examples::EVENT_COUNTER_V2.wasm,
            DeployOptions {
                swap: SwapMode::Manual,
                allow_partial_history: true,
            },
        )
        .unwrap();
    assert_eq!(report.shadow.map(|s| s.version), Some(2));
    // The shadow keeps to its bound until its swap lifts it.
    let slot = std::sync::Arc::clone(&service.views().slots()[0]);
    let shadow = slot.beside().shadow.clone().unwrap();
    assert_eq!(
        shadow.bound(),
        Some(DeployConfig::default().shadow_max_rate)
    );
    wait_until("the shadow caught up", Duration::from_secs(60), || {
        deployer
            .report(VIEW)
            .unwrap()
            .shadow
            .is_some_and(|s| s.state == "caught-up")
    });
    deployer.swap(VIEW).unwrap();
    assert!(std::sync::Arc::ptr_eq(&slot.live(), &shadow));
    assert_eq!(shadow.bound(), Some(0), "live now: unbound");
    assert_eq!(service.stop()[VIEW], Ok(()));
}

/// The start of the config of a `projector run` in these tests, up to its
/// `[http]` table: without static membership, because the mock cluster
/// keeps a static member's partitions for its session after it stops,
/// even cleanly (`restart::*`), so a restart would wait for its ghost.
const CONFIG_HEAD: &str = "data_dir = \"data\"\nstatic_membership = false\n[http]\n";

/// The `projector.toml` of a `projector run` in `dir`: the counter view
/// over `broker`'s topic, serving on a free port. Its path and the port.
fn write_config(dir: &TempDir, broker: &Broker) -> (std::path::PathBuf, u16) {
    let config = dir.0.join("projector.toml");
    let port = crate::kit::free_port();
    std::fs::write(
        &config,
        format!(
            "{CONFIG_HEAD}bind = \"127.0.0.1:{port}\"\n[broker]\nbootstrap_servers = \"{}\"\nsettings = {{ \"session.timeout.ms\" = \"6000\" }}\n\n[[views]]\nname = \"{VIEW}\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\n",
            broker.bootstrap(),
            projector_examples::EVENT_COUNTER.path
        ),
    )
    .unwrap();
    (config, port)
}

/// `projector` with `args`, its output.
fn projector(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `projector run -c config`, once its view has applied `records`.
fn run_until_applied(config: &std::path::Path, port: u16, records: i64) -> crate::kit::KillOnDrop {
    let child = crate::kit::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["run", "-c"])
            .arg(config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        "the view applied every record",
        Duration::from_secs(60),
        || {
            let Ok(mut response) = ureq::get(&format!("http://127.0.0.1:{port}/v1/views")).call()
            else {
                return false;
            };
            let views: serde_json::Value = response.body_mut().read_json().unwrap();
            let checkpoints: i64 = views["views"][0]["partitions"]
                .as_array()
                .map(|partitions| {
                    partitions
                        .iter()
                        .filter_map(|p| p["checkpoint"].as_i64())
                        .sum()
                })
                .unwrap_or(0);
            checkpoints >= records
        },
    );
    child
}

/// The row of `subject` as the API serves it now.
fn row_of(port: u16, subject: &str) -> serde_json::Value {
    ureq::get(&format!(
        "http://127.0.0.1:{port}/v1/views/{VIEW}/rows/{subject}"
    ))
    .call()
    .unwrap()
    .body_mut()
    .read_json()
    .unwrap()
}

#[test]
fn the_cli_deploys_swaps_by_hand_restarts_on_the_deployed_module_and_rolls_back() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let mut stream = Stream::default();
    stream.publish(&broker, 300, 7, 2, Partitioning::HalfMisplaced);
    let dir = TempDir::new("deploy-cli");
    let (config, port) = write_config(&dir, &broker);
    let config_arg = config.to_str().unwrap();
    let runtime = run_until_applied(&config, port, 300);

    // A file that is no component: refused, nothing changed.
    let junk = dir.0.join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let refused = projector(&[
        "view",
        "deploy",
        VIEW,
        "--module",
        junk.to_str().unwrap(),
        "-c",
        config_arg,
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("cannot run as a projection"),
        "{}",
        text(&refused)
    );

    // Built with --no-swap: the command returns once it has caught up,
    // and the old rows are still what readers get.
    let v2 = projector_examples::EVENT_COUNTER_V2.path;
    let building = projector(&[
        "view",
        "deploy",
        VIEW,
        "--module",
        v2,
        "--no-swap",
        "-c",
        config_arg,
    ]);
    assert!(building.status.success(), "{}", text(&building));
    assert!(
        text(&building).contains("has caught up"),
        "{}",
        text(&building)
    );
    assert_eq!(built(&row_of(port, "s-1")), Built::Old);
    // A second deploy meanwhile is refused.
    let second = projector(&[
        "view",
        "deploy",
        VIEW,
        "--module",
        projector_examples::CUSTOMER_VIEW.path,
        "-c",
        config_arg,
    ]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(text(&second).contains("under way"), "{}", text(&second));
    let swapped = projector(&["view", "swap", VIEW, "-c", config_arg, "--output", "json"]);
    assert!(swapped.status.success(), "{}", text(&swapped));
    let report: serde_json::Value = serde_json::from_slice(&swapped.stdout).unwrap();
    assert_eq!(report["live"]["version"], 2, "{report}");
    assert_eq!(built(&row_of(port, "s-1")), Built::New);
    assert!(runtime.stop(), "projector run stops cleanly");

    // A restart with the config still naming version 1's module: version 2
    // stays live (its module kept in the data directory), version 1 beside.
    stream.publish(&broker, 100, 7, 2, Partitioning::HalfMisplaced);
    let runtime = run_until_applied(&config, port, 400);
    let row = row_of(port, "s-1");
    assert_eq!(built(&row), Built::New, "{row}");
    let status = projector(&["status", "-c", config_arg, "--output", "json"]);
    assert!(status.status.success(), "{}", text(&status));
    let views: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(views["views"][0]["version"], 2, "{views}");
    assert_eq!(
        views["views"][0]["deployment"]["previous"]["version"], 1,
        "{views}"
    );

    // Rolled back: version 1, which kept applying, with the 100 new events.
    let rolled = projector(&["view", "rollback", VIEW, "-c", config_arg]);
    assert!(rolled.status.success(), "{}", text(&rolled));
    assert!(
        text(&rolled).contains("version 1 is live"),
        "{}",
        text(&rolled)
    );
    let row = row_of(port, "s-1");
    assert_eq!(built(&row), Built::Old, "{row}");
    let expected = (0..stream.events()).filter(|i| i % 7 == 1).count();
    assert_eq!(row["count"], expected, "{row}");

    let dropped = projector(&[
        "view",
        "drop-previous",
        VIEW,
        "-c",
        config_arg,
        "--output",
        "json",
    ]);
    assert!(dropped.status.success(), "{}", text(&dropped));
    let dropped: serde_json::Value = serde_json::from_slice(&dropped.stdout).unwrap();
    assert_eq!(dropped["version"], 2);
    assert!(dropped["bytes"].as_u64().unwrap() > 0, "{dropped}");
    let watch = projector(&["view", "deploy", VIEW, "--watch", "-c", config_arg]);
    assert!(watch.status.success(), "{}", text(&watch));
    assert!(
        text(&watch).contains("no deploy under way; version 1 is live"),
        "{}",
        text(&watch)
    );

    // A deployment tool rewrites the config and sends SIGHUP: the same
    // deploy, swapped in once caught up.
    let rewritten = std::fs::read_to_string(&config)
        .unwrap()
        .replace(projector_examples::EVENT_COUNTER.path, v2);
    std::fs::write(&config, rewritten).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &runtime.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until(
        "the reloaded module is live",
        Duration::from_secs(60),
        || deployment(port).is_some_and(|d| d["live"]["version"] == 3),
    );
    let report = deployment(port).unwrap();
    assert_eq!(
        report["live"]["module_hash"],
        crate::kit::hash_of(&projector_examples::EVENT_COUNTER_V2),
        "{report}"
    );
    assert_eq!(built(&row_of(port, "s-1")), Built::New);
    assert!(runtime.stop(), "projector run stops cleanly");
}

/// `projector run -c config` with `failpoint` armed, its stderr written
/// to `log`.
fn run_with_failpoint(
    config: &std::path::Path,
    failpoint: &str,
    log: &std::path::Path,
) -> crate::kit::KillOnDrop {
    crate::kit::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["run", "-c"])
            .arg(config)
            .env("PROJECTOR_FAILPOINT", failpoint)
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The deployment as the API reports it, once it answers.
fn deployment(port: u16) -> Option<serde_json::Value> {
    let mut response = ureq::get(&format!("http://127.0.0.1:{port}/v1/views/{VIEW}/deploy"))
        .call()
        .ok()?;
    response.body_mut().read_json().ok()
}

/// The rows of version `store_name` in the store of `dir`, against the
/// oracle of `stream`: what differs.
fn stored_discrepancies(dir: &TempDir, store_name: &str, stream: &Stream) -> Vec<String> {
    let store = projector::store::SledStore::open(&dir.0.join("data/store")).unwrap();
    let hash = crate::kit::hash_of(if store_name.contains('@') {
        &projector_examples::EVENT_COUNTER_V2
    } else {
        &projector_examples::EVENT_COUNTER
    });
    let view = store.open_view(store_name, &hash, &[], None).unwrap();
    oracle_discrepancies(&view, stream)
}

#[test]
fn a_sigkill_during_the_build_or_at_the_swap_leaves_one_version_live_and_applies_nothing_twice() {
    let broker = Broker::new(&[(TOPIC, 4)]);
    let mut stream = Stream::default();
    stream.publish(&broker, 40_000, 200, 4, Partitioning::HalfMisplaced);
    let dir = TempDir::new("deploy-crash");
    let (config, port) = write_config(&dir, &broker);
    let config_arg = config.to_str().unwrap();
    let events = i64::try_from(stream.events()).unwrap();

    // 1. SIGKILL in the middle of the shadow's build.
    let runtime = run_until_applied(&config, port, events);
    let v2 = projector_examples::EVENT_COUNTER_V2.path;
    let detached = projector(&[
        "view",
        "deploy",
        VIEW,
        "--module",
        v2,
        "--no-swap",
        "--detach",
        "-c",
        config_arg,
    ]);
    assert!(detached.status.success(), "{}", text(&detached));
    let mut at_kill = serde_json::Value::Null;
    wait_until("the shadow is part way", Duration::from_secs(60), || {
        at_kill = deployment(port).unwrap_or_default();
        at_kill["shadow"]["replayed"]
            .as_i64()
            .is_some_and(|r| r > 0)
    });
    runtime.kill();
    let replayed = at_kill["shadow"]["replayed"].as_i64().unwrap();
    assert!(
        replayed < events,
        "the kill landed during the build: {replayed} of {events} replayed"
    );

    // The restart resumes the shadow from its own checkpoints; the live
    // view is intact.
    let runtime = run_until_applied(&config, port, events);
    wait_until(
        "the shadow applied everything",
        Duration::from_secs(120),
        || deployment(port).is_some_and(|d| d["shadow"]["lag"] == 0),
    );
    let report = deployment(port).unwrap();
    let applied = report["shadow"]["applied"].as_i64().unwrap();
    assert!(
        applied <= events - replayed,
        "the shadow resumed from its own checkpoints: this run applied {applied}, at most the {} left after the {replayed} durable at the kill",
        events - replayed
    );
    assert_eq!(
        (
            report["live"]["version"].as_u64(),
            report["shadow"]["version"].as_u64()
        ),
        (Some(1), Some(2)),
        "{report}"
    );
    assert!(runtime.stop());
    assert_eq!(
        stored_discrepancies(&dir, VIEW, &stream),
        Vec::<String>::new(),
        "the live view"
    );
    assert_eq!(
        stored_discrepancies(&dir, "counter@2", &stream),
        Vec::<String>::new(),
        "the shadow resumed: nothing applied twice, nothing lost"
    );

    // Killed by a failpoint during `projector view swap`, the kill
    // confirmed, then started again: the deployment it finds.
    let log = dir.0.join("run.log");
    let die_at_the_swap = |failpoint: &str| {
        let mut runtime = run_with_failpoint(&config, &format!("{failpoint}:1"), &log);
        wait_until("the shadow caught up", Duration::from_secs(60), || {
            deployment(port).is_some_and(|d| d["shadow"]["state"] == "caught-up")
        });
        let swap = projector(&["view", "swap", VIEW, "-c", config_arg]);
        assert!(
            !swap.status.success() && text(&swap).contains("cannot reach projector"),
            "the swap died with the runtime: {}",
            text(&swap)
        );
        let status = runtime.0.wait().unwrap();
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(
            !status.success() && said.contains(&format!("failpoint {failpoint}\n")),
            "it died at {failpoint}: {status}"
        );
        let runtime = run_until_applied(&config, port, events);
        (runtime, deployment(port).unwrap())
    };

    // 2. Killed at the swap, before its record is written: version 1 stays
    // live; the shadow is still there to swap.
    let (runtime, report) = die_at_the_swap("deploy-swap");
    assert_eq!(
        report["live"]["version"], 1,
        "killed before the record: the old version is live: {report}"
    );
    assert_eq!(built(&row_of(port, "s-1")), Built::Old);
    assert!(runtime.stop());

    // 3. Killed at the swap right after its record is written: version 2 is
    // live after the restart.
    let (runtime, report) = die_at_the_swap("deploy-swapped");
    assert_eq!(
        report["live"]["version"], 2,
        "killed after the record: the new version is live: {report}"
    );
    assert_eq!(report["previous"]["version"], 1, "{report}");
    assert_eq!(built(&row_of(port, "s-1")), Built::New);
    assert!(runtime.stop());
    assert_eq!(
        stored_discrepancies(&dir, "counter@2", &stream),
        Vec::<String>::new()
    );
    assert_eq!(
        stored_discrepancies(&dir, VIEW, &stream),
        Vec::<String>::new()
    );
}
