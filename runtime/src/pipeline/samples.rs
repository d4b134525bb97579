//! A view's recent figures, one sample a second in a bounded ring, so that
//! a page can draw throughput and lag without a Prometheus server. The
//! Prometheus metrics stay the source for real monitoring.
//!
//! # What it promises
//!
//! - At most [`Samples::CAPACITY`] samples are kept (five minutes at one a
//!   second); the oldest goes first. Memory per view is bounded.
//! - Counters in a sample are totals since start, so a rate is the
//!   difference between two samples over their time apart; a sample missed
//!   (a slow second) loses nothing.

use serde::{Deserialize, Serialize};

use super::ring::Ring;

/// One partition in a sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSample {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The checkpoint then, when known.
    pub checkpoint: Option<i64>,
    /// High watermark minus checkpoint then, when both were known.
    pub lag: Option<i64>,
}

/// A view's figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Events applied since start.
    pub applied: u64,
    /// Redeliveries recognised since start.
    pub duplicates: u64,
    /// Failed events skipped since start.
    pub skipped: u64,
    /// Failed events dead-lettered (acknowledged) since start.
    pub dead_lettered: u64,
    /// Failed events that stopped their shard since start.
    pub stopped: u64,
    /// Rows in the view.
    pub rows: u64,
    /// Lag over the partitions whose lag was known.
    pub lag: i64,
    /// Each partition the view holds or held.
    pub partitions: Vec<PartitionSample>,
}

/// The ring of a view's recent samples.
#[derive(Debug)]
pub struct Samples {
    ring: Ring<Sample>,
}

impl Default for Samples {
    fn default() -> Self {
        Self {
            ring: Ring::new(Self::CAPACITY),
        }
    }
}

impl Samples {
    /// How many samples are kept.
    pub const CAPACITY: usize = 300;

    /// How often the runtime takes one, in milliseconds.
    pub const INTERVAL_MS: u64 = 1000;

    /// Keep `sample`, dropping the oldest when full.
    pub fn push(&self, sample: Sample) {
        self.ring.push(sample);
    }

    /// Every sample kept, oldest first.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.ring.oldest_first()
    }
}
