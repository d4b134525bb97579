//! Where a partition the view never applied from starts: at its earliest
//! offset, proven, never at the first record the broker happens to
//! deliver. When the earliest offset cannot be read, the worker retries
//! with the view's backoff and then stops the partition until it is
//! assigned again; it never takes the record it got as the start (a broker
//! that skipped the records before it would lose them for good).

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use projector::config::{BrokerConfig, OnError};
use projector::engine::{Engine, EngineConfig};
use projector::pipeline::policy::ErrorPolicy;
use projector::pipeline::{
    BatchLimits, PartitionState, Source, TopicPartition, ViewStatus, Worker,
};
use projector::store::{SledStore, Store, ViewStore};
use rdkafka::error::KafkaError;
use rdkafka::message::{OwnedMessage, Timestamp};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::kit::{TempDir, hash_of, view};

const TOPIC: &str = "events";

/// A source whose earliest-offset lookup fails `failures` times first, and
/// which records the seeks and pauses the worker asks for.
struct FlakySource {
    failures: Cell<u32>,
    lookups: Cell<u32>,
    seeks: Cell<Vec<i64>>,
    paused: Cell<bool>,
}

impl FlakySource {
    fn failing(failures: u32) -> Self {
        Self {
            failures: Cell::new(failures),
            lookups: Cell::new(0),
            seeks: Cell::new(Vec::new()),
            paused: Cell::new(false),
        }
    }
}

impl Source for FlakySource {
    fn take_partitions(&self, _: &[(TopicPartition, Offset)], _: bool) -> Result<(), KafkaError> {
        Ok(())
    }
    fn drop_partitions(&self, _: &[TopicPartition], _: bool) -> Result<(), KafkaError> {
        Ok(())
    }
    fn seek(&self, _: &str, _: i32, offset: i64) -> Result<(), KafkaError> {
        let mut seeks = self.seeks.take();
        seeks.push(offset);
        self.seeks.set(seeks);
        Ok(())
    }
    fn pause(&self, _: &str, _: i32) -> Result<(), KafkaError> {
        self.paused.set(true);
        Ok(())
    }
    fn resume(&self, _: &str, _: i32) -> Result<(), KafkaError> {
        self.paused.set(false);
        Ok(())
    }
    fn low_watermark(&self, _: &str, _: i32) -> Result<i64, KafkaError> {
        self.lookups.set(self.lookups.get() + 1);
        if self.failures.get() > 0 {
            self.failures.set(self.failures.get() - 1);
            return Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::BrokerTransportFailure,
            ));
        }
        Ok(0)
    }
    fn commit_offsets(&self, _: &TopicPartitionList) -> Result<(), KafkaError> {
        Ok(())
    }
    fn commit_offsets_now(&self, _: &TopicPartitionList) -> Result<(), KafkaError> {
        Ok(())
    }
}

/// An event-counter tick for `s-0` at `offset` of partition 0.
fn tick(offset: i64) -> OwnedMessage {
    let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
        id: &format!("e-{offset}"),
        source: "/tests",
        ty: "Tick",
        subject: Some("s-0"),
        datacontenttype: Some("application/json"),
    });
    OwnedMessage::new(
        Some(b"{}".to_vec()),
        Some(b"s-0".to_vec()),
        TOPIC.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000 + offset),
        0,
        offset,
        Some(headers),
    )
}

fn open(dir: &TempDir) -> (Worker<SledStore>, Arc<ViewStatus>, Arc<SledStore>) {
    let store = Arc::new(SledStore::open(&dir.0.join("store")).unwrap());
    let mut config = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Stop,
    );
    config.max_attempts = 3;
    config.initial_backoff_ms = 1;
    config.max_backoff_ms = 2;
    let module = Engine::new(EngineConfig::default())
        .unwrap()
        .load_file(Path::new(projector_examples::EVENT_COUNTER.path))
        .unwrap();
    let policy = ErrorPolicy::connect(&config, &BrokerConfig::default()).unwrap();
    let status = Arc::new(ViewStatus::default());
    let worker = Worker::open(
        config,
        module.instance(),
        Arc::clone(&store),
        Arc::clone(&status),
        BatchLimits::default(),
        policy,
    )
    .unwrap();
    (worker, status, store)
}

fn applied(store: &SledStore) -> Option<i64> {
    store
        .open_view(
            "counter",
            &hash_of(&projector_examples::EVENT_COUNTER),
            &[],
            None,
        )
        .unwrap()
        .checkpoint(TOPIC, 0)
        .unwrap()
}

#[test]
fn a_lookup_that_fails_and_then_answers_is_retried_and_the_start_is_proven() {
    let dir = TempDir::new("start-retried");
    let (mut worker, status, store) = open(&dir);
    let partition = vec![(TOPIC.to_owned(), 0)];
    // Two failures, then the earliest offset, 0: the record at 5 that the
    // broker delivered first is past it, so it is not applied, and the
    // partition is read again from before it.
    let source = FlakySource::failing(2);
    worker.assign(&source, &partition, false);
    worker.handle(&source, &tick(5)).unwrap();
    worker.commit(&source).unwrap();
    // Three for the start (two failed), one more to prove the gap.
    assert_eq!(source.lookups.get(), 4, "retried until it answered");
    assert_eq!(applied(&store), None, "the record at 5 is not the start");
    assert!(!source.seeks.take().is_empty(), "read again from before 5");
    assert_eq!(status.counters().retries, 2);
    assert!(!source.paused.get());
}

#[test]
fn a_lookup_that_keeps_failing_stops_the_partition_until_it_is_assigned_again() {
    let dir = TempDir::new("start-stopped");
    let (mut worker, status, store) = open(&dir);
    let partition = vec![(TOPIC.to_owned(), 0)];
    let source = FlakySource::failing(3);
    worker.assign(&source, &partition, false);
    worker.handle(&source, &tick(5)).unwrap();
    // Records already fetched are ignored, not applied, not looked up.
    worker.handle(&source, &tick(6)).unwrap();
    worker.commit(&source).unwrap();
    // The fault took effect: every attempt failed.
    assert_eq!(source.lookups.get(), 3);
    assert!(source.paused.get(), "the partition is paused");
    assert_eq!(applied(&store), None, "nothing taken as the start");
    let partitions = status.partitions();
    let reported = &partitions[&(TOPIC.to_owned(), 0)];
    assert_eq!(reported.state, PartitionState::Stopped);
    assert!(
        reported
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("earliest offset"),
        "{reported:?}"
    );
    // Assigned again (a rebalance, a restart): it is resumed and reported
    // running, the lookup answers, and the partition starts at its
    // earliest offset.
    worker.assign(&source, &partition, false);
    assert!(!source.paused.get(), "resumed");
    assert_eq!(
        status.partitions()[&(TOPIC.to_owned(), 0)].state,
        PartitionState::Running
    );
    for offset in 0..3 {
        worker.handle(&source, &tick(offset)).unwrap();
    }
    worker.commit(&source).unwrap();
    assert_eq!(applied(&store), Some(3));
}
