//! What a view's worker asks of where its records come from: take and drop
//! partitions at a rebalance, fetch a partition again from an offset, pause
//! a stopped partition, tell where a partition starts, and take the offsets
//! of a durable batch.
//!
//! The Kafka consumer is the source in production. Tests that drive the
//! worker through a model, and the engine-only benchmark, implement it in
//! memory, so they run the worker's own code, not a copy of it.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

use super::topic_partition::TopicPartition;

/// The controls the worker needs over its source of records.
pub trait Source {
    /// Deliver each partition of `assignment` from its offset: these
    /// partitions only, or in addition to the others when `incremental`
    /// (a cooperative rebalance).
    ///
    /// # Errors
    /// When the source cannot take them; the worker logs it.
    fn take_partitions(
        &self,
        assignment: &[(TopicPartition, Offset)],
        incremental: bool,
    ) -> Result<(), KafkaError>;

    /// Stop delivering `partitions` (all partitions, unless `incremental`).
    ///
    /// # Errors
    /// When the source cannot drop them; the worker logs it.
    fn drop_partitions(
        &self,
        partitions: &[TopicPartition],
        incremental: bool,
    ) -> Result<(), KafkaError>;

    /// Deliver `partition` of `topic` again from `offset`.
    ///
    /// # Errors
    /// When the source cannot move; the worker logs it.
    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), KafkaError>;

    /// Stop delivering `partition` of `topic`.
    ///
    /// # Errors
    /// When the source cannot pause; the worker then ignores the
    /// partition's records itself.
    fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaError>;

    /// Deliver `partition` of `topic` again after a pause.
    ///
    /// # Errors
    /// When the source cannot resume; the worker logs it.
    fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaError>;

    /// The earliest offset `partition` of `topic` holds now: where a
    /// partition the view never applied from starts.
    ///
    /// # Errors
    /// When the source cannot tell; the worker retries with the view's
    /// backoff, then stops the partition until it is assigned again, never
    /// taking the first record it gets as the start.
    fn low_watermark(&self, topic: &str, partition: i32) -> Result<i64, KafkaError>;

    /// Take note of `offsets` (the next offset per partition), which the
    /// store holds durably already. Asynchronous, best effort.
    ///
    /// # Errors
    /// When the offsets cannot be sent; they are the store's already, so a
    /// failure only means redeliveries, which the worker recognises.
    fn commit_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError>;

    /// Take note of `offsets` and return once the source has them: before
    /// revoked partitions go to their next owner.
    ///
    /// # Errors
    /// When the offsets were not taken.
    fn commit_offsets_now(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError>;
}

fn partition_list(partitions: &[TopicPartition]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    tpl
}

impl<C: ConsumerContext> Source for BaseConsumer<C> {
    fn take_partitions(
        &self,
        assignment: &[(TopicPartition, Offset)],
        incremental: bool,
    ) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in assignment {
            tpl.add_partition_offset(topic, *partition, *offset)?;
        }
        if incremental {
            self.incremental_assign(&tpl)
        } else {
            Consumer::assign(self, &tpl)
        }
    }

    fn drop_partitions(
        &self,
        partitions: &[TopicPartition],
        incremental: bool,
    ) -> Result<(), KafkaError> {
        if incremental {
            self.incremental_unassign(&partition_list(partitions))
        } else {
            Consumer::unassign(self)
        }
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), KafkaError> {
        Consumer::seek(
            self,
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        )
    }

    fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaError> {
        Consumer::pause(self, &partition_list(&[(topic.to_owned(), partition)]))
    }

    fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaError> {
        Consumer::resume(self, &partition_list(&[(topic.to_owned(), partition)]))
    }

    fn low_watermark(&self, topic: &str, partition: i32) -> Result<i64, KafkaError> {
        Consumer::fetch_watermarks(self, topic, partition, Duration::from_secs(10))
            .map(|(low, _high)| low)
    }

    fn commit_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        Consumer::commit(self, offsets, CommitMode::Async)
    }

    fn commit_offsets_now(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        Consumer::commit(self, offsets, CommitMode::Sync)
    }
}

/// Give `offsets`, durable in the store already, to `source`.
pub fn give_offsets(source: &impl Source, offsets: &TopicPartitionList) {
    if offsets.count() > 0
        && let Err(err) = source.commit_offsets(offsets)
    {
        // The store holds the checkpoint; a missed Kafka commit only means
        // redeliveries, which are recognised.
        tracing::warn!(error = %err, "offset commit to Kafka could not be sent; the store holds the checkpoints");
    }
}
