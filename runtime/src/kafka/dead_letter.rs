//! The dead-letter topic of a view, as Kafka sees it: a producer with many
//! records in flight, the check that the topic exists, and the reader that
//! finds which failed records the view produced there already.
//!
//! # What it promises
//!
//! - [`DeadLetterProducer::send`] never waits for the broker: the outcome of
//!   each record comes back later, with the record's origin, from
//!   [`DeadLetterProducer::take_deliveries`]. The producer is idempotent
//!   and acknowledged by all in-sync replicas, so retries inside one
//!   producer session do not duplicate a record.
//! - Each record carries its origin and failure in `projector-error-*`
//!   headers (see [`ORIGIN_HEADERS`]), beside the record's own key, value,
//!   headers and timestamp, unchanged.
//! - [`produced_origins`] reads the topic from given offsets to its end and
//!   returns the origins one view produced there. It reads from before each
//!   offset until the broker delivers a record at or below it, because some
//!   brokers (tansu 0.6) answer a read that begins inside a record batch
//!   with the next batch: a record of the view it skipped would otherwise be
//!   produced twice.
//! - [`DeadLetterTail`] follows the topic from given offsets without
//!   waiting, for the dead letters a killed run had in flight: they may
//!   land after the next run started (tansu acknowledges in hundreds of
//!   milliseconds; Kafka makes a record appended before its replication
//!   visible later), so a scan at start alone cannot prove them missing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use super::in_flight::InFlightProducer;
use crate::config::BrokerConfig;
use crate::store::{DeadLetter, Origin};

/// The headers a dead letter carries besides the record's own: the view,
/// the origin and the failure.
pub const ORIGIN_HEADERS: [&str; 6] = [
    "projector-error-view",
    "projector-error-topic",
    "projector-error-partition",
    "projector-error-offset",
    "projector-error-class",
    "projector-error-message",
];

/// Why the dead-letter topic cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The topic does not exist, or the broker refuses to describe it.
    #[error(
        "dead-letter topic {topic} cannot be used: {reason}; create it (`projector topic create {topic}`) \
         or name another in dead_letter_topic"
    )]
    Topic {
        /// The topic.
        topic: String,
        /// What the broker said.
        reason: String,
    },
    /// The client failed.
    #[error("dead-letter topic {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
}

/// The outcome of one dead letter: its tag is the failed record's origin.
pub type Delivery = super::in_flight::Delivery<Origin>;

