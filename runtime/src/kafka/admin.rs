//! Topics through the Kafka admin API: create one, list them, with errors
//! that say what is wrong (the topic exists, the replication factor is
//! higher than the broker count, the login was refused).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::client_config;
use super::connect::{BrokerError, Diagnosed, check};
use crate::config::BrokerConfig;

/// Why a topic could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The topic exists already.
    #[error("topic {0:?} exists already")]
    Exists(String),
    /// More replicas than brokers.
    #[error(
        "replication factor {replication} is higher than the number of brokers ({brokers}); \
         use --replication {brokers} or less"
    )]
    ReplicationTooHigh {
        /// Replicas asked for.
        replication: i32,
        /// Brokers in the cluster.
        brokers: usize,
    },
    /// The broker refused the request.
    #[error("cannot create topic {topic:?}: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's reason.
        reason: String,
    },
    /// The cluster could not be reached or the login failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions, at least 1.
    pub partitions: i32,
    /// Replicas per partition, at least 1.
    pub replication: i32,
    /// Topic settings, such as `retention.ms`.
    pub config: Vec<(String, String)>,
}

fn admin(broker: &BrokerConfig) -> Result<AdminClient<Diagnosed>, BrokerError> {
    client_config(broker)
        .create_with_context(Diagnosed::default())
        .map_err(|err| BrokerError::Kafka(err.to_string()))
}

/// Create `spec` on `broker`, waiting at most `timeout`.
pub async fn create_topic(
    broker: &BrokerConfig,
    spec: &TopicSpec,
    timeout: Duration,
) -> Result<(), TopicError> {
    // Know the broker count first: it both checks the connection (with a
    // diagnosis) and explains a replication factor that cannot be met.
    let brokers = check(broker, timeout)?.brokers.len();
    let client = admin(broker)?;
    if usize::try_from(spec.replication).is_ok_and(|r| r > brokers) {
        return Err(TopicError::ReplicationTooHigh {
            replication: spec.replication,
            brokers,
        });
    }
    let mut topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in &spec.config {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = client
        .create_topics([&topic], &options)
        .await
        .map_err(|err| client.inner().context().explain(&err))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                return Err(TopicError::Exists(spec.name.clone()));
            }
            Err((_, RDKafkaErrorCode::InvalidReplicationFactor)) => {
                return Err(TopicError::ReplicationTooHigh {
                    replication: spec.replication,
                    brokers,
                });
            }
            Err((topic, code)) => {
                return Err(TopicError::Refused {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
