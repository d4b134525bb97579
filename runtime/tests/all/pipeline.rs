//! The pipeline against librdkafka's mock cluster: final state against the
//! oracle, redelivery, restart, mis-partitioned subjects, error policies.

use std::collections::BTreeMap;
use std::time::Duration;

use event_counter::Counter;
use projector::config::OnError;
use projector::engine::EngineConfig;
use projector::store::{Store, ViewStore};

use crate::kit::{Broker, TempDir, start, view, wait_applied, wait_for};

pub(crate) const TOPIC: &str = "events";

/// What a test published: `(partition, offset, id)` per subject, in
/// publication order, and the next offset of each partition.
#[derive(Default)]
pub(crate) struct Stream {
    published: BTreeMap<String, Vec<(i32, i64, String)>>,
    offsets: BTreeMap<i32, i64>,
    next_index: usize,
    /// Per event id re-sent, where its copies went: a view with `dedup`
    /// applies whichever copy it reads first, the others never.
    copies: BTreeMap<String, Vec<(i32, i64)>>,
}

/// How events are spread over partitions.
#[derive(Clone, Copy)]
pub(crate) enum Partitioning {
    /// Subject `i` always goes to partition `i % partitions`.
    BySubject,
    /// Each event goes to the next partition in turn: a mis-partitioned
    /// topic, where one subject arrives on every partition.
    RoundRobin,
    /// Even subjects by subject, odd ones round robin: half the subjects
    /// mis-partitioned, as an application with two producers, one keyed
    /// and one not, makes them.
    HalfMisplaced,
}

impl Partitioning {
    /// The partition of event `i`.
    pub(crate) fn partition_of(self, i: usize, subjects: usize, partitions: i32) -> i32 {
        self.partition(i, subjects, partitions)
    }

    fn partition(self, i: usize, subjects: usize, partitions: i32) -> i32 {
        match self {
            Self::BySubject => i32::try_from(i % subjects).unwrap() % partitions,
            Self::RoundRobin => i32::try_from(i).unwrap() % partitions,
            Self::HalfMisplaced if (i % subjects).is_multiple_of(2) => {
                Self::BySubject.partition(i, subjects, partitions)
            }
            Self::HalfMisplaced => Self::RoundRobin.partition(i, subjects, partitions),
        }
    }
}

impl Stream {
    /// Events published so far.
    pub(crate) fn events(&self) -> usize {
        self.next_index
    }

    /// Copies re-sent so far ([`Stream::resend`]).
    pub(crate) fn resent(&self) -> usize {
        self.copies.values().map(Vec::len).sum()
    }

    /// Publish `count` more events over `subjects` subjects.
    pub(crate) fn publish(
        &mut self,
        broker: &Broker,
        count: usize,
        subjects: usize,
        partitions: i32,
        how: Partitioning,
    ) {
        self.send(broker, count, subjects, partitions, how);
        broker.flush();
    }

    /// [`Stream::publish`], without waiting for the broker to take them.
    pub(crate) fn send(
        &mut self,
        broker: &Broker,
        count: usize,
        subjects: usize,
        partitions: i32,
        how: Partitioning,
    ) {
        for event in self.plan(count, subjects, partitions, how) {
            broker.publish(
                TOPIC,
                event.partition,
                "Tick",
                &event.id,
                Some(&event.subject),
                b"{}",
            );
        }
    }

    /// Publish event number `index` of the stream again (same subject,
    /// source and id) to `partition`, at a new offset: an application's
    /// re-send. The oracle leaves its offset out, as a view with `dedup`
    /// does.
    pub(crate) fn resend(
        &mut self,
        broker: &Broker,
        index: usize,
        subjects: usize,
        partition: i32,
    ) {
        assert!(index < self.next_index, "event {index} was not published");
        let subject = format!("s-{}", index % subjects);
        let id = format!("e-{index}");
        broker.publish(TOPIC, partition, "Tick", &id, Some(&subject), b"{}");
        let offset = self.next_offset(partition);
        self.copies.entry(id).or_default().push((partition, offset));
        self.leave_gap(partition, 1);
    }

