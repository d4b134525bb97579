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
//! - A view remembers how many shards it is split into, and refuses another
//!   count until it is rebuilt. A partition's checkpoint is the lowest over
//!   its shards (where the partition resumes); a shard that got further
//!   keeps its own, committed in the same batch.
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
use crate::shard::{ShardId, Shards};

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

/// Where a record came from: its topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// A failed record held for its dead-letter topic: the record as it was
/// consumed and why it failed. Held in the view's store from the batch that
/// moves the checkpoint past it until the dead-letter topic acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where the record came from.
    pub origin: Origin,
    /// The shard of the view it belongs to, which logs it in its changelog
    /// partition; `None` for one held before records kept it (its key's
    /// or partition's shard then, as for a record with no subject).
    pub shard: Option<ShardId>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// Its headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Its timestamp (milliseconds since the epoch), if it had one.
    pub timestamp_ms: Option<i64>,
    /// The failure's class, such as `invalid-event` or `guest-trap`.
    pub class: String,
    /// The failure's message.
    pub message: String,
}

/// A record held in quarantine, without its body: what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSummary {
    /// The subject it is held under (empty: the record had none).
    pub subject: String,
    /// Its place among the view's held records.
    pub sequence: u64,
    /// Where the record came from.
    pub origin: Origin,
    /// Why it is held: its failure's class, or `held-behind`.
    pub class: String,
    /// What failed.
    pub message: String,
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
    /// Per `(topic, partition, shard)`, the shard's checkpoint when it is
    /// above the partition's (`Some`), or `None` to drop a stored one: the
    /// shard is back at the partition's checkpoint.
    shard_checkpoints: BTreeMap<(String, i32, ShardId), Option<i64>>,
    /// Dead letters to hold (`Some`) or to release once delivered (`None`).
    dead_letters: BTreeMap<Origin, Option<DeadLetter>>,
    /// Per dead-letter `(topic, partition)`, the offset below which every
    /// record this view produced there is released.
    dead_letter_positions: BTreeMap<(String, i32), i64>,
    /// Quarantined records to hold (`Some`) or to release once applied
    /// (`None`), by subject and sequence.
    quarantine: BTreeMap<(String, u64), Option<DeadLetter>>,
    /// Event identities applied, with the time each counts from, per shard.
    identities: BTreeMap<ShardId, Vec<(Identity, i64)>>,
}

/// One entry of a view's changelog: a key of the view's store, its value
/// (`None`: removed), and the shard whose partition logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The shard.
    pub shard: ShardId,
    /// The key, as the store keeps it.
    pub key: Vec<u8>,
    /// The value, as the store keeps it; `None` removes the key.
    pub value: Option<Vec<u8>>,
}

/// One write of a commit: a key, its value (`None`: removed) and, when the
/// changelog logs it, the shard whose partition does.
type Write = (Vec<u8>, Option<Vec<u8>>, Option<ShardId>);

/// A batch made into the writes of one atomic store commit: what
/// [`ViewStore::prepare`] returns and [`ViewStore::commit_prepared`]
/// writes. Between the two, its changelog entries can be logged, and where
/// the changelog holds them recorded ([`Prepared::logged_to`]), so that the
/// commit and its changelog position are one atomic step.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Every write, in order; `Some(shard)` where the changelog logs it.
    writes: Vec<Write>,
    /// The positions records, one per shard, when asked for.
    positions: Vec<Logged>,
    /// The view's row count after the batch, when it is one.
    rows: Option<u64>,
}

impl Prepared {
    /// What the changelog logs of this batch: each logged write, then each
    /// shard's positions record (when prepared with positions), in the
    /// order a restore must apply them.
    pub fn logged(&self) -> impl Iterator<Item = Logged> + '_ {
        self.writes
            .iter()
            .filter_map(|(key, value, shard)| {
                shard.map(|shard| Logged {
                    shard,
                    key: key.clone(),
                    value: value.clone(),
                })
            })
            .chain(self.positions.iter().cloned())
    }

    /// Record that the changelog holds this batch's entries of each shard
    /// below the offset given (the next one after its last), in the same
    /// commit.
    pub fn logged_to(&mut self, ends: &BTreeMap<ShardId, i64>) {
        for (shard, end) in ends {
            self.writes.push((
                keys::log_position_key(*shard),
                Some(keys::encode_offset(*end).to_vec()),
                None,
            ));
        }
    }
}

pub use keys::{POSITIONS_KEY, ShardPositions, decode_positions, encode_positions};

/// An event's identity for one subject (its CloudEvents `source` and
/// `id`): the first 16 bytes of the SHA-256 of the three, each with its
/// length. What deduplication remembers: fixed-size, and a collision, by
/// chance or crafted by a producer, is out of reach (2^64 work at the
/// least).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity([u8; 16]);

