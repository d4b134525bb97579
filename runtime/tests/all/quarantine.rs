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
use rdkafka::message::{Message, OwnedMessage, Timestamp};

use crate::kit::{QUIET, Recorder};
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
    worker.assign(&QUIET, &partitions, false);
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
    let kafka = Recorder::default();
    for message in &all {
        worker.handle(&kafka, message).unwrap();
    }
    worker.commit(&kafka).unwrap();
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
    // The offset given to Kafka stops at the first record held there, so a
    // runtime that takes the partition over reads it again.
    for partition in 0..PARTITIONS {
        assert_eq!(view.checkpoint(TOPIC, partition).unwrap(), Some(20));
        let first_held = held
            .iter()
            .filter(|(_, _, r)| r.origin.partition == partition)
            .map(|(_, _, r)| r.origin.offset)
            .min()
            .unwrap_or(20);
        assert_eq!(
            kafka.committed().get(&partition),
            Some(&first_held),
            "partition {partition}"
        );
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
        worker.handle(&QUIET, message).unwrap();
    }
    worker.commit(&QUIET).unwrap();
    assert_eq!(view.quarantined(Some("a")).unwrap().len(), held.len());

    // Released with the same limit: the first fails again; nothing moves.
    let report = worker.release(&QUIET, Some("a")).unwrap();
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
    let kafka = Recorder::default();
    let report = worker.release(&kafka, None).unwrap();
    // Nothing is held back any more.
    assert_eq!(
        kafka.committed(),
        (0..PARTITIONS).map(|p| (p, 20)).collect()
    );
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
        .handle(&QUIET, &record(0, 20, "a", "tick", "{}"))
        .unwrap();
    worker.commit(&QUIET).unwrap();
    assert_eq!(
        count_of(&view, "a"),
        Some(u64::try_from(held.len()).unwrap())
    );
    // A second release finds nothing; a restart applies nothing again.
    assert!(worker.release(&QUIET, None).unwrap().subjects.is_empty());
    drop(worker);
    let (mut worker, _) = open(&store, LARGE_LIMIT, shards, threads);
    for message in &all {
        worker.handle(&QUIET, message).unwrap();
    }
    worker.commit(&QUIET).unwrap();
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

/// Write the config of a runtime applying `quarantined` on `broker`, with
/// its API on `port` and rows capped at `max_row_bytes`.
fn runtime_config(
    dir: &TempDir,
    broker: &crate::kit::Broker,
    port: u16,
    max_row_bytes: usize,
) -> std::path::PathBuf {
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n\
             [engine]\nmax_row_bytes = {max_row_bytes}\n\
             [broker]\nbootstrap_servers = \"{}\"\n\n\
             [[views]]\nname = \"quarantined\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\non_error = \"quarantine\"\n",
            broker.bootstrap(),
            projector_examples::MISBEHAVING.path
        ),
    )
    .unwrap();
    config
}

fn views(api: &str) -> Option<serde_json::Value> {
    let mut response = ureq::get(&format!("{api}/v1/views")).call().ok()?;
    let report: serde_json::Value = response.body_mut().read_json().ok()?;
    Some(report["views"][0].clone())
}

/// `projector view discard quarantined SUBJECT --output json`, which must
/// succeed: its report.
fn discard_as_json(api: &str, subject: &str) -> serde_json::Value {
    let discard = cli(&[
        "view",
        "discard",
        "quarantined",
        subject,
        "--api",
        api,
        "--output",
        "json",
    ]);
    assert!(discard.status.success(), "{discard:?}");
    serde_json::from_slice(&discard.stdout).unwrap()
}

