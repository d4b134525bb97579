//! `on_error = "quarantine"` on the real worker with the real `misbehaving`
//! component: a failing event holds only its subject (it and every later
//! event of the subject are kept in the store, in order) while every other
//! subject flows on; the hold survives a crash; a release with the same
//! module keeps everything held; a release after the operator's fix (a
//! larger `max_row_bytes`) applies the held events once, in order. With one
//! shard applied inline and with four shards on two applier threads.

use std::path::Path;
use std::sync::Arc;

use projector::config::{BrokerConfig, OnError};
use projector::engine::{Engine, EngineConfig};
use projector::pipeline::policy::ErrorPolicy;
use projector::pipeline::{BatchLimits, ViewStatus, Worker};
use projector::store::{SledStore, Store, ViewStore};
use rdkafka::message::{OwnedMessage, Timestamp};

use crate::dead_letters::Quiet;
use crate::kit::{TempDir, hash_of, view};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;
/// A row of this many bytes is refused under the first limit and taken
/// under the second.
const HUGE: usize = 5000;
const SMALL_LIMIT: usize = 2048;
const LARGE_LIMIT: usize = 1 << 20;

/// Record `offset` of `partition`: a CloudEvent of type `ty` for `subject`
/// with `data`.
fn record(partition: i32, offset: i64, subject: &str, ty: &str, data: &str) -> OwnedMessage {
    let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
        id: &format!("e-{partition}-{offset}"),
        source: "/tests",
        ty,
        subject: Some(subject),
        datacontenttype: Some("application/json"),
    });
    OwnedMessage::new(
        Some(data.as_bytes().to_vec()),
        Some(subject.as_bytes().to_vec()),
        TOPIC.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000 + offset),
        partition,
        offset,
        Some(headers),
    )
}

/// The records: subjects `a` and `b` counted on every partition (one
/// subject on several partitions); on partition 1 at offset 4, `a` gets a
/// row larger than the first limit allows.
fn records() -> Vec<OwnedMessage> {
    let mut out = Vec::new();
    for offset in 0..10 {
        for partition in 0..PARTITIONS {
            for subject in ["a", "b"] {
                let index = offset * 2 + i64::from(subject == "b");
                if partition == 1 && subject == "a" && offset == 4 {
                    out.push(record(
                        partition,
                        index,
                        subject,
                        "misbehave.huge-row",
                        &HUGE.to_string(),
                    ));
                } else {
                    out.push(record(partition, index, subject, "tick", "{}"));
                }
            }
        }
    }
    out
}

fn open(
    store: &Arc<SledStore>,
    max_row_bytes: usize,
    shards: u32,
    threads: usize,
) -> (Worker<SledStore>, Arc<ViewStatus>) {
    let mut config = view(
        "quarantined",
        projector_examples::MISBEHAVING.path,
        &[TOPIC],
        OnError::Quarantine,
    );
    config.shards = Some(shards);
    let module = Engine::new(EngineConfig {
        max_row_bytes,
        ..EngineConfig::default()
    })
    .expect("engine")
    .load_file(Path::new(projector_examples::MISBEHAVING.path))
    .expect("misbehaving loads");
    let policy = ErrorPolicy::connect(&config, &BrokerConfig::default())
        .expect("quarantine needs no broker");
    let status = Arc::new(ViewStatus::default());
    let worker = Worker::open(
        config,
        module.instance(),
        Arc::clone(store),
        Arc::clone(&status),
        BatchLimits::default(),
        policy,
    )
    .expect("worker opens")
    .parallel(threads)
    .expect("threads start");
    let partitions: Vec<_> = (0..PARTITIONS).map(|p| (TOPIC.to_owned(), p)).collect();
    worker.assign(&Quiet, &partitions, false);
    (worker, status)
}

fn rows(store: &SledStore, shards: u32) -> projector::store::SledView {
    store
        .open_view(
            "quarantined",
            &hash_of(&projector_examples::MISBEHAVING),
            &[],
            projector::shard::Shards::new(shards),
        )
        .unwrap()
}

fn count_of(view: &impl ViewStore, subject: &str) -> Option<u64> {
    let row = view.row(subject).unwrap()?;
    let json: serde_json::Value = serde_json::from_str(&row.json).ok()?;
    json["count"].as_u64()
}