    /// Leave `count` offsets of `partition` without a record (a
    /// transaction marker, a compacted record): the next event planned there
    /// gets an offset `count` higher.
    pub(crate) fn leave_gap(&mut self, partition: i32, count: i64) {
        *self.offsets.entry(partition).or_insert(0) += count;
    }

    /// The offset the next record of `partition` gets.
    pub(crate) fn next_offset(&self, partition: i32) -> i64 {
        self.offsets.get(&partition).copied().unwrap_or(0)
    }

    /// The partition the next event planned goes to.
    pub(crate) fn next_partition(
        &self,
        subjects: usize,
        partitions: i32,
        how: Partitioning,
    ) -> i32 {
        how.partition(self.next_index, subjects, partitions)
    }

    /// Plan `count` more events over `subjects` subjects: where each goes
    /// and the offset it gets there, remembered for the oracle.
    pub(crate) fn plan(
        &mut self,
        count: usize,
        subjects: usize,
        partitions: i32,
        how: Partitioning,
    ) -> Vec<Planned> {
        let planned = (self.next_index..self.next_index + count)
            .map(|i| {
                let subject = format!("s-{}", i % subjects);
                let partition = how.partition(i, subjects, partitions);
                let id = format!("e-{i}");
                let offset = self.offsets.entry(partition).or_insert(0);
                self.published.entry(subject.clone()).or_default().push((
                    partition,
                    *offset,
                    id.clone(),
                ));
                *offset += 1;
                Planned {
                    partition,
                    offset: *offset - 1,
                    subject,
                    id,
                }
            })
            .collect();
        self.next_index += count;
        planned
    }
}

/// One event of a [`Stream`].
pub(crate) struct Planned {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) subject: String,
    pub(crate) id: String,
}

/// Where `view` differs from the oracle fold of `stream`: a subject without
/// its row, a row other than the fold of its events, a version other than
/// its event count (an event applied twice), or rows no event made.
pub(crate) fn oracle_discrepancies(view: &impl ViewStore, stream: &Stream) -> Vec<String> {
    let mut discrepancies = Vec::new();
    for (subject, published) in &stream.published {
        let Some(row) = view.row(subject).unwrap() else {
            discrepancies.push(format!("{subject}: no row"));
            continue;
        };
        let actual: Counter = serde_json::from_str(&row.json).unwrap();
        // With re-sent events, any one copy of each may be the one applied.
        let mut first = None;
        for events in stream.choices(published) {
            match discrepancy(subject, &events, &actual, row.version) {
                None => {
                    first = None;
                    break;
                }
                Some(found) => {
                    first.get_or_insert(found);
                }
            }
        }
        discrepancies.extend(first);
    }
    let rows = view.row_count();
    if rows != stream.published.len() as u64 {
        discrepancies.push(format!(
            "{rows} rows for {} subjects",
            stream.published.len()
        ));
    }
    discrepancies
}

/// How the row of `subject` differs from the fold of `events`, if it does.
fn discrepancy(
    subject: &str,
    events: &[(i32, i64, String)],
    actual: &Counter,
    version: u64,
) -> Option<String> {
    let expected = Counter::expected(events.iter().map(|(p, o, id)| (TOPIC, *p, *o, id.as_str())));
    // Partitions interleave in any order, so the last event counted is
    // the last one of one of the subject's partitions.
    let last_of_a_partition = events.iter().enumerate().any(|(i, (p, _, id))| {
        *id == actual.last_event_id && events[i + 1..].iter().all(|(later, _, _)| later != p)
    });
    if (actual.count, &actual.partitions) != (expected.count, &expected.partitions) {
        Some(format!(
            "{subject}: counted {} (expected {}), per partition {:?} (expected {:?})",
            actual.count, expected.count, actual.partitions, expected.partitions
        ))
    } else if !last_of_a_partition {
        Some(format!(
            "{subject}: last event {} is not the last of any of its partitions",
            actual.last_event_id
        ))
    } else if version != events.len() as u64 {
        Some(format!(
            "{subject}: version {version} for {} events (one version per event)",
            events.len()
        ))
    } else {
        None
    }
}

