//! Deduplication by CloudEvents identity (`dedup`): an application's
//! re-sends (same subject, source and id, new offsets) are applied once,
//! within the window, across partitions, shards and restarts; past the
//! window a copy is applied; the expiry forgets what is past it.
//!
//! The view is the event counter, which counts every event it applies per
//! partition and offset: a copy applied shows as a count and an offset the
//! oracle does not have.

use std::time::Duration;

use projector::config::{DedupConfig, OnError, ViewConfig};
use projector::engine::EngineConfig;
use projector::store::ViewStore;
use rdkafka::message::Header;

use crate::kit::{Broker, TempDir, start, view, wait_for};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

const PARTITIONS: i32 = 4;
const SUBJECTS: usize = 60;

fn counter_with_dedup(name: &str, topic: &str, keep: &str, time: &str) -> ViewConfig {
    let mut config = view(
        name,
        projector_examples::EVENT_COUNTER.path,
        &[topic],
        OnError::Stop,
    );
    config.shards = Some(4);
    config.dedup = Some(DedupConfig {
        by: "source-id".to_owned(),
        keep: keep.to_owned(),
        time: time.to_owned(),
    });
    config
}

/// The sum of the view's checkpoints over the topic's partitions.
fn checkpointed(status: &projector::pipeline::status::ViewStatus) -> i64 {
    status
        .partitions()
        .values()
        .filter_map(|p| p.checkpoint)
        .sum()
}

