//! A view's changelog topic as Kafka sees it: created compacted with one
//! partition per shard, checked when it exists, written a batch at a time,
//! and read back a partition at a time.
//!
//! # What it promises
//!
//! - [`ChangelogTopic::ensure`] leaves a topic with exactly one partition
//!   per shard and `cleanup.policy=compact`, or fails naming the topic and
//!   what is wrong (its partition count, its cleanup policy, the ACL or
//!   replication that refused its creation).
//! - [`ChangelogTopic::write`] returns only once every record it was given
//!   is acknowledged by all in-sync replicas, with where each shard's
//!   partition ends after them; a record not acknowledged fails the whole
//!   write. Records to one partition keep their order (idempotent
//!   producer).
//! - [`ChangelogTopic::read`] hands over every record of a partition from
//!   an offset to the end the partition had when the read began, in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::client_config;
use super::in_flight::InFlightProducer;
use crate::config::BrokerConfig;
use crate::shard::ShardId;
use crate::store::{Logged, POSITIONS_KEY};

/// Why the changelog cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// The topic exists with another partition count.
    #[error(
        "changelog topic {topic} has {found} partitions, but the view has {shards} shards (one \
         partition per shard); delete the topic or name another in changelog.topic"
    )]
    Partitions {
        /// The topic.
        topic: String,
        /// Partitions it has.
        found: usize,
        /// Shards of the view.
        shards: u32,
    },
    /// The topic exists and is not compacted.
    #[error(
        "changelog topic {topic} has cleanup.policy={found}, but a changelog must be compacted \
         (cleanup.policy=compact), or its rows would be deleted by retention; change the topic's \
         setting or name another in changelog.topic"
    )]
    NotCompacted {
        /// The topic.
        topic: String,
        /// Its cleanup policy.
        found: String,
    },
    /// A batch is being logged, or one failed to be.
    #[error(
        "changelog topic {topic}: a batch is being logged, or one failed to be (its records wait \
         for a restart to revert them), so nothing else may be logged now"
    )]
    Busy {
        /// The topic.
        topic: String,
    },
    /// The topic does not exist, and this reader does not make it.
    #[error(
        "changelog topic {topic} does not exist yet: a standby copies the changelog its owner \
         makes; start the view's owner first (or check changelog.topic)"
    )]
    Missing {
        /// The topic.
        topic: String,
    },
    /// The topic could not be created.
    #[error(
        "changelog topic {topic} does not exist and cannot be created: {reason}; create it \
         compacted with one partition per shard (`projector topic create {topic} --partitions N \
         --compact`), or let this user create topics (the CreateTopics ACL)"
    )]
    Create {
        /// The topic.
        topic: String,
        /// What the broker said.
        reason: String,
    },
    /// A read delivered nothing for a while before the partition's end.
    #[error(
        "changelog topic {topic}, partition {partition}: the read stopped at offset {reached}, \
         before the partition's end at {end}"
    )]
    ReadShort {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Where the read got to.
        reached: i64,
        /// Where the partition ends.
        end: i64,
    },
    /// A record does not decode.
    #[error("changelog topic {topic}, partition {partition}, offset {offset}: {reason}")]
    Corrupt {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// A record was not acknowledged.
    #[error("changelog topic {topic}: {records} records not acknowledged: {reason}")]
    NotAcknowledged {
        /// The topic.
        topic: String,
        /// How many.
        records: usize,
        /// The first error.
        reason: String,
    },
    /// The client failed.
    #[error("changelog topic {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
}

/// What a read hands each record to: its offset, key and value.
pub type Each<'a> = dyn FnMut(i64, &[u8], Option<&[u8]>) -> Result<(), String> + 'a;

/// How long the description of the topic's settings may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A write to the changelog under way: its records sent so far, each
/// tagged with its number.
#[derive(Debug)]
pub struct LogWrite {
    tag: u64,
    sent: usize,
    positions_sent: usize,
    refused: Option<KafkaError>,
}

/// How long a metadata, admin or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A view's changelog topic and its producer.
pub struct ChangelogTopic {
    topic: String,
    broker: BrokerConfig,
    producer: InFlightProducer<u64>,
    /// Writes so far: each write's records are tagged with its number.
    writes: std::sync::atomic::AtomicU64,
    /// The consumer reads use, made by the first (assigned anew by each).
    reader: std::sync::Mutex<Option<BaseConsumer>>,
    /// The topic's `delete.retention.ms`, when the broker describes it: how
    /// long compaction keeps a tombstone at least.
    delete_retention: std::sync::Mutex<Option<Duration>>,
}

impl std::fmt::Debug for ChangelogTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangelogTopic")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Whether [`ChangelogTopic::ensure`] found the topic or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// It existed, as a changelog must be.
    Found,
    /// It was created.
    Created,
}

