//! Connecting to a cluster with a readable diagnosis: a client context that
//! records librdkafka's connection errors, and [`check`], which connects,
//! authenticates and lists metadata, or says which step failed.
//!
//! librdkafka reports a failed TLS handshake, a refused login or an unknown
//! host through its error callback, then keeps retrying; a metadata request
//! only times out. [`Diagnosed`] keeps those reports so that the timeout
//! becomes [`BrokerError::Tls`], [`BrokerError::Authentication`] or
//! [`BrokerError::Dns`]. Its messages come from librdkafka and name hosts,
//! never the password.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::client_config;
use crate::config::BrokerConfig;

/// Why the cluster could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// A bootstrap host name does not resolve.
    #[error("DNS: cannot resolve the broker address ({0})")]
    Dns(String),
    /// The TLS handshake failed (wrong CA, wrong host name, not TLS).
    #[error(
        "TLS: the handshake with the broker failed ({0}); check broker.ca_file and that the \
         broker speaks TLS on that port"
    )]
    Tls(String),
    /// The broker refused the login.
    #[error(
        "authentication failed ({0}); check broker.user, broker.auth and the secret that \
         broker.password_secret names"
    )]
    Authentication(String),
    /// No broker answered.
    #[error("cannot reach the broker: {0}")]
    Unreachable(String),
    /// The broker answered with an error.
    #[error("{0}")]
    Kafka(String),
}

impl BrokerError {
    /// The most telling error among what librdkafka reported, else `fallback`.
    fn diagnose(reported: &[(RDKafkaErrorCode, String)], fallback: &KafkaError) -> Self {
        // By code, and by librdkafka's wording where a transport failure
        // carries the cause only in its text.
        let find = |wanted: RDKafkaErrorCode, words: &[&str]| {
            reported
                .iter()
                .find(|(code, reason)| {
                    *code == wanted || words.iter().any(|word| reason.contains(word))
                })
                .map(|(_, reason)| reason.clone())
        };
        if let Some(reason) = find(
            RDKafkaErrorCode::Authentication,
            &["SASL authentication", "Authentication failed"],
        ) {
            return Self::Authentication(reason);
        }
        if let Some(reason) = find(
            RDKafkaErrorCode::SSL,
            &["SSL handshake", "certificate verify"],
        ) {
            return Self::Tls(reason);
        }
        if let Some(reason) = find(RDKafkaErrorCode::Resolve, &["Failed to resolve"]) {
            return Self::Dns(reason);
        }
        if let Some((_, reason)) = reported.last() {
            return Self::Unreachable(reason.clone());
        }
        Self::Kafka(fallback.to_string())
    }
}

/// A client context that keeps the connection errors librdkafka reports.
#[derive(Debug, Default)]
pub struct Diagnosed {
    reported: Mutex<Vec<(RDKafkaErrorCode, String)>>,
}

impl Diagnosed {
    /// A TLS, login or DNS failure, once librdkafka reported one: retrying
    /// will not help.
    fn definitive(&self, err: &KafkaError) -> Option<BrokerError> {
        match self.explain(err) {
            diagnosis @ (BrokerError::Tls(_)
            | BrokerError::Authentication(_)
            | BrokerError::Dns(_)) => Some(diagnosis),
            _ => None,
        }
    }

    /// Explain `err` with what librdkafka reported meanwhile.
    pub fn explain(&self, err: &KafkaError) -> BrokerError {
        let reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        BrokerError::diagnose(&reported, err)
    }
}

impl ClientContext for Diagnosed {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(code) = error.rdkafka_error_code() {
            let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
            // Keep the first reports of each kind; librdkafka repeats them.
            if reported.len() < 64 {
                reported.push((code, reason.to_owned()));
            }
        }
        // The diagnosis reports it; librdkafka repeats it every second.
        tracing::debug!(%error, reason, "librdkafka error");
    }
}

impl ProducerContext for Diagnosed {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The brokers, as `id host:port`.
    pub brokers: Vec<String>,
    /// The topics and their partition counts, internal topics excluded.
    pub topics: Vec<(String, usize)>,
}

/// Connect to `broker`, authenticate and list metadata, within `timeout`.
pub fn check(broker: &BrokerConfig, timeout: Duration) -> Result<ClusterInfo, BrokerError> {
    // A threaded producer polls in the background, so librdkafka's error
    // callbacks reach the context while the metadata request waits.
    let client: ThreadedProducer<Diagnosed> = client_config(broker)
        .create_with_context(Diagnosed::default())
        .map_err(|err| BrokerError::Kafka(err.to_string()))?;
    // Short attempts, so that a definitive failure (TLS, login, DNS) is
    // reported at once rather than after the whole timeout.
    let started = std::time::Instant::now();
    let metadata = loop {
        match client
            .client()
            .fetch_metadata(None, Duration::from_millis(500).min(timeout))
        {
            Ok(metadata) => break metadata,
            Err(err) => {
                if let Some(diagnosis) = client.context().definitive(&err) {
                    return Err(diagnosis);
                }
                if started.elapsed() >= timeout {
                    return Err(client.context().explain(&err));
                }
            }
        }
    };
    Ok(ClusterInfo {
        brokers: metadata
            .brokers()
            .iter()
            .map(|b| format!("{} {}:{}", b.id(), b.host(), b.port()))
            .collect(),
        topics: metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__"))
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_telling_report_wins() {
        let timeout = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let reports = |codes: &[RDKafkaErrorCode]| -> Vec<(RDKafkaErrorCode, String)> {
            codes.iter().map(|c| (*c, format!("{c:?}"))).collect()
        };
        use RDKafkaErrorCode::{AllBrokersDown, Authentication, Resolve, SSL};
        assert!(matches!(
            BrokerError::diagnose(&reports(&[AllBrokersDown, SSL]), &timeout),
            BrokerError::Tls(_)
        ));
        assert!(matches!(
            BrokerError::diagnose(&reports(&[SSL, Authentication]), &timeout),
            BrokerError::Authentication(_)
        ));
        assert!(matches!(
            BrokerError::diagnose(&reports(&[Resolve, AllBrokersDown]), &timeout),
            BrokerError::Dns(_)
        ));
        assert!(matches!(
            BrokerError::diagnose(&reports(&[AllBrokersDown]), &timeout),
            BrokerError::Unreachable(_)
        ));
        assert!(matches!(
            BrokerError::diagnose(&[], &timeout),
            BrokerError::Kafka(_)
        ));
    }
}
