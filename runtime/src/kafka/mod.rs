//! Kafka plumbing: client settings (TLS and SASL included), reading
//! records for the decoder, binary-mode CloudEvent headers; `produce`: the
//! acknowledged producer behind `projector publish`; `in_flight`: a
//! producer with many records in flight, each delivery checked, which the
//! dead-letter topic and the changelog share; `dead_letter`: a view's
//! dead-letter topic (records in flight, origins read back);
//! `admin`: topics; `connect`: connection checks with a diagnosis.
//! The consumer callbacks of a view live with the pipeline
//! (`pipeline::context`).
//!
//! # What it promises
//!
//! - Offsets are never auto-committed or auto-stored: the pipeline commits
//!   them itself, after the rows they produced are durable (G4).
//! - A published record is acknowledged by the broker before
//!   [`AckedProducer::send`] returns its partition and offset.
//! - `[broker] settings` reach only the clients they apply to: a consumer
//!   setting such as `fetch.wait.max.ms` is not given to producers (which
//!   would warn about it on every start), and the other way round.

pub mod admin;
pub mod changelog;
pub mod connect;
pub mod dead_letter;
pub mod directory;
pub mod in_flight;
mod produce;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

pub use dead_letter::{DeadLetterError, DeadLetterProducer, DeadLetterTail, Delivery};
pub use produce::{AckedProducer, Delivered};

use crate::config::BrokerConfig;
use crate::decode::Record;

/// The kind of Kafka client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A consumer (a view's, or a reader of a topic).
    Consumer,
    /// A producer (`publish`, dead letters).
    Producer,
    /// An admin or metadata client.
    Admin,
}

/// librdkafka's consumer-only properties (`C` in librdkafka 2.12's
/// CONFIGURATION.md, global and topic level).
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
    "group.protocol",
    "group.remote.assignor",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "auto.offset.reset",
    "consume.callback.max.messages",
];

/// librdkafka's producer-only properties (`P` in the same table).
const PRODUCER_ONLY: &[&str] = &[
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queuing.strategy",
    "produce.offset.report",
    "partitioner",
];

/// True when the librdkafka property `key` applies to a client of `role`.
pub fn applies_to(key: &str, role: Role) -> bool {
    match role {
        Role::Consumer => !PRODUCER_ONLY.contains(&key),
        Role::Producer => !CONSUMER_ONLY.contains(&key),
        Role::Admin => !CONSUMER_ONLY.contains(&key) && !PRODUCER_ONLY.contains(&key),
    }
}

/// librdkafka settings common to every client of `broker`: the servers,
/// TLS and SASL (`security.protocol`, `sasl.mechanisms`, the user and the
/// resolved password), and the pass-through settings that apply to any
/// client.
///
/// The returned `ClientConfig` holds the password: never log it.
pub fn client_config(broker: &BrokerConfig) -> ClientConfig {
    client_config_for(broker, Role::Admin)
}

/// [`client_config`] for a client of `role`: the pass-through settings that
/// apply to it.
///
/// The returned `ClientConfig` holds the password: never log it.
pub fn client_config_for(broker: &BrokerConfig, role: Role) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &broker.bootstrap_servers);
    let protocol = match (broker.auth.mechanism(), broker.uses_tls()) {
        (Some(_), true) => "sasl_ssl",
        (Some(_), false) => "sasl_plaintext",
        (None, true) => "ssl",
        (None, false) => "plaintext",
    };
    config.set("security.protocol", protocol);
    if let Some(mechanism) = broker.auth.mechanism() {
        config.set("sasl.mechanisms", mechanism);
        if let Some(user) = &broker.user {
            config.set("sasl.username", user);
        }
        if let Some(password) = &broker.password {
            config.set("sasl.password", password.expose());
        }
    }
    if let Some(ca) = &broker.ca_file {
        config.set("ssl.ca.location", ca.to_string_lossy());
    }
    for (key, value) in &broker.settings {
        if applies_to(key, role) {
            config.set(key, value);
        }
    }
    config
}

/// librdkafka's (and Kafka's) default session timeout, set explicitly so
/// that it is documented where it matters: how long a killed member's
/// partitions wait before the group gives them to another member.
pub const DEFAULT_SESSION_TIMEOUT_MS: &str = "45000";

/// Settings of a view's consumer: manual offset management, earliest reset,
/// static membership as `instance` when given.
pub fn consumer_config(broker: &BrokerConfig, group: &str, instance: Option<&str>) -> ClientConfig {
    let mut config = client_config_for(broker, Role::Consumer);
    // A failed offset commit is reported as a warning line (see the view's
    // consumer context), so warnings are always logged by librdkafka,
    // whatever the process's own log level.
    if (config.log_level as i32) < RDKafkaLogLevel::Warning as i32 {
        config.set_log_level(RDKafkaLogLevel::Warning);
    }
    if let Some(instance) = instance {
        config.set("group.instance.id", instance);
    }
    if !broker.settings.contains_key("session.timeout.ms") {
        config.set("session.timeout.ms", DEFAULT_SESSION_TIMEOUT_MS);
    }
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Statistics carry each partition's high watermark, for lag.
        .set("statistics.interval.ms", "1000");
    // A view is a latency-sensitive reader: read-your-writes waits on it.
    // Kafka answers a fetch as soon as records are there, but some
    // Kafka-API brokers (tansu among them) hold every fetch for the full
    // wait, which at librdkafka's 500 ms default caps a view at one fetch
    // per half second. 10 ms costs an idle view at most 100 empty fetches a
    // second per broker. `[broker.settings]` overrides it.
    if !broker.settings.contains_key("fetch.wait.max.ms") {
        config.set("fetch.wait.max.ms", "10");
    }
    config
}

