//! The error policies, with every failure kind: guest trap, deadline (a
//! transient failure, retried first), a record that is not a CloudEvent and
//! an event without a subject. Benign events around them must be applied.

use std::time::Duration;

use projector::config::OnError;
use projector::engine::EngineConfig;
use projector::pipeline::PartitionState;
use projector::store::{Store, ViewStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kit::{Broker, TempDir, start, view, wait_for};

const TOPIC: &str = "bad";

/// Offsets 0..15: benign, trap, benign, not a CloudEvent, benign, no
/// subject, endless loop, benign, then panic, memory bomb, stack overflow,
/// invalid JSON row, huge row, guest error, benign. Returns the failing
/// offsets and their error classes.
fn publish_mixed(broker: &Broker) -> Vec<(i64, &'static str)> {
    broker.publish(TOPIC, 0, "count", "e0", Some("a"), b"{}");
    broker.publish(TOPIC, 0, "misbehave.trap", "e1", Some("victim"), b"{}");
    broker.publish(TOPIC, 0, "count", "e2", Some("a"), b"{}");
    let headers = OwnedHeaders::new().insert(Header {
        key: "origin",
        value: Some("legacy"),
    });
    broker.publish_raw(TOPIC, 0, Some(b"k"), Some(b"not a cloud event"), headers);
    broker.publish(TOPIC, 0, "count", "e4", Some("a"), b"{}");
    broker.publish(TOPIC, 0, "count", "e5", None, b"{}");
    broker.publish(TOPIC, 0, "misbehave.loop", "e6", Some("victim"), b"{}");
    broker.publish(TOPIC, 0, "count", "e7", Some("a"), b"{}");
    broker.publish(TOPIC, 0, "misbehave.panic", "e8", Some("victim"), b"{}");
    broker.publish(
        TOPIC,
        0,
        "misbehave.memory-bomb",
        "e9",
        Some("victim"),
        b"{}",
    );
    broker.publish(
        TOPIC,
        0,
        "misbehave.stack-overflow",
        "e10",
        Some("victim"),
        b"{}",
    );
    broker.publish(
        TOPIC,
        0,
        "misbehave.invalid-json",
        "e11",
        Some("victim"),
        b"{}",
    );
    broker.publish(
        TOPIC,
        0,
        "misbehave.huge-row",
        "e12",
        Some("victim"),
        b"2000000",
    );
    broker.publish(TOPIC, 0, "misbehave.error", "e13", Some("victim"), b"{}");
    broker.publish(TOPIC, 0, "count", "e14", Some("a"), b"{}");
    broker.flush();
    vec![
        (1, "guest-trap"),
        (3, "invalid-event"),
        (5, "no-subject"),
        (6, "deadline-exceeded"),
        (8, "guest-panic"),
        (9, "memory-exceeded"),
        (10, "stack-overflow"),
        (11, "invalid-row"),
        (12, "row-too-large"),
        (13, "guest-rejected"),
    ]
}

/// Records in the topic, and benign ones among them.
const RECORDS: i64 = 15;
const BENIGN: u64 = 5;

fn engine() -> EngineConfig {
    EngineConfig {
        call_deadline_ms: 100,
        max_memory_bytes: 16 << 20,
        ..EngineConfig::default()
    }
}

/// The view `misbehaving` of the misbehaving example.
fn misbehaving_view(topics: &[&str], policy: OnError) -> projector::config::ViewConfig {
    view(
        "misbehaving",
        projector_examples::MISBEHAVING.path,
        topics,
        policy,
    )
}

fn module_hash() -> String {
    crate::kit::hash_of(&projector_examples::MISBEHAVING)
}

fn count_of(service: &projector::service::Service, subject: &str) -> Option<u64> {
    let view = service
        .store()
        .open_view("misbehaving", &module_hash(), &[], None)
        .unwrap();
    view.row(subject).unwrap().map(|row| {
        serde_json::from_str::<serde_json::Value>(&row.json).unwrap()["count"]
            .as_u64()
            .unwrap()
    })
}

/// Run the misbehaving view with `policy` until every record of the topic
/// is handled.
fn run_until_handled(
    broker: &Broker,
    dir: &TempDir,
    policy: OnError,
) -> (
    projector::service::Service,
    std::sync::Arc<projector::pipeline::ViewStatus>,
) {
    let misbehaving = misbehaving_view(&[TOPIC], policy);
    let service = start(broker, dir, vec![misbehaving], engine());
    let status = service.statuses()["misbehaving"].clone();
    wait_for(&status, Duration::from_secs(60), "all handled", |s| {
        s.partitions()
            .get(&(TOPIC.to_owned(), 0))
            .and_then(|p| p.checkpoint)
            == Some(RECORDS)
    });
    (service, status)
}

#[test]
fn skip_counts_every_failure_and_applies_the_rest() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("skip");
    publish_mixed(&broker);
    let (service, status) = run_until_handled(&broker, &dir, OnError::Skip);
    let counters = status.counters();
    assert_eq!(
        (counters.applied, counters.skipped),
        (BENIGN, 10),
        "{counters:?}"
    );
    assert_eq!(
        counters.retries, 1,
        "the deadline is transient and retried once"
    );
    assert_eq!(count_of(&service, "a"), Some(BENIGN));
    assert_eq!(count_of(&service, "victim"), None);
    let partition = &status.partitions()[&(TOPIC.to_owned(), 0)];
    assert_eq!(partition.state, PartitionState::Running);
    assert!(
        partition
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("guest-rejected: the projection refused the event: refusing"),
        "{partition:?}"
    );
    service.stop();
}

