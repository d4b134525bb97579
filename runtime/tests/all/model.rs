//! The pipeline's worker against a model, without a broker: proptest drives
//! the real worker (real wasm `event-counter`, real sled store) with random
//! sequences of what a consumer does to it (deliver, redeliver the last
//! records, seek back, skip ahead once, commit, restart losing the pending
//! batch, revoke and reassign partitions), from an in-memory log, then
//! delivers the rest. The view must equal the oracle fold of the log (every
//! event applied exactly once, per partition in order), and every offset
//! given back to the source must already be durable in the store (G4).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, LazyLock};

use projector::config::OnError;
use projector::engine::{Engine, EngineConfig, Module};
use projector::pipeline::{BatchLimits, Source, TopicPartition, ViewStatus, Worker};
use projector::store::{SledStore, SledView, ViewStore};
use proptest::prelude::*;
use rdkafka::error::KafkaError;
use rdkafka::message::{OwnedMessage, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use crate::kit::{TempDir, view};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

const PARTITIONS: i32 = 3;
const EVENTS: usize = 60;
const SUBJECTS: usize = 4;

static MODULE: LazyLock<Arc<Module>> = LazyLock::new(|| {
    Engine::new(EngineConfig::default())
        .expect("engine")
        .load_file(Path::new(projector_examples::EVENT_COUNTER.path))
        .expect("event-counter loads")
});

/// What a consumer does to the worker.
#[derive(Debug, Clone)]
enum Op {
    /// Deliver up to `count` records of `partition` from its position.
    Deliver { partition: i32, count: usize },
    /// Deliver the `count` records before the position again (a fetch
    /// retried), leaving the position where it is.
    Redeliver { partition: i32, count: i64 },
    /// Move the position `back` records back (a consumer resuming from an
    /// older offset).
    SeekBack { partition: i32, back: i64 },
    /// Deliver the record `ahead` past the position, once (a broker that
    /// skipped records, as tansu 0.6 does inside a record batch).
    SkipAhead { partition: i32, ahead: i64 },
    /// Commit the pending batch.
    Commit,
    /// The process dies: the pending batch is lost; a new worker starts
    /// from the store and is assigned every partition.
    Restart,
    /// The partition is revoked.
    Revoke { partition: i32 },
    /// The partition is assigned again.
    Assign { partition: i32 },
}

fn op() -> impl Strategy<Value = Op> {
    let partition = 0..PARTITIONS;
    prop_oneof![
        6 => (partition.clone(), 1..12_usize).prop_map(|(partition, count)| Op::Deliver { partition, count }),
        2 => (partition.clone(), 1..6_i64).prop_map(|(partition, count)| Op::Redeliver { partition, count }),
        2 => (partition.clone(), 1..15_i64).prop_map(|(partition, back)| Op::SeekBack { partition, back }),
        1 => (partition.clone(), 1..5_i64).prop_map(|(partition, ahead)| Op::SkipAhead { partition, ahead }),
        2 => Just(Op::Commit),
        1 => Just(Op::Restart),
        1 => partition.clone().prop_map(|partition| Op::Revoke { partition }),
        1 => partition.prop_map(|partition| Op::Assign { partition }),
    ]
}

/// The in-memory log and a consumer's state over it.
struct Log {
    records: Vec<Vec<OwnedMessage>>,
    /// Fetch position of each assigned partition.
    positions: RefCell<BTreeMap<i32, i64>>,
    /// Partitions whose last delivery skipped ahead; the broker does not
    /// skip the same records twice (a broker that always does is taken at
    /// its word, as for a compacted topic).
    skipped: RefCell<BTreeSet<i32>>,
    /// Offsets given back by the worker, per partition.
    committed: RefCell<BTreeMap<i32, i64>>,
    /// The view, to check that committed offsets are durable.
    rows: RefCell<Option<SledView>>,
    /// Every G4 violation seen.
    violations: RefCell<Vec<String>>,
}

impl Log {
    fn new(stream: &mut Stream) -> Self {
        let mut records = vec![Vec::new(); usize::try_from(PARTITIONS).unwrap()];
        for event in stream.plan(EVENTS, SUBJECTS, PARTITIONS, Partitioning::RoundRobin) {
            let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
                id: &event.id,
                source: "/tests",
                ty: "Tick",
                subject: Some(&event.subject),
                datacontenttype: Some("application/json"),
            });
            let partition = &mut records[usize::try_from(event.partition).unwrap()];
            assert_eq!(event.offset, i64::try_from(partition.len()).unwrap());
            partition.push(OwnedMessage::new(
                Some(b"{}".to_vec()),
                Some(event.subject.into_bytes()),
                TOPIC.to_owned(),
                Timestamp::CreateTime(1_700_000_000_000),
                event.partition,
                event.offset,
                Some(headers),
            ));
        }
        Self {
            records,
            positions: RefCell::default(),
            skipped: RefCell::default(),
            committed: RefCell::default(),
            rows: RefCell::default(),
            violations: RefCell::default(),
        }
    }

    fn len(&self, partition: i32) -> i64 {
        i64::try_from(self.records[usize::try_from(partition).unwrap()].len()).unwrap()
    }

    fn record(&self, partition: i32, offset: i64) -> &OwnedMessage {
        &self.records[usize::try_from(partition).unwrap()][usize::try_from(offset).unwrap()]
    }

    fn position(&self, partition: i32) -> Option<i64> {
        self.positions.borrow().get(&partition).copied()
    }

    fn set_position(&self, partition: i32, position: i64) {
        self.positions.borrow_mut().insert(partition, position);
    }

    /// Start `partitions` where the worker says.
    fn assign(&self, partitions: &[i32], offsets: &[Offset]) {
        for (partition, offset) in partitions.iter().zip(offsets) {
            let position = match offset {
                Offset::Offset(next) => *next,
                Offset::Beginning => 0,
                other => panic!("the worker started partition {partition} at {other:?}"),
            };
            self.set_position(*partition, position);
        }
    }

    /// Deliver the record at `offset` of `partition` to the worker.
    fn deliver(&self, worker: &mut Worker<SledStore>, partition: i32, offset: i64) {
        let record = self.record(partition, offset).clone();
        worker.handle(self, &record).expect("the store works");
        worker.commit_if_due(self).expect("the store works");
    }
}