impl Stream {
    /// The event lists a view could have applied for one subject's
    /// `published` events: each re-sent event at one of its places, each
    /// list in partition and offset order (the order a fold needs).
    fn choices(&self, published: &[(i32, i64, String)]) -> Vec<Vec<(i32, i64, String)>> {
        let mut choices = vec![Vec::new()];
        for (partition, offset, id) in published {
            let places: Vec<(i32, i64)> = std::iter::once((*partition, *offset))
                .chain(self.copies.get(id).into_iter().flatten().copied())
                .collect();
            choices = choices
                .into_iter()
                .flat_map(|chosen| {
                    places.iter().map(move |(p, o)| {
                        let mut next = chosen.clone();
                        next.push((*p, *o, id.clone()));
                        next
                    })
                })
                .collect();
            assert!(
                choices.len() <= 1 << 16,
                "too many re-sends of one subject to check: {} choices at {id}",
                choices.len()
            );
        }
        for events in &mut choices {
            events.sort_by_key(|(p, o, _)| (*p, *o));
        }
        choices
    }
}

fn assert_matches_oracle(
    service: &projector::service::Service,
    module_hash: &str,
    stream: &Stream,
) {
    assert_store_matches_oracle(service.store(), module_hash, stream);
}

fn assert_store_matches_oracle(
    store: &projector::store::SledStore,
    module_hash: &str,
    stream: &Stream,
) {
    let view = store.open_view("counter", module_hash, &[], None).unwrap();
    let discrepancies = oracle_discrepancies(&view, stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
}

fn module_hash() -> String {
    crate::kit::hash_of(&projector_examples::EVENT_COUNTER)
}

fn counter_view() -> projector::config::ViewConfig {
    view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Stop,
    )
}

#[test]
fn final_state_matches_the_oracle_across_partitions() {
    let broker = Broker::new(&[(TOPIC, 4)]);
    let dir = TempDir::new("oracle");
    let mut stream = Stream::default();
    stream.publish(&broker, 2000, 40, 4, Partitioning::BySubject);
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_applied(&status, 2000);
    // Events published while running are applied too.
    stream.publish(&broker, 500, 40, 4, Partitioning::BySubject);
    wait_applied(&status, 2500);
    wait_for(&status, Duration::from_secs(10), "checkpoints", |s| {
        crate::kit::checkpoint_sum(s) == 2500
    });
    assert_matches_oracle(&service, &module_hash(), &stream);
    assert_eq!(status.counters().duplicates, 0);
    let ended = service.stop();
    assert_eq!(ended["counter"], Ok(()));
}

#[test]
fn one_subject_on_several_partitions_loses_no_update() {
    let broker = Broker::new(&[(TOPIC, 3)]);
    let dir = TempDir::new("spread");
    let mut stream = Stream::default();
    stream.publish(&broker, 900, 5, 3, Partitioning::RoundRobin);
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_applied(&status, 900);
    service.stop();
    // Reopen the data directory to read what was made durable.
    let store = projector::store::SledStore::open(&dir.0.join("store")).unwrap();
    let view = store
        .open_view("counter", &module_hash(), &[], None)
        .unwrap();
    for (subject, events) in &stream.published {
        let row: Counter = serde_json::from_str(&view.row(subject).unwrap().unwrap().json).unwrap();
        assert_eq!(
            row.count,
            events.len() as u64,
            "{subject}: lost or doubled updates"
        );
        assert!(
            row.partitions.len() == 3,
            "{subject} came from three partitions"
        );
        assert!(
            row.partitions.values().all(|p| p.out_of_order == 0),
            "{subject}: {row:?}"
        );
    }
}

