//! Kafka plumbing: client settings (TLS and SASL included), reading
//! records for the decoder, binary-mode CloudEvent headers; `produce`: the
//! acknowledged producer behind `projector publish` and the dead-letter
//! topic; `admin`: topics; `connect`: connection checks with a diagnosis.
//! The consumer callbacks of a view live with the pipeline
//! (`pipeline::context`).
//!
//! # What it promises
//!
//! - Offsets are never auto-committed or auto-stored: the pipeline commits
//!   them itself, after the rows they produced are durable (G4).
//! - A produced record (published or dead-lettered) is acknowledged by the
//!   broker before [`AckedProducer::send`] returns its partition and offset.

pub mod admin;
pub mod connect;
mod produce;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

pub use produce::{AckedProducer, DeadLetterError, DeadLetterProducer, Delivered, FailureHeaders};

use crate::config::BrokerConfig;
use crate::decode::Record;

/// librdkafka settings common to every client of `broker`: the servers,
/// TLS and SASL (`security.protocol`, `sasl.mechanisms`, the user and the
/// resolved password), and the pass-through settings.
///
/// The returned `ClientConfig` holds the password: never log it.
pub fn client_config(broker: &BrokerConfig) -> ClientConfig {
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