impl Source for Log {
    fn seek(&self, _topic: &str, partition: i32, offset: i64) -> Result<(), KafkaError> {
        self.set_position(partition, offset);
        Ok(())
    }

    fn pause(&self, _topic: &str, partition: i32) -> Result<(), KafkaError> {
        panic!("partition {partition} paused, but no event of this log fails");
    }

    fn low_watermark(&self, _topic: &str, _partition: i32) -> Result<i64, KafkaError> {
        Ok(0)
    }

    fn commit_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        let rows = self.rows.borrow();
        let rows = rows.as_ref().expect("the view is open");
        for element in offsets.elements() {
            let Offset::Offset(next) = element.offset() else {
                panic!("committed {:?}", element.offset());
            };
            let durable = rows
                .checkpoint(element.topic(), element.partition())
                .unwrap();
            if durable.is_none_or(|durable| durable < next) {
                self.violations.borrow_mut().push(format!(
                    "partition {}: offset {next} committed, store durable to {durable:?}",
                    element.partition()
                ));
            }
            self.committed
                .borrow_mut()
                .insert(element.partition(), next);
        }
        Ok(())
    }
}

fn topic_partitions(partitions: &[i32]) -> Vec<TopicPartition> {
    partitions.iter().map(|p| (TOPIC.to_owned(), *p)).collect()
}

