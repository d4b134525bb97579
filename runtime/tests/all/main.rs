//! Integration tests of the runtime crate, in one binary.
//!
//! - `api`: the HTTP query API, black-box, against a running runtime.
//! - `cli`: the `projector` binary, run as a user runs it.
//! - `committed`: the group's committed offsets, read by a plain consumer,
//!   never pass a record the view holds (quarantined, or a dead letter not
//!   yet acknowledged): stop, restart, rebalance, SIGKILL.
//! - `crash`: the crash oracle: `projector run` killed with SIGKILL at random
//!   moments on tansu, restarted, and checked against the oracle.
//! - `dedup`: deduplication by CloudEvents identity: re-sends across
//!   partitions and restarts, the window, the expiry.
//! - `dead_letters`: dead letters held with their checkpoint, in flight,
//!   written once across a crash, refused and retried, a missing topic.
//! - `engine`: the wasm engine against real components: the example
//!   projections built by `projector-examples`, and hand-written components
//!   that break the world in one way each.
//! - `model`: the worker driven from an in-memory log by random consumer
//!   behaviour (proptest), against the oracle.
//! - `pipeline`: views running against librdkafka's mock cluster, checked
//!   against an oracle fold of what was published; `kit` holds the broker,
//!   producer and runtime helpers.
//! - `policies`: stop, skip and dead-letter with every failure kind.
//! - `start`: where a partition never applied from starts, also when its
//!   earliest offset cannot be read.
//! - `shards`: the subject hash against librdkafka's murmur2 partitioner,
//!   and views split into shards.
//! - `restart`: SIGKILL and restart in the same consumer group, with and
//!   without static membership, on the mock cluster in a process of its own
//!   (`projector mock-broker`).
//! - the real Kafka-API broker process (tansu) comes from `projector-tansu`;
//!   `front`: a test-only TLS + SASL PLAIN front for it; `managed`: the
//!   managed-Kafka flow (secrets, broker config, topics, publish, run) over
//!   SASL_SSL through the front.

// Test helpers fail by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod authors;
mod changelog;
mod cli;
mod committed;
mod console;
pub(crate) mod crash;
mod dead_letters;
mod dedup;
mod deploy;
mod engine;
mod front;
mod hostile;
mod kit;
mod managed;
mod model;
pub(crate) mod pipeline;
mod policies;
mod quarantine;
pub(crate) mod restart;
mod shards;
mod standby;
mod start;