/// Publish [`records`] to `broker`, at the same partitions (and so the same
/// offsets in a fresh topic).
fn publish_records(broker: &crate::kit::Broker) {
    for message in records() {
        let subject = std::str::from_utf8(message.key().unwrap()).unwrap();
        let ty = if message.payload() == Some(HUGE.to_string().as_bytes()) {
            "misbehave.huge-row"
        } else {
            "tick"
        };
        broker.publish(
            TOPIC,
            message.partition(),
            ty,
            &format!("e-{}-{}", message.partition(), message.offset()),
            Some(subject),
            message.payload().unwrap(),
        );
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .output()
        .expect("the projector binary runs")
}

#[test]
fn a_quarantined_subject_survives_a_sigkill_and_view_release_applies_it_after_the_fix() {
    let broker = crate::kit::Broker::new(&[(TOPIC, PARTITIONS)]);
    publish_records(&broker);
    broker.flush();
    let total = u64::try_from(records().len()).unwrap();
    let dir = TempDir::new("quarantine-cli");
    let port = crate::kit::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let config = runtime_config(&dir, &broker, port, SMALL_LIMIT);
    let mut child = crate::crash::spawn(&config, &log);
    let caught_up = |api: &str| {
        views(api).is_some_and(|view| {
            view["partitions"].as_array().is_some_and(|p| {
                p.iter()
                    .filter_map(|p| p["checkpoint"].as_u64())
                    .sum::<u64>()
                    == total
            })
        })
    };
    crate::kit::wait_until(
        "the view caught up",
        std::time::Duration::from_secs(60),
        || caught_up(&api),
    );
    let view = views(&api).unwrap();
    let held = view["quarantined_records"].as_u64().unwrap();
    assert_eq!(view["quarantined_subjects"], 1, "{view}");
    // At least the poison and the five later events of `a` on its own
    // partition; those on the other partitions too if they came after it.
    assert!(held >= 6, "{view}");
    assert_eq!(view["counters"]["quarantined"], held);

    let listed = cli(&["view", "quarantine", "quarantined", "--api", &api]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        text.contains("\"a\"") && text.contains("row-too-large"),
        "{text}"
    );
    assert!(!text.contains("\"b\""), "{text}");

    // SIGKILL, then the same runtime again: the hold is in the store.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = crate::crash::spawn(&config, &log);
    crate::kit::wait_until(
        "the restart caught up",
        std::time::Duration::from_secs(60),
        || caught_up(&api),
    );
    assert_eq!(views(&api).unwrap()["quarantined_records"], held);
    // Released with the same limit: it fails again, nothing moves, and the
    // command says so with its exit status.
    let release = cli(&["view", "release", "quarantined", "a", "--api", &api]);
    assert!(!release.status.success());
    let text = String::from_utf8_lossy(&release.stdout);
    assert!(
        text.contains("still held") && text.contains("row-too-large"),
        "{text}"
    );
    assert_eq!(views(&api).unwrap()["quarantined_records"], held);
    crate::kit::sigterm(&child);
    assert!(child.wait().unwrap().success());

    // The operator raises the limit; the release applies every held event.
    let config = runtime_config(&dir, &broker, port, LARGE_LIMIT);
    let mut child = crate::crash::spawn(&config, &log);
    crate::kit::wait_until(
        "the fixed runtime caught up",
        std::time::Duration::from_secs(60),
        || caught_up(&api),
    );
    let release = cli(&[
        "view",
        "release",
        "quarantined",
        "--api",
        &api,
        "--output",
        "json",
    ]);
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&release.stdout).unwrap();
    assert_eq!(report["subjects"][0]["subject"], "a");
    assert_eq!(report["subjects"][0]["applied"], held, "{report}");
    assert_eq!(report["subjects"][0]["still_held"], 0);
    let view = views(&api).unwrap();
    assert_eq!(view["quarantined_records"], 0, "{view}");
    let row: serde_json::Value = ureq::get(&format!("{api}/v1/views/quarantined/rows/a"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(
        row["count"],
        held - 1,
        "the huge row, then the events behind it"
    );
    crate::kit::sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// The origins in the dead-letter topic `topic` (one partition), each with
/// how many times it is there and its class.
fn dead_letter_origins(
    broker: &crate::kit::Broker,
    topic: &str,
) -> std::collections::BTreeMap<(String, i32, i64), (usize, String)> {
    crate::kit::dead_letters_in(broker, topic, 1)
}

#[test]
fn discard_takes_every_held_record_out_to_the_dead_letter_topic_once_also_those_with_no_subject() {
    const DLQ: &str = "quarantined-dlq";
    let broker = crate::kit::Broker::new(&[(TOPIC, PARTITIONS), (DLQ, 1)]);
    publish_records(&broker);
    // Two records that can never be applied, held under the empty subject:
    // one that is no CloudEvent, one with no subject.
    broker.publish_raw(
        TOPIC,
        2,
        Some(b"k"),
        Some(b"not a cloud event"),
        rdkafka::message::OwnedHeaders::new(),
    );
    broker.publish(TOPIC, 0, "tick", "no-subject", None, b"{}");
    broker.flush();
    let per_partition: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            records()
                .iter()
                .filter(|m| m.partition() == p)
                .count()
                .try_into()
                .unwrap()
        })
        .collect();
    let unroutable = [
        (TOPIC.to_owned(), 2, per_partition[2]),
        (TOPIC.to_owned(), 0, per_partition[0]),
    ];
    let total = u64::try_from(records().len() + 2).unwrap();
    let dir = TempDir::new("quarantine-discard");
    let port = crate::kit::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let config = runtime_config(&dir, &broker, port, SMALL_LIMIT);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}dead_letter_topic = \"{DLQ}\"\n")).unwrap();
    let child = crate::kit::KillOnDrop(crate::crash::spawn(&config, &log));
    crate::kit::wait_until(
        "the view caught up",
        std::time::Duration::from_secs(60),
        || {
            views(&api).is_some_and(|view| {
                view["partitions"].as_array().is_some_and(|p| {
                    p.iter()
                        .filter_map(|p| p["checkpoint"].as_u64())
                        .sum::<u64>()
                        == total
                })
            })
        },
    );
    let view = views(&api).unwrap();
    assert_eq!(
        view["quarantined_subjects"], 2,
        "a and the empty subject: {view}"
    );
    let held_a = view["quarantined_records"].as_u64().unwrap() - 2;
    // Nothing in the topic yet: quarantine holds, it does not dead-letter.
    assert!(dead_letter_origins(&broker, DLQ).is_empty());

    // A release of every subject: neither can be applied (the limit is
    // the same, and the empty subject's records never can); the command
    // says which subjects are still held, with status 2.
    let release = cli(&["view", "release", "quarantined", "--api", &api]);
    assert_eq!(release.status.code(), Some(2), "{release:?}");
    let stderr = String::from_utf8_lossy(&release.stderr);
    assert!(
        stderr.contains("0 of 2 subjects released")
            && stderr.contains("\"\", \"a\"")
            && stderr.contains("projector view discard"),
        "{stderr}"
    );

    // Discard the empty subject: both records go to the dead-letter topic,
    // once each, with their own failure class.
    let discard = cli(&["view", "discard", "quarantined", "", "--api", &api]);
    assert!(discard.status.success(), "{discard:?}");
    let stdout = String::from_utf8_lossy(&discard.stdout);
    assert!(
        stdout.contains("2 records discarded to the dead-letter topic quarantined-dlq"),
        "{stdout}"
    );
    crate::kit::wait_until(
        "the discarded records acknowledged",
        std::time::Duration::from_secs(30),
        || views(&api).is_some_and(|v| v["dead_letters_held"] == 0),
    );
    let letters = dead_letter_origins(&broker, DLQ);
    let expected: std::collections::BTreeMap<_, _> = [
        (unroutable[0].clone(), (1, "invalid-event".to_owned())),
        (unroutable[1].clone(), (1, "no-subject".to_owned())),
    ]
    .into_iter()
    .collect();
    assert_eq!(letters, expected);

    // A subject that is not held: said, status 1, nothing else done.
    let nobody = cli(&["view", "discard", "quarantined", "nobody", "--api", &api]);
    assert_eq!(nobody.status.code(), Some(1), "{nobody:?}");
    assert!(String::from_utf8_lossy(&nobody.stdout).contains("not held"));

    // Discard `a` too: the quarantine is empty, every held record of it is
    // in the topic once, and the counters say so.
    let report = discard_as_json(&api, "a");
    assert_eq!(report["subjects"][0]["discarded"], held_a, "{report}");
    assert_eq!(report["subjects"][0]["dead_letter_topic"], DLQ);
    crate::kit::wait_until(
        "every discarded record acknowledged",
        std::time::Duration::from_secs(30),
        || views(&api).is_some_and(|v| v["dead_letters_held"] == 0),
    );
    let view = views(&api).unwrap();
    assert_eq!(view["quarantined_subjects"], 0, "{view}");
    assert_eq!(view["quarantined_records"], 0, "{view}");
    assert_eq!(view["counters"]["discarded"], held_a + 2, "{view}");
    let letters = dead_letter_origins(&broker, DLQ);
    assert_eq!(
        u64::try_from(letters.len()).unwrap(),
        held_a + 2,
        "{letters:?}"
    );
    assert!(letters.values().all(|(n, _)| *n == 1), "{letters:?}");
    assert_eq!(
        letters
            .iter()
            .filter(|(_, (_, class))| class == "row-too-large")
            .count(),
        1,
        "the poison keeps its class; those behind it are held-behind: {letters:?}"
    );
    assert!(child.stop());
}

