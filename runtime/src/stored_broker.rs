//! The broker config kept in the projector home by `projector config set
//! broker`: `<home>/broker.toml`, written atomically. `projector run` uses
//! it when `projector.toml` has no `[broker]`; `publish`, `topic` and
//! `config test broker` use it by default.
//!
//! It holds the password only as a secret reference (`NAME/KEY`): the file
//! can be shown, copied and diffed without exposing a credential.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{BrokerConfig, ConfigError};
use crate::files::{FileError, failed, write_atomically};

/// The kind of service a stored broker is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerService {
    /// A Kafka-protocol cluster (Apache Kafka, Confluent Cloud, Redpanda,
    /// tansu, ...).
    #[default]
    Kafka,
}

/// The stored broker: what `config set broker` writes and `config get
/// broker` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredBroker {
    /// The kind of service.
    pub service: BrokerService,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The connection.
    pub broker: BrokerConfig,
}

/// Why the stored broker could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoredBrokerError {
    /// No home directory.
    #[error(transparent)]
    Home(#[from] crate::secrets::SecretError),
    /// None was stored.
    #[error(
        "no broker is configured: run `projector config set broker --broker-bootstrap-servers \
         HOST:PORT ...` or add a [broker] table to projector.toml"
    )]
    Missing,
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The config could not be written as TOML.
    #[error("cannot write the broker config as TOML: {0}")]
    Serialise(String),
    /// The file does not parse or validate.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
}

fn file(home: &Path) -> PathBuf {
    home.join("broker.toml")
}

fn validate(stored: &StoredBroker, path: &Path) -> Result<(), StoredBrokerError> {
    crate::config::validate_broker(&stored.broker).map_err(|source| StoredBrokerError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Validate `stored` and write it under `home`.
pub fn save(home: &Path, stored: &StoredBroker) -> Result<PathBuf, StoredBrokerError> {
    let path = file(home);
    validate(stored, &path)?;
    std::fs::create_dir_all(home).map_err(failed("create", home))?;
    let text = toml::to_string_pretty(stored)
        .map_err(|err| StoredBrokerError::Serialise(err.to_string()))?;
    write_atomically(&path, text.as_bytes(), 0o644)?;
    Ok(path)
}

/// The broker stored under `home`.
pub fn load(home: &Path) -> Result<StoredBroker, StoredBrokerError> {
    let path = file(home);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoredBrokerError::Missing);
        }
        Err(source) => return Err(failed("read", &path)(source).into()),
    };
    let stored: StoredBroker = toml::from_str(&text).map_err(|err| StoredBrokerError::Invalid {
        path: path.clone(),
        source: ConfigError::Parse {
            path: None,
            message: crate::config::describe_toml_error(&text, &err),
        },
    })?;
    validate(&stored, &path)?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerAuth;

    #[test]
    fn a_stored_broker_round_trips_with_the_secret_as_a_reference() {
        let home = std::env::temp_dir().join(format!("projector-broker-{}", std::process::id()));
        std::fs::remove_dir_all(&home).ok();
        assert!(matches!(load(&home), Err(StoredBrokerError::Missing)));
        let mut broker = BrokerConfig::plaintext("pkc-123.europe-west1.gcp.confluent.cloud:9092");
        broker.auth = BrokerAuth::Plain;
        broker.user = Some("API-KEY".to_owned());
        broker.password_secret = Some("confluent/api-secret".parse().unwrap());
        broker.password = Some(crate::secrets::SecretValue::new("must-not-be-written"));
        let stored = StoredBroker {
            service: BrokerService::Kafka,
            description: Some("production".to_owned()),
            broker,
        };
        let path = save(&home, &stored).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.contains("password_secret = \"confluent/api-secret\""),
            "{text}"
        );
        assert!(!text.contains("must-not-be-written"), "{text}");
        let loaded = load(&home).unwrap();
        assert_eq!(loaded.broker.password, None);
        assert_eq!(loaded.broker.user.as_deref(), Some("API-KEY"));
        assert!(loaded.broker.uses_tls());
        std::fs::remove_dir_all(&home).ok();
    }

    #[test]
    fn auth_without_a_user_or_secret_is_refused() {
        let home =
            std::env::temp_dir().join(format!("projector-broker-bad-{}", std::process::id()));
        let mut broker = BrokerConfig::plaintext("localhost:9092");
        broker.auth = BrokerAuth::Plain;
        let stored = StoredBroker {
            service: BrokerService::Kafka,
            description: None,
            broker,
        };
        let message = save(&home, &stored).unwrap_err().to_string();
        assert!(message.contains("broker.user"), "{message}");
        assert!(!home.join("broker.toml").exists());
    }
}