fn open_worker(store: &Arc<SledStore>, log: &Log) -> Worker<SledStore> {
    let config = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Stop,
    );
    let limits = BatchLimits {
        max_records: 4,
        // Only full batches and explicit commits: deterministic.
        linger: std::time::Duration::from_secs(3600),
    };
    let worker = Worker::open(
        config,
        MODULE.instance(),
        Arc::clone(store),
        Arc::new(ViewStatus::default()),
        limits,
        None,
    )
    .expect("worker opens");
    *log.rows.borrow_mut() = Some(worker.rows());
    let all: Vec<i32> = (0..PARTITIONS).collect();
    log.positions.borrow_mut().clear();
    log.assign(&all, &worker.assign(log, &topic_partitions(&all), false));
    worker
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = TempDir::new("model");
    let store = Arc::new(SledStore::open(&dir.0.join("store")).expect("store opens"));
    let mut stream = Stream::default();
    let log = Log::new(&mut stream);
    let mut worker = open_worker(&store, &log);
    for op in ops {
        match *op {
            Op::Deliver { partition, count } => {
                for _ in 0..count {
                    let Some(position) = log.position(partition) else {
                        break;
                    };
                    if position >= log.len(partition) {
                        break;
                    }
                    log.set_position(partition, position + 1);
                    log.skipped.borrow_mut().remove(&partition);
                    log.deliver(&mut worker, partition, position);
                }
            }
            Op::Redeliver { partition, count } => {
                if let Some(position) = log.position(partition) {
                    for offset in (position - count).max(0)..position {
                        log.deliver(&mut worker, partition, offset);
                    }
                }
            }
            Op::SeekBack { partition, back } => {
                if let Some(position) = log.position(partition) {
                    log.set_position(partition, (position - back).max(0));
                }
            }
            Op::SkipAhead { partition, ahead } => {
                let Some(position) = log.position(partition) else {
                    continue;
                };
                let target = position + ahead;
                if target < log.len(partition) && log.skipped.borrow_mut().insert(partition) {
                    log.set_position(partition, target + 1);
                    log.deliver(&mut worker, partition, target);
                }
            }
            Op::Commit => worker.commit(&log).expect("the store works"),
            Op::Restart => {
                drop(worker);
                worker = open_worker(&store, &log);
            }
            Op::Revoke { partition } => {
                if log.positions.borrow_mut().remove(&partition).is_some() {
                    worker
                        .revoke(&log, &topic_partitions(&[partition]))
                        .expect("the store works");
                }
            }
            Op::Assign { partition } => {
                if log.position(partition).is_none() {
                    let offsets = worker.assign(&log, &topic_partitions(&[partition]), true);
                    log.assign(&[partition], &offsets);
                }
            }
        }
    }
    // Then the consumer settles: every partition assigned, delivered to its
    // end.
    for partition in 0..PARTITIONS {
        if log.position(partition).is_none() {
            let offsets = worker.assign(&log, &topic_partitions(&[partition]), true);
            log.assign(&[partition], &offsets);
        }
        while let Some(position) = log.position(partition)
            && position < log.len(partition)
        {
            log.set_position(partition, position + 1);
            log.deliver(&mut worker, partition, position);
        }
    }
    worker.commit(&log).expect("the store works");

    let discrepancies = oracle_discrepancies(&worker.rows(), &stream);
    prop_assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    let violations = log.violations.borrow();
    prop_assert!(violations.is_empty(), "{violations:#?}");
    for partition in 0..PARTITIONS {
        prop_assert_eq!(
            log.committed.borrow().get(&partition).copied(),
            Some(log.len(partition)),
            "partition {}: the last offset given back is the end",
            partition
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_worker_matches_the_model_under_any_delivery(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}

/// One fixed sequence with every operation, so that each is exercised on
/// every run whatever proptest draws.
#[test]
fn a_sequence_with_every_operation_matches_the_model() {
    run(&[
        Op::Deliver {
            partition: 0,
            count: 7,
        },
        Op::Redeliver {
            partition: 0,
            count: 3,
        },
        Op::SkipAhead {
            partition: 1,
            ahead: 2,
        },
        Op::Deliver {
            partition: 1,
            count: 5,
        },
        Op::Restart,
        Op::SeekBack {
            partition: 0,
            back: 5,
        },
        Op::Deliver {
            partition: 0,
            count: 9,
        },
        Op::Revoke { partition: 2 },
        Op::Deliver {
            partition: 2,
            count: 5,
        },
        Op::Assign { partition: 2 },
        Op::Deliver {
            partition: 2,
            count: 5,
        },
        Op::Commit,
    ])
    .unwrap();
}

/// Found by the property test: a refetch's seek, then the partition moved
/// back by someone else (older records redelivered), then a skip to the
/// same offset as before. That skip is not the broker confirming a gap: it
/// came after older records, not first after the seek.
#[test]
fn a_skip_after_a_reposition_is_not_taken_as_a_confirmed_gap() {
    run(&[
        Op::Deliver {
            partition: 2,
            count: 4,
        },
        Op::SkipAhead {
            partition: 2,
            ahead: 2,
        },
        Op::SeekBack {
            partition: 2,
            back: 4,
        },
        Op::Deliver {
            partition: 2,
            count: 3,
        },
        Op::SkipAhead {
            partition: 2,
            ahead: 3,
        },
    ])
    .unwrap();
}