#[test]
fn a_sigkill_while_records_are_applied_and_held_loses_none_and_holds_none_twice() {
    use crate::kit::{KillOnDrop, wait_until};
    use std::time::Duration;
    const PER_PARTITION: i64 = 6_000;
    let broker = crate::kit::Broker::new(&[(TOPIC, PARTITIONS)]);
    let subjects = ["a", "b", "c"];
    let mut totals = std::collections::BTreeMap::new();
    for offset in 0..PER_PARTITION {
        for partition in 0..PARTITIONS {
            let subject = subjects[usize::try_from((offset + i64::from(partition)) % 3).unwrap()];
            let poison = partition == 1
                && subject == "a"
                && offset > 500
                && !totals.contains_key("poisoned");
            let (ty, data) = if poison {
                totals.insert("poisoned", 1);
                ("misbehave.huge-row", HUGE.to_string())
            } else {
                ("tick", "{}".to_owned())
            };
            broker.publish(
                TOPIC,
                partition,
                ty,
                &format!("e-{partition}-{offset}"),
                Some(subject),
                data.as_bytes(),
            );
            *totals.entry(subject).or_insert(0_u64) += 1;
        }
    }
    broker.flush();
    let total = u64::try_from(PER_PARTITION).unwrap() * u64::try_from(PARTITIONS).unwrap();
    let dir = TempDir::new("quarantine-kill");
    let port = crate::kit::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let config = runtime_config(&dir, &broker, port, SMALL_LIMIT);
    // The killed member's ghost holds the partitions for its session: a
    // short one, so that the restart gets them back soon.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[broker]\n",
        "[broker]\nsettings = { \"session.timeout.ms\" = \"6000\", \"heartbeat.interval.ms\" = \"500\" }\n",
    );
    std::fs::write(&config, text).unwrap();
    let checkpoints = |api: &str| {
        views(api).and_then(|view| {
            view["partitions"].as_array().map(|p| {
                p.iter()
                    .filter_map(|p| p["checkpoint"].as_u64())
                    .sum::<u64>()
            })
        })
    };
    // Killed while the subject is held and records are still being applied
    // (and held behind it): both confirmed from the API just before.
    let child = KillOnDrop(crate::crash::spawn(&config, &log));
    let mut at_kill = None;
    wait_until(
        "records held and more to apply",
        Duration::from_secs(60),
        || {
            let view = views(&api);
            let held = view
                .as_ref()
                .and_then(|v| v["quarantined_records"].as_u64())
                .unwrap_or(0);
            let taken = checkpoints(&api).unwrap_or(0);
            if held > 0 && taken < total {
                at_kill = Some((held, taken));
                true
            } else {
                assert!(
                    taken < total,
                    "the view caught up before it could be killed mid-stream"
                );
                false
            }
        },
    );
    child.kill();
    let (held_at_kill, taken_at_kill) = at_kill.unwrap();
    let child = KillOnDrop(crate::crash::spawn(&config, &log));
    wait_until("the restart caught up", Duration::from_secs(120), || {
        checkpoints(&api) == Some(total)
    });
    let view = views(&api).unwrap();
    let held = view["quarantined_records"].as_u64().unwrap();
    let count = |subject: &str| {
        ureq::get(&format!("{api}/v1/views/quarantined/rows/{subject}"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok())
            .and_then(|row| row["count"].as_u64())
            .unwrap_or(0)
    };
    println!(
        "quarantine kill: killed with {held_at_kill} held and {taken_at_kill} of {total} taken; after the restart {held} held"
    );
    assert!(
        held >= held_at_kill,
        "a held record was lost: {held} < {held_at_kill}"
    );
    // Every record of a is applied or held, once: the poison replaced the
    // row with a huge one that the small limit refused, so `a` counts what
    // came before it.
    assert_eq!(
        count("a") + held,
        totals["a"],
        "a: applied {} + held {held}",
        count("a")
    );
    assert_eq!(count("b"), totals["b"]);
    assert_eq!(count("c"), totals["c"]);
    // Thousands held: a discard takes them out a page (1,000) at a time,
    // all of them (no dead-letter topic here: dropped, counted).
    assert!(held > 2 * 1000, "enough for several pages: {held}");
    let report = discard_as_json(&api, "a");
    assert_eq!(report["subjects"][0]["discarded"], held, "{report}");
    assert_eq!(
        report["subjects"][0]["dead_letter_topic"],
        serde_json::Value::Null
    );
    let view = views(&api).unwrap();
    assert_eq!(view["quarantined_records"], 0, "{view}");
    assert_eq!(view["counters"]["discarded"], held, "{view}");
    assert!(child.stop());
}

