//! Shards: the subject hash against an independent implementation, and
//! views split into shards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use projector::shard::Shards;
use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::kit::Broker;

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