impl ChangelogTopic {
    /// The changelog `topic` of a view with `shards` shards on `broker`:
    /// checked when it exists, created compacted with `replication`
    /// replicas when it does not.
    ///
    /// # Errors
    /// When it cannot be created, or exists and is not fit to be one.
    pub fn ensure(
        broker: &BrokerConfig,
        topic: &str,
        shards: u32,
        replication: i32,
    ) -> Result<(Self, Ensured), ChangelogError> {
        Self::check(broker, topic, shards, Some(replication))
    }

    /// The changelog `topic` of a view with `shards` shards on `broker`,
    /// checked; created compacted with `replication` replicas when it does
    /// not exist and `replication` is given, refused otherwise (a standby
    /// copies a changelog its owner makes).
    ///
    /// # Errors
    /// When it does not exist and may not be created, cannot be created,
    /// or exists and is not fit to be one.
    pub fn check(
        broker: &BrokerConfig,
        topic: &str,
        shards: u32,
        replication: Option<i32>,
    ) -> Result<(Self, Ensured), ChangelogError> {
        let kafka = |source| ChangelogError::Kafka {
            topic: topic.to_owned(),
            source,
        };
        let producer = InFlightProducer::connect(
            broker,
            &[
                // Many small records per batch: let the client gather them.
                ("linger.ms", "2"),
                ("compression.type", "lz4"),
                ("batch.num.messages", "10000"),
            ],
        )
        .map_err(kafka)?;
        let this = Self {
            topic: topic.to_owned(),
            broker: broker.clone(),
            producer,
            writes: std::sync::atomic::AtomicU64::new(0),
            reader: std::sync::Mutex::new(None),
            delete_retention: std::sync::Mutex::new(None),
        };
        let ensured = match super::topic_partitions(this.producer.client(), topic, REQUEST_TIMEOUT)
        {
            Ok(partitions) => {
                if partitions.len() != shards as usize {
                    return Err(ChangelogError::Partitions {
                        topic: topic.to_owned(),
                        found: partitions.len(),
                        shards,
                    });
                }
                this.check_compacted()?;
                Ensured::Found
            }
            Err(super::TopicLookupError::Missing) => {
                let Some(replication) = replication else {
                    return Err(ChangelogError::Missing {
                        topic: topic.to_owned(),
                    });
                };
                this.create(shards, replication)?;
                Ensured::Created
            }
            Err(super::TopicLookupError::Other(reason)) => {
                return Err(ChangelogError::Create {
                    topic: topic.to_owned(),
                    reason,
                });
            }
        };
        Ok((this, ensured))
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic's `delete.retention.ms`, when the broker described it
    /// (a topic found, not made): how long compaction keeps a tombstone at
    /// least.
    pub fn delete_retention(&self) -> Option<Duration> {
        *self
            .delete_retention
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admin(&self) -> Result<AdminClient<rdkafka::client::DefaultClientContext>, ChangelogError> {
        client_config(&self.broker)
            .create()
            .map_err(|source| ChangelogError::Kafka {
                topic: self.topic.clone(),
                source,
            })
    }

    fn create(&self, shards: u32, replication: i32) -> Result<(), ChangelogError> {
        let admin = self.admin()?;
        let partitions = i32::try_from(shards).unwrap_or(i32::MAX);
        let topic = NewTopic::new(
            &self.topic,
            partitions,
            TopicReplication::Fixed(replication),
        )
        .set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let create = |reason: String| ChangelogError::Create {
            topic: self.topic.clone(),
            reason,
        };
        let results = block_on(admin.create_topics([&topic], &options))
            .map_err(create)?
            .map_err(|err| create(err.to_string()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code @ RDKafkaErrorCode::InvalidReplicationFactor)) => {
                    return Err(create(format!(
                        "{code} (changelog.replication = {replication} is more than the brokers \
                         can hold)"
                    )));
                }
                Err((_, code)) => return Err(create(code.to_string())),
            }
        }
        tracing::info!(topic = %self.topic, partitions, replication, "changelog topic created, compacted");
        Ok(())
    }

