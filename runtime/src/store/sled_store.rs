//! The sled backend: one database per runtime (its data directory), one
//! tree per view, and a `meta` tree with each view's module hash, its shard
//! count and the schema version.
//!
//! A [`ViewBatch`] becomes one `sled::Batch` on the view's tree, which sled
//! applies atomically; [`SledStore::flush`] is one fsync for every view.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::IndexConfig;
use crate::shard::{ShardId, Shards};

use super::keys::{self, CHECKPOINT_PREFIX};
use super::{
    DeadLetter, HeldSummary, Identity, Logged, Origin, Prepared, ShardPositions, Store, StoreError,
    StoredRow, ViewBatch, ViewStore,
};

/// The layout version written in the meta tree.
const SCHEMA_VERSION: &[u8] = b"1";

fn backend(operation: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |err| StoreError::Backend {
        operation,
        reason: err.to_string(),
    }
}

/// One sled database holding every view of a runtime.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    path: PathBuf,
    /// Each open view's row count, shared by every handle of the view.
    row_counts: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl SledStore {
    /// Open (or create) the store in `dir`. A directory another process
    /// holds is refused with [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|err| match &err {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: dir.to_owned(),
                    }
                }
                _ => StoreError::Backend {
                    operation: "open",
                    reason: format!("{}: {err}", dir.display()),
                },
            })?;
        let meta = db.open_tree("meta").map_err(backend("open meta"))?;
        match meta.get("schema").map_err(backend("read schema"))? {
            None => {
                meta.insert("schema", SCHEMA_VERSION)
                    .map_err(backend("write schema"))?;
            }
            Some(version) if version.as_ref() == SCHEMA_VERSION => {}
            Some(version) => {
                return Err(StoreError::Corrupt {
                    view: "(store)".to_owned(),
                    key: "schema".to_owned(),
                    reason: format!(
                        "schema version {} is not the supported {}",
                        String::from_utf8_lossy(&version),
                        String::from_utf8_lossy(SCHEMA_VERSION)
                    ),
                });
            }
        }
        Ok(Self {
            db,
            meta,
            path: dir.to_owned(),
            row_counts: Arc::default(),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This store's instance id: kept in the meta tree once made, and made
    /// from the machine's host name and the data directory's absolute path
    /// (16 hex digits of their SHA-256), so that it is the same on every
    /// start with this directory, the same again after the directory was
    /// lost and made anew at the same path (the group then gives the
    /// runtime its place back instead of waiting for its ghost), and
    /// differs between machines (their host names) and directories.
    ///
    /// # Errors
    /// When the meta tree cannot be read or written.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        const KEY: &[u8] = b"instance-id";
        if let Some(id) = self.meta.get(KEY).map_err(backend("read instance id"))? {
            return String::from_utf8(id.to_vec()).map_err(|_| StoreError::Corrupt {
                view: "(store)".to_owned(),
                key: "instance-id".to_owned(),
                reason: "not UTF-8".to_owned(),
            });
        }
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        hash.update(host.trim().as_bytes());
        hash.update([0]);
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        hash.update(path.to_string_lossy().as_bytes());
        let id = hex::encode(&hash.finalize()[..8]);
        self.meta
            .insert(KEY, id.as_bytes())
            .map_err(backend("write instance id"))?;
        self.flush()?;
        Ok(id)
    }

    fn module_key(view: &str) -> Vec<u8> {
        format!("view/{view}/module").into_bytes()
    }

    fn deployment_key(view: &str) -> Vec<u8> {
        format!("view/{view}/deployment").into_bytes()
    }

    fn shards_key(view: &str) -> Vec<u8> {
        format!("view/{view}/shards").into_bytes()
    }

    fn view_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(format!("view/{name}"))
            .map_err(backend("open view tree"))
    }

    /// The row count of view `name`: shared with its other handles, read
    /// from its tree, or counted once for a tree written before counts were
    /// kept.
    fn row_count(&self, name: &str, tree: &sled::Tree) -> Result<Arc<AtomicU64>, StoreError> {
        let mut counts = self
            .row_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get(name) {
            return Ok(Arc::clone(count));
        }
        let count = match tree
            .get(keys::ROW_COUNT_KEY)
            .map_err(backend("read row count"))?
        {
            Some(value) => keys::decode_count(&value).map_err(|reason| StoreError::Corrupt {
                view: name.to_owned(),
                key: String::from_utf8_lossy(keys::ROW_COUNT_KEY).into_owned(),
                reason,
            })?,
            None => {
                let counted = tree.scan_prefix(keys::ROW_PREFIX).count() as u64;
                tree.insert(keys::ROW_COUNT_KEY, &counted.to_be_bytes())
                    .map_err(backend("write row count"))?;
                counted
            }
        };
        let count = Arc::new(AtomicU64::new(count));
        counts.insert(name.to_owned(), Arc::clone(&count));
        Ok(count)
    }
}

impl Store for SledStore {
    type View = SledView;

    fn open_view(
        &self,
        name: &str,
        module_hash: &str,
        indexes: &[IndexConfig],
        shards: Option<Shards>,
    ) -> Result<SledView, StoreError> {
        let shards = match (self.view_shards(name)?, shards) {
            (Some(stored), Some(configured)) if stored != configured => {
                return Err(StoreError::ShardsChanged {
                    view: name.to_owned(),
                    stored: stored.count(),
                    configured: configured.count(),
                });
            }
            (Some(stored), _) => stored,
            (None, configured) => configured.unwrap_or(Shards::ONE),
        };
        self.meta
            .insert(Self::shards_key(name), &shards.count().to_be_bytes())
            .map_err(backend("write view shards"))?;
        let key = Self::module_key(name);
        match self.meta.get(&key).map_err(backend("read view module"))? {
            None => {
                self.meta
                    .insert(&key, module_hash.as_bytes())
                    .map_err(backend("write view module"))?;
            }
            Some(stored) if stored.as_ref() == module_hash.as_bytes() => {}
            Some(stored) => {
                return Err(StoreError::ModuleChanged {
                    view: name.to_owned(),
                    stored: String::from_utf8_lossy(&stored).into_owned(),
                    configured: module_hash.to_owned(),
                });
            }
        }
        let tree = self.view_tree(name)?;
        let row_count = self.row_count(name, &tree)?;
        Ok(SledView {
            name: Arc::from(name),
            module: Arc::from(module_hash),
            db: self.db.clone(),
            tree,
            indexes: Arc::from(indexes),
            row_count,
            shards,
        })
    }

