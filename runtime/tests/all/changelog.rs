//! Changelog topics against librdkafka's mock cluster: a view restored from
//! its changelog with an empty data directory equals the oracle and reads
//! no source record below its restored checkpoints; a changelog topic unfit
//! to be one is refused at start, named.

use std::collections::BTreeMap;
use std::time::Duration;

use projector::config::{ChangelogConfig, OnError};
use projector::engine::EngineConfig;
use projector::store::{POSITIONS_KEY, Store, ViewStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kit::{Broker, TempDir, start, try_start, view, wait_applied, wait_for};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

const CHANGELOG: &str = "projector-counter-changelog";

fn counter_view() -> projector::config::ViewConfig {
    let mut view = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Stop,
    );
    view.changelog = Some(ChangelogConfig {
        topic: None,
        replication: 1,
    });
    view
}

/// Every record of the changelog, read with a plain consumer: per
/// partition, `(key, value present)` in offset order.
fn read_changelog(broker: &Broker, partitions: i32) -> BTreeMap<i32, Vec<(Vec<u8>, bool)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "changelog-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut read = BTreeMap::new();
    for partition in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(CHANGELOG, partition, Duration::from_secs(10))
            .unwrap();
        let mut records = Vec::new();
        if high > 0 {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(CHANGELOG, partition, Offset::Beginning)
                .unwrap();
            consumer.assign(&list).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                    let message = message.unwrap();
                    records.push((
                        message.key().unwrap_or_default().to_vec(),
                        message.payload().is_some(),
                    ));
                    if message.offset() + 1 >= high {
                        break;
                    }
                }
            }
        }
        read.insert(partition, records);
    }
    read
}

#[test]
fn a_view_restored_from_its_changelog_with_an_empty_data_directory_equals_the_oracle() {
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 4)]);
    let mut stream = Stream::default();
    // Half the subjects arrive on every partition, as an application with
    // one keyed and one unkeyed producer sends them.
    stream.publish(&broker, 3000, 60, 4, Partitioning::HalfMisplaced);
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let dir = TempDir::new("changelog");
    {
        let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_applied(&status, 3000);
        wait_for(&status, Duration::from_secs(10), "checkpoints", |s| {
            s.partitions()
                .values()
                .map(|p| p.checkpoint.unwrap_or(0))
                .sum::<i64>()
                == 3000
        });
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    // The data directory is lost.
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    // What left the process: every shard's partition holds rows and ends
    // with its positions record.
    let logged = read_changelog(&broker, 4);
    let rows: usize = logged
        .values()
        .map(|records| records.iter().filter(|(k, _)| k.starts_with(b"r/")).count())
        .sum();
    assert!(
        rows >= 60,
        "the changelog holds {rows} row records for 60 subjects"
    );
    for (partition, records) in &logged {
        let last = records.last().map(|(key, _)| key.as_slice());
        assert_eq!(
            last,
            Some(POSITIONS_KEY),
            "partition {partition} ends with its positions record"
        );
    }

    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
        let next: i64 = view.checkpoints().unwrap().iter().map(|(_, _, n)| n).sum();
        assert_eq!(next, 3000, "the checkpoints came back with the rows");
    }
    // New events continue the view, and nothing below the restored
    // checkpoints was read again.
    stream.publish(&broker, 400, 60, 4, Partitioning::HalfMisplaced);
    wait_applied(&status, 400);
    wait_for(&status, Duration::from_secs(10), "checkpoints", |s| {
        s.partitions()
            .values()
            .map(|p| p.checkpoint.unwrap_or(0))
            .sum::<i64>()
            == 3400
    });
    let counters = status.counters();
    assert_eq!(counters.applied, 400, "only the new events were applied");
    assert_eq!(
        counters.duplicates, 0,
        "no source record below a restored checkpoint was read"
    );
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    }
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn a_changelog_topic_with_another_partition_count_is_refused_at_start_naming_it() {
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 3)]);
    let dir = TempDir::new("changelog-wrong");
    let Err(err) = try_start(&broker, &dir, vec![counter_view()], EngineConfig::default()) else {
        panic!("a changelog topic of 3 partitions for 4 shards was taken");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains(CHANGELOG)
            && message.contains("3 partitions")
            && message.contains("4 shards"),
        "{message}"
    );
}