/// The partitions of `topic`, as `client`'s broker describes them within
/// `timeout`.
///
/// # Errors
/// Why not, in words: the metadata cannot be read, the topic does not
/// exist, this user may not use it, or it has no partitions.
pub fn topic_partitions<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Vec<i32>, TopicLookupError> {
    use rdkafka::types::RDKafkaErrorCode;
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|err| TopicLookupError::Other(format!("cannot read its metadata: {err}")))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| TopicLookupError::Other("the broker does not list it".to_owned()))?;
    if let Some(err) = found.error() {
        return Err(match RDKafkaErrorCode::from(err) {
            RDKafkaErrorCode::UnknownTopicOrPartition => TopicLookupError::Missing,
            RDKafkaErrorCode::TopicAuthorizationFailed => TopicLookupError::Other(
                "this user may not use it (topic authorization failed)".to_owned(),
            ),
            other => TopicLookupError::Other(format!("the broker reports {other}")),
        });
    }
    let partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        return Err(TopicLookupError::Other("it has no partitions".to_owned()));
    }
    Ok(partitions)
}

/// Why a topic's partitions could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicLookupError {
    /// The broker says the topic does not exist.
    #[error("it does not exist")]
    Missing,
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

/// How many partitions `topic` has, as the cluster's metadata says within
/// `timeout`.
///
/// # Errors
/// Why not ([`topic_partitions`]), or the client cannot be created.
pub fn partition_count(
    broker: &BrokerConfig,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<usize, TopicLookupError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client_config_for(broker, Role::Consumer)
        .create()
        .map_err(|err| TopicLookupError::Other(err.to_string()))?;
    topic_partitions(consumer.client(), topic, timeout).map(|partitions| partitions.len())
}

/// The earliest offset each partition of `topic` still holds (its low
/// watermark: above 0 once retention or a deletion removed its start), as
/// the cluster says within `timeout`, by partition.
///
/// # Errors
/// Why not ([`topic_partitions`]), or a watermark cannot be read.
pub fn earliest_offsets(
    broker: &BrokerConfig,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Vec<(i32, i64)>, TopicLookupError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client_config_for(broker, Role::Consumer)
        .create()
        .map_err(|err| TopicLookupError::Other(err.to_string()))?;
    topic_partitions(consumer.client(), topic, timeout)?
        .into_iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, timeout)
                .map(|(low, _)| (partition, low))
                .map_err(|err| {
                    TopicLookupError::Other(format!(
                        "cannot read partition {partition}'s earliest offset: {err}"
                    ))
                })
        })
        .collect()
}

/// A consumer that reads partitions it assigns itself, from offsets it
/// gives, for group `group` (never joined, never committed): what the
/// dead-letter scan and the changelog's reads use. A fetch answers at once
/// (`fetch.wait.max.ms = 10`): such reads are short, and often end where
/// there is nothing more.
///
/// # Errors
/// When the client cannot be created.
pub fn reader(
    broker: &BrokerConfig,
    group: &str,
) -> Result<rdkafka::consumer::BaseConsumer, rdkafka::error::KafkaError> {
    client_config_for(broker, Role::Consumer)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
}

/// The headers of `message` as (name, value) pairs.
pub fn headers<M: Message>(message: &M) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    let headers = message.headers();
    let count = headers.map_or(0, Headers::count);
    (0..count)
        .filter_map(move |i| headers.and_then(|headers| headers.try_get(i)))
        .map(|header| (header.key, header.value))
}

/// The parts of `message` the decoder reads.
pub fn record<M: Message>(message: &M) -> Record<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_only_the_clients_they_apply_to() {
        let mut broker = BrokerConfig::plaintext("localhost:9092");
        for (key, value) in [
            ("fetch.wait.max.ms", "50"),
            ("linger.ms", "20"),
            ("socket.keepalive.enable", "true"),
        ] {
            broker.settings.insert(key.to_owned(), value.to_owned());
        }
        let has = |config: &ClientConfig, key: &str| config.get(key).is_some();
        let consumer = client_config_for(&broker, Role::Consumer);
        assert!(has(&consumer, "fetch.wait.max.ms") && !has(&consumer, "linger.ms"));
        let producer = client_config_for(&broker, Role::Producer);
        assert!(has(&producer, "linger.ms") && !has(&producer, "fetch.wait.max.ms"));
        let admin = client_config(&broker);
        assert!(!has(&admin, "linger.ms") && !has(&admin, "fetch.wait.max.ms"));
        for config in [&consumer, &producer, &admin] {
            assert!(has(config, "socket.keepalive.enable"));
        }
    }

    #[test]
    fn a_view_consumer_is_a_static_member_with_a_documented_session_timeout() {
        let broker = BrokerConfig::plaintext("localhost:9092");
        let config = consumer_config(&broker, "projector-v", Some("0123abcd-v"));
        assert_eq!(config.get("group.instance.id"), Some("0123abcd-v"));
        assert_eq!(
            config.get("session.timeout.ms"),
            Some(DEFAULT_SESSION_TIMEOUT_MS)
        );
        assert_eq!(
            consumer_config(&broker, "g", None).get("group.instance.id"),
            None
        );
        let mut broker = broker;
        broker
            .settings
            .insert("session.timeout.ms".to_owned(), "6000".to_owned());
        assert_eq!(
            consumer_config(&broker, "g", None).get("session.timeout.ms"),
            Some("6000")
        );
    }
}
