//! Shards: the subject hash against an independent implementation, and
//! views split into shards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use projector::shard::Shards;
use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use projector::config::OnError;
use projector::engine::EngineConfig;
use projector::store::{SledStore, Store, ViewStore};

use crate::kit::{Broker, TempDir, start, try_start, view, wait_for};
use crate::pipeline::{Partitioning, Stream, oracle_discrepancies};

/// Notes the partition each keyed record went to.
struct Partitions(Arc<Mutex<Vec<(String, i32)>>>);

impl rdkafka::ClientContext for Partitions {}

impl ProducerContext for Partitions {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        let message = result.as_ref().expect("delivered");
        let key = String::from_utf8(message.key().expect("keyed").to_vec()).unwrap();
        self.0.lock().unwrap().push((key, message.partition()));
    }
}

#[test]
fn a_subjects_shard_is_the_partition_librdkafkas_murmur2_partitioner_picks() {
    // librdkafka's murmur2_random is the Java client's default partitioner
    // for keyed records; a view of N shards is co-partitioned with a topic
    // of N partitions it filled.
    let broker = Broker::new(&[("keyed", 8)]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let producer: ThreadedProducer<Partitions> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("partitioner", "murmur2_random")
        .create_with_context(Partitions(Arc::clone(&seen)))
        .unwrap();
    let subjects: Vec<String> = (0..500)
        .map(|n| format!("customer-{n}-{}", "x".repeat(n % 9)))
        .collect();
    for subject in &subjects {
        producer
            .send(BaseRecord::to("keyed").key(subject).payload("{}"))
            .map_err(|(err, _)| err)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), subjects.len());
    let shards = Shards::new(8).unwrap();
    let mut used = std::collections::BTreeSet::new();
    for (subject, partition) in seen.iter() {
        assert_eq!(
            i64::from(shards.of_subject(subject).0),
            i64::from(*partition),
            "{subject}"
        );
        used.insert(*partition);
    }
    assert_eq!(used.len(), 8, "every partition got subjects");
}

fn counter_on(topic: &str, shards: Option<u32>) -> projector::config::ViewConfig {
    let mut config = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[topic],
        OnError::Stop,
    );
    config.shards = shards;
    config
}