#[test]
fn restart_mid_stream_resumes_from_the_store_without_double_application() {
    let broker = Broker::new(&[(TOPIC, 4)]);
    let dir = TempDir::new("restart");
    let mut stream = Stream::default();
    stream.publish(&broker, 3000, 50, 4, Partitioning::BySubject);

    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "some applied", |s| {
        s.counters().applied >= 500
    });
    service.stop();
    let applied_first = status.counters().applied;

    // Second run: a new consumer group has no committed offsets at all, so
    // Kafka alone would redeliver everything; the store's checkpoints must
    // prevent any double application.
    let mut restarted = counter_view();
    restarted.group = Some("another-group".to_owned());
    let service = start(&broker, &dir, vec![restarted], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "the rest applied", |s| {
        s.counters().applied + applied_first == 3000
    });
    // And durable: the last batch committed before the store is read.
    crate::kit::wait_committed(&status, 3000);
    assert_matches_oracle(&service, &module_hash(), &stream);
    assert_eq!(
        status.counters().duplicates,
        0,
        "every partition must resume at the store's checkpoint, not earlier"
    );
    service.stop();
}

#[test]
fn a_restarted_view_reports_its_durable_checkpoints_and_catches_up_with_nothing_new() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("restart-status");
    let mut stream = Stream::default();
    stream.publish(&broker, 100, 10, 2, Partitioning::BySubject);
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    crate::kit::wait_committed(&service.statuses()["counter"], 100);
    service.stop();

    // No new events: nothing will be committed in this run, yet the status
    // must show what is durable, and the view must count as caught up.
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    let durable = crate::kit::checkpoint_sum(&status);
    assert_eq!(durable, 100, "checkpoints reported before any commit");
    wait_for(&status, Duration::from_secs(30), "caught up", |s| {
        s.has_joined()
            && s.partitions().values().filter(|p| p.assigned).count() == 2
            && s.partitions().values().all(|p| p.caught_up())
    });
    assert_eq!(status.counters().applied, 0);
    service.stop();
}

#[test]
fn redelivery_after_an_offset_reset_is_not_applied_twice() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("redelivery");
    let mut stream = Stream::default();
    stream.publish(&broker, 400, 10, 2, Partitioning::BySubject);
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_applied(&status, 400);

    // The broker answers fetches with OFFSET_OUT_OF_RANGE: the consumer
    // resets to the earliest offset and everything is delivered again.
    broker.cluster().request_errors(
        rdkafka::types::RDKafkaApiKey::Fetch,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE; 2],
    );
    stream.publish(&broker, 200, 10, 2, Partitioning::BySubject);
    wait_applied(&status, 600);
    wait_for(&status, Duration::from_secs(30), "redeliveries", |s| {
        s.counters().duplicates > 0
    });
    // Stopped, nothing more can be applied: what was redelivered by then
    // was recognised, not applied.
    let store = std::sync::Arc::clone(service.store());
    service.stop();
    assert_eq!(status.counters().applied, 600, "a redelivery was applied");
    assert_store_matches_oracle(&store, &module_hash(), &stream);
}

mod broker_faults {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    use super::*;

    /// What the view reported before the fault.
    struct Before {
        rebalances: u64,
        consumer_errors: u64,
    }

