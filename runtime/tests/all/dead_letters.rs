//! Dead letters: held in the store with the checkpoint that passes them,
//! produced with many in flight, written once across a crash, retried when
//! refused and then stopping their partition, and a missing topic refused
//! at start. Against librdkafka's mock cluster (fault injection) with the
//! real worker and the real `event-counter` component.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::config::OnError;
use projector::engine::{Engine, EngineConfig};
use projector::pipeline::policy::ErrorPolicy;
use projector::pipeline::{BatchLimits, PartitionState, ViewStatus, Worker};
use projector::store::{SledStore, Store, ViewStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage, Timestamp};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kit::{Broker, QUIET, TempDir, view, wait_until};

const TOPIC: &str = "events";
const DLQ: &str = "counter-dlq";

/// Record `offset` of partition 0: a CloudEvent for `s-0` when `good`, else
/// bytes that are no CloudEvent at all.
fn record(offset: i64, good: bool) -> OwnedMessage {
    let headers = good.then(|| {
        projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
            id: &format!("e-{offset}"),
            source: "/tests",
            ty: "Tick",
            subject: Some("s-0"),
            datacontenttype: Some("application/json"),
        })
    });
    OwnedMessage::new(
        Some(if good {
            b"{}".to_vec()
        } else {
            b"garbage".to_vec()
        }),
        Some(b"s-0".to_vec()),
        TOPIC.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000 + offset),
        0,
        offset,
        headers,
    )
}

fn counter_view() -> projector::config::ViewConfig {
    let mut config = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::DeadLetter,
    );
    config.dead_letter_topic = Some(DLQ.to_owned());
    config
}

/// The broker's settings, with dead letters failing in the client after
/// 2 s instead of 30 s.
fn broker_config(broker: &Broker) -> projector::config::BrokerConfig {
    let mut config = broker.config();
    config
        .settings
        .insert("message.timeout.ms".to_owned(), "2000".to_owned());
    config
}

fn open_worker(
    broker: &Broker,
    store: &Arc<SledStore>,
    status: &Arc<ViewStatus>,
) -> Worker<SledStore> {
    let config = counter_view();
    let module = Engine::new(EngineConfig::default())
        .expect("engine")
        .load_file(Path::new(projector_examples::EVENT_COUNTER.path))
        .expect("event-counter loads");
    let policy = ErrorPolicy::connect(&config, &broker_config(broker))
        .expect("the dead-letter topic exists");
    let worker = Worker::open(
        config,
        module.instance(),
        Arc::clone(store),
        Arc::clone(status),
        BatchLimits::default(),
        policy,
    )
    .expect("worker opens");
    worker.assign(&QUIET, &[(TOPIC.to_owned(), 0)], false);
    worker
}

/// The origin offsets of every record in the dead-letter topic, in order,
/// read until none came for 2 s.
fn dead_lettered_offsets(broker: &Broker) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dlq-check")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(DLQ, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut offsets = Vec::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            let origin = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "projector-error-offset"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).parse::<i64>().unwrap())
                .expect("an origin offset header");
            offsets.push(origin);
            quiet_since = Instant::now();
        }
    }
    offsets
}

/// Hand the records at `offsets` to `worker`, every tenth bad.
fn handle_records(worker: &mut Worker<SledStore>, offsets: std::ops::Range<i64>) {
    for offset in offsets {
        worker
            .handle(&QUIET, &record(offset, !is_bad(offset)))
            .unwrap();
    }
}

/// Every tenth record of 200 is bad.
const RECORDS: i64 = 200;
fn is_bad(offset: i64) -> bool {
    offset % 10 == 3
}

