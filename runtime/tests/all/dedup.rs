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
        crate::kit::checkpoint_sum(s) == total
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
        crate::kit::checkpoint_sum(s) == total
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
    // The watermark, once the expiry has looked: every partition has
    // delivered, so it is a record time (the producer's clock: now).
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    crate::kit::wait_until(
        "the watermark in /v1/views",
        Duration::from_secs(30),
        || {
            let (_, views) = api.get("/v1/views");
            views["views"][0]["dedup_watermark_ms"]
                .as_u64()
                .is_some_and(|watermark| u128::from(watermark) + 600_000 > started)
        },
    );
    drop(api);
    assert_eq!(
        status.identities_remembered(),
        stream.events() as u64,
        "one identity per event applied"
    );
    let rows = service.views().live()[0].rows.clone();
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
        |s| crate::kit::checkpoint_sum(s) == total,
    );
    assert_eq!(status.counters().duplicates_by_id, 5);
    assert_eq!(status.counters().applied, 40);
    let rows = service.views().live()[0].rows.clone();
    assert_eq!(service.stop()["counter"], Ok(()));
    let discrepancies = oracle_discrepancies(&rows, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
}

/// Publish a Tick for `subject` with `id` to `partition` of `topic`, with
/// the record's timestamp and the event's `time`.
fn tick_at(
    broker: &Broker,
    (topic, partition): (&str, i32),
    (subject, id): (&str, &str),
    record_ms: i64,
    time: &str,
) {
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
        partition,
        Some(subject.as_bytes()),
        Some(b"{}"),
        headers,
        Some(record_ms),
    );
}

const HOUR: i64 = 3_600_000;

