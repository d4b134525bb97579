//! The view store: rows, secondary-index entries and per-partition
//! checkpoints, behind a small trait so that a second backend can be added
//! without touching the pipeline.
//!
//! # What it promises
//!
//! - [`ViewStore::commit`] writes a [`ViewBatch`] atomically: every row
//!   change, its index entries and the checkpoints move together or not at
//!   all. A crash never leaves a row applied with its checkpoint behind, or
//!   the other way round (G2).
//! - A committed batch is durable once [`Store::flush`] returns; the
//!   pipeline commits offsets to Kafka only after that (G4).
//! - Index entries follow their rows: a change removes the entries of the
//!   row it replaces, a delete removes them all, so a lookup never returns a
//!   stale match.
//! - A view remembers the module hash that built it. Opening it with another
//!   module is refused until the operator rebuilds the view.
//!
//! # Layout
//!
//! - this file: the traits, [`StoredRow`], [`ViewBatch`], [`StoreError`];
//! - `keys`: the key and value encodings, shared by every backend;
//! - `sled_store`: the sled backend, one database per runtime and one tree
//!   per view.

mod keys;
mod sled_store;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use sled_store::{SledStore, SledView};

use crate::config::IndexConfig;

/// A row as stored: the JSON text and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// The row's JSON text.
    pub json: String,
    /// How many times the row was set since it was created (1 for a new
    /// row); its `ETag`.
    pub version: u64,
    /// The id of the last event that set it.
    pub last_event_id: String,
}

/// The final change of one subject's row within a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The row as stored before the batch (for removing its index entries).
    pub before: Option<StoredRow>,
    /// The row after the batch; `None` deletes it.
    pub after: Option<StoredRow>,
}

/// Row changes and checkpoints that commit together.
///
/// Several changes of one subject collapse into one: the first `before`
/// and the last `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewBatch {
    changes: BTreeMap<String, RowChange>,
    checkpoints: BTreeMap<(String, i32), i64>,
}

impl ViewBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `subject`'s row goes from `before` (as stored) to `after`.
    pub fn change(&mut self, subject: &str, before: Option<StoredRow>, after: Option<StoredRow>) {
        match self.changes.get_mut(subject) {
            Some(change) => change.after = after,
            None => {
                self.changes
                    .insert(subject.to_owned(), RowChange { before, after });
            }
        }
    }

    /// The row of `subject` as this batch leaves it, if the batch touches it:
    /// `Some(None)` when the batch deletes it.
    pub fn pending(&self, subject: &str) -> Option<Option<&StoredRow>> {
        self.changes
            .get(subject)
            .map(|change| change.after.as_ref())
    }

    /// Record that `(topic, partition)` is applied up to `next_offset`
    /// (exclusive).
    pub fn checkpoint(&mut self, topic: &str, partition: i32, next_offset: i64) {
        self.checkpoints
            .insert((topic.to_owned(), partition), next_offset);
    }

    /// The checkpoint this batch sets for `(topic, partition)`, if any.
    pub fn pending_checkpoint(&self, topic: &str, partition: i32) -> Option<i64> {
        self.checkpoints
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.checkpoints.is_empty()
    }

    /// The row changes, by subject.
    pub fn changes(&self) -> &BTreeMap<String, RowChange> {
        &self.changes
    }

    /// The checkpoints, by `(topic, partition)`.
    pub fn checkpoints(&self) -> &BTreeMap<(String, i32), i64> {
        &self.checkpoints
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error(
        "the data directory {path} is in use by another projector process \
         (one runtime per data directory)"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The backend failed.
    #[error("store {operation} failed: {reason}")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// Stored bytes do not decode.
    #[error("view {view}: the stored entry {key:?} is corrupt: {reason}")]
    Corrupt {
        /// The view.
        view: String,
        /// The key, lossily as text.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The view was built by another module.
    #[error(
        "view {view} was built by module {stored}, but the config now names module {configured}; \
         its rows may not match the new projection. Rebuild it with \
         `projector view rebuild {view}` (resets its rows and checkpoints and replays from the \
         earliest offset), or point the view back at the old module"
    )]
    ModuleChanged {
        /// The view.
        view: String,
        /// The hash the view was built with.
        stored: String,
        /// The hash of the module now configured.
        configured: String,
    },
}

/// A store of views.
pub trait Store: Send + Sync + 'static {
    /// One view's handle.
    type View: ViewStore;

    /// Open (or create) the view `name`, built by the module with
    /// `module_hash`, with `indexes`.
    fn open_view(
        &self,
        name: &str,
        module_hash: &str,
        indexes: &[IndexConfig],
    ) -> Result<Self::View, StoreError>;

    /// Make every committed batch durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Remove every row, index entry and checkpoint of view `name`, and
    /// record `module_hash` as its module: the start of a rebuild, which
    /// replays its topics from the earliest offset. Returns the number of
    /// rows removed.
    fn reset_view(&self, name: &str, module_hash: &str) -> Result<usize, StoreError>;
}

/// One view's rows, index entries and checkpoints.
pub trait ViewStore: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The row of `subject`.
    fn row(&self, subject: &str) -> Result<Option<StoredRow>, StoreError>;

    /// The next offset to apply on `(topic, partition)`, if any was applied.
    fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError>;

    /// Every checkpoint: `(topic, partition, next offset)`.
    fn checkpoints(&self) -> Result<Vec<(String, i32, i64)>, StoreError>;

    /// How many rows the view holds, as committed.
    fn row_count(&self) -> u64;

    /// Write `batch` atomically (durable after [`Store::flush`]).
    fn commit(&self, batch: &ViewBatch) -> Result<(), StoreError>;

    /// Rows whose subject starts with `prefix`, in subject order, after
    /// `after` (exclusive), at most `limit`.
    fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StoredRow)>, StoreError>;

    /// Rows whose `index` value equals `value`, in subject order, after
    /// `after` (exclusive), at most `limit`.
    fn lookup(
        &self,
        index: &str,
        value: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StoredRow)>, StoreError>;
}