#[test]
fn dead_letters_are_written_once_across_a_crash_after_their_acknowledgement() {
    let broker = Broker::new(&[(TOPIC, 1), (DLQ, 1)]);
    let dir = TempDir::new("dlq-crash");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    handle_records(&mut worker, 0..RECORDS);
    // The batch with the held records and the checkpoint past them is
    // durable; the dead letters leave now, many in flight.
    worker.commit(&QUIET).unwrap();
    let bad: Vec<i64> = (0..RECORDS).filter(|o| is_bad(*o)).collect();
    wait_until(
        "the dead letters in their topic",
        Duration::from_secs(30),
        || dead_lettered_offsets(&broker).len() == bad.len(),
    );
    // The process dies before it saw the acknowledgements: the store still
    // holds every record (the crash window this test is about). Dropping
    // the worker stands for the crash: it commits nothing, and its
    // producer's flush on drop changes nothing, since every dead letter was
    // acknowledged already (waited for above). A crash with dead letters in
    // flight is a real SIGKILL in `crash::sigkill_*`, which checks that its
    // kills land there.
    drop(worker);
    let rows = store
        .open_view(
            "counter",
            &crate::kit::hash_of(&projector_examples::EVENT_COUNTER),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(
        rows.held_dead_letters().unwrap().len(),
        bad.len(),
        "the crash came before any release was committed"
    );
    assert_eq!(rows.checkpoint(TOPIC, 0).unwrap(), Some(RECORDS));

    // The next start finds them in the topic and does not produce them
    // again.
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    worker.finish(&QUIET).unwrap();
    assert_eq!(rows.held_dead_letters().unwrap().len(), 0, "all released");
    assert_eq!(
        dead_lettered_offsets(&broker),
        bad,
        "each written once, in order"
    );
    let row: event_counter::Counter =
        serde_json::from_str(&rows.row("s-0").unwrap().unwrap().json).unwrap();
    assert_eq!(
        row.count,
        u64::try_from(RECORDS).unwrap() - u64::try_from(bad.len()).unwrap()
    );
}

#[test]
fn dead_letters_held_but_never_sent_are_sent_after_a_crash() {
    let broker = Broker::new(&[(TOPIC, 1), (DLQ, 1)]);
    let dir = TempDir::new("dlq-unsent");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    // Half of them leave, then the broker refuses every produce: the rest
    // stay held when the process dies.
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    handle_records(&mut worker, 0..RECORDS / 2);
    worker.commit(&QUIET).unwrap();
    worker.finish(&QUIET).unwrap();
    let first: Vec<i64> = (0..RECORDS / 2).filter(|o| is_bad(*o)).collect();
    assert_eq!(dead_lettered_offsets(&broker), first);
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 1000],
    );
    handle_records(&mut worker, RECORDS / 2..RECORDS);
    worker.commit(&QUIET).unwrap();
    wait_until("the refusals", Duration::from_secs(30), || {
        worker.poll_dead_letters(&QUIET);
        status.counters().dead_lettered == u64::try_from(first.len()).unwrap()
            && status.held_dead_letters() == 10
            && status.partitions()[&(TOPIC.to_owned(), 0)].state == PartitionState::Stopped
    });
    // The crash: every held record was refused and waits for its retry, so
    // none is in flight for the producer's flush on drop to deliver.
    drop(worker);
    broker
        .cluster()
        .clear_request_errors(RDKafkaApiKey::Produce);

    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    // Not in the topic at start: they settle (the producer's
    // message.timeout.ms, 2 s here), then leave.
    assert_eq!(status.held_dead_letters(), 10);
    wait_until("the held records produced", Duration::from_secs(30), || {
        worker.poll_dead_letters(&QUIET);
        status.held_dead_letters() == 0
    });
    worker.finish(&QUIET).unwrap();
    let all: Vec<i64> = (0..RECORDS).filter(|o| is_bad(*o)).collect();
    assert_eq!(dead_lettered_offsets(&broker), all, "each written once");
    assert_eq!(status.held_dead_letters(), 0);
}

