//! A producer with many records in flight, each one's delivery checked:
//! what the dead-letter topic and the changelog share.
//!
//! # What it promises
//!
//! - [`InFlightProducer::send`] never waits for the broker (only while the
//!   client's queue is full). The outcome of every record comes back later,
//!   with the tag it was sent with, from
//!   [`InFlightProducer::take_deliveries`], in the order the client
//!   reported them.
//! - The producer is idempotent and acknowledged by all in-sync replicas,
//!   so the client's retries inside one producer session neither duplicate
//!   nor reorder the records of a partition.
//! - It never creates a topic: a record to a missing topic fails.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, client::Client};

use super::{Role, client_config_for};
use crate::config::BrokerConfig;

/// The outcome of one record.
#[derive(Debug)]
pub struct Delivery<T> {
    /// What the record was sent with.
    pub tag: T,
    /// Where the topic holds it (partition, offset), or why it does not.
    pub result: Result<(i32, i64), KafkaError>,
}

/// Collects delivery reports: the producer's client context.
pub struct Reports<T> {
    deliveries: Mutex<Vec<Delivery<T>>>,
    /// Signalled on every report.
    reported: Condvar,
}

impl<T> std::fmt::Debug for Reports<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> ClientContext for Reports<T> {}

impl<T: Send + Sync + 'static> ProducerContext for Reports<T> {
    type DeliveryOpaque = Box<T>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<T>) {
        let result = result
            .as_ref()
            .map(|message| (message.partition(), message.offset()))
            .map_err(|(err, _)| err.clone());
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Delivery { tag: *tag, result });
        self.reported.notify_all();
    }
}

/// The client's `message.timeout.ms` unless the broker settings name one.
const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 30_000;

/// How long a send may wait for room in the client's queue.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// A producer whose records are tagged with a `T` each, many in flight.
pub struct InFlightProducer<T: Send + Sync + 'static> {
    producer: ThreadedProducer<Reports<T>>,
    /// The client's `message.timeout.ms`.
    message_timeout: Duration,
}

impl<T: Send + Sync + 'static> std::fmt::Debug for InFlightProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightProducer")
            .field("message_timeout", &self.message_timeout)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> InFlightProducer<T> {
    /// A producer on `broker`, with `settings` on top of the shared ones
    /// (idempotent, `acks=all`, records as large as a topic takes, no topic
    /// created by a send).
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn connect(broker: &BrokerConfig, settings: &[(&str, &str)]) -> Result<Self, KafkaError> {
        let mut config = client_config_for(broker, Role::Producer);
        let message_timeout = match broker.settings.get("message.timeout.ms") {
            Some(ms) => {
                Duration::from_millis(ms.trim().parse().unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS))
            }
            None => {
                // How long a record may be retried inside the client before
                // its delivery fails; its owner then decides what to do.
                config.set("message.timeout.ms", DEFAULT_MESSAGE_TIMEOUT_MS.to_string());
                Duration::from_millis(DEFAULT_MESSAGE_TIMEOUT_MS)
            }
        };
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A dead letter is as large as the record that failed, a
            // changelog record as large as a row; the client's 1 MB default
            // would refuse one the source topic held. The broker's own
            // limit still applies.
            .set("message.max.bytes", "104857600")
            // A missing topic is an error at start, not a topic made with
            // the broker's defaults by the first record.
            .set("allow.auto.create.topics", "false");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let producer = config.create_with_context(Reports {
            deliveries: Mutex::new(Vec::new()),
            reported: Condvar::new(),
        })?;
        Ok(Self {
            producer,
            message_timeout,
        })
    }

    /// The client, for metadata and watermark requests.
    pub fn client(&self) -> &Client<Reports<T>> {
        self.producer.client()
    }

    /// How long after it was sent a record may still land in its topic:
    /// the client's `message.timeout.ms`, after which the client itself
    /// gives it up.
    pub fn message_timeout(&self) -> Duration {
        self.message_timeout
    }

    /// Produce `record` without waiting for the broker; its outcome comes
    /// from [`take_deliveries`](Self::take_deliveries). Waits only while the
    /// client's queue is full (at most 30 s).
    ///
    /// # Errors
    /// When the client refuses the record (too large, or its queue stayed
    /// full).
    pub fn send(&self, mut record: BaseRecord<'_, [u8], [u8], Box<T>>) -> Result<(), KafkaError> {
        let deadline = Instant::now() + QUEUE_WAIT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, _)) => return Err(err),
            }
        }
    }

    /// The outcomes reported since the last call, in the order the client
    /// reported them.
    pub fn take_deliveries(&self) -> Vec<Delivery<T>> {
        std::mem::take(
            &mut *self
                .producer
                .context()
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Wait at most `timeout` until `done` holds for the outcomes reported
    /// and not yet taken; true when it does. Woken by each report, not by
    /// polling the client (librdkafka's flush waits in steps of 100 ms when
    /// another thread serves the reports, as this producer's does).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Delivery<T>]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let context = self.producer.context();
        let mut deliveries = context
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(&deliveries) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            deliveries = context
                .reported
                .wait_timeout(deliveries, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wait at most `timeout` until every record sent has an outcome.
    ///
    /// # Errors
    /// When some are still in flight after it.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Records sent and not yet reported.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
