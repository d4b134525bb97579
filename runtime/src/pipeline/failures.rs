//! A view's recent failed records, in a bounded ring, for the console and
//! `/v1/views/{view}/failures`: what failed, where, and what the policy did
//! with it. The counters and the log stay the full account; this is the
//! last [`Failures::CAPACITY`] of them.

use serde::{Deserialize, Serialize};

use super::ring::Ring;

/// What the view's policy did with a failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureOutcome {
    /// Counted and passed over (`on_error = "skip"`).
    Skipped,
    /// Held for the dead-letter topic (`on_error = "dead-letter"`).
    DeadLettered,
    /// Its subject held in quarantine (`on_error = "quarantine"`).
    Quarantined,
    /// Its shard stopped on its partition (`on_error = "stop"`, or a dead
    /// letter its topic kept refusing).
    Stopped,
}

/// One failed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The record's topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The shard its subject belongs to; `None` when the failure is the
    /// partition's (a dead letter its topic kept refusing stops every
    /// shard).
    pub shard: Option<u32>,
    /// The failure's class (`invalid-event`, `guest-trap`, ...).
    pub class: String,
    /// What failed.
    pub message: String,
    /// What the policy did.
    pub outcome: FailureOutcome,
}

/// The ring of a view's recent failures.
#[derive(Debug)]
pub struct Failures {
    ring: Ring<FailureRecord>,
}

impl Default for Failures {
    fn default() -> Self {
        Self {
            ring: Ring::new(Self::CAPACITY),
        }
    }
}

impl Failures {
    /// How many failures are kept.
    pub const CAPACITY: usize = 100;

    /// Keep `failure`, dropping the oldest when full.
    pub fn push(&self, failure: FailureRecord) {
        self.ring.push(failure);
    }

    /// Every failure kept, newest first.
    pub fn newest_first(&self) -> Vec<FailureRecord> {
        let mut all = self.ring.oldest_first();
        all.reverse();
        all
    }
}