impl Identity {
    /// The identity of the event `(source, id)` applied to `subject`.
    pub fn new(subject: &str, source: &str, id: &str) -> Self {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for part in [subject, source, id] {
            hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut identity = [0; 16];
        identity.copy_from_slice(&digest[..16]);
        Self(identity)
    }

    /// Which of `stripes` (at least 1) holds it: its first bytes, evenly
    /// spread since they are a hash's.
    pub fn stripe(&self, stripes: usize) -> usize {
        let head = u64::from_be_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5], self.0[6], self.0[7],
        ]);
        usize::try_from(head % u64::try_from(stripes.max(1)).unwrap_or(1)).unwrap_or(0)
    }
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

    /// Record that `(topic, partition)` is applied up to `next_offset`
    /// (exclusive).
    pub fn checkpoint(&mut self, topic: &str, partition: i32, next_offset: i64) {
        self.checkpoints
            .insert((topic.to_owned(), partition), next_offset);
    }

    /// Record that `shard` of the view is applied up to `next_offset` on
    /// `(topic, partition)`, above the partition's checkpoint; `None` drops
    /// a stored value (the shard is at the partition's checkpoint).
    pub fn shard_checkpoint(
        &mut self,
        topic: &str,
        partition: i32,
        shard: ShardId,
        next_offset: Option<i64>,
    ) {
        self.shard_checkpoints
            .insert((topic.to_owned(), partition, shard), next_offset);
    }

    /// The shard checkpoints this batch sets or drops.
    pub fn shard_checkpoints(&self) -> &BTreeMap<(String, i32, ShardId), Option<i64>> {
        &self.shard_checkpoints
    }

    /// The checkpoint this batch sets for `(topic, partition)`, if any.
    pub fn pending_checkpoint(&self, topic: &str, partition: i32) -> Option<i64> {
        self.checkpoints
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// Hold `letter` until its dead-letter topic acknowledges it.
    pub fn hold_dead_letter(&mut self, letter: DeadLetter) {
        self.dead_letters
            .insert(letter.origin.clone(), Some(letter));
    }

    /// Release the dead letter of `origin`: its topic holds it.
    pub fn release_dead_letter(&mut self, origin: Origin) {
        self.dead_letters.insert(origin, None);
    }

    /// Record that every record this view produced to `(topic, partition)`
    /// of a dead-letter topic below `next` is released.
    pub fn dead_letter_position(&mut self, topic: &str, partition: i32, next: i64) {
        let position = self
            .dead_letter_positions
            .entry((topic.to_owned(), partition))
            .or_insert(next);
        *position = (*position).max(next);
    }

    /// The dead letters this batch holds (`Some`) or releases (`None`).
    pub fn dead_letters(&self) -> &BTreeMap<Origin, Option<DeadLetter>> {
        &self.dead_letters
    }

    /// The dead-letter positions this batch moves.
    pub fn dead_letter_positions(&self) -> &BTreeMap<(String, i32), i64> {
        &self.dead_letter_positions
    }

    /// Hold `record` in quarantine under `subject` at `sequence` (its place
    /// among the subject's held records).
    pub fn quarantine(&mut self, subject: &str, sequence: u64, record: DeadLetter) {
        self.quarantine
            .insert((subject.to_owned(), sequence), Some(record));
    }

    /// Release `subject`'s quarantined record at `sequence`: it was applied.
    pub fn release_quarantined(&mut self, subject: &str, sequence: u64) {
        self.quarantine.insert((subject.to_owned(), sequence), None);
    }

    /// The quarantined records this batch holds (`Some`) or releases
    /// (`None`).
    pub fn quarantined(&self) -> &BTreeMap<(String, u64), Option<DeadLetter>> {
        &self.quarantine
    }

    /// Remember that the event of `identity` was applied to a subject of
    /// `shard`, counting its window from `time` (milliseconds since the
    /// epoch).
    pub fn remember(&mut self, identity: Identity, time: i64, shard: ShardId) {
        self.identities
            .entry(shard)
            .or_default()
            .push((identity, time));
    }

    /// The identities this batch remembers, per shard in the order
    /// remembered.
    pub fn identities(&self) -> &BTreeMap<ShardId, Vec<(Identity, i64)>> {
        &self.identities
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
            && self.changes.is_empty()
            && self.checkpoints.is_empty()
            && self.shard_checkpoints.is_empty()
            && self.dead_letters.is_empty()
            && self.dead_letter_positions.is_empty()
            && self.quarantine.is_empty()
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
    /// The view's rows and checkpoints are split into another number of
    /// shards than the config asks for.
    #[error(
        "view {view} is split into {stored} shards in the store, but the config says shards = \
         {configured}; a view's rows and checkpoints are kept per shard, so the count cannot \
         change in place. Rebuild it with `projector view rebuild {view}` (resets its rows and \
         checkpoints and replays from the earliest offset with the new count), or set shards \
         back to {stored}"
    )]
    ShardsChanged {
        /// The view.
        view: String,
        /// The count in the store.
        stored: u32,
        /// The count now configured.
        configured: u32,
    },
}

