//! The deployment record of a view: which version of it is live, the one it
//! replaced (kept for a rollback), and a shadow being built. Kept in the
//! store's meta tree as JSON and written in one flushed step, so a swap is
//! one atomic write: after a crash, either the old or the new version is
//! live, never neither.
//!
//! A view without a record has one version, number 1, stored under the
//! view's own name and built by the config's module. Version `n > 1` is
//! stored as `<view>@<n>` (a name no configured view can have), consumes in
//! its own consumer group and logs to its own changelog topic.

use serde::{Deserialize, Serialize};

use crate::config::{ChangelogConfig, ViewConfig};
use crate::store::{Store, StoreError};

/// One version of a view: a number and the module that builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// 1 for the view as first configured, then one more per deploy.
    pub number: u32,
    /// SHA-256 of its module.
    pub module_hash: String,
}

impl Version {
    /// The name its rows, checkpoints and held records are stored under.
    pub fn store_name(&self, view: &str) -> String {
        store_name(view, self.number)
    }

    /// `config` made into this version's: its store name, and for a
    /// version after the first its own consumer group, changelog topic and
    /// static member id, each suffixed `.v<n>.<first 12 of its module's
    /// hash>`. A changelog topic left by an earlier life of the same number
    /// (a rebuild forgets the numbers) is then one the same module built
    /// from the same topics: a restore from it is sound. Everything else
    /// (topics, error policy, dead-letter topic, indexes, shards, dedup) is
    /// the view's.
    pub fn config(&self, config: &ViewConfig) -> ViewConfig {
        let mut versioned = config.clone();
        versioned.name = self.store_name(&config.name);
        if self.number > 1 {
            let hash = self.module_hash.get(..12).unwrap_or(&self.module_hash);
            let suffix = format!(".v{}.{hash}", self.number);
            versioned.group = Some(format!("{}{suffix}", config.group()));
            versioned.changelog = config.changelog.as_ref().map(|changelog| ChangelogConfig {
                topic: changelog
                    .topic
                    .as_ref()
                    .map(|topic| format!("{topic}{suffix}")),
                ..changelog.clone()
            });
            versioned.group_instance_id = config
                .group_instance_id
                .as_ref()
                .map(|id| format!("{id}{suffix}"));
        }
        versioned
    }
}

/// The name version `number` of `view` is stored under.
pub fn store_name(view: &str, number: u32) -> String {
    if number <= 1 {
        view.to_owned()
    } else {
        format!("{view}@{number}")
    }
}

/// When a shadow that has caught up is swapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwapMode {
    /// As soon as it has caught up.
    Auto,
    /// When `projector view swap` asks.
    Manual,
}

/// A shadow being built, or one that stopped itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shadow {
    /// Its version.
    pub version: Version,
    /// When it is swapped in.
    pub swap: SwapMode,
    /// Why it stopped itself, once it has (the live view is untouched).
    #[serde(default)]
    pub failed: Option<String>,
    /// When the deploy began, milliseconds since the epoch.
    pub started_ms: i64,
}

/// The deployment record of one view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The version readers see.
    pub live: Version,
    /// The version the live one replaced, kept applying until
    /// `drop-previous`, so a rollback is a swap back.
    pub previous: Option<Version>,
    /// The shadow being built.
    pub shadow: Option<Shadow>,
    /// The number the next deploy's version takes.
    pub next_number: u32,
}

impl Deployment {
    /// The record of a view that was never deployed: version 1, built by
    /// `module_hash`.
    pub fn first(module_hash: &str) -> Self {
        Self {
            live: Version {
                number: 1,
                module_hash: module_hash.to_owned(),
            },
            previous: None,
            shadow: None,
            next_number: 2,
        }
    }

    /// Read view `name`'s record from `store`; `None` for a view never
    /// deployed.
    ///
    /// # Errors
    /// When the store fails, or the record does not decode.
    pub fn load(store: &impl Store, name: &str) -> Result<Option<Self>, StoreError> {
        store
            .deployment(name)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|err| StoreError::Corrupt {
                    view: name.to_owned(),
                    key: format!("view/{name}/deployment"),
                    reason: err.to_string(),
                })
            })
            .transpose()
    }

    /// Write this record as view `name`'s, durably.
    ///
    /// # Errors
    /// When the store fails.
    pub fn save(&self, store: &impl Store, name: &str) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(self).map_err(|err| StoreError::Backend {
            operation: "encode deployment",
            reason: err.to_string(),
        })?;
        store.set_deployment(name, Some(&bytes))
    }
}

/// Drop what the store holds of view `name`'s versions beyond the first,
/// keeping those numbered in `keep`: what a crash in the middle of a
/// deploy, a failure or a drop left behind. Returns the versions dropped.
///
/// # Errors
/// When the store fails.
pub fn drop_other_versions(
    store: &impl Store,
    name: &str,
    keep: &[u32],
) -> Result<Vec<String>, StoreError> {
    let prefix = format!("{name}@");
    let mut dropped = Vec::new();
    for stored in store.view_names()? {
        let Some(number) = stored
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !keep.contains(&number) {
            store.drop_view(&stored)?;
            dropped.push(stored);
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ViewConfig {
        toml::from_str(
            r#"
            name = "orders"
            module = "orders.wasm"
            topics = ["t"]
            changelog = { topic = "orders-log", replication = 1 }
            group_instance_id = "host-orders"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_first_version_is_the_view_itself_and_later_ones_have_their_own_names() {
        let first = Version {
            number: 1,
            module_hash: "a".to_owned(),
        };
        assert_eq!(first.config(&view()), {
            let mut same = view();
            same.name = "orders".to_owned();
            same
        });
        let second = Version {
            number: 2,
            module_hash: "b".to_owned(),
        };
        let config = second.config(&view());
        assert_eq!(config.name, "orders@2");
        assert_eq!(config.group(), "projector-orders.v2.b");
        assert_eq!(config.changelog_topic().as_deref(), Some("orders-log.v2.b"));
        assert_eq!(
            config.group_instance_id.as_deref(),
            Some("host-orders.v2.b")
        );
        assert_eq!(config.topics, view().topics);
    }

    #[test]
    fn a_record_survives_the_store() {
        let dir = std::env::temp_dir().join(format!("projector-deploy-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let store = crate::store::SledStore::open(&dir).unwrap();
        assert_eq!(Deployment::load(&store, "orders").unwrap(), None);
        let mut record = Deployment::first("a");
        record.shadow = Some(Shadow {
            version: Version {
                number: 2,
                module_hash: "b".to_owned(),
            },
            swap: SwapMode::Manual,
            failed: None,
            started_ms: 1,
        });
        record.save(&store, "orders").unwrap();
        assert_eq!(Deployment::load(&store, "orders").unwrap(), Some(record));
        std::fs::remove_dir_all(&dir).ok();
    }
}