#[test]
fn an_applications_re_sends_are_applied_once_across_partitions_shards_and_restarts() {
    let broker = Broker::new(&[(TOPIC, PARTITIONS)]);
    let dir = TempDir::new("dedup-resends");
    let mut stream = Stream::default();
    let mut resent = 0_u64;
    // The first copies, with 1% re-sent before the view runs: some on
    // their own partition right after the first (in one batch with it),
    // some on another partition (a mis-partitioned re-send).
    for round in 0..20 {
        stream.send(
            &broker,
            100,
            SUBJECTS,
            PARTITIONS,
            Partitioning::HalfMisplaced,
        );
        let index = stream.events() - 1 - round % 7;
        let partition = if round % 2 == 0 {
            i32::try_from(round).unwrap() % PARTITIONS
        } else {
            Partitioning::HalfMisplaced.partition_of(index, SUBJECTS, PARTITIONS)
        };
        stream.resend(&broker, index, SUBJECTS, partition);
        resent += 1;
    }
    broker.flush();
    let config = counter_with_dedup("counter", TOPIC, "7d", "record");
    let service = start(&broker, &dir, vec![config.clone()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    let records =
        |stream: &Stream, resent: u64| i64::try_from(stream.events() as u64 + resent).unwrap();
    let total = records(&stream, resent);
    wait_for(&status, Duration::from_secs(60), "every record", |s| {
        checkpointed(s) == total
    });
    // Re-sends of events the view has applied and committed, some of the
    // oldest, on every partition.
    for n in 0..10 {
        stream.resend(
            &broker,
            n * 97,
            SUBJECTS,
            i32::try_from(n).unwrap() % PARTITIONS,
        );
        resent += 1;
    }
    stream.publish(
        &broker,
        200,
        SUBJECTS,
        PARTITIONS,
        Partitioning::HalfMisplaced,
    );
    let total = records(&stream, resent);
    wait_for(&status, Duration::from_secs(60), "every record", |s| {
        checkpointed(s) == total
    });
    let counters = status.counters();
    assert_eq!(
        (counters.applied, counters.duplicates_by_id),
        (stream.events() as u64, resent),
        "each first copy applied, each re-send counted as a duplicate"
    );
    // The same count in /metrics and /v1/views.
    let api = crate::kit::Api::start(&service, None);
    let (_, _, metrics) = api.get_with("/metrics", &[]);
    let line =
        format!("projector_events_total{{view=\"counter\",outcome=\"duplicate_by_id\"}} {resent}");
    assert!(metrics.contains(&line), "{line} in {metrics}");
    let (_, views) = api.get("/v1/views");
    assert_eq!(
        views["views"][0]["counters"]["duplicates_by_id"], resent,
        "{views}"
    );
    assert_eq!(
        views["views"][0]["identities_remembered"],
        stream.events(),
        "{views}"
    );
    drop(api);
    assert_eq!(
        status.identities_remembered(),
        stream.events() as u64,
        "one identity per event applied"
    );
    let rows = service.views()[0].rows.clone();
    assert_eq!(service.stop()["counter"], Ok(()));
    let discrepancies = oracle_discrepancies(&rows, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    // The store holds each identity once: no copy was applied.
    let stored = rows.identities(i64::MIN).unwrap();
    assert_eq!(stored.len() as u64, stream.events() as u64);
    drop(rows);

    // A restart remembers: re-sends after it are duplicates too.
    let service = start(&broker, &dir, vec![config], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    assert_eq!(
        status.identities_remembered(),
        stream.events() as u64,
        "the identities are loaded at start"
    );
    for n in 0..5 {
        stream.resend(
            &broker,
            3 + n * 211,
            SUBJECTS,
            (i32::try_from(n).unwrap() + 1) % PARTITIONS,
        );
    }
    stream.publish(
        &broker,
        40,
        SUBJECTS,
        PARTITIONS,
        Partitioning::HalfMisplaced,
    );
    let total = records(&stream, resent) + 5;
    wait_for(
        &status,
        Duration::from_secs(60),
        "the records after the restart",
        |s| checkpointed(s) == total,
    );
    assert_eq!(status.counters().duplicates_by_id, 5);
    assert_eq!(status.counters().applied, 40);
    let rows = service.views()[0].rows.clone();
    assert_eq!(service.stop()["counter"], Ok(()));
    let discrepancies = oracle_discrepancies(&rows, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
}

/// Publish a Tick for `subject` with `id` to partition 0 of `topic`, with
/// the record's timestamp and, when given, the event's `time`.
fn tick_at(broker: &Broker, topic: &str, subject: &str, id: &str, record_ms: i64, time: &str) {
    let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
        id,
        source: "/tests",
        ty: "Tick",
        subject: Some(subject),
        datacontenttype: Some("application/json"),
    })
    .insert(Header {
        key: "ce_time",
        value: Some(time),
    });
    broker.publish_raw_at(
        topic,
        0,
        Some(subject.as_bytes()),
        Some(b"{}"),
        headers,
        Some(record_ms),
    );
}

#[test]
fn a_copy_past_the_window_is_applied_and_the_expiry_forgets_what_is_past_it() {
    const HOUR: i64 = 3_600_000;
    let topic = "window";
    let broker = Broker::new(&[(topic, 1)]);
    let dir = TempDir::new("dedup-window");
    let t0 = 1_790_000_000_000_i64; // 2026-09-21, in the past
    let time = |ms: i64| {
        // RFC 3339 of ms, whole hours after t0.
        let hours = (ms - t0) / HOUR;
        format!("2026-09-21T{:02}:13:20Z", 14 + hours)
    };
    assert_eq!(projector_sdk::dedup::rfc3339_ms(&time(t0)), Some(t0));
    // Record times a day apart from the event times: by record time, the
    // copies of "a/e1" are 30 min and 2 h after it; by event time all are
    // at t0, while "b/e2" moves the event stream time 2 h on.
    let base = t0 + 24 * HOUR;
    tick_at(&broker, topic, "a", "e1", base, &time(t0));
    tick_at(&broker, topic, "c", "e3", base, &time(t0));
    tick_at(&broker, topic, "a", "e1", base + HOUR / 2, &time(t0));
    tick_at(
        &broker,
        topic,
        "b",
        "e2",
        base + 2 * HOUR,
        &time(t0 + 2 * HOUR),
    );
    tick_at(&broker, topic, "a", "e1", base + 2 * HOUR, &time(t0));
    broker.flush();
    let by_record = counter_with_dedup("by_record", topic, "1h", "record");
    let by_event = counter_with_dedup("by_event", topic, "1h", "event");
    let service = start(
        &broker,
        &dir,
        vec![by_record, by_event],
        EngineConfig::default(),
    );
    for name in ["by_record", "by_event"] {
        let status = service.statuses()[name].clone();
        wait_for(&status, Duration::from_secs(60), "five records", |s| {
            checkpointed(s) == 5
        });
    }
    let count_of = |view: usize, subject: &str| {
        let row = service.views()[view].rows.row(subject).unwrap().unwrap();
        serde_json::from_str::<serde_json::Value>(&row.json).unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    // By record time: the copy 30 min later is a duplicate, the one 2 h
    // later is past the window and applied.
    assert_eq!(
        service.statuses()["by_record"].counters().duplicates_by_id,
        1
    );
    assert_eq!(count_of(0, "a"), 2);
    // By event time: the copies carry the first's time; the first is
    // remembered until the stream time (2 h on, from b) passes it by 1 h.
    assert_eq!(
        service.statuses()["by_event"].counters().duplicates_by_id,
        1
    );
    assert_eq!(count_of(1, "a"), 2);
    // The expiry forgets what the committed stream time is an hour past:
    // c/e3 in both, and a/e1's first time (a/e1 is remembered again from
    // its last copy in by_record, from t0 in by_event).
    let remembered = |name: &str| service.statuses()[name].identities_remembered();
    crate::kit::wait_until("the expiry", Duration::from_secs(30), || {
        remembered("by_record") == 2 && remembered("by_event") == 1
    });
    let status = service.statuses();
    assert_eq!(status["by_record"].counters().applied, 4);
    assert_eq!(status["by_event"].counters().applied, 4);
    let stopped = service.stop();
    for name in ["by_record", "by_event"] {
        assert_eq!(stopped[name], Ok(()));
    }
}