/// A store of views.
pub trait Store: Send + Sync + 'static {
    /// One view's handle.
    type View: ViewStore;

    /// Open (or create) the view `name`, built by the module with
    /// `module_hash`, with `indexes`, split into `shards` (a view that has
    /// none yet gets it, or one shard when `None`; a view that has a count
    /// keeps it, and refuses another with [`StoreError::ShardsChanged`]).
    fn open_view(
        &self,
        name: &str,
        module_hash: &str,
        indexes: &[IndexConfig],
        shards: Option<Shards>,
    ) -> Result<Self::View, StoreError>;

    /// The shard count of view `name`: `None` for a view that holds no
    /// state yet (never opened, or reset), one shard for a view written
    /// before shards existed.
    fn view_shards(&self, name: &str) -> Result<Option<Shards>, StoreError>;

    /// Make every committed batch durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Remove every row, index entry and checkpoint of view `name`, and
    /// record `module_hash` as its module: the start of a rebuild, which
    /// replays its topics from the earliest offset. Returns the number of
    /// rows removed.
    fn reset_view(&self, name: &str, module_hash: &str) -> Result<usize, StoreError>;

    /// The deployment record of view `name` (what `deploy` keeps: which
    /// version is live, the previous one, a shadow), as written.
    fn deployment(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Write the deployment record of view `name` (`None` removes it) and
    /// flush: one atomic, durable step (a swap is this write).
    fn set_deployment(&self, name: &str, record: Option<&[u8]>) -> Result<(), StoreError>;

    /// The names of every view the store holds a tree of.
    fn view_names(&self) -> Result<Vec<String>, StoreError>;

    /// Remove view `name` entirely: its tree (rows, index entries,
    /// checkpoints, held records) and what the meta tree keeps of it, then
    /// flush. Returns the bytes of keys and values removed.
    fn drop_view(&self, name: &str) -> Result<u64, StoreError>;
}