/// Produces the failed records of one view to its dead-letter topic.
pub struct DeadLetterProducer {
    producer: InFlightProducer<Origin>,
    broker: BrokerConfig,
    topic: String,
    view: String,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterProducer")
            .field("topic", &self.topic)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

/// How long a metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a partition read for origins may deliver nothing before its
/// end is taken as reached.
const QUIET: Duration = Duration::from_secs(5);

/// How long a read for origins may wait for its first record before it
/// begins further back.
const FIRST_ANSWER: Duration = Duration::from_millis(300);

impl DeadLetterProducer {
    /// A producer of `view`'s dead letters to `topic` on `broker`. Checks
    /// that the topic exists and can be described, so that a missing one
    /// stops the runtime at start, naming it.
    ///
    /// # Errors
    /// When the producer cannot be created or the topic cannot be used.
    pub fn connect(
        broker: &BrokerConfig,
        topic: &str,
        view: &str,
    ) -> Result<Self, DeadLetterError> {
        let kafka = |source| DeadLetterError::Kafka {
            topic: topic.to_owned(),
            source,
        };
        let producer = InFlightProducer::connect(broker, &[]).map_err(kafka)?;
        let this = Self {
            producer,
            broker: broker.clone(),
            topic: topic.to_owned(),
            view: view.to_owned(),
        };
        this.partitions()?;
        Ok(this)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// How long after it was sent a dead letter may still land in the
    /// topic: the client's `message.timeout.ms`, after which the client
    /// itself gives the record up.
    pub fn message_timeout(&self) -> Duration {
        self.producer.message_timeout()
    }

    /// The topic's partitions, as the broker describes them now.
    ///
    /// # Errors
    /// When the topic does not exist or the broker refuses to describe it.
    pub fn partitions(&self) -> Result<Vec<i32>, DeadLetterError> {
        super::topic_partitions(self.producer.client(), &self.topic, REQUEST_TIMEOUT).map_err(
            |reason| DeadLetterError::Topic {
                topic: self.topic.clone(),
                reason: reason.to_string(),
            },
        )
    }

    /// The offset the next record of each partition of the topic will get.
    ///
    /// # Errors
    /// When the broker cannot tell.
    pub fn high_watermarks(&self) -> Result<BTreeMap<i32, i64>, DeadLetterError> {
        self.partitions()?
            .into_iter()
            .map(|partition| {
                self.producer
                    .client()
                    .fetch_watermarks(&self.topic, partition, REQUEST_TIMEOUT)
                    .map(|(_, high)| (partition, high))
                    .map_err(|source| DeadLetterError::Kafka {
                        topic: self.topic.clone(),
                        source,
                    })
            })
            .collect()
    }

    /// Produce `letter` without waiting; its outcome comes from
    /// [`take_deliveries`](Self::take_deliveries). Waits only while the
    /// client's queue is full (bounded by `message.timeout.ms`).
    ///
    /// # Errors
    /// When the client refuses the record (too large, or its queue stayed
    /// full).
    pub fn send(&self, letter: &DeadLetter) -> Result<(), KafkaError> {
        let partition = letter.origin.partition.to_string();
        let offset = letter.origin.offset.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + 6);
        for (key, value) in &letter.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let values = [
            self.view.as_str(),
            letter.origin.topic.as_str(),
            partition.as_str(),
            offset.as_str(),
            letter.class.as_str(),
            letter.message.as_str(),
        ];
        for (key, value) in ORIGIN_HEADERS.into_iter().zip(values) {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8], Box<Origin>> =
            BaseRecord::with_opaque_to(&self.topic, Box::new(letter.origin.clone()))
                .headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        if let Some(value) = &letter.value {
            record = record.payload(value);
        }
        if let Some(timestamp) = letter.timestamp_ms {
            record = record.timestamp(timestamp);
        }
        self.producer.send(record)
    }

    /// The outcomes reported since the last call, in the order the broker
    /// reported them.
    pub fn take_deliveries(&self) -> Vec<Delivery> {
        self.producer.take_deliveries()
    }

    /// Wait at most `timeout` until every record sent has an outcome.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(topic = %self.topic, error = %err, "dead letters still in flight after the wait");
        }
    }

    /// The origins this producer's view produced to its topic at or after
    /// `from` (per partition), up to the end of each partition now.
    ///
    /// # Errors
    /// When the topic cannot be read.
    pub fn produced_origins(
        &self,
        from: &BTreeMap<i32, i64>,
    ) -> Result<BTreeSet<Origin>, DeadLetterError> {
        produced_origins(&self.broker, &self.topic, &self.view, from)
    }

    /// A reader of what lands in the topic from `from` (per partition) on.
    ///
    /// # Errors
    /// When the reader cannot be created.
    pub fn tail(&self, from: &BTreeMap<i32, i64>) -> Result<DeadLetterTail, DeadLetterError> {
        DeadLetterTail::open(&self.broker, &self.topic, &self.view, from)
    }
}

/// Follows a dead-letter topic from given offsets, without waiting, for the
/// origins one view's dead letters name.
pub struct DeadLetterTail {
    consumer: BaseConsumer,
    topic: String,
    view: String,
}

