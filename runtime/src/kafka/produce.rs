//! Producing records one at a time, each acknowledged by the broker before
//! the call returns: [`AckedProducer`] (what `projector publish` uses) and,
//! on top of it, the dead-letter producer of the pipeline.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::client_config;
use super::connect::{BrokerError, Diagnosed};
use crate::config::BrokerConfig;

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// Remembers the outcome of the last delivery, and librdkafka's connection
/// errors for a diagnosis.
#[derive(Default)]
struct Tracker {
    last: Mutex<Option<Result<Delivered, KafkaError>>>,
    diagnosed: Diagnosed,
}

impl ClientContext for Tracker {
    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnosed.error(error, reason);
    }
}

impl ProducerContext for Tracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        let outcome = result
            .as_ref()
            .map(|message| Delivered {
                partition: message.partition(),
                offset: message.offset(),
            })
            .map_err(|(err, _)| err.clone());
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }
}

/// A producer that waits for each record's acknowledgement: idempotent,
/// acknowledged by all in-sync replicas.
pub struct AckedProducer {
    producer: ThreadedProducer<Tracker>,
    timeout: Duration,
    // One record in flight at a time, so the tracker's outcome is its own.
    sending: Mutex<()>,
}

impl std::fmt::Debug for AckedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckedProducer").finish_non_exhaustive()
    }
}

impl AckedProducer {
    /// A producer for `broker`.
    pub fn new(broker: &BrokerConfig) -> Result<Self, KafkaError> {
        let producer = client_config(broker)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            // A dead letter is as large as the record that failed; the
            // client's 1 MB default would refuse one the source topic held.
            // The broker's own limit still applies.
            .set("message.max.bytes", "104857600")
            .create_with_context(Tracker::default())?;
        Ok(Self {
            producer,
            timeout: Duration::from_secs(35),
            sending: Mutex::new(()),
        })
    }

    /// Produce `record` and wait until the broker acknowledged it.
    pub fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<Delivered, KafkaError> {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
        let tracker = self.producer.context();
        *tracker.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.producer.send(record).map_err(|(err, _)| err)?;
        // Flushing waits until the record is acknowledged or has failed.
        self.producer.flush(self.timeout)?;
        let outcome = tracker
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        outcome.unwrap_or(Err(KafkaError::Flush(
            rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
        )))
    }

    /// Explain a failed [`send`](Self::send) with the connection errors
    /// librdkafka reported meanwhile (TLS, login, DNS).
    pub fn explain(&self, err: &KafkaError) -> BrokerError {
        self.producer.context().diagnosed.explain(err)
    }
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

/// Produces failed records, unchanged, with `projector-error-*` headers.
#[derive(Debug)]
pub struct DeadLetterProducer {
    producer: AckedProducer,
}

impl DeadLetterProducer {
    /// A producer for `broker`.
    pub fn new(broker: &BrokerConfig) -> Result<Self, KafkaError> {
        AckedProducer::new(broker).map(|producer| Self { producer })
    }

    /// Produce `message` to `topic` with its key, value and headers, plus
    /// the failure headers, and wait until the broker acknowledged it.
    pub fn send(
        &self,
        topic: &str,
        message: &impl Message,
        failure: &FailureHeaders<'_>,
    ) -> Result<(), DeadLetterError> {
        let mut headers = OwnedHeaders::new();
        for (key, value) in super::headers(message) {
            headers = headers.insert(Header { key, value });
        }
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
        self.producer
            .send(record)
            .map(drop)
            .map_err(|source| DeadLetterError {
                topic: topic.to_owned(),
                source,
            })
    }
}