/// A malformed record: what it is, its key, value and headers, and the
/// reason its dead letter must carry.
type Malformed<'a> = (
    &'a str,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    OwnedHeaders,
    &'a str,
);

/// A dead-lettered record: its value and its headers.
type DeadLetter = (Option<Vec<u8>>, std::collections::BTreeMap<String, String>);

/// Read up to `count` records from the start of `topic`, within 30 s.
fn read_dead_letters(broker: &Broker, topic: &str, count: usize) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dlq-reader")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while records.len() < count && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push((message.payload().map(<[u8]>::to_vec), headers));
        }
    }
    records
}

#[test]
fn malformed_records_are_dead_lettered_with_their_reason_and_nothing_is_lost() {
    // On tansu: the mock cluster's log retention drops a 10 MiB record
    // (and the whole partition before it) on arrival.
    let broker = Broker::tansu(&[(TOPIC, 1), ("misbehaving-dlq", 1)]);
    let dir = TempDir::new("malformed");
    let header = |key: &'static str, value: &'static [u8]| Header {
        key,
        value: Some(value),
    };
    let binary = |headers: OwnedHeaders| {
        headers
            .insert(header("ce_id", b"m"))
            .insert(header("ce_source", b"/tests"))
            .insert(header("ce_type", b"count"))
    };
    let ten_mib = vec![b'x'; 10 << 20];
    // (what it is, key, value, headers, the reason the DLQ must carry)
    let malformed: Vec<Malformed<'_>> = vec![
        (
            "no ce_* headers",
            Some(b"k1"),
            Some(b"{\"a\":1}"),
            OwnedHeaders::new(),
            "not a CloudEvent",
        ),
        (
            "a wrong specversion",
            Some(b"k2"),
            Some(b"{}"),
            binary(OwnedHeaders::new().insert(header("ce_specversion", b"0.3"))),
            "unsupported specversion",
        ),
        (
            "a non-UTF-8 header value",
            Some(b"k3"),
            Some(b"{}"),
            OwnedHeaders::new()
                .insert(header("ce_specversion", b"1.0"))
                .insert(header("ce_id", b"m"))
                .insert(header("ce_source", b"/tests"))
                .insert(header("ce_type", b"\xff\xfecount")),
            "not UTF-8",
        ),
        (
            "a structured body that is not JSON",
            Some(b"k4"),
            Some(b"{not json"),
            OwnedHeaders::new().insert(header("content-type", b"application/cloudevents+json")),
            "invalid structured event",
        ),
        (
            "a tombstone",
            Some(b"k5"),
            None,
            OwnedHeaders::new(),
            "not a CloudEvent",
        ),
        (
            "a 10 MiB record",
            Some(b"k6"),
            Some(&ten_mib),
            OwnedHeaders::new(),
            "not a CloudEvent",
        ),
    ];
    broker.publish(TOPIC, 0, "count", "before", Some("a"), b"{}");
    for (_, key, value, headers, _) in &malformed {
        broker.publish_raw(TOPIC, 0, *key, *value, headers.clone());
    }
    broker.publish(TOPIC, 0, "count", "after", Some("a"), b"{}");
    broker.flush();

    let misbehaving = misbehaving_view(&[TOPIC], OnError::DeadLetter);
    let service = start(&broker, &dir, vec![misbehaving], engine());
    let status = service.statuses()["misbehaving"].clone();
    let records = i64::try_from(malformed.len()).unwrap() + 2;
    wait_for(&status, Duration::from_secs(60), "all handled", |s| {
        s.partitions()
            .get(&(TOPIC.to_owned(), 0))
            .and_then(|p| p.checkpoint)
            == Some(records)
    });
    wait_for(
        &status,
        Duration::from_secs(30),
        "the acknowledgements",
        |s| s.counters().dead_lettered == 6 && s.held_dead_letters() == 0,
    );
    let counters = status.counters();
    assert_eq!(
        (counters.applied, counters.dead_lettered),
        (2, 6),
        "{counters:?}"
    );
    assert_eq!(
        count_of(&service, "a"),
        Some(2),
        "the events around them are applied"
    );
    service.stop();

    let letters = read_dead_letters(&broker, "misbehaving-dlq", malformed.len());
    assert_eq!(
        letters.len(),
        malformed.len(),
        "every malformed record dead-lettered"
    );
    for ((what, _, value, _, reason), (payload, headers)) in malformed.iter().zip(&letters) {
        assert_eq!(headers["projector-error-class"], "invalid-event", "{what}");
        assert!(
            headers["projector-error-message"].contains(reason),
            "{what}: {:?}",
            headers["projector-error-message"]
        );
        assert_eq!(
            payload.as_deref(),
            *value,
            "{what}: the record is kept as it was"
        );
    }
}