    fn view_shards(&self, name: &str) -> Result<Option<Shards>, StoreError> {
        let key = Self::shards_key(name);
        if let Some(stored) = self.meta.get(&key).map_err(backend("read view shards"))? {
            let corrupt = |reason: &str| StoreError::Corrupt {
                view: name.to_owned(),
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: reason.to_owned(),
            };
            let bytes: [u8; 4] = stored
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("not a 4-byte count"))?;
            return Shards::new(u32::from_be_bytes(bytes))
                .map(Some)
                .ok_or_else(|| corrupt("a count out of bounds"));
        }
        // A view with checkpoints but no count was written before shards
        // existed: it is one shard.
        let tree = self.view_tree(name)?;
        let has_state = tree
            .scan_prefix(CHECKPOINT_PREFIX)
            .next()
            .transpose()
            .map_err(backend("scan checkpoints"))?
            .is_some();
        Ok(has_state.then_some(Shards::ONE))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(backend("flush"))
    }

    fn reset_view(&self, name: &str, module_hash: &str) -> Result<usize, StoreError> {
        let tree = self.view_tree(name)?;
        let rows = tree.scan_prefix(keys::ROW_PREFIX).count();
        tree.clear().map_err(backend("clear view"))?;
        if let Some(count) = self
            .row_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            count.store(0, Ordering::Relaxed);
        }
        self.meta
            .insert(Self::module_key(name), module_hash.as_bytes())
            .map_err(backend("write view module"))?;
        // The next start splits the rebuilt view as its config says.
        self.meta
            .remove(Self::shards_key(name))
            .map_err(backend("write view shards"))?;
        self.flush()?;
        Ok(rows)
    }

    fn deployment(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .meta
            .get(Self::deployment_key(name))
            .map_err(backend("read deployment"))?
            .map(|value| value.to_vec()))
    }

    fn set_deployment(&self, name: &str, record: Option<&[u8]>) -> Result<(), StoreError> {
        let key = Self::deployment_key(name);
        match record {
            Some(record) => self.meta.insert(key, record).map(drop),
            None => self.meta.remove(key).map(drop),
        }
        .map_err(backend("write deployment"))?;
        self.flush()
    }

    fn view_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .tree_names()
            .iter()
            .filter_map(|tree| {
                std::str::from_utf8(tree)
                    .ok()?
                    .strip_prefix("view/")
                    .map(str::to_owned)
            })
            .collect())
    }

    fn drop_view(&self, name: &str) -> Result<u64, StoreError> {
        let tree_name = format!("view/{name}");
        let mut bytes = 0u64;
        if self
            .db
            .tree_names()
            .iter()
            .any(|tree| tree.as_ref() == tree_name.as_bytes())
        {
            let tree = self.view_tree(name)?;
            for entry in tree.iter() {
                let (key, value) = entry.map_err(backend("scan view"))?;
                bytes += (key.len() + value.len()) as u64;
            }
            drop(tree);
            self.db
                .drop_tree(tree_name.as_bytes())
                .map_err(backend("drop view tree"))?;
        }
        for key in [Self::module_key(name), Self::shards_key(name)] {
            self.meta.remove(key).map_err(backend("drop view meta"))?;
        }
        self.row_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        self.flush()?;
        Ok(bytes)
    }
}

/// One view's tree.
#[derive(Debug, Clone)]
pub struct SledView {
    name: Arc<str>,
    module: Arc<str>,
    db: sled::Db,
    tree: sled::Tree,
    indexes: Arc<[IndexConfig]>,
    row_count: Arc<AtomicU64>,
    shards: Shards,
}

impl SledView {
    fn corrupt(&self, key: &[u8], reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            view: self.name.to_string(),
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.into(),
        }
    }

    /// Remove the identity records `keys` in one atomic batch, after
    /// `first` took the removals (the changelog logs them first); how many.
    fn remove_records(
        &self,
        keys: impl Iterator<Item = sled::Result<sled::IVec>>,
        first: &mut dyn FnMut(Vec<Logged>) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let mut writes = sled::Batch::default();
        let mut removed = Vec::new();
        for key in keys {
            let key = key.map_err(backend("read identity records"))?;
            removed.push(Logged {
                shard: keys::journal_shard(&key).unwrap_or(ShardId(0)),
                key: key.to_vec(),
                value: None,
            });
            writes.remove(key);
        }
        let count = removed.len();
        if count == 0 {
            return Ok(0);
        }
        first(removed)?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("forget identities"))?;
        Ok(count)
    }

    fn logged_shard(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Option<ShardId>, StoreError> {
        keys::logged_shard(key, value, self.shards).map_err(|reason| self.corrupt(key, reason))
    }

    /// Each shard's own checkpoint on every partition the view has one for,
    /// and the dead-letter positions, as the store holds them, with `batch`
    /// written over them when given.
    fn shard_positions(
        &self,
        batch: Option<&ViewBatch>,
    ) -> Result<BTreeMap<ShardId, ShardPositions>, StoreError> {
        let mut partitions: BTreeMap<(String, i32), (i64, BTreeMap<ShardId, i64>)> =
            BTreeMap::new();
        for (topic, partition, next) in self.checkpoints()? {
            let above = self.shard_checkpoints(&topic, partition)?;
            partitions.insert((topic, partition), (next, above));
        }
        let mut dead_letters = self.dead_letter_positions()?;
        if let Some(batch) = batch {
            for ((topic, partition), next) in batch.checkpoints() {
                // A batch that moves a partition writes every shard above
                // it, and drops the rest.
                let above = self.shards.all().filter_map(|shard| {
                    batch
                        .shard_checkpoints()
                        .get(&(topic.clone(), *partition, shard))
                        .copied()
                        .flatten()
                        .map(|at| (shard, at))
                });
                partitions.insert((topic.clone(), *partition), (*next, above.collect()));
            }
            for (place, next) in batch.dead_letter_positions() {
                let position = dead_letters.entry(place.clone()).or_insert(*next);
                *position = (*position).max(*next);
            }
        }
        Ok(self
            .shards
            .all()
            .map(|shard| {
                let checkpoints = partitions
                    .iter()
                    .map(|(place, (next, above))| {
                        (place.clone(), above.get(&shard).copied().unwrap_or(*next))
                    })
                    .collect();
                (
                    shard,
                    ShardPositions {
                        module: self.module.to_string(),
                        checkpoints,
                        dead_letters: dead_letters.clone(),
                    },
                )
            })
            .collect())
    }

    fn positions_records(positions: BTreeMap<ShardId, ShardPositions>) -> Vec<Logged> {
        positions
            .into_iter()
            .map(|(shard, own)| Logged {
                shard,
                key: keys::POSITIONS_KEY.to_vec(),
                value: Some(keys::encode_positions(&own)),
            })
            .collect()
    }

    fn decode(&self, key: &[u8], value: &[u8]) -> Result<StoredRow, StoreError> {
        keys::decode_row(value).map_err(|reason| self.corrupt(key, reason))
    }

    /// Rows whose keys come from `keys`, which yields row keys in order.
    fn rows_from(
        &self,
        entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        limit: usize,
    ) -> Result<Vec<(String, StoredRow)>, StoreError> {
        let mut rows = Vec::new();
        for entry in entries.take(limit) {
            let (key, value) = entry.map_err(backend("scan"))?;
            let subject =
                keys::subject_of_row_key(&key).map_err(|reason| self.corrupt(&key, reason))?;
            let row = self.decode(&key, &value)?;
            rows.push((subject, row));
        }
        Ok(rows)
    }
}