#[test]
fn a_new_view_has_as_many_shards_as_its_topic_partitions_and_keeps_them_until_rebuilt() {
    let broker = Broker::new(&[("sharded", 3)]);
    let dir = TempDir::new("shard-count");
    let shards_of =
        |service: &projector::service::Service| service.views().live()[0].rows.shards().count();

    let service = start(
        &broker,
        &dir,
        vec![counter_on("sharded", None)],
        EngineConfig::default(),
    );
    assert_eq!(shards_of(&service), 3, "the first topic's partition count");
    assert_eq!(service.stop()["counter"], Ok(()));

    let refused = try_start(
        &broker,
        &dir,
        vec![counter_on("sharded", Some(5))],
        EngineConfig::default(),
    )
    .expect_err("another count is refused");
    let message = format!("{refused:#}");
    assert!(message.contains("split into 3 shards"), "{message}");
    assert!(message.contains("shards = 5"), "{message}");
    assert!(
        message.contains("projector view rebuild counter"),
        "{message}"
    );

    // The count it has, said or not, starts.
    let service = start(
        &broker,
        &dir,
        vec![counter_on("sharded", Some(3))],
        EngineConfig::default(),
    );
    assert_eq!(shards_of(&service), 3);
    assert_eq!(service.stop()["counter"], Ok(()));

    // A rebuild takes the new count.
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    SledStore::open(&dir.0.join("store"))
        .unwrap()
        .reset_view("counter", &hash)
        .unwrap();
    let service = start(
        &broker,
        &dir,
        vec![counter_on("sharded", Some(5))],
        EngineConfig::default(),
    );
    assert_eq!(shards_of(&service), 5);
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn a_mis_partitioned_stream_over_four_shards_matches_the_oracle() {
    // Half the subjects arrive on every partition: one subject's events are
    // applied by its one shard, in each partition's order.
    let topic = crate::pipeline::TOPIC;
    let broker = Broker::new(&[(topic, 4)]);
    let dir = TempDir::new("shard-misplaced");
    let mut stream = Stream::default();
    stream.publish(&broker, 2000, 40, 4, Partitioning::HalfMisplaced);
    let service = start(
        &broker,
        &dir,
        vec![counter_on(topic, Some(4))],
        EngineConfig::default(),
    );
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "2000 applied", |s| {
        s.counters().applied == 2000
    });
    stream.publish(&broker, 500, 40, 4, Partitioning::HalfMisplaced);
    wait_for(&status, Duration::from_secs(60), "2500 applied", |s| {
        s.counters().applied == 2500 && crate::kit::checkpoint_sum(s) == 2500
    });
    assert_eq!(service.views().live()[0].rows.shards().count(), 4);
    let discrepancies = oracle_discrepancies(&service.views().live()[0].rows, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    assert_eq!(status.counters().duplicates, 0);
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn a_failing_record_stops_only_its_shard_and_the_partitions_other_subjects_go_on() {
    let topic = "mixed";
    let broker = Broker::new(&[(topic, 1)]);
    let dir = TempDir::new("shard-stop");
    let shards = Shards::new(4).unwrap();
    let subjects: Vec<String> = (0..16).map(|n| format!("s{n}")).collect();
    let victim = "victim";
    let stopped = shards.of_subject(victim);
    let mut offset = 0_i64;
    let mut publish = |ty: &str, subject: &str| {
        broker.publish(topic, 0, ty, &format!("e{offset}"), Some(subject), b"{}");
        offset += 1;
        offset - 1
    };
    for subject in &subjects {
        publish("count", subject);
    }
    let trap = publish("misbehave.trap", victim);
    for subject in &subjects {
        publish("count", subject);
    }
    broker.flush();
    let mut config = view(
        "misbehaving",
        projector_examples::MISBEHAVING.path,
        &[topic],
        OnError::Stop,
    );
    config.shards = Some(4);
    let service = start(&broker, &dir, vec![config], EngineConfig::default());
    let status = service.statuses()["misbehaving"].clone();
    let theirs = |s: &String| shards.of_subject(s) == stopped;
    let others = subjects.iter().filter(|s| !theirs(s)).count() as u64;
    let held_back = subjects.iter().filter(|s| theirs(s)).count() as u64;
    assert!(others > 0 && held_back > 0, "both kinds of subject");
    // Every record of the other shards, before and after the trap.
    wait_for(&status, Duration::from_secs(60), "the other shards", |s| {
        s.counters().stopped == 1 && s.counters().applied >= 16 + others
    });
    wait_for(
        &status,
        Duration::from_secs(30),
        "the stop committed",
        |s| {
            s.partitions()
                .get(&(topic.to_owned(), 0))
                .is_some_and(|p| p.stopped_shards == vec![stopped.0] && p.checkpoint == Some(trap))
        },
    );
    let partition = status.partitions()[&(topic.to_owned(), 0)].clone();
    assert_eq!(partition.stopped_shards, vec![stopped.0]);
    assert_eq!(
        partition.checkpoint,
        Some(trap),
        "the partition resumes at the trap"
    );
    let rows = &service.views().live()[0].rows;
    for subject in &subjects {
        let version = rows.row(subject).unwrap().map(|row| row.version);
        let expected = if theirs(subject) { 1 } else { 2 };
        assert_eq!(version, Some(expected), "{subject}");
    }
    // The partition is not paused: later records of the other shards go on.
    let late = subjects.iter().find(|s| !theirs(s)).unwrap().clone();
    broker.publish(topic, 0, "count", "late", Some(&late), b"{}");
    broker.flush();
    wait_for(&status, Duration::from_secs(30), "a later record", |s| {
        s.counters().applied >= 17 + others
    });
    // Stopped, nothing more can be applied: every record of the partition
    // before the late one was handled, and none of the stopped shard's
    // after the trap was applied.
    assert_eq!(service.stop()["misbehaving"], Ok(()));
    assert_eq!(
        status.counters().applied,
        17 + others,
        "nothing of the stopped shard after the trap"
    );
}