#[test]
fn a_dead_letter_in_flight_at_a_crash_that_lands_after_the_restart_is_not_produced_again() {
    let broker = Broker::new(&[(TOPIC, 1), (DLQ, 1)]);
    let dir = TempDir::new("dlq-late");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    // Every dead letter is refused: all stay held when the process dies.
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 1000],
    );
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    handle_records(&mut worker, 0..RECORDS);
    worker.commit(&QUIET).unwrap();
    let bad: Vec<i64> = (0..RECORDS).filter(|o| is_bad(*o)).collect();
    wait_until("the refusals", Duration::from_secs(30), || {
        worker.poll_dead_letters(&QUIET);
        status.partitions()[&(TOPIC.to_owned(), 0)].state == PartitionState::Stopped
    });
    drop(worker);
    broker
        .cluster()
        .clear_request_errors(RDKafkaApiKey::Produce);
    assert!(dead_lettered_offsets(&broker).is_empty());

    // The next start finds none of them in the topic...
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    assert_eq!(status.held_dead_letters(), 20);
    // ...and goes on for a while (a start that produced them again at once
    // would have done so by now)...
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(700) {
        worker.poll_dead_letters(&QUIET);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status.held_dead_letters(), 20, "they settle, unsent");
    // ...and then the half the killed run had in flight lands (as a broker
    // appends a request it read before its sender died).
    let (late, rest) = bad.split_at(bad.len() / 2);
    for &offset in late {
        let origin = [
            ("projector-error-view", "counter".to_owned()),
            ("projector-error-topic", TOPIC.to_owned()),
            ("projector-error-partition", "0".to_owned()),
            ("projector-error-offset", offset.to_string()),
            ("projector-error-class", "invalid-event".to_owned()),
            ("projector-error-message", "not a CloudEvent".to_owned()),
        ];
        let mut headers = rdkafka::message::OwnedHeaders::new();
        for (key, value) in &origin {
            headers = headers.insert(rdkafka::message::Header {
                key,
                value: Some(value.as_str()),
            });
        }
        broker.publish_raw(DLQ, 0, Some(b"s-0"), Some(b"garbage"), headers);
    }
    broker.flush();
    wait_until(
        "every held record released",
        Duration::from_secs(30),
        || {
            worker.poll_dead_letters(&QUIET);
            status.held_dead_letters() == 0
        },
    );
    worker.finish(&QUIET).unwrap();
    let mut written = dead_lettered_offsets(&broker);
    assert_eq!(&written[..late.len()], late, "the late ones landed first");
    assert_eq!(&written[late.len()..], rest, "then the missing ones, once");
    written.sort_unstable();
    written.dedup();
    assert_eq!(written, bad, "each written once");
    assert_eq!(
        status.counters().dead_lettered,
        u64::try_from(bad.len()).unwrap()
    );
}

#[test]
fn a_refused_dead_letter_stops_its_partition_and_is_delivered_when_the_topic_takes_it() {
    let broker = Broker::new(&[(TOPIC, 1), (DLQ, 1)]);
    let dir = TempDir::new("dlq-refused");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    let status = Arc::new(ViewStatus::default());
    let mut worker = open_worker(&broker, &store, &status);
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 1000],
    );
    worker.handle(&QUIET, &record(0, false)).unwrap();
    worker.handle(&QUIET, &record(1, true)).unwrap();
    worker.commit(&QUIET).unwrap();
    // The view's max_attempts is 2: two refusals stop the partition.
    wait_until("the stop", Duration::from_secs(30), || {
        worker.poll_dead_letters(&QUIET);
        status.partitions()[&(TOPIC.to_owned(), 0)].state == PartitionState::Stopped
    });
    let partition = status.partitions()[&(TOPIC.to_owned(), 0)].clone();
    assert!(
        partition
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("dead-letter-failed"),
        "{partition:?}"
    );
    assert_eq!(status.held_dead_letters(), 1, "held, not lost");
    assert_eq!(status.counters().dead_lettered, 0);
    // The topic takes it again: the retry at the longest backoff delivers
    // it.
    broker
        .cluster()
        .clear_request_errors(RDKafkaApiKey::Produce);
    wait_until("the delivery", Duration::from_secs(30), || {
        worker.poll_dead_letters(&QUIET);
        status.counters().dead_lettered == 1
    });
    worker.finish(&QUIET).unwrap();
    assert_eq!(status.held_dead_letters(), 0);
    assert_eq!(dead_lettered_offsets(&broker), vec![0]);
}

#[test]
fn a_missing_dead_letter_topic_is_refused_at_start_naming_it() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let err = ErrorPolicy::connect(&counter_view(), &broker.config())
        .expect_err("no such topic")
        .to_string();
    assert!(err.contains(DLQ), "{err}");
    assert!(
        err.contains("does not exist") || err.contains("does not list"),
        "{err}"
    );
}