impl SledView {
    /// Add the writes of restored changelog `entries` to `writes`: rows
    /// with their index entries, held records and identity records as
    /// stored. Returns the row count after them.
    fn entries_into(
        &self,
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
        writes: &mut sled::Batch,
    ) -> Result<u64, StoreError> {
        let mut rows = self.row_count.load(Ordering::Relaxed);
        // Rows written earlier in this step, which the tree does not show
        // yet.
        let mut pending: HashMap<Vec<u8>, Option<StoredRow>> = HashMap::new();
        for (key, value) in entries {
            if key.starts_with(keys::ROW_PREFIX) {
                let subject =
                    keys::subject_of_row_key(key).map_err(|reason| self.corrupt(key, reason))?;
                let before = match pending.get(key) {
                    Some(row) => row.clone(),
                    None => self.row(&subject)?,
                };
                let after = value
                    .as_deref()
                    .map(|value| self.decode(key, value))
                    .transpose()?;
                match (&before, &after) {
                    (None, Some(_)) => rows += 1,
                    (Some(_), None) => rows = rows.saturating_sub(1),
                    _ => {}
                }
                let before_values = before
                    .as_ref()
                    .map(|row| keys::index_values(&row.json, &self.indexes))
                    .unwrap_or_default();
                let after_values = after
                    .as_ref()
                    .map(|row| keys::index_values(&row.json, &self.indexes))
                    .unwrap_or_default();
                for (index, value) in before_values
                    .iter()
                    .filter(|entry| !after_values.contains(entry))
                {
                    writes.remove(keys::index_key(index, value, &subject));
                }
                for (index, value) in after_values
                    .iter()
                    .filter(|entry| !before_values.contains(entry))
                {
                    writes.insert(keys::index_key(index, value, &subject), &[] as &[u8]);
                }
                pending.insert(key.clone(), after);
            } else if !(key.starts_with(keys::DEAD_LETTER_PREFIX)
                || key.starts_with(keys::QUARANTINE_PREFIX)
                || key.starts_with(keys::JOURNAL_PREFIX))
            {
                return Err(self.corrupt(key, "not an entry a changelog logs"));
            } else if let Some(value) = value {
                // A held record or identity record that decodes.
                self.logged_shard(key, Some(value))?;
                if key.starts_with(keys::JOURNAL_PREFIX) {
                    keys::decode_identities(value).map_err(|reason| self.corrupt(key, reason))?;
                }
            }
            match value {
                Some(value) => writes.insert(key.as_slice(), value.as_slice()),
                None => writes.remove(key.as_slice()),
            }
        }
        writes.insert(keys::ROW_COUNT_KEY, &rows.to_be_bytes()[..]);
        Ok(rows)
    }

    /// Add to `writes` the checkpoints, shard checkpoints and dead-letter
    /// positions that `positions` give, over what the store holds for the
    /// other shards, and where the changelog holds each shard.
    fn positions_into(
        &self,
        positions: &BTreeMap<ShardId, ShardPositions>,
        log_positions: &BTreeMap<ShardId, i64>,
        writes: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let mut owns = self.shard_positions(None)?;
        for (shard, restored) in positions {
            owns.insert(*shard, restored.clone());
        }
        let partitions: std::collections::BTreeSet<(String, i32)> = owns
            .values()
            .flat_map(|own| own.checkpoints.keys().cloned())
            .collect();
        // A partition no shard has a position on any more (a rebuild's
        // reset): its checkpoints go.
        for (topic, partition, _) in self.checkpoints()? {
            if !partitions.contains(&(topic.clone(), partition)) {
                writes.remove(keys::checkpoint_key(&topic, partition));
                for key in self
                    .tree
                    .scan_prefix(keys::shard_checkpoints_prefix(&topic, partition))
                    .keys()
                {
                    writes.remove(key.map_err(backend("scan shard checkpoints"))?);
                }
            }
        }
        for (topic, partition) in &partitions {
            // A shard with no position on the partition applied nothing of
            // it: it starts at the beginning.
            let at = |shard: ShardId| {
                owns.get(&shard)
                    .and_then(|own| own.checkpoints.get(&(topic.clone(), *partition)))
                    .copied()
                    .unwrap_or(0)
            };
            let lowest = self.shards.all().map(at).min().unwrap_or(0);
            writes.insert(
                keys::checkpoint_key(topic, *partition),
                &keys::encode_offset(lowest)[..],
            );
            for key in self
                .tree
                .scan_prefix(keys::shard_checkpoints_prefix(topic, *partition))
                .keys()
            {
                writes.remove(key.map_err(backend("scan shard checkpoints"))?);
            }
            for shard in self.shards.all() {
                if at(shard) > lowest {
                    writes.insert(
                        keys::shard_checkpoint_key(topic, *partition, shard),
                        &keys::encode_offset(at(shard))[..],
                    );
                }
            }
        }
        // The lowest of every shard's: a record one shard's release did not
        // reach is looked for again, never taken as written.
        let mut dead_letters: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for own in owns.values() {
            for (place, next) in &own.dead_letters {
                let lowest = dead_letters.entry(place.clone()).or_insert(*next);
                *lowest = (*lowest).min(*next);
            }
        }
        for ((topic, partition), next) in dead_letters {
            writes.insert(
                keys::dead_letter_position_key(&topic, partition),
                &keys::encode_offset(next)[..],
            );
        }
        for (shard, end) in log_positions {
            writes.insert(
                keys::log_position_key(*shard),
                &keys::encode_offset(*end)[..],
            );
        }
        Ok(())
    }
}