    /// Refuse a topic whose cleanup policy is not `compact`. A broker that
    /// does not describe topic settings (librdkafka's mock cluster) is
    /// taken at its word, with a warning.
    fn check_compacted(&self) -> Result<(), ChangelogError> {
        let admin = self.admin()?;
        // A broker answers this in milliseconds; one that does not answer
        // it at all (librdkafka's mock cluster) must not hold a start.
        let options = AdminOptions::new().request_timeout(Some(DESCRIBE_TIMEOUT));
        let described =
            block_on(admin.describe_configs([&ResourceSpecifier::Topic(&self.topic)], &options));
        let setting = |name: &str| match &described {
            Ok(Ok(results)) => results.iter().find_map(|result| {
                result.as_ref().ok().and_then(|resource| {
                    resource
                        .get(name)
                        .and_then(|entry| entry.value.clone())
                        // tansu quotes the value it was created with.
                        .map(|value| value.trim_matches('"').trim().to_owned())
                })
            }),
            Ok(Err(_)) | Err(_) => None,
        };
        *self
            .delete_retention
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = setting("delete.retention.ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        let policy = setting("cleanup.policy");
        match policy {
            // Only compaction: with `compact,delete` retention would also
            // delete the rows that never change.
            Some(policy) if policy == "compact" => Ok(()),
            Some(policy) => Err(ChangelogError::NotCompacted {
                topic: self.topic.clone(),
                found: policy,
            }),
            None => {
                tracing::warn!(topic = %self.topic, "the broker does not describe the changelog topic's cleanup.policy; it is taken to be compact");
                Ok(())
            }
        }
    }

    /// Log `entries`, each to its shard's partition, and wait until every
    /// one is acknowledged. Returns, per shard written, the offset after
    /// its last record.
    ///
    /// # Errors
    /// When a record is refused or not acknowledged within the client's
    /// `message.timeout.ms`: then nothing of the write may be taken as
    /// logged.
    pub fn write(
        &self,
        entries: impl Iterator<Item = Logged>,
    ) -> Result<BTreeMap<ShardId, i64>, ChangelogError> {
        let mut write = self.begin();
        self.send(&mut write, entries);
        self.finish(write)
    }

    /// A write whose records are sent now ([`ChangelogTopic::send`]) and
    /// waited for later ([`ChangelogTopic::finish`]).
    pub fn begin(&self) -> LogWrite {
        // Each write's records carry its number: a report of an earlier
        // write (one that failed while records were in flight) never
        // counts for this one.
        LogWrite {
            tag: self
                .writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sent: 0,
            positions_sent: 0,
            refused: None,
        }
    }

    /// Send `entries` as part of `write`, each to its shard's partition,
    /// without waiting for the broker. After a record the client refused,
    /// nothing more is sent: the write fails at its finish.
    pub fn send(&self, write: &mut LogWrite, entries: impl Iterator<Item = Logged>) {
        if write.refused.is_some() {
            return;
        }
        for entry in entries {
            let partition = i32::try_from(entry.shard.0).unwrap_or(i32::MAX);
            let mut record: BaseRecord<'_, [u8], [u8], Box<u64>> =
                BaseRecord::with_opaque_to(&self.topic, Box::new(write.tag))
                    .partition(partition)
                    .key(&entry.key);
            if let Some(value) = &entry.value {
                record = record.payload(value);
            }
            if let Err(source) = self.producer.send(record) {
                write.refused = Some(source);
                return;
            }
            write.sent += 1;
            if entry.key == POSITIONS_KEY {
                write.positions_sent += 1;
                if write.positions_sent == 1 && crate::failpoint::reached("changelog-partial") {
                    // What a crash in the middle of a batch leaves: every
                    // record up to the first shard's positions record
                    // acknowledged, the other shards' positions never sent.
                    let _ = self.producer.flush(Duration::from_secs(30));
                    crate::failpoint::abort("changelog-partial");
                }
            }
        }
    }

    /// Wait until every record of `write` is acknowledged. Returns, per
    /// shard written, the offset after its last record.
    ///
    /// # Errors
    /// When a record was refused or is not acknowledged within the
    /// client's `message.timeout.ms`: then nothing of the write may be
    /// taken as logged.
    pub fn finish(&self, write: LogWrite) -> Result<BTreeMap<ShardId, i64>, ChangelogError> {
        let LogWrite {
            tag, sent, refused, ..
        } = write;
        let mut ends = BTreeMap::new();
        if sent == 0 && refused.is_none() {
            return Ok(ends);
        }
        // The client gives a record up after message.timeout.ms; wait a
        // little longer for its report.
        self.producer.wait_for(
            self.producer.message_timeout() + Duration::from_secs(5),
            |reported| reported.iter().filter(|d| d.tag == tag).count() >= sent,
        );
        if let Some(source) = refused {
            return Err(ChangelogError::Kafka {
                topic: self.topic.clone(),
                source,
            });
        }
        let mut delivered = 0;
        let mut failed = 0;
        let mut reason = None;
        for delivery in self.producer.take_deliveries() {
            if delivery.tag != tag {
                continue;
            }
            match &delivery.result {
                Ok((partition, offset)) => {
                    delivered += 1;
                    let shard = ShardId(partition.unsigned_abs());
                    let end = ends.entry(shard).or_insert(0);
                    *end = (*end).max(offset + 1);
                }
                Err(err) => {
                    failed += 1;
                    reason.get_or_insert_with(|| err.to_string());
                }
            }
        }
        let missing = sent.saturating_sub(delivered + failed);
        if failed > 0 || missing > 0 {
            return Err(ChangelogError::NotAcknowledged {
                topic: self.topic.clone(),
                records: failed + missing,
                reason: reason.unwrap_or_else(|| "still in flight after the wait".to_owned()),
            });
        }
        Ok(ends)
    }

    /// The first and next offsets of `shard`'s partition now.
    ///
    /// # Errors
    /// When the broker cannot tell.
    pub fn watermarks(&self, shard: ShardId) -> Result<(i64, i64), ChangelogError> {
        let partition = i32::try_from(shard.0).unwrap_or(i32::MAX);
        self.producer
            .client()
            .fetch_watermarks(&self.topic, partition, REQUEST_TIMEOUT)
            .map_err(|source| ChangelogError::Kafka {
                topic: self.topic.clone(),
                source,
            })
    }

    /// Read `shard`'s partition from `from` to its end, handing each
    /// record's offset, key and value (`None`: a tombstone) to `each`, in
    /// order. `end` is the partition's next offset as last reported: the
    /// read goes on past it while records come at once, since a broker may
    /// report an end inside its last record batch (tansu 0.6). Returns the
    /// offset after the last record read.
    ///
    /// # Errors
    /// When the partition cannot be read.
    pub fn read(
        &self,
        shard: ShardId,
        from: i64,
        end: i64,
        each: &mut Each<'_>,
    ) -> Result<i64, ChangelogError> {
        self.read_past_end(shard, from, end, None, each)
    }

    /// [`ChangelogTopic::read`], reading past `end` for at most `past_end`
    /// (`None`: while records come at once): a reader that follows a
    /// partition its owner keeps writing must stop somewhere, and reads the
    /// rest next time.
    ///
    /// # Errors
    /// When the partition cannot be read.
    pub fn read_past_end(
        &self,
        shard: ShardId,
        from: i64,
        end: i64,
        past_end: Option<Duration>,
        each: &mut Each<'_>,
    ) -> Result<i64, ChangelogError> {
        let kafka = |source| ChangelogError::Kafka {
            topic: self.topic.clone(),
            source,
        };
        if from >= end {
            return Ok(from);
        }
        let mut reader = self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let consumer = match &mut *reader {
            Some(consumer) => consumer,
            // Reads are short and back to back: a fetch that waits for more
            // data than there is would only delay the next.
            empty => empty.insert(
                super::reader(&self.broker, &format!("{}-restore", self.topic)).map_err(kafka)?,
            ),
        };
        let partition = i32::try_from(shard.0).unwrap_or(i32::MAX);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, Offset::Offset(from))
            .map_err(kafka)?;
        consumer.assign(&assignment).map_err(kafka)?;
        let mut last_record = Instant::now();
        let mut reached = from;
        let mut passed_end: Option<Instant> = None;
        loop {
            if reached >= end {
                let since = *passed_end.get_or_insert_with(Instant::now);
                if past_end.is_some_and(|limit| since.elapsed() >= limit) {
                    break;
                }
            }
            match consumer.poll(Duration::from_millis(100)) {
                // librdkafka drops what an earlier assignment fetched (its
                // fetch versions); the checks keep a stray record out all
                // the same.
                Some(Ok(message))
                    if message.partition() != partition
                        || message.topic() != self.topic
                        || message.offset() < reached => {}
                Some(Ok(message)) => {
                    last_record = Instant::now();
                    let offset = message.offset();
                    reached = offset + 1;
                    each(offset, message.key().unwrap_or_default(), message.payload()).map_err(
                        |reason| ChangelogError::Corrupt {
                            topic: self.topic.clone(),
                            partition,
                            offset,
                            reason,
                        },
                    )?;
                }
                Some(Err(err)) => return Err(kafka(err)),
                // Past the end reported, and nothing more fetched: the end.
                None if reached >= end => break,
                None => {
                    // Kafka never compacts a partition's last record away,
                    // so a read that stops short of the end missed records.
                    if last_record.elapsed() > QUIET {
                        return Err(ChangelogError::ReadShort {
                            topic: self.topic.clone(),
                            partition,
                            reached,
                            end,
                        });
                    }
                }
            }
        }
        consumer.unassign().map_err(kafka)?;
        Ok(reached)
    }
}

/// How long a read may get nothing before its end before it fails.
const QUIET: Duration = Duration::from_secs(15);

/// Wait for an admin request on this thread: the admin client's futures
/// are driven by librdkafka's own threads, so a current-thread runtime
/// only waits.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map(|runtime| runtime.block_on(future))
        .map_err(|err| format!("cannot wait for the broker's answer: {err}"))
}