impl std::fmt::Debug for DeadLetterTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterTail")
            .field("topic", &self.topic)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl DeadLetterTail {
    /// Follow `topic` from `from`, an offset per partition: where the scan at
    /// start began. On a broker that answers a read beginning inside a batch
    /// with the next batch (tansu 0.6), and that reports a high watermark
    /// inside the last batch, the tail may skip the rest of the batch it
    /// begins in; what it is for, records that land after the scan, comes
    /// in later batches, and what that batch held was there for the scan,
    /// which reads from further back until the broker answers at or before
    /// its start.
    ///
    /// # Errors
    /// When the reader cannot be created or assigned.
    pub fn open(
        broker: &BrokerConfig,
        topic: &str,
        view: &str,
        from: &BTreeMap<i32, i64>,
    ) -> Result<Self, DeadLetterError> {
        let kafka = |source| DeadLetterError::Kafka {
            topic: topic.to_owned(),
            source,
        };
        let consumer = scan_consumer(broker, view).map_err(kafka)?;
        let mut tpl = TopicPartitionList::new();
        for (&partition, &offset) in from {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(kafka)?;
        }
        consumer.assign(&tpl).map_err(kafka)?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            view: view.to_owned(),
        })
    }

    /// The origins of the view's dead letters that landed since the last
    /// call, as far as the client has fetched them; never waits.
    pub fn landed(&self) -> Vec<Origin> {
        let mut found = Vec::new();
        // Bounded, so that a flood of other views' records cannot hold the
        // worker; the rest comes with the next call.
        for _ in 0..10_000 {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => found.extend(origin_of(&message, &self.view)),
                Some(Err(err)) => {
                    tracing::warn!(topic = %self.topic, error = %err, "reading the dead-letter topic for letters of the last run");
                    break;
                }
            }
        }
        found
    }
}

/// A consumer that reads a dead-letter topic by assignment, committing
/// nothing.
fn scan_consumer(broker: &BrokerConfig, view: &str) -> Result<BaseConsumer, KafkaError> {
    // An empty answer at once: a read that begins inside the last batch on
    // tansu gets nothing, and is begun further back.
    super::reader(broker, &format!("projector-dead-letter-scan-{view}"))
}

/// The origins `view` produced to `topic` at or after `from` (per
/// partition), up to the end each partition has now.
///
/// # Errors
/// When the topic cannot be read.
pub fn produced_origins(
    broker: &BrokerConfig,
    topic: &str,
    view: &str,
    from: &BTreeMap<i32, i64>,
) -> Result<BTreeSet<Origin>, DeadLetterError> {
    let kafka = |source| DeadLetterError::Kafka {
        topic: topic.to_owned(),
        source,
    };
    let consumer = scan_consumer(broker, view).map_err(kafka)?;
    let mut found = BTreeSet::new();
    for (&partition, &start) in from {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(kafka)?;
        let start = start.max(low);
        if start >= high {
            continue;
        }
        // Begin at `start`; while the broker's first answer lies past it,
        // begin further back (tansu answers a read that begins inside a
        // batch with the next batch).
        let mut begin = start;
        // Dead letters go out in batches of many: begin 16 back, then twice
        // as far each time.
        let mut back = 16;
        'read: loop {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Offset(begin))
                .map_err(kafka)?;
            consumer.assign(&tpl).map_err(kafka)?;
            let mut first = true;
            let mut last_record = Instant::now();
            loop {
                let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                    // Nothing at all from a read that began inside the last
                    // batch (tansu): begin further back.
                    if first && begin > low && last_record.elapsed() > FIRST_ANSWER {
                        begin = start.saturating_sub(back).max(low);
                        back = back.saturating_mul(2);
                        continue 'read;
                    }
                    // Offsets below the high watermark may hold no record
                    // (transaction markers of another producer): a quiet
                    // partition has nothing more to read.
                    if last_record.elapsed() > QUIET {
                        break 'read;
                    }
                    continue;
                };
                last_record = Instant::now();
                let message = message.map_err(kafka)?;
                let offset = message.offset();
                if first && offset > begin && begin > low {
                    begin = start.saturating_sub(back).max(low);
                    back = back.saturating_mul(2);
                    continue 'read;
                }
                first = false;
                if offset >= start
                    && let Some(origin) = origin_of(&message, view)
                {
                    found.insert(origin);
                }
                if offset + 1 >= high {
                    break 'read;
                }
            }
        }
    }
    Ok(found)
}

/// The origin a dead letter of `view` names in its headers.
fn origin_of(message: &impl Message, view: &str) -> Option<Origin> {
    let headers = message.headers()?;
    let value = |name: &str| {
        headers
            .iter()
            .find(|header| header.key == name)
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
    };
    if value(ORIGIN_HEADERS[0])? != view {
        return None;
    }
    Some(Origin {
        topic: value(ORIGIN_HEADERS[1])?.to_owned(),
        partition: value(ORIGIN_HEADERS[2])?.parse().ok()?,
        offset: value(ORIGIN_HEADERS[3])?.parse().ok()?,
    })
}