#[test]
fn dead_letter_produces_each_failed_record_with_its_reason() {
    let broker = Broker::new(&[(TOPIC, 1), ("misbehaving-dlq", 1)]);
    let dir = TempDir::new("dlq");
    let failing = publish_mixed(&broker);
    let (service, status) = run_until_handled(&broker, &dir, OnError::DeadLetter);
    // Counted once the dead-letter topic acknowledged them, which may come
    // after the checkpoint passed them.
    wait_for(
        &status,
        Duration::from_secs(30),
        "the acknowledgements",
        |s| s.counters().dead_lettered == 10 && s.held_dead_letters() == 0,
    );
    assert_eq!(count_of(&service, "a"), Some(BENIGN));
    service.stop();

    let records = read_dead_letters(&broker, "misbehaving-dlq", failing.len());
    assert_eq!(
        records.len(),
        failing.len(),
        "every failed record in the dead-letter topic"
    );
    let classes: Vec<&str> = records
        .iter()
        .map(|(_, h)| h["projector-error-class"].as_str())
        .collect();
    let expected: Vec<&str> = failing.iter().map(|(_, class)| *class).collect();
    assert_eq!(classes, expected);
    for ((payload, headers), (offset, _)) in records.iter().zip(failing) {
        assert_eq!(headers["projector-error-offset"], offset.to_string());
        assert_eq!(headers["projector-error-topic"], TOPIC);
        assert_eq!(headers["projector-error-partition"], "0");
        assert_eq!(headers["projector-error-view"], "misbehaving");
        assert!(!headers["projector-error-message"].is_empty());
        assert!(payload.is_some(), "the original value is kept");
    }
    // The original record, headers included, is kept as it was.
    assert_eq!(records[1].0.as_deref(), Some(&b"not a cloud event"[..]));
    assert_eq!(records[1].1["origin"], "legacy");
    assert_eq!(records[0].1["ce_type"], "misbehave.trap");
}

