//! Producing records one at a time, each acknowledged by the broker before
//! the call returns: [`AckedProducer`], what `projector publish` uses.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::connect::{BrokerError, Diagnosed};
use super::{Role, client_config_for};
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
        let producer = client_config_for(broker, Role::Producer)
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