    /// Run the counter view over 2,000 events with `fault` injected after
    /// the first 200 were applied; `took_effect` confirms the fault did
    /// something (given the status and what it reported before the fault).
    fn run_with_fault(
        name: &str,
        brokers: i32,
        fault: impl FnOnce(&Broker),
        took_effect: impl FnOnce(&projector::pipeline::ViewStatus, Before),
    ) {
        let broker = Broker::with_brokers(brokers, &[(TOPIC, 4)]);
        let dir = TempDir::new(name);
        let mut stream = Stream::default();
        stream.publish(&broker, 1000, 30, 4, Partitioning::BySubject);
        let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_for(&status, Duration::from_secs(60), "the first events", |s| {
            s.counters().applied >= 200
        });
        let before = Before {
            rebalances: status.rebalances(),
            consumer_errors: status.counters().consumer_errors,
        };
        fault(&broker);
        stream.publish(&broker, 1000, 30, 4, Partitioning::BySubject);
        wait_for(&status, Duration::from_secs(90), "2000 applied", |s| {
            s.counters().applied == 2000
        });
        took_effect(&status, before);
        // And the view goes on after it.
        stream.publish(&broker, 500, 30, 4, Partitioning::BySubject);
        wait_for(&status, Duration::from_secs(90), "2500 applied", |s| {
            s.counters().applied >= 2500
        });
        // Stopped, nothing more can be applied.
        let store = std::sync::Arc::clone(service.store());
        assert_eq!(service.stop()["counter"], Ok(()));
        assert_eq!(
            status.counters().applied,
            2500,
            "a record was applied twice"
        );
        assert_store_matches_oracle(&store, &module_hash(), &stream);
    }

    #[test]
    fn fetch_errors() {
        run_with_fault(
            "fetch-errors",
            1,
            |broker| {
                broker.cluster().request_errors(
                    RDKafkaApiKey::Fetch,
                    &[
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    ],
                );
            },
            |status, before| {
                // librdkafka retries them, and reports each to the view,
                // which counts it and goes on.
                wait_for(
                    status,
                    Duration::from_secs(30),
                    "the fetch errors reported",
                    |s| s.counters().consumer_errors > before.consumer_errors,
                );
            },
        );
    }

    #[test]
    fn offset_commit_errors() {
        run_with_fault(
            "commit-errors",
            1,
            |broker| {
                broker.cluster().request_errors(
                    RDKafkaApiKey::OffsetCommit,
                    &[
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                    ],
                );
            },
            |status, _| {
                // OFFSET_METADATA_TOO_LARGE and REBALANCE_IN_PROGRESS are not
                // retried by librdkafka: each fails a commit, and the view
                // counts it (librdkafka's COMMITFAIL report).
                wait_for(status, Duration::from_secs(30), "a failed commit", |s| {
                    s.counters().offset_commit_failures >= 1
                });
            },
        );
    }

    #[test]
    fn group_protocol_errors() {
        // A failed heartbeat makes the member rejoin; the rejoin meets
        // JoinGroup and SyncGroup errors before it gets its partitions back.
        run_with_fault(
            "group-errors",
            1,
            |broker| {
                let cluster = broker.cluster();
                cluster.request_errors(
                    RDKafkaApiKey::JoinGroup,
                    &[
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    ],
                );
                cluster.request_errors(
                    RDKafkaApiKey::SyncGroup,
                    &[
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                    ],
                );
                cluster.request_errors(
                    RDKafkaApiKey::Heartbeat,
                    &[
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    ],
                );
            },
            |status, before| {
                // Heartbeats come every 3 s: wait for the one that fails,
                // then for the rejoin through the JoinGroup and SyncGroup
                // errors (under a loaded machine it took over 20 s once).
                wait_for(
                    status,
                    Duration::from_secs(60),
                    "a rejoin after the heartbeat errors",
                    |s| s.rebalances() > before.rebalances,
                );
            },
        );
    }

    #[test]
    fn the_group_coordinator_moves() {
        run_with_fault(
            "coordinator-moves",
            3,
            |broker| {
                for id in [2, 3, 1] {
                    broker
                        .cluster()
                        .coordinator(
                            rdkafka::mocking::MockCoordinator::Group(
                                "projector-counter".to_owned(),
                            ),
                            id,
                        )
                        .unwrap();
                    // Longer than a heartbeat interval (3 s): the consumer
                    // meets each coordinator.
                    std::thread::sleep(Duration::from_millis(3_500));
                }
            },
            |status, _| {
                // The consumer followed the coordinator to each broker
                // (statistics come every second, each move lasts 3.5 s).
                let seen = status.coordinators();
                let moves: Vec<i32> = seen
                    .iter()
                    .copied()
                    .filter(|b| [2, 3, 1].contains(b))
                    .collect();
                assert!(
                    moves.ends_with(&[2, 3, 1]),
                    "the consumer's coordinator went {seen:?}, not to 2, 3 and then 1"
                );
            },
        );
    }