/// One view's rows, index entries and checkpoints.
pub trait ViewStore: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The row of `subject`.
    fn row(&self, subject: &str) -> Result<Option<StoredRow>, StoreError>;

    /// The next offset to apply on `(topic, partition)`, if any was applied.
    fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError>;

    /// Every checkpoint: `(topic, partition, next offset)`.
    fn checkpoints(&self) -> Result<Vec<(String, i32, i64)>, StoreError>;

    /// How many shards the view is split into.
    fn shards(&self) -> Shards;

    /// The hash of the module the view is built by.
    fn module_hash(&self) -> &str;

    /// The shards of the view whose checkpoint on `(topic, partition)` is
    /// above the partition's ([`ViewStore::checkpoint`], the lowest over
    /// every shard), with theirs. A shard not listed is at the partition's.
    fn shard_checkpoints(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<BTreeMap<ShardId, i64>, StoreError>;

    /// How many rows the view holds, as committed.
    fn row_count(&self) -> u64;

    /// The dead letters held, not yet acknowledged by their topic, in
    /// origin order.
    fn held_dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// The origins of the dead letters held, in order, without reading the
    /// records.
    fn held_dead_letter_origins(&self) -> Result<Vec<Origin>, StoreError>;

    /// The dead letter held for `origin`, if it is held.
    fn held_dead_letter(&self, origin: &Origin) -> Result<Option<DeadLetter>, StoreError>;

    /// Per dead-letter `(topic, partition)`, the offset below which every
    /// record this view produced there is released.
    fn dead_letter_positions(&self) -> Result<BTreeMap<(String, i32), i64>, StoreError>;

    /// The records held in quarantine, by subject then in the order they
    /// were held: `(subject, sequence, record)`. With `subject`, that
    /// subject's only.
    fn quarantined(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<(String, u64, DeadLetter)>, StoreError>;

    /// Every record held in quarantine, by subject then in the order they
    /// were held, without their bodies.
    fn quarantine_summaries(&self) -> Result<Vec<HeldSummary>, StoreError>;

    /// `subject`'s records held in quarantine from `sequence` on, in
    /// order, at most `limit`: `(sequence, record)`.
    fn quarantined_from(
        &self,
        subject: &str,
        sequence: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError>;

    /// Write `batch` atomically (durable after [`Store::flush`]).
    fn commit(&self, batch: &ViewBatch) -> Result<(), StoreError> {
        self.commit_prepared(self.prepare(batch, false)?)
    }

    /// Make `batch` into the writes of one commit, each with the shard
    /// whose changelog partition logs it; with `positions`, also every
    /// shard's positions record as the batch leaves them.
    fn prepare(&self, batch: &ViewBatch, positions: bool) -> Result<Prepared, StoreError>;

    /// Write what [`ViewStore::prepare`] made, atomically.
    fn commit_prepared(&self, prepared: Prepared) -> Result<(), StoreError>;

    /// Per shard, how far the changelog holds this store's changes (the
    /// offset after the last acknowledged record); shards never logged are
    /// absent.
    fn log_positions(&self) -> Result<BTreeMap<ShardId, i64>, StoreError>;

    /// Every entry the changelog logs, as the store holds it now, then each
    /// shard's positions record: what a first changelog gets, so that it
    /// holds the whole view.
    fn snapshot(&self, found: &mut dyn FnMut(Logged)) -> Result<(), StoreError>;

    /// Mark (or unmark) a snapshot to the changelog as under way, durably:
    /// a start that finds the mark takes the snapshot again.
    fn set_snapshot_pending(&self, pending: bool) -> Result<(), StoreError>;

    /// True when a snapshot to the changelog was begun and not finished.
    fn snapshot_pending(&self) -> Result<bool, StoreError>;

    /// Record when this standby copy last followed its changelog
    /// (milliseconds since the epoch). Not flushed: a crash keeps an older
    /// time, which only makes a copy afresh likelier.
    fn set_standby_followed_at(&self, ms: i64) -> Result<(), StoreError>;

    /// When this standby copy last followed its changelog, if it ever did.
    fn standby_followed_at(&self) -> Result<Option<i64>, StoreError>;

    /// Forget how far the changelog holds this store's changes: what a
    /// start with the changelog off does, so that turning it on again logs
    /// the whole view first.
    fn forget_log_positions(&self) -> Result<(), StoreError>;

    /// The value the store holds under `key`, as stored.
    fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Each shard's positions record as the store holds them now.
    fn positions(&self) -> Result<Vec<Logged>, StoreError>;

    /// Write changelog entries (not positions records) as they are, in
    /// order, in one atomic step: rows with their index entries and the
    /// row count, held records and identity records as stored.
    fn restore_entries(&self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError>;

    /// [`ViewStore::restore_entries`] and [`ViewStore::restore_positions`]
    /// in one atomic step: what a standby applies of a whole batch, so a
    /// reader never sees part of it.
    fn restore_whole(
        &self,
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
        positions: &BTreeMap<ShardId, ShardPositions>,
        log_positions: &BTreeMap<ShardId, i64>,
    ) -> Result<(), StoreError>;

    /// Write the checkpoints, shard checkpoints and dead-letter positions
    /// that `positions` (per shard restored) give, over what the store
    /// holds for the other shards, and where the changelog holds each
    /// shard (`log_positions`), in one atomic step.
    fn restore_positions(
        &self,
        positions: &BTreeMap<ShardId, ShardPositions>,
        log_positions: &BTreeMap<ShardId, i64>,
    ) -> Result<(), StoreError>;

    /// Every identity remembered at a time from `from` on, with its time,
    /// record by record in the order of their newest time (an identity
    /// remembered again appears in each record that holds it).
    fn identities(&self, from: i64) -> Result<Vec<(Identity, i64)>, StoreError> {
        let mut found = Vec::new();
        self.each_identity(from, &mut |identity, time| found.push((identity, time)))?;
        Ok(found)
    }

    /// [`ViewStore::identities`], one at a time to `found`, without
    /// holding them all: what a view with `dedup` loads at start.
    fn each_identity(
        &self,
        from: i64,
        found: &mut dyn FnMut(Identity, i64),
    ) -> Result<(), StoreError>;

    /// Forget every identity record: what a view with `dedup` off does with
    /// what a run with it on left. `first` gets the removals, as the
    /// changelog logs them, before they are made: an error from it leaves
    /// the store as it was. Returns how many records were removed.
    fn clear_identities(
        &self,
        first: &mut dyn FnMut(Vec<Logged>) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError>;

    /// Forget the identity records whose newest time is before `before`
    /// (a batch's identities are forgotten together, once the newest is
    /// past the window), in one atomic step, after `first` took the
    /// removals ([`ViewStore::clear_identities`]). Returns how many.
    fn forget_identities(
        &self,
        before: i64,
        first: &mut dyn FnMut(Vec<Logged>) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError>;

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