impl ViewStore for SledView {
    fn row(&self, subject: &str) -> Result<Option<StoredRow>, StoreError> {
        let key = keys::row_key(subject);
        self.tree
            .get(&key)
            .map_err(backend("read row"))?
            .map(|value| self.decode(&key, &value))
            .transpose()
    }

    fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        let key = keys::checkpoint_key(topic, partition);
        self.tree
            .get(&key)
            .map_err(backend("read checkpoint"))?
            .map(|value| keys::decode_offset(&value).map_err(|reason| self.corrupt(&key, reason)))
            .transpose()
    }

    fn checkpoints(&self) -> Result<Vec<(String, i32, i64)>, StoreError> {
        self.tree
            .scan_prefix(CHECKPOINT_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan checkpoints"))?;
                keys::parse_checkpoint(&key, &value).map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn row_count(&self) -> u64 {
        self.row_count.load(Ordering::Relaxed)
    }

    fn shards(&self) -> Shards {
        self.shards
    }

    fn module_hash(&self) -> &str {
        &self.module
    }

    fn shard_checkpoints(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<BTreeMap<ShardId, i64>, StoreError> {
        let prefix = keys::shard_checkpoints_prefix(topic, partition);
        self.tree
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan shard checkpoints"))?;
                keys::parse_shard_checkpoint(&prefix, &key, &value)
                    .map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn held_dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.tree
            .scan_prefix(keys::DEAD_LETTER_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan dead letters"))?;
                keys::decode_dead_letter(&key, &value).map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn quarantined(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<(String, u64, DeadLetter)>, StoreError> {
        let prefix =
            subject.map_or_else(|| keys::QUARANTINE_PREFIX.to_vec(), keys::quarantine_prefix);
        self.tree
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan quarantine"))?;
                keys::decode_quarantined(&key, &value).map_err(|reason| self.corrupt(&key, reason))
            })
            // A subject's prefix also matches no longer subject: its length
            // is in it.
            .collect()
    }

    fn held_dead_letter_origins(&self) -> Result<Vec<Origin>, StoreError> {
        self.tree
            .scan_prefix(keys::DEAD_LETTER_PREFIX)
            .keys()
            .map(|key| {
                let key = key.map_err(backend("scan dead letters"))?;
                keys::decode_dead_letter_key(&key).map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn held_dead_letter(&self, origin: &Origin) -> Result<Option<DeadLetter>, StoreError> {
        let key = keys::dead_letter_key(origin);
        self.tree
            .get(&key)
            .map_err(backend("read a dead letter"))?
            .map(|value| {
                keys::decode_dead_letter(&key, &value).map_err(|reason| self.corrupt(&key, reason))
            })
            .transpose()
    }

    fn quarantine_summaries(&self) -> Result<Vec<HeldSummary>, StoreError> {
        self.tree
            .scan_prefix(keys::QUARANTINE_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan quarantine"))?;
                keys::decode_quarantined_summary(&key, &value)
                    .map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn quarantined_from(
        &self,
        subject: &str,
        sequence: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        let prefix = keys::quarantine_prefix(subject);
        self.tree
            .range(keys::quarantine_key(subject, sequence)..)
            .take_while(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(key, _)| key.starts_with(&prefix))
            })
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan quarantine"))?;
                keys::decode_quarantined(&key, &value)
                    .map(|(_, sequence, record)| (sequence, record))
                    .map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn dead_letter_positions(&self) -> Result<BTreeMap<(String, i32), i64>, StoreError> {
        self.tree
            .scan_prefix(keys::DEAD_LETTER_POSITION_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan dead-letter positions"))?;
                keys::parse_dead_letter_position(&key, &value)
                    .map_err(|reason| self.corrupt(&key, reason))
            })
            .collect()
    }

    fn prepare(&self, batch: &ViewBatch, positions: bool) -> Result<Prepared, StoreError> {
        let shards = self.shards;
        let mut writes = Vec::new();
        let mut rows = self.row_count.load(Ordering::Relaxed);
        for (subject, change) in batch.changes() {
            match (&change.before, &change.after) {
                (None, Some(_)) => rows += 1,
                (Some(_), None) => rows = rows.saturating_sub(1),
                _ => {}
            }
            let before = change
                .before
                .as_ref()
                .map(|row| keys::index_values(&row.json, &self.indexes))
                .unwrap_or_default();
            let after = change
                .after
                .as_ref()
                .map(|row| keys::index_values(&row.json, &self.indexes))
                .unwrap_or_default();
            for (index, value) in before.iter().filter(|entry| !after.contains(entry)) {
                writes.push((keys::index_key(index, value, subject), None, None));
            }
            for (index, value) in after.iter().filter(|entry| !before.contains(entry)) {
                writes.push((
                    keys::index_key(index, value, subject),
                    Some(Vec::new()),
                    None,
                ));
            }
            writes.push((
                keys::row_key(subject),
                change.after.as_ref().map(keys::encode_row),
                Some(shards.of_subject(subject)),
            ));
        }
        for ((topic, partition), next_offset) in batch.checkpoints() {
            writes.push((
                keys::checkpoint_key(topic, *partition),
                Some(keys::encode_offset(*next_offset).to_vec()),
                None,
            ));
        }
        for ((topic, partition, shard), next_offset) in batch.shard_checkpoints() {
            writes.push((
                keys::shard_checkpoint_key(topic, *partition, *shard),
                next_offset.map(|next| keys::encode_offset(next).to_vec()),
                None,
            ));
        }
        let held = batch
            .dead_letters()
            .iter()
            .map(|(origin, letter)| {
                (
                    keys::dead_letter_key(origin),
                    letter.as_ref().map(keys::encode_dead_letter),
                )
            })
            .chain(
                batch
                    .quarantined()
                    .iter()
                    .map(|((subject, sequence), record)| {
                        (
                            keys::quarantine_key(subject, *sequence),
                            record.as_ref().map(keys::encode_quarantined),
                        )
                    }),
            );
        for (key, value) in held {
            // A release logs where the hold was logged: the held record
            // says which shard.
            let shard = match &value {
                Some(value) => self.logged_shard(&key, Some(value))?,
                None => match self.tree.get(&key).map_err(backend("read held record"))? {
                    Some(stored) => self.logged_shard(&key, Some(&stored))?,
                    None => None,
                },
            };
            writes.push((key, value, shard));
        }
        for ((topic, partition), next) in batch.dead_letter_positions() {
            writes.push((
                keys::dead_letter_position_key(topic, *partition),
                Some(keys::encode_offset(*next).to_vec()),
                None,
            ));
        }
        for (shard, identities) in batch.identities() {
            if let Some(newest) = identities.iter().map(|(_, time)| *time).max() {
                let sequence = self
                    .db
                    .generate_id()
                    .map_err(backend("number identities"))?;
                writes.push((
                    keys::journal_key(newest, sequence, *shard),
                    Some(keys::encode_identities(identities)),
                    Some(*shard),
                ));
            }
        }
        writes.push((
            keys::ROW_COUNT_KEY.to_vec(),
            Some(rows.to_be_bytes().to_vec()),
            None,
        ));
        let positions = if positions {
            Self::positions_records(self.shard_positions(Some(batch))?)
        } else {
            Vec::new()
        };
        Ok(Prepared {
            writes,
            positions,
            rows: Some(rows),
        })
    }

    fn commit_prepared(&self, prepared: Prepared) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        for (key, value, _) in prepared.writes {
            match value {
                Some(value) => writes.insert(key, value),
                None => writes.remove(key),
            }
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("commit batch"))?;
        if let Some(rows) = prepared.rows {
            self.row_count.store(rows, Ordering::Relaxed);
        }
        Ok(())
    }

    fn log_positions(&self) -> Result<BTreeMap<ShardId, i64>, StoreError> {
        self.tree
            .scan_prefix(keys::LOG_POSITION_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(backend("scan changelog positions"))?;
                let shard = keys::parse_log_position_key(&key)
                    .map_err(|reason| self.corrupt(&key, reason))?;
                let end =
                    keys::decode_offset(&value).map_err(|reason| self.corrupt(&key, reason))?;
                Ok((shard, end))
            })
            .collect()
    }

    fn snapshot(&self, found: &mut dyn FnMut(Logged)) -> Result<(), StoreError> {
        for entry in &self.tree {
            let (key, value) = entry.map_err(backend("read the view"))?;
            if let Some(shard) = self.logged_shard(&key, Some(&value))? {
                found(Logged {
                    shard,
                    key: key.to_vec(),
                    value: Some(value.to_vec()),
                });
            }
        }
        for record in self.positions()? {
            found(record);
        }
        Ok(())
    }

    fn set_snapshot_pending(&self, pending: bool) -> Result<(), StoreError> {
        if pending {
            self.tree
                .insert(keys::SNAPSHOT_PENDING_KEY, &[] as &[u8])
                .map_err(backend("mark a snapshot"))?;
        } else {
            self.tree
                .remove(keys::SNAPSHOT_PENDING_KEY)
                .map_err(backend("mark a snapshot"))?;
        }
        self.tree
            .flush()
            .map(drop)
            .map_err(backend("flush a snapshot mark"))
    }

    fn set_standby_followed_at(&self, ms: i64) -> Result<(), StoreError> {
        self.tree
            .insert(keys::STANDBY_FOLLOWED_KEY, &ms.to_be_bytes())
            .map(drop)
            .map_err(backend("mark a standby's follow"))
    }

    fn standby_followed_at(&self) -> Result<Option<i64>, StoreError> {
        let Some(value) = self
            .tree
            .get(keys::STANDBY_FOLLOWED_KEY)
            .map_err(backend("read a standby's follow"))?
        else {
            return Ok(None);
        };
        let bytes: [u8; 8] = value
            .as_ref()
            .try_into()
            .map_err(|_| self.corrupt(keys::STANDBY_FOLLOWED_KEY, "not 8 bytes".to_owned()))?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    fn snapshot_pending(&self) -> Result<bool, StoreError> {
        self.tree
            .contains_key(keys::SNAPSHOT_PENDING_KEY)
            .map_err(backend("read a snapshot mark"))
    }

    fn forget_log_positions(&self) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        let mut any = false;
        for key in self.tree.scan_prefix(keys::LOG_POSITION_PREFIX).keys() {
            writes.remove(key.map_err(backend("scan changelog positions"))?);
            any = true;
        }
        if any {
            self.tree
                .apply_batch(writes)
                .map_err(backend("forget changelog positions"))?;
        }
        Ok(())
    }

    fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .get(key)
            .map_err(backend("read an entry"))?
            .map(|value| value.to_vec()))
    }

    fn positions(&self) -> Result<Vec<Logged>, StoreError> {
        Ok(Self::positions_records(self.shard_positions(None)?))
    }

    fn restore_entries(&self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        let rows = self.entries_into(entries, &mut writes)?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("restore entries"))?;
        self.row_count.store(rows, Ordering::Relaxed);
        Ok(())
    }

    fn restore_positions(
        &self,
        positions: &BTreeMap<ShardId, ShardPositions>,
        log_positions: &BTreeMap<ShardId, i64>,
    ) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        self.positions_into(positions, log_positions, &mut writes)?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("restore positions"))
    }

    fn restore_whole(
        &self,
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
        positions: &BTreeMap<ShardId, ShardPositions>,
        log_positions: &BTreeMap<ShardId, i64>,
    ) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        let rows = self.entries_into(entries, &mut writes)?;
        self.positions_into(positions, log_positions, &mut writes)?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("restore a whole batch"))?;
        self.row_count.store(rows, Ordering::Relaxed);
        Ok(())
    }

    fn each_identity(
        &self,
        from: i64,
        found: &mut dyn FnMut(Identity, i64),
    ) -> Result<(), StoreError> {
        for entry in self.tree.range(keys::journal_bound(from)..) {
            let (key, value) = entry.map_err(backend("read identities"))?;
            if !key.starts_with(keys::JOURNAL_PREFIX) {
                break;
            }
            let entries =
                keys::decode_identities(&value).map_err(|reason| self.corrupt(&key, reason))?;
            for (identity, time) in entries {
                if time >= from {
                    found(identity, time);
                }
            }
        }
        Ok(())
    }

    fn clear_identities(
        &self,
        first: &mut dyn FnMut(Vec<Logged>) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        self.remove_records(self.tree.scan_prefix(keys::JOURNAL_PREFIX).keys(), first)
    }

    fn forget_identities(
        &self,
        before: i64,
        first: &mut dyn FnMut(Vec<Logged>) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        self.remove_records(
            self.tree
                .range(keys::JOURNAL_PREFIX.to_vec()..keys::journal_bound(before))
                .keys(),
            first,
        )
    }

    fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StoredRow)>, StoreError> {
        let start = keys::row_key(prefix);
        let entries = match after {
            Some(after) => {
                let mut from = keys::row_key(after);
                from.push(0);
                let from = if from > start { from } else { start.clone() };
                self.tree.range(from..)
            }
            None => self.tree.range(start.clone()..),
        };
        let prefixed = entries.take_while(move |entry| match entry {
            Ok((key, _)) => key.starts_with(&start),
            Err(_) => true,
        });
        self.rows_from(prefixed, limit)
    }

    fn lookup(
        &self,
        index: &str,
        value: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StoredRow)>, StoreError> {
        let prefix = keys::index_prefix(index, value);
        let entries = match after {
            Some(after) => {
                let mut from = keys::index_key(index, value, after);
                from.push(0);
                self.tree.range(from..)
            }
            None => self.tree.range(prefix.clone()..),
        };
        let mut rows = Vec::new();
        for entry in entries {
            let (key, _) = entry.map_err(backend("scan index"))?;
            let Some(subject) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let subject = std::str::from_utf8(subject)
                .map_err(|_| self.corrupt(&key, "the subject is not UTF-8"))?;
            // The entry and its row commit in one batch, so the row is there.
            let row = self
                .row(subject)?
                .ok_or_else(|| self.corrupt(&key, "an index entry without its row"))?;
            rows.push((subject.to_owned(), row));
            if rows.len() == limit {
                break;
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("projector-store-{name}-{}", std::process::id()));
            std::fs::remove_dir_all(&dir).ok();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// Open the store in `dir` again after the last handle was dropped:
    /// sled releases its lock when its flusher thread has ended, which may
    /// be a moment later on a busy machine.
    fn reopen(dir: &Path) -> SledStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SledStore::open(dir) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other.unwrap(),
            }
        }
    }

    fn row(json: &str, version: u64) -> StoredRow {
        StoredRow {
            json: json.to_owned(),
            version,
            last_event_id: format!("e{version}"),
        }
    }

    fn email_index() -> Vec<IndexConfig> {
        vec![IndexConfig {
            name: "by_email".into(),
            pointer: "/email".into(),
        }]
    }

    #[test]
    fn the_row_count_follows_creates_and_deletes_and_survives_reopen() {
        let dir = TempDir::new("count");
        {
            let store = SledStore::open(&dir.0).unwrap();
            let view = store.open_view("v", "h", &[], None).unwrap();
            let other_handle = store.open_view("v", "h", &[], None).unwrap();
            let mut batch = ViewBatch::new();
            for subject in ["a", "b", "c"] {
                batch.change(subject, None, Some(row("{}", 1)));
            }
            view.commit(&batch).unwrap();
            assert_eq!(other_handle.row_count(), 3);
            let mut batch = ViewBatch::new();
            batch.change("a", Some(row("{}", 1)), Some(row("{}", 2)));
            batch.change("b", Some(row("{}", 1)), None);
            view.commit(&batch).unwrap();
            assert_eq!(view.row_count(), 2);
            store.flush().unwrap();
        }
        let store = reopen(&dir.0);
        assert_eq!(store.open_view("v", "h", &[], None).unwrap().row_count(), 2);
        store.reset_view("v", "h2").unwrap();
        assert_eq!(
            store.open_view("v", "h2", &[], None).unwrap().row_count(),
            0
        );
    }

    #[test]
    fn identities_commit_with_their_rows_survive_reopen_and_are_forgotten_a_record_at_a_time() {
        let dir = TempDir::new("identities");
        let a = Identity::new("s1", "/src", "e1");
        let b = Identity::new("s2", "/src", "e1");
        let c = Identity::new("s2", "/src", "e2");
        // Each part keeps its length: no two splits of the same bytes meet.
        assert_ne!(
            Identity::new("s", "1/x", "y"),
            Identity::new("s", "1", "/xy")
        );
        assert_ne!(Identity::new("ab", "", "c"), Identity::new("a", "b", "c"));
        {
            let store = SledStore::open(&dir.0).unwrap();
            let view = store.open_view("v", "h", &[], None).unwrap();
            let mut batch = ViewBatch::new();
            batch.change("s1", None, Some(row("{}", 1)));
            batch.remember(a, 1_000, ShardId(0));
            batch.remember(c, -50, ShardId(0));
            view.commit(&batch).unwrap();
            let mut batch = ViewBatch::new();
            batch.remember(b, 5_000, ShardId(0));
            // `a` remembered again, later: it is in both records.
            batch.remember(a, 7_000, ShardId(0));
            view.commit(&batch).unwrap();
            store.flush().unwrap();
        }
        let store = reopen(&dir.0);
        let view = store.open_view("v", "h", &[], None).unwrap();
        assert_eq!(view.row("s1").unwrap().map(|r| r.version), Some(1));
        assert_eq!(
            view.identities(i64::MIN).unwrap(),
            vec![(a, 1_000), (c, -50), (b, 5_000), (a, 7_000)]
        );
        // From a time on: records older than it are not read, entries
        // older than it in a newer record are left out.
        assert_eq!(
            view.identities(1_001).unwrap(),
            vec![(b, 5_000), (a, 7_000)]
        );
        // A record goes once its newest identity is before the bound.
        assert_eq!(view.forget_identities(1_000, &mut |_| Ok(())).unwrap(), 0);
        assert_eq!(view.forget_identities(1_001, &mut |_| Ok(())).unwrap(), 1);
        assert_eq!(
            view.identities(i64::MIN).unwrap(),
            vec![(b, 5_000), (a, 7_000)]
        );
        assert_eq!(view.forget_identities(7_000, &mut |_| Ok(())).unwrap(), 0);
        // With dedup off, every record goes, whatever its time.
        let mut batch = ViewBatch::new();
        batch.remember(c, i64::MAX, ShardId(0));
        view.commit(&batch).unwrap();
        assert_eq!(view.clear_identities(&mut |_| Ok(())).unwrap(), 2);
        assert!(view.identities(i64::MIN).unwrap().is_empty());
        // A rebuild forgets them with the rows.
        let mut batch = ViewBatch::new();
        batch.remember(a, 1, ShardId(0));
        view.commit(&batch).unwrap();
        store.reset_view("v", "h").unwrap();
        let view = store.open_view("v", "h", &[], None).unwrap();
        assert!(view.identities(i64::MIN).unwrap().is_empty());
    }

    #[test]
    fn rows_and_checkpoints_commit_together_and_survive_reopen() {
        let dir = TempDir::new("reopen");
        {
            let store = SledStore::open(&dir.0).unwrap();
            let view = store.open_view("customers", "hash-a", &[], None).unwrap();
            let mut batch = ViewBatch::new();
            batch.change("c/1", None, Some(row(r#"{"n":1}"#, 1)));
            batch.change("c/1", None, Some(row(r#"{"n":2}"#, 2)));
            batch.checkpoint("customers", 0, 2);
            view.commit(&batch).unwrap();
            store.flush().unwrap();
        }
        let store = reopen(&dir.0);
        let view = store.open_view("customers", "hash-a", &[], None).unwrap();
        assert_eq!(view.row("c/1").unwrap(), Some(row(r#"{"n":2}"#, 2)));
        assert_eq!(view.checkpoint("customers", 0).unwrap(), Some(2));
        assert_eq!(view.checkpoint("customers", 1).unwrap(), None);
        assert_eq!(
            view.checkpoints().unwrap(),
            vec![("customers".to_owned(), 0, 2)]
        );
    }

    #[test]
    fn the_instance_id_is_kept_per_data_directory() {
        let (one, two) = (TempDir::new("instance-1"), TempDir::new("instance-2"));
        let first = SledStore::open(&one.0).unwrap().instance_id().unwrap();
        assert_eq!(first.len(), 16);
        // Same directory, another start: the same id.
        assert_eq!(reopen(&one.0).instance_id().unwrap(), first);
        // The directory lost and made anew at the same path: the same id,
        // so the group gives the runtime its place back.
        std::fs::remove_dir_all(&one.0).unwrap();
        assert_eq!(
            SledStore::open(&one.0).unwrap().instance_id().unwrap(),
            first
        );
        assert_ne!(
            SledStore::open(&two.0).unwrap().instance_id().unwrap(),
            first
        );
    }

    #[test]
    fn a_second_process_is_refused_with_a_lock_error() {
        let dir = TempDir::new("lock");
        let _first = SledStore::open(&dir.0).unwrap();
        // sled's lock is per process; a child process must be refused.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::sled_store::tests::child_opens_locked_store",
                "--nocapture",
            ])
            .env("PROJECTOR_TEST_LOCKED_DIR", &dir.0)
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&status.stdout);
        assert!(status.status.success(), "{output}");
        assert!(
            output.contains("is in use by another projector process"),
            "{output}"
        );
    }

    #[test]
    fn child_opens_locked_store() {
        if let Some(dir) = std::env::var_os("PROJECTOR_TEST_LOCKED_DIR") {
            let err = SledStore::open(Path::new(&dir)).unwrap_err();
            println!("{err}");
            assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
        }
    }

    #[test]
    fn another_module_is_refused_until_reset() {
        let dir = TempDir::new("module");
        let store = SledStore::open(&dir.0).unwrap();
        let view = store.open_view("v", "hash-a", &[], None).unwrap();
        let mut batch = ViewBatch::new();
        batch.change("s", None, Some(row("1", 1)));
        batch.checkpoint("t", 0, 5);
        view.commit(&batch).unwrap();

        let err = store.open_view("v", "hash-b", &[], None).unwrap_err();
        assert!(matches!(err, StoreError::ModuleChanged { .. }));
        assert!(
            err.to_string().contains("projector view rebuild v"),
            "{err}"
        );

        assert_eq!(store.reset_view("v", "hash-b").unwrap(), 1);
        let view = store.open_view("v", "hash-b", &[], None).unwrap();
        assert_eq!(view.row("s").unwrap(), None);
        assert_eq!(view.checkpoints().unwrap(), vec![]);
    }

    #[test]
    fn index_entries_follow_updates_and_deletes() {
        let dir = TempDir::new("index");
        let store = SledStore::open(&dir.0).unwrap();
        let view = store.open_view("v", "h", &email_index(), None).unwrap();
        let alice = row(r#"{"email":"a@x"}"#, 1);
        let mut batch = ViewBatch::new();
        batch.change("u1", None, Some(alice.clone()));
        batch.change("u2", None, Some(row(r#"{"email":"a@x"}"#, 1)));
        view.commit(&batch).unwrap();
        let found: Vec<String> = view
            .lookup("by_email", "a@x", None, 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(found, ["u1", "u2"]);

        // u1 changes e-mail; u2 is deleted.
        let mut batch = ViewBatch::new();
        batch.change("u1", Some(alice), Some(row(r#"{"email":"b@x"}"#, 2)));
        batch.change("u2", Some(row(r#"{"email":"a@x"}"#, 1)), None);
        view.commit(&batch).unwrap();
        assert!(
            view.lookup("by_email", "a@x", None, 10).unwrap().is_empty(),
            "stale entries"
        );
        let found = view.lookup("by_email", "b@x", None, 10).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "u1");
        assert_eq!(found[0].1.version, 2);
    }

    #[test]
    fn scan_pages_by_prefix_in_subject_order() {
        let dir = TempDir::new("scan");
        let store = SledStore::open(&dir.0).unwrap();
        let view = store.open_view("v", "h", &[], None).unwrap();
        let mut batch = ViewBatch::new();
        for subject in ["a/1", "a/2", "a/3", "b/1", "ä"] {
            batch.change(subject, None, Some(row("{}", 1)));
        }
        view.commit(&batch).unwrap();
        let page = |after: Option<&str>| -> Vec<String> {
            view.scan("a/", after, 2)
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        assert_eq!(page(None), ["a/1", "a/2"]);
        assert_eq!(page(Some("a/2")), ["a/3"]);
        assert_eq!(page(Some("a/3")), Vec::<String>::new());
        let all: Vec<String> = view
            .scan("", None, 100)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(all, ["a/1", "a/2", "a/3", "b/1", "ä"]);
    }

    #[test]
    fn corrupt_rows_are_reported_not_panicked_on() {
        let dir = TempDir::new("corrupt");
        let store = SledStore::open(&dir.0).unwrap();
        let view = store.open_view("v", "h", &[], None).unwrap();
        view.tree
            .insert(keys::row_key("bad"), &b"\x01\x00"[..])
            .unwrap();
        let err = view.row("bad").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("r/bad"), "{err}");
    }

    fn held(offset: i64, shard: u32) -> DeadLetter {
        DeadLetter {
            origin: Origin {
                topic: "t".to_owned(),
                partition: 0,
                offset,
            },
            shard: Some(ShardId(shard)),
            key: Some(b"k".to_vec()),
            value: Some(b"not an event".to_vec()),
            headers: vec![("h".to_owned(), Some(b"x".to_vec()))],
            timestamp_ms: Some(5),
            class: "invalid-event".to_owned(),
            message: "no ce_id".to_owned(),
        }
    }

    #[test]
    fn a_changelog_round_trip_brings_back_rows_held_records_identities_and_checkpoints() {
        let (one, two) = (TempDir::new("log-source"), TempDir::new("log-restored"));
        let shards = Shards::new(4);
        let source = SledStore::open(&one.0)
            .unwrap()
            .open_view("v", "h", &email_index(), shards)
            .unwrap();
        let mut batch = ViewBatch::new();
        batch.change("a", None, Some(row(r#"{"email":"a@x"}"#, 1)));
        batch.checkpoint("t", 0, 10);
        batch.shard_checkpoint("t", 0, ShardId(3), Some(12));
        batch.hold_dead_letter(held(3, 2));
        batch.quarantine("q", 0, held(4, 1));
        batch.remember(Identity::new("a", "s", "1"), 1_000, ShardId(3));
        batch.dead_letter_position("dlq", 0, 7);
        let prepared = source.prepare(&batch, true).unwrap();
        let logged: Vec<Logged> = prepared.logged().collect();
        source.commit_prepared(prepared).unwrap();
        // Each entry to its shard's partition; every shard's positions.
        let shard_of = |prefix: &[u8]| {
            logged
                .iter()
                .find(|entry| entry.key.starts_with(prefix))
                .map(|entry| entry.shard)
        };
        let shards = shards.unwrap();
        assert_eq!(shard_of(b"r/"), Some(shards.of_subject("a")));
        assert_eq!(shard_of(b"o/"), Some(ShardId(2)));
        assert_eq!(shard_of(b"q/"), Some(ShardId(1)));
        assert_eq!(shard_of(b"j/"), Some(ShardId(3)));
        assert!(shard_of(b"x/").is_none(), "index entries are not logged");
        let positions: BTreeMap<ShardId, ShardPositions> = logged
            .iter()
            .filter(|entry| entry.key == keys::POSITIONS_KEY)
            .map(|entry| {
                (
                    entry.shard,
                    keys::decode_positions(entry.value.as_deref().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(positions.len(), 4);
        assert_eq!(positions[&ShardId(3)].checkpoints[&("t".to_owned(), 0)], 12);
        assert_eq!(positions[&ShardId(0)].checkpoints[&("t".to_owned(), 0)], 10);

        let restored = SledStore::open(&two.0)
            .unwrap()
            .open_view("v", "h", &email_index(), Some(shards))
            .unwrap();
        let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = logged
            .iter()
            .filter(|entry| entry.key != keys::POSITIONS_KEY)
            .map(|entry| (entry.key.clone(), entry.value.clone()))
            .collect();
        restored.restore_entries(&entries).unwrap();
        restored
            .restore_positions(&positions, &BTreeMap::new())
            .unwrap();
        assert_eq!(restored.row("a").unwrap(), source.row("a").unwrap());
        assert_eq!(restored.row_count(), 1);
        assert_eq!(
            restored.lookup("by_email", "a@x", None, 10).unwrap().len(),
            1,
            "index entries derived again"
        );
        assert_eq!(
            restored.held_dead_letters().unwrap(),
            source.held_dead_letters().unwrap()
        );
        assert_eq!(
            restored.quarantined(None).unwrap(),
            source.quarantined(None).unwrap()
        );
        assert_eq!(
            restored.identities(0).unwrap(),
            source.identities(0).unwrap()
        );
        assert_eq!(
            restored.checkpoints().unwrap(),
            source.checkpoints().unwrap()
        );
        assert_eq!(
            restored.shard_checkpoints("t", 0).unwrap(),
            source.shard_checkpoints("t", 0).unwrap()
        );
        assert_eq!(
            restored.dead_letter_positions().unwrap(),
            source.dead_letter_positions().unwrap()
        );

        // A release logs a tombstone where the hold was logged.
        let mut release = ViewBatch::new();
        release.release_dead_letter(held(3, 2).origin);
        let logged: Vec<Logged> = source.prepare(&release, false).unwrap().logged().collect();
        assert_eq!(logged.len(), 1);
        assert_eq!(
            (logged[0].shard, logged[0].value.is_none()),
            (ShardId(2), true)
        );
    }
}
