//! A view's standby directory: a compacted topic of one partition
//! (`<changelog topic>-standbys`) where each standby copy of the view says,
//! every few seconds, how far its copy reaches, and where its owner learns
//! which standbys it has and how far behind they are. Kafka carries it: no
//! coordinator, no connection between runtimes.
//!
//! # What it promises
//!
//! - One record per standby, keyed by its name: compaction keeps each
//!   standby's latest word, and a standby that stops cleanly leaves a
//!   tombstone.
//! - [`Directory::heard`] returns every standby's latest word, read from
//!   where the last call ended; a word older than [`Directory::STALE`] is
//!   the reader's to judge (a standby that died without its tombstone).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::changelog::{ChangelogError, ChangelogTopic};
use crate::config::BrokerConfig;
use crate::shard::ShardId;
use crate::store::Logged;

/// What a standby says of its copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyWord {
    /// The standby's name (its runtime's instance id and the view).
    pub name: String,
    /// Per shard, the changelog offset its copy reaches.
    pub shards: BTreeMap<u32, i64>,
    /// When it said so, milliseconds since the epoch.
    pub at_ms: i64,
}

/// The standby directory of one view's changelog.
pub struct Directory {
    topic: ChangelogTopic,
    /// Where the next read begins.
    next: Mutex<i64>,
    /// Every standby's latest word read so far.
    heard: Mutex<BTreeMap<String, StandbyWord>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("topic", &self.topic.topic())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// How long a standby's word stands: it speaks every few seconds, so
    /// one silent for this long is taken to be gone.
    pub const STALE: Duration = Duration::from_secs(30);

    /// The directory topic of changelog topic `changelog`.
    pub fn topic_of(changelog: &str) -> String {
        format!("{changelog}-standbys")
    }

    /// The directory of changelog topic `changelog`: its topic checked, or
    /// created compacted with one partition and `replication` replicas.
    ///
    /// # Errors
    /// When the topic cannot be used.
    pub fn open(
        broker: &BrokerConfig,
        changelog: &str,
        replication: i32,
    ) -> Result<Self, ChangelogError> {
        let (topic, _) =
            ChangelogTopic::ensure(broker, &Self::topic_of(changelog), 1, replication)?;
        Ok(Self {
            topic,
            next: Mutex::new(0),
            heard: Mutex::new(BTreeMap::new()),
        })
    }

    /// Say `word`, and wait until the broker has it.
    ///
    /// # Errors
    /// When the broker does not acknowledge it.
    pub fn announce(&self, word: &StandbyWord) -> Result<(), ChangelogError> {
        let value = serde_json::to_vec(word).unwrap_or_default();
        self.topic
            .write(std::iter::once(Logged {
                shard: ShardId(0),
                key: word.name.as_bytes().to_vec(),
                value: Some(value),
            }))
            .map(drop)
    }

    /// Take standby `name` out: a tombstone.
    ///
    /// # Errors
    /// When the broker does not acknowledge it.
    pub fn withdraw(&self, name: &str) -> Result<(), ChangelogError> {
        self.topic
            .write(std::iter::once(Logged {
                shard: ShardId(0),
                key: name.as_bytes().to_vec(),
                value: None,
            }))
            .map(drop)
    }

    /// Every standby's latest word: what was read before, updated with
    /// what the topic got since. A word that is not JSON is skipped.
    ///
    /// # Errors
    /// When the topic cannot be read.
    pub fn heard(&self) -> Result<BTreeMap<String, StandbyWord>, ChangelogError> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        let (low, high) = self.topic.watermarks(ShardId(0))?;
        let from = (*next).max(low);
        *next = self
            .topic
            .read(ShardId(0), from, high, &mut |_, key, value| {
                let name = String::from_utf8_lossy(key).into_owned();
                match value.map(serde_json::from_slice::<StandbyWord>) {
                    Some(Ok(mut word)) => {
                        // The key names the standby: a word cannot speak for another.
                        word.name.clone_from(&name);
                        heard.insert(name, word);
                    }
                    Some(Err(_)) => {}
                    None => {
                        heard.remove(&name);
                    }
                }
                Ok(())
            })?;
        Ok(heard.clone())
    }
}