#[test]
fn a_view_whose_policy_no_longer_holds_its_held_records_refuses_to_start() {
    let dir = TempDir::new("quarantine-policy-changed");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    let (mut worker, status) = open(&store, SMALL_LIMIT, 1, 1);
    for message in &records() {
        worker.handle(&QUIET, message).unwrap();
    }
    worker.commit(&QUIET).unwrap();
    let held = status.quarantined().1;
    assert!(held > 0);
    drop(worker);
    // The operator switches the view to `skip`: the held records would be
    // neither released nor sent, and the group's offset would pass them.
    let mut config = view(
        "quarantined",
        projector_examples::MISBEHAVING.path,
        &[TOPIC],
        OnError::Skip,
    );
    config.shards = Some(1);
    let module = Engine::new(EngineConfig::default())
        .unwrap()
        .load_file(Path::new(projector_examples::MISBEHAVING.path))
        .unwrap();
    let policy = ErrorPolicy::connect(&config, &BrokerConfig::default()).unwrap();
    let refused = Worker::open(
        config,
        module.instance(),
        Arc::clone(&store),
        Arc::new(ViewStatus::default()),
        BatchLimits::default(),
        policy,
    )
    .expect_err("the view must not start");
    let message = refused.to_string();
    assert!(
        message.contains(&format!("{held} records held in quarantine"))
            && message.contains("on_error = \"skip\"")
            && message.contains("projector view discard"),
        "{message}"
    );
    // Nothing was dropped: the quarantine policy finds them all again.
    let (_worker, status) = open(&store, SMALL_LIMIT, 1, 1);
    assert_eq!(status.quarantined().1, held);
}