    #[test]
    fn broker_down_and_back_up() {
        run_with_fault(
            "broker-down",
            3,
            |broker| {
                for id in 1..=3 {
                    broker.cluster().broker_down(id).unwrap();
                }
                std::thread::sleep(Duration::from_secs(1));
                for id in 1..=3 {
                    broker.cluster().broker_up(id).unwrap();
                }
            },
            |status, before| {
                // The consumer lost its brokers and said so to the view.
                wait_for(
                    status,
                    Duration::from_secs(30),
                    "the brokers' loss reported",
                    |s| s.counters().consumer_errors > before.consumer_errors,
                );
            },
        );
    }
}

#[test]
fn secondary_index_follows_creates_and_deletes() {
    use projector::config::IndexConfig;
    use projector::store::{SledStore, Store};

    let broker = Broker::new(&[("customers", 2)]);
    let created = |subject: &str, email: &str| {
        format!(r#"{{"email":"{email}","name":"{subject}"}}"#).into_bytes()
    };
    broker.publish(
        "customers",
        0,
        "CustomerCreated",
        "c1",
        Some("c-1"),
        &created("c-1", "a@x"),
    );
    broker.publish(
        "customers",
        1,
        "CustomerCreated",
        "c2",
        Some("c-2"),
        &created("c-2", "b@x"),
    );
    broker.publish(
        "customers",
        1,
        "CustomerCreated",
        "c3",
        Some("c-3"),
        &created("c-3", "a@x"),
    );
    broker.publish("customers", 1, "CustomerDeleted", "c4", Some("c-3"), b"");
    broker.flush();
    let dir = TempDir::new("index");
    let mut customers = view(
        "customers",
        projector_examples::CUSTOMER_VIEW.path,
        &["customers"],
        OnError::Stop,
    );
    let indexes = vec![IndexConfig {
        name: "by_email".into(),
        pointer: "/email".into(),
    }];
    customers.indexes = indexes.clone();
    let service = start(&broker, &dir, vec![customers], EngineConfig::default());
    let status = service.statuses()["customers"].clone();
    wait_applied(&status, 4);
    service.stop();

    let store = SledStore::open(&dir.0.join("store")).unwrap();
    let hash = crate::kit::hash_of(&projector_examples::CUSTOMER_VIEW);
    let view = store.open_view("customers", &hash, &indexes, None).unwrap();
    let subjects = |email: &str| -> Vec<String> {
        view.lookup("by_email", email, None, 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(
        subjects("a@x"),
        ["c-1"],
        "c-3 was deleted: its entry must be gone"
    );
    assert_eq!(subjects("b@x"), ["c-2"]);
    assert!(subjects("nobody@x").is_empty());
}

/// The same pipeline against a real Kafka-API broker process (tansu).
mod real_broker {
    use super::*;

    #[test]
    fn final_state_matches_the_oracle_on_tansu() {
        let broker = Broker::tansu(&[(TOPIC, 4)]);
        let dir = TempDir::new("tansu-oracle");
        let mut stream = Stream::default();
        stream.publish(&broker, 2000, 40, 4, Partitioning::BySubject);
        let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_for(&status, Duration::from_secs(120), "2000 applied", |s| {
            s.counters().applied == 2000
        });
        // Applied is not yet committed: the store is read once every
        // partition's checkpoint is durable at its end (the last batch
        // committed), else its last records may not be in it yet.
        crate::kit::wait_committed(&status, 2000);
        assert_matches_oracle(&service, &module_hash(), &stream);
        assert_eq!(status.counters().duplicates, 0);
        assert_eq!(service.stop()["counter"], Ok(()));
    }
}
