//! The Kafka consumer's context of one view: the callbacks librdkafka makes
//! on the worker's thread, inside `poll`. Rebalances go to the one
//! rebalance path ([`super::rebalance`]); statistics feed the view's status
//! (watermarks, partition counts, the group coordinator); librdkafka's log
//! is forwarded, and a failed offset commit, which librdkafka reports only
//! there, is counted.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::rebalance;
use super::state::{ViewState, lock};
use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::store::Store;

/// The consumer context of one view.
#[derive(Debug)]
pub struct ViewContext<S: Store> {
    state: Arc<Mutex<ViewState<S>>>,
    status: Arc<ViewStatus>,
}

impl<S: Store> ViewContext<S> {
    /// A context over `state`, reporting to `status`.
    pub fn new(state: Arc<Mutex<ViewState<S>>>, status: Arc<ViewStatus>) -> Self {
        Self { state, status }
    }
}

/// The facility under which librdkafka logs an offset commit that failed
/// and had no callback to report to.
const COMMIT_FAILED_FACILITY: &str = "COMMITFAIL";

/// Log a librdkafka line as rust-rdkafka's default context does.
fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl<S: Store> ClientContext for ViewContext<S> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // rust-rdkafka 0.39 sets no offset-commit callback, and librdkafka
        // posts the result of an asynchronous commit only to that callback
        // (enabling the event is not enough). Without one, librdkafka logs
        // a failed commit under the facility COMMITFAIL: that line is how
        // a failed commit is seen.
        if facility == COMMIT_FAILED_FACILITY {
            self.status
                .counters
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                detail = message,
                "offset commit to Kafka failed; the store holds the checkpoints, \
                 so a partition's next owner may only see redeliveries"
            );
            return;
        }
        forward_log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        // librdkafka talks to the group's coordinator through a logical
        // broker that takes the address of the broker that is it now.
        if let Some(coordinator) = statistics
            .brokers
            .values()
            .find(|b| b.name.starts_with("GroupCoordinator") && !b.nodename.is_empty())
            && let Some(node) = statistics
                .brokers
                .values()
                .find(|b| b.nodeid >= 0 && b.nodename == coordinator.nodename)
        {
            self.status.coordinator(node.nodeid);
        }
        for (topic, stats) in &statistics.topics {
            // The statistics list every partition of a subscribed topic
            // the metadata knows (and an internal -1), assigned or not.
            let count = stats.partitions.keys().filter(|p| **p >= 0).count();
            if count > 0 {
                self.status
                    .partition_count(topic, i32::try_from(count).unwrap_or(i32::MAX));
            }
            for (partition, stats) in &stats.partitions {
                // librdkafka lists an internal partition -1, and reports -1
                // for watermarks it does not know yet.
                if *partition >= 0 && stats.hi_offset >= 0 {
                    let low = (stats.lo_offset >= 0).then_some(stats.lo_offset);
                    self.status
                        .watermarks(topic, *partition, low, stats.hi_offset);
                }
            }
        }
    }
}

impl<S: Store> ConsumerContext for ViewContext<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions = partitions_of(tpl);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                rebalance::assign(
                    &self.state,
                    &self.status,
                    consumer,
                    &partitions,
                    cooperative,
                );
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // A store failure is logged there, and the worker's next
                // commit stops the view with it.
                let _ = rebalance::revoke(
                    &self.state,
                    &self.status,
                    consumer,
                    &partitions,
                    cooperative,
                );
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; dropping the assignment");
                lock(&self.state).drop_assignment();
                if let Err(err) = consumer.unassign() {
                    tracing::error!(error = %err, "cannot drop the assignment");
                }
            }
        }
    }
}
