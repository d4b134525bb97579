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
    DeadLetter, HeldSummary, Identity, Origin, Store, StoreError, StoredRow, ViewBatch, ViewStore,
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

    /// This store's instance id: made once, when first asked for, and kept
    /// in the meta tree, so it is the same on every start with this data
    /// directory and differs between directories (also between machines
    /// whose directories have the same path). 16 hex digits.
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
        hash.update(self.path.to_string_lossy().as_bytes());
        hash.update(std::process::id().to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        hash.update(now.as_nanos().to_le_bytes());
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            hash.update(host.trim().as_bytes());
        }
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
}

/// One view's tree.
#[derive(Debug, Clone)]
pub struct SledView {
    name: Arc<str>,
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

    /// Remove the identity records of `keys` in one atomic batch; how many.
    fn remove_records(
        &self,
        keys: impl Iterator<Item = sled::Result<sled::IVec>>,
    ) -> Result<usize, StoreError> {
        let mut writes = sled::Batch::default();
        let mut removed = 0;
        for key in keys {
            writes.remove(key.map_err(backend("read identity records"))?);
            removed += 1;
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("forget identities"))?;
        Ok(removed)
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

    fn commit(&self, batch: &ViewBatch) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
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
                writes.remove(keys::index_key(index, value, subject));
            }
            for (index, value) in after.iter().filter(|entry| !before.contains(entry)) {
                writes.insert(keys::index_key(index, value, subject), &[] as &[u8]);
            }
            match &change.after {
                Some(row) => writes.insert(keys::row_key(subject), keys::encode_row(row)),
                None => writes.remove(keys::row_key(subject)),
            }
        }
        for ((topic, partition), next_offset) in batch.checkpoints() {
            writes.insert(
                keys::checkpoint_key(topic, *partition),
                &keys::encode_offset(*next_offset)[..],
            );
        }
        for ((topic, partition, shard), next_offset) in batch.shard_checkpoints() {
            let key = keys::shard_checkpoint_key(topic, *partition, *shard);
            match next_offset {
                Some(next) => writes.insert(key, &keys::encode_offset(*next)[..]),
                None => writes.remove(key),
            }
        }
        for (origin, letter) in batch.dead_letters() {
            let key = keys::dead_letter_key(origin);
            match letter {
                Some(letter) => writes.insert(key, keys::encode_dead_letter(letter)),
                None => writes.remove(key),
            }
        }
        for ((subject, sequence), record) in batch.quarantined() {
            let key = keys::quarantine_key(subject, *sequence);
            match record {
                Some(record) => writes.insert(key, keys::encode_quarantined(record)),
                None => writes.remove(key),
            }
        }
        for ((topic, partition), next) in batch.dead_letter_positions() {
            writes.insert(
                keys::dead_letter_position_key(topic, *partition),
                &keys::encode_offset(*next)[..],
            );
        }
        let identities = batch.identities();
        if let Some(newest) = identities.iter().map(|(_, time)| *time).max() {
            let sequence = self
                .db
                .generate_id()
                .map_err(backend("number identities"))?;
            writes.insert(
                keys::journal_key(newest, sequence),
                keys::encode_identities(identities),
            );
        }
        writes.insert(keys::ROW_COUNT_KEY, &rows.to_be_bytes()[..]);
        self.tree
            .apply_batch(writes)
            .map_err(backend("commit batch"))?;
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

    fn clear_identities(&self) -> Result<usize, StoreError> {
        self.remove_records(self.tree.scan_prefix(keys::JOURNAL_PREFIX).keys())
    }

    fn forget_identities(&self, before: i64) -> Result<usize, StoreError> {
        self.remove_records(
            self.tree
                .range(keys::JOURNAL_PREFIX.to_vec()..keys::journal_bound(before))
                .keys(),
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
            batch.remember(a, 1_000);
            batch.remember(c, -50);
            view.commit(&batch).unwrap();
            let mut batch = ViewBatch::new();
            batch.remember(b, 5_000);
            // `a` remembered again, later: it is in both records.
            batch.remember(a, 7_000);
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
        assert_eq!(view.forget_identities(1_000).unwrap(), 0);
        assert_eq!(view.forget_identities(1_001).unwrap(), 1);
        assert_eq!(
            view.identities(i64::MIN).unwrap(),
            vec![(b, 5_000), (a, 7_000)]
        );
        assert_eq!(view.forget_identities(7_000).unwrap(), 0);
        // With dedup off, every record goes, whatever its time.
        let mut batch = ViewBatch::new();
        batch.remember(c, i64::MAX);
        view.commit(&batch).unwrap();
        assert_eq!(view.clear_identities().unwrap(), 2);
        assert!(view.identities(i64::MIN).unwrap().is_empty());
        // A rebuild forgets them with the rows.
        let mut batch = ViewBatch::new();
        batch.remember(a, 1);
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
}