#[test]
fn stop_halts_the_partition_at_the_failing_record_and_again_after_restart() {
    let broker = Broker::new(&[(TOPIC, 1), ("other", 1)]);
    let dir = TempDir::new("stop");
    publish_mixed(&broker);
    broker.publish("other", 0, "count", "o0", Some("b"), b"{}");
    broker.flush();
    let misbehaving = misbehaving_view(&[TOPIC, "other"], OnError::Stop);
    let service = start(&broker, &dir, vec![misbehaving.clone()], engine());
    let status = service.statuses()["misbehaving"].clone();
    wait_for(&status, Duration::from_secs(60), "the stop", |s| {
        s.counters().stopped == 1
    });
    wait_for(&status, Duration::from_secs(30), "the other topic", |s| {
        s.counters().applied == 2
    });
    // The stop is committed: the partition reports it, at the failing
    // record.
    wait_for(
        &status,
        Duration::from_secs(30),
        "the stop committed",
        |s| {
            s.partitions()
                .get(&(TOPIC.to_owned(), 0))
                .is_some_and(|p| p.state == PartitionState::Stopped && p.checkpoint.is_some())
        },
    );
    let partition = status.partitions()[&(TOPIC.to_owned(), 0)].clone();
    assert_eq!(partition.state, PartitionState::Stopped);
    assert_eq!(
        partition.checkpoint,
        Some(1),
        "nothing past the failing record"
    );
    assert!(
        partition
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("offset 1: guest-trap"),
        "{partition:?}"
    );
    assert_eq!(count_of(&service, "a"), Some(1));
    assert_eq!(
        count_of(&service, "b"),
        Some(1),
        "other partitions keep running"
    );
    service.stop();

    let service = start(&broker, &dir, vec![misbehaving], engine());
    let status = service.statuses()["misbehaving"].clone();
    wait_for(&status, Duration::from_secs(60), "the stop again", |s| {
        s.counters().stopped == 1
    });
    assert_eq!(status.counters().applied, 0);
    assert_eq!(count_of(&service, "a"), Some(1));
    service.stop();
}

/// A projection whose memory only grows (a language runtime that does not
/// give memory back) never fails an event for it: its instance is replaced
/// before the cap, and the replacements are counted.
#[test]
fn a_projection_whose_memory_keeps_growing_loses_no_event() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("leak");
    // 100 events leaking 256 KiB each: three times what the cap holds.
    let events = 100;
    for i in 0..events {
        let id = format!("l{i}");
        broker.publish(TOPIC, 0, "misbehave.leak", &id, Some("leaky"), b"262144");
    }
    broker.flush();
    let misbehaving = misbehaving_view(&[TOPIC], OnError::Stop);
    let engine = EngineConfig {
        max_memory_bytes: 8 << 20,
        ..engine()
    };
    let service = start(&broker, &dir, vec![misbehaving], engine);
    let status = service.statuses()["misbehaving"].clone();
    wait_for(
        &status,
        Duration::from_secs(60),
        "every event applied, or a stop",
        |s| s.counters().applied == events || s.counters().stopped > 0,
    );
    let counters = status.counters();
    assert_eq!(
        (counters.applied, counters.stopped),
        (events, 0),
        "{counters:?}"
    );
    assert!(counters.instances_recycled >= 2, "{counters:?}");
    assert_eq!(count_of(&service, "leaky"), Some(events));
    let api = crate::kit::Api::start(&service, None);
    let (code, _, metrics) = api.get_with("/metrics", &[]);
    assert_eq!(code, 200);
    let line = format!(
        "projector_instances_recycled_total{{view=\"misbehaving\"}} {}",
        counters.instances_recycled
    );
    assert!(metrics.contains(&line), "{metrics}");
    drop(api);
    service.stop();
}

#[test]
fn dropped_guest_logs_are_counted_in_the_status_and_the_metrics() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("log-flood");
    // 25 records logged per call, 10 kept: 15 dropped per event.
    for id in ["f0", "f1"] {
        broker.publish(TOPIC, 0, "misbehave.log-flood", id, Some("noisy"), b"25");
    }
    broker.flush();
    let misbehaving = misbehaving_view(&[TOPIC], OnError::Stop);
    let engine = EngineConfig {
        max_log_records_per_call: 10,
        ..engine()
    };
    let service = start(&broker, &dir, vec![misbehaving], engine);
    let status = service.statuses()["misbehaving"].clone();
    crate::kit::wait_applied(&status, 2);
    assert_eq!(status.counters().guest_logs_dropped, 30);
    let api = crate::kit::Api::start(&service, None);
    let (code, _, metrics) = api.get_with("/metrics", &[]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("projector_guest_logs_dropped_total{view=\"misbehaving\"} 30"),
        "{metrics}"
    );
    let (_, views) = api.get("/v1/views");
    assert_eq!(views["views"][0]["counters"]["guest_logs_dropped"], 30);
    drop(api);
    service.stop();
}