fn scenario(shards: u32, threads: usize) {
    let dir = TempDir::new(&format!("quarantine-{shards}-{threads}"));
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    let all = records();
    // The events of `a` from the poison on, in the order the worker takes
    // them: partition by partition as delivered below.
    let (mut worker, status) = open(&store, SMALL_LIMIT, shards, threads);
    for message in &all {
        worker.handle(&Quiet, message).unwrap();
    }
    worker.commit(&Quiet).unwrap();
    let view = rows(&store, shards);
    // `b` flowed on everywhere: 10 events on each of 3 partitions.
    assert_eq!(
        count_of(&view, "b"),
        Some(30),
        "the other subject is not held"
    );
    // `a` applied up to the poison on partition 1, and on the other
    // partitions only what came before the poison was taken.
    let held = view.quarantined(Some("a")).unwrap();
    assert_eq!(
        held[0].2.origin,
        projector::store::Origin {
            topic: TOPIC.to_owned(),
            partition: 1,
            offset: 8
        }
    );
    assert_eq!(held[0].2.class, "row-too-large", "{:?}", held[0].2);
    assert!(
        held[1..].iter().all(|(_, _, r)| r.class == "held-behind"),
        "{held:?}"
    );
    let applied_a = count_of(&view, "a").unwrap();
    assert_eq!(
        applied_a + u64::try_from(held.len()).unwrap(),
        30,
        "every event of a applied or held, none lost"
    );
    assert!(
        held.len() > 10,
        "later events of a on every partition are held too: {}",
        held.len()
    );
    // Held in the order they were taken: sequences rise, and per partition
    // offsets rise.
    for pair in held.windows(2) {
        assert!(pair[0].1 < pair[1].1);
        if pair[0].2.origin.partition == pair[1].2.origin.partition {
            assert!(pair[0].2.origin.offset < pair[1].2.origin.offset);
        }
    }
    assert_eq!(
        status.quarantined(),
        (1, u64::try_from(held.len()).unwrap())
    );
    assert_eq!(
        status.counters().quarantined,
        u64::try_from(held.len()).unwrap()
    );
    // Every partition's checkpoint moved past everything: held is handled.
    for partition in 0..PARTITIONS {
        assert_eq!(view.checkpoint(TOPIC, partition).unwrap(), Some(20));
    }

    // A crash: the hold is in the store.
    drop(worker);
    let (mut worker, status) = open(&store, SMALL_LIMIT, shards, threads);
    assert_eq!(
        status.quarantined(),
        (1, u64::try_from(held.len()).unwrap())
    );
    // Redelivered records are duplicates, not held twice.
    for message in &all {
        worker.handle(&Quiet, message).unwrap();
    }
    worker.commit(&Quiet).unwrap();
    assert_eq!(view.quarantined(Some("a")).unwrap().len(), held.len());

    // Released with the same limit: the first fails again; nothing moves.
    let report = worker.release(&Quiet, Some("a")).unwrap();
    assert_eq!(report.subjects.len(), 1);
    assert_eq!(report.subjects[0].applied, 0);
    assert_eq!(
        report.subjects[0].still_held,
        u64::try_from(held.len()).unwrap()
    );
    assert!(
        report.subjects[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("row-too-large"),
        "{report:?}"
    );
    assert_eq!(view.quarantined(Some("a")).unwrap().len(), held.len());
    assert_eq!(count_of(&view, "a"), Some(applied_a));
    drop(worker);

    // The operator raises the limit and releases: every held event applied
    // once, in order; the huge row first, then the counts on top of it.
    let (mut worker, status) = open(&store, LARGE_LIMIT, shards, threads);
    let report = worker.release(&Quiet, None).unwrap();
    assert_eq!(
        report.subjects[0].applied,
        u64::try_from(held.len()).unwrap(),
        "{report:?}"
    );
    assert_eq!(report.subjects[0].still_held, 0);
    assert!(view.quarantined(None).unwrap().is_empty());
    assert_eq!(status.quarantined(), (0, 0));
    // The huge row replaced the count; the events behind it counted from
    // there (misbehaving counts from 0 on a row that has no count).
    assert_eq!(
        count_of(&view, "a"),
        Some(u64::try_from(held.len()).unwrap() - 1)
    );
    // New events of `a` apply again at once.
    worker
        .handle(&Quiet, &record(0, 20, "a", "tick", "{}"))
        .unwrap();
    worker.commit(&Quiet).unwrap();
    assert_eq!(
        count_of(&view, "a"),
        Some(u64::try_from(held.len()).unwrap())
    );
    // A second release finds nothing; a restart applies nothing again.
    assert!(worker.release(&Quiet, None).unwrap().subjects.is_empty());
    drop(worker);
    let (mut worker, _) = open(&store, LARGE_LIMIT, shards, threads);
    for message in &all {
        worker.handle(&Quiet, message).unwrap();
    }
    worker.commit(&Quiet).unwrap();
    assert_eq!(
        count_of(&view, "a"),
        Some(u64::try_from(held.len()).unwrap())
    );
    assert_eq!(count_of(&view, "b"), Some(30));
}

#[test]
fn quarantine_holds_only_the_failing_subject_and_release_applies_it_once_in_order() {
    scenario(1, 1);
}

#[test]
fn quarantine_holds_only_the_failing_subject_on_parallel_shards() {
    scenario(4, 2);
}
