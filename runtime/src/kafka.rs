//! Kafka plumbing: client settings, reading records for the decoder,
//! binary-mode CloudEvent headers, and the dead-letter producer. The
//! consumer callbacks of a view live with the pipeline
//! (`pipeline::context`).
//!
//! # What it promises
//!
//! - Offsets are never auto-committed or auto-stored: the pipeline commits
//!   them itself, after the rows they produced are durable (G4).
//! - A dead-letter record is acknowledged by the broker before
//!   [`DeadLetterProducer::send`] returns `Ok`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use crate::config::BrokerConfig;
use crate::decode::Record;

/// librdkafka settings common to every client of `broker`.
pub fn client_config(broker: &BrokerConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &broker.bootstrap_servers);
    for (key, value) in &broker.settings {
        config.set(key, value);
    }
    config
}

/// Settings of a view's consumer: manual offset management, earliest reset.
pub fn consumer_config(broker: &BrokerConfig, group: &str) -> ClientConfig {
    let mut config = client_config(broker);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Statistics carry each partition's high watermark, for lag.
        .set("statistics.interval.ms", "1000");
    config
}

/// The headers of `message` as (name, value) pairs.
pub fn headers<'a>(message: &'a BorrowedMessage<'a>) -> Vec<(&'a str, Option<&'a [u8]>)> {
    let Some(headers) = message.headers() else {
        return Vec::new();
    };
    (0..headers.count())
        .filter_map(|i| headers.try_get(i))
        .map(|header| (header.key, header.value))
        .collect()
}

/// The parts of `message` the decoder reads.
pub fn record<'a>(message: &'a BorrowedMessage<'a>) -> Record<'a> {
    Record {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        value: message.payload(),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// The attributes of a CloudEvent to produce in binary mode.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingEvent<'a> {
    /// `id`.
    pub id: &'a str,
    /// `source`.
    pub source: &'a str,
    /// `type`.
    pub ty: &'a str,
    /// `subject`; also the record key, so one subject lands on one partition.
    pub subject: Option<&'a str>,
    /// `datacontenttype`, sent as the `content-type` header.
    pub datacontenttype: Option<&'a str>,
}

/// The headers of `event` in binary mode: `ce_*` attributes and
/// `content-type`.
pub fn binary_headers(event: &OutgoingEvent<'_>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    let attributes = [
        ("ce_specversion", Some(crate::decode::SPEC_VERSION)),
        ("ce_id", Some(event.id)),
        ("ce_source", Some(event.source)),
        ("ce_type", Some(event.ty)),
        ("ce_subject", event.subject),
        ("content-type", event.datacontenttype),
    ];
    for (key, value) in attributes {
        if let Some(value) = value {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
    }
    headers
}

/// Why a dead-letter record was not produced.
#[derive(Debug, thiserror::Error)]
#[error("cannot produce to dead-letter topic {topic}: {source}")]
pub struct DeadLetterError {
    /// The dead-letter topic.
    pub topic: String,
    /// The producer's error.
    #[source]
    pub source: KafkaError,
}

/// Why a record was dead-lettered: the `projector-error-*` headers.
#[derive(Debug, Clone)]
pub struct FailureHeaders<'a> {
    /// The error class, such as `guest-trap` or `invalid-event`.
    pub class: &'a str,
    /// The error message.
    pub message: &'a str,
    /// The view.
    pub view: &'a str,
}

/// Remembers the outcome of the last delivery.
#[derive(Default)]
struct DeliveryTracker {
    last: Mutex<Option<Result<(), KafkaError>>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = result.as_ref().map(drop).map_err(|(err, _)| err.clone());
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }
}

/// Produces failed records, unchanged, with `projector-error-*` headers.
pub struct DeadLetterProducer {
    producer: ThreadedProducer<DeliveryTracker>,
    timeout: Duration,
    // One record in flight at a time, so the tracker's outcome is its own.
    sending: Mutex<()>,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterProducer").finish_non_exhaustive()
    }
}

impl DeadLetterProducer {
    /// A producer for `broker`, idempotent and acknowledged by all replicas.
    pub fn new(broker: &BrokerConfig) -> Result<Self, KafkaError> {
        let producer = client_config(broker)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create_with_context(DeliveryTracker::default())?;
        Ok(Self {
            producer,
            timeout: Duration::from_secs(35),
            sending: Mutex::new(()),
        })
    }

    /// Produce `message` to `topic` with its key, value and headers, plus
    /// the failure headers, and wait until the broker acknowledged it.
    pub fn send(
        &self,
        topic: &str,
        message: &BorrowedMessage<'_>,
        failure: &FailureHeaders<'_>,
    ) -> Result<(), DeadLetterError> {
        let mut headers = message
            .headers()
            .map_or_else(OwnedHeaders::new, rdkafka::message::BorrowedHeaders::detach);
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        for (key, value) in [
            ("projector-error-class", failure.class),
            ("projector-error-message", failure.message),
            ("projector-error-view", failure.view),
            ("projector-error-topic", message.topic()),
            ("projector-error-partition", partition.as_str()),
            ("projector-error-offset", offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(value) = message.payload() {
            record = record.payload(value);
        }
        let error = |source| DeadLetterError {
            topic: topic.to_owned(),
            source,
        };
        let _one_at_a_time = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
        let tracker = self.producer.context();
        *tracker.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.producer.send(record).map_err(|(err, _)| error(err))?;
        // Flushing waits until the record is acknowledged or has failed.
        self.producer.flush(self.timeout).map_err(error)?;
        let outcome = tracker
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(err)) => Err(error(err)),
            None => Err(error(KafkaError::Flush(
                rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
            ))),
        }
    }
}