/// RFC 3339 of `ms`, for whole seconds.
fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let seconds = ms.rem_euclid(86_400_000) / 1_000;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// `name`'s count of `subject`'s events.
fn count_of(service: &projector::service::Service, name: &str, subject: &str) -> u64 {
    let view = service
        .views()
        .live()
        .iter()
        .find(|view| view.info.name == name)
        .unwrap()
        .rows
        .clone();
    let row = view.row(subject).unwrap().unwrap();
    serde_json::from_str::<serde_json::Value>(&row.json).unwrap()["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_copy_past_the_window_is_applied_and_the_expiry_forgets_what_the_watermark_is_past() {
    let topic = "window";
    let broker = Broker::new(&[(topic, 1)]);
    let dir = TempDir::new("dedup-window");
    let t0 = 1_790_000_000_000_i64; // 2026-09-21, in the past
    assert_eq!(projector_sdk::dedup::rfc3339_ms(&rfc3339(t0)), Some(t0));
    assert_eq!(rfc3339(t0), "2026-09-21T14:13:20Z");
    // Record times a day after the event times. By record time the copies
    // of a/e1 are 30 min and 90 min after the first; by event time they
    // all carry the first's time.
    let base = t0 + 24 * HOUR;
    let at = (topic, 0);
    tick_at(&broker, at, ("a", "e1"), base, &rfc3339(t0));
    tick_at(&broker, at, ("c", "e3"), base, &rfc3339(t0));
    tick_at(&broker, at, ("a", "e1"), base + HOUR / 2, &rfc3339(t0));
    tick_at(&broker, at, ("a", "e1"), base + 3 * HOUR / 2, &rfc3339(t0));
    broker.flush();
    let by_record = counter_with_dedup("by_record", topic, "1h", "record");
    let by_event = counter_with_dedup("by_event", topic, "1h", "event");
    let service = start(
        &broker,
        &dir,
        vec![by_record, by_event],
        EngineConfig::default(),
    );
    let statuses = service.statuses();
    for status in statuses.values() {
        wait_for(status, Duration::from_secs(60), "four records", |s| {
            crate::kit::checkpoint_sum(s) == 4
        });
    }
    // By record time: the copy 30 min later is a duplicate, the one 90 min
    // later is past the window by its own time, and applied. By event
    // time both copies are duplicates: nothing has moved the watermark.
    assert_eq!(statuses["by_record"].counters().duplicates_by_id, 1);
    assert_eq!(count_of(&service, "by_record", "a"), 2);
    assert_eq!(statuses["by_event"].counters().duplicates_by_id, 2);
    assert_eq!(count_of(&service, "by_event", "a"), 1);

    // b/e2, 3 h on, moves the watermark: the expiry forgets what it is an
    // hour past, a/e1 and c/e3 in both views.
    tick_at(
        &broker,
        at,
        ("b", "e2"),
        base + 3 * HOUR,
        &rfc3339(t0 + 3 * HOUR),
    );
    broker.flush();
    let remembered = |name: &str| statuses[name].identities_remembered();
    crate::kit::wait_until("the expiry", Duration::from_secs(30), || {
        remembered("by_record") == 1 && remembered("by_event") == 1
    });
    // Now a copy of a/e1 with its old event time is applied by event time
    // too: the view has read an hour past it.
    tick_at(&broker, at, ("a", "e1"), base + 3 * HOUR, &rfc3339(t0));
    broker.flush();
    for status in statuses.values() {
        wait_for(status, Duration::from_secs(60), "six records", |s| {
            crate::kit::checkpoint_sum(s) == 6
        });
    }
    assert_eq!(count_of(&service, "by_record", "a"), 3);
    assert_eq!(count_of(&service, "by_event", "a"), 2);
    assert_eq!(statuses["by_record"].counters().duplicates_by_id, 1);
    assert_eq!(statuses["by_event"].counters().duplicates_by_id, 2);
    let stopped = service.stop();
    for name in ["by_record", "by_event"] {
        assert_eq!(stopped[name], Ok(()));
    }
}

#[test]
fn a_partition_left_behind_holds_the_watermark_and_its_copies_stay_caught() {
    // Partition 1 carries two-day-old records (a backlog after an outage)
    // and stops one of its shards on a malformed record (on_error =
    // "stop"), so it keeps records to read; partition 0 is live. The
    // watermark stays at partition 1's time, not partition 0's: its
    // identities are kept, and copies read there later are duplicates.
    let topic = "late";
    let broker = Broker::new(&[(topic, 2)]);
    let dir = TempDir::new("dedup-late");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let old = now - 48 * HOUR;
    let shards = projector::shard::Shards::new(2).unwrap();
    // A record with no key stops shard `partition % 2` of its partition.
    let stopped = shards.of_unrouted(None, 1);
    let going_on: Vec<String> = (0..400)
        .map(|n| format!("s-{n}"))
        .filter(|s| shards.of_subject(s) != stopped)
        .take(100)
        .collect();
    for n in 0..20 {
        let time = now - 60_000 + n;
        tick_at(
            &broker,
            (topic, 0),
            (&format!("live-{n}"), &format!("l{n}")),
            time,
            &rfc3339(time),
        );
    }
    let old_at = |n: usize| old + i64::try_from(n).unwrap() * 10;
    for (n, subject) in going_on.iter().enumerate() {
        tick_at(
            &broker,
            (topic, 1),
            (subject, &format!("e{n}")),
            old_at(n),
            &rfc3339(old),
        );
    }
    broker.publish_raw(
        topic,
        1,
        None,
        Some(b"not a cloud event"),
        rdkafka::message::OwnedHeaders::new(),
    );
    broker.flush();
    let mut config = counter_with_dedup("late", topic, "1h", "record");
    config.shards = Some(2);
    config.on_error = OnError::Stop;
    let service = start(&broker, &dir, vec![config], EngineConfig::default());
    let status = service.statuses()["late"].clone();
    wait_for(
        &status,
        Duration::from_secs(60),
        "the records and the stop",
        |s| s.counters().applied == 120 && s.counters().stopped == 1,
    );
    // The watermark is partition 1's stream time (its newest record read,
    // as its applier last gave it: within a second), two days behind
    // partition 0's.
    let newest = old_at(going_on.len() - 1);
    crate::kit::wait_until(
        "the watermark at partition 1",
        Duration::from_secs(30),
        || {
            status
                .dedup_watermark()
                .is_some_and(|watermark| (old..=newest).contains(&watermark))
        },
    );
    assert_eq!(status.identities_remembered(), 120, "none forgotten");
    // Copies of partition 1's events, a second after their first by the
    // producer's clock, read now: duplicates.
    for (n, subject) in going_on.iter().enumerate().step_by(10) {
        tick_at(
            &broker,
            (topic, 1),
            (subject, &format!("e{n}")),
            old_at(n) + 1_000,
            &rfc3339(old),
        );
    }
    broker.flush();
    wait_for(&status, Duration::from_secs(60), "the copies", |s| {
        s.counters().duplicates_by_id == 10
    });
    assert_eq!(status.counters().applied, 120);
    for subject in &going_on {
        assert_eq!(count_of(&service, "late", subject), 1, "{subject}");
    }
    assert_eq!(service.stop()["late"], Ok(()));
}
