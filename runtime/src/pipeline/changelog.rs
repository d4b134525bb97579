//! A view's changelog: every committed batch logged to its shards'
//! partitions before the store commits it, and the view restored from it
//! when the store is behind.
//!
//! # What it promises
//!
//! - **Order of durability.** A batch's changelog records are acknowledged
//!   before the store commits the batch (with, per shard, where the
//!   changelog then ends: `l/<shard>`), and the store is flushed before any
//!   offset goes to Kafka. So the store never holds a change the changelog
//!   lacks, and Kafka's offsets never pass either (G4). A batch is sent
//!   ([`Changelog::send_batch`]) and committed ([`Changelog::finish_batch`])
//!   in two steps, so that the worker applies the next batch while its
//!   records travel; between them no other writer logs anything, and a
//!   batch that fails stops every later write until a restart.
//! - **A batch is whole or absent.** Each shard's records of a batch end
//!   with its positions record (key `p`: the shard's checkpoints and the
//!   dead-letter positions). A restore applies a partition's records up to
//!   its last positions record only; records after it are a batch a crash
//!   cut short, and are *reverted*: logged again with the values the store
//!   holds, then a positions record, so that compaction, which keeps the
//!   latest record of a key, keeps the store's (G2: no row ahead of its
//!   checkpoint).
//! - **Restore** runs before the view applies anything: from each shard's
//!   `l/` (or the partition's start, for an empty store) to the end. The
//!   rows, held records, identities and checkpoints come back; index
//!   entries and the row count are derived again.
//! - **A first changelog holds the whole view:** a store with state and a
//!   changelog that holds nothing of it is logged whole first (a snapshot).
//! - The expiry of dedup identities logs its removals under the same lock
//!   as a batch, followed by positions records from the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::status::Restoring;
use crate::config::{BrokerConfig, ViewConfig};
use crate::kafka::changelog::{ChangelogError, ChangelogTopic, Ensured, LogWrite};
use crate::shard::{ShardId, Shards};
use crate::store::{
    Logged, POSITIONS_KEY, Prepared, ShardPositions, StoreError, ViewBatch, ViewStore,
    decode_positions,
};

/// Why a changelog step failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogFailure {
    /// The topic or the broker.
    #[error(transparent)]
    Topic(#[from] ChangelogError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The changelog was written by another module than the view's.
    #[error(
        "changelog topic {topic} holds a view built by module {logged}, but the config names \
         module {configured}; its rows may not match the new projection. Rebuild the view \
         (`projector view rebuild`, which also resets its changelog), or point it back at the \
         old module"
    )]
    ModuleChanged {
        /// The topic.
        topic: String,
        /// The module the changelog's rows were built by.
        logged: String,
        /// The module configured.
        configured: String,
    },
    /// A standby's copy holds more of a partition than the changelog does.
    #[error(
        "changelog topic {topic} holds less than this standby's copy of the view: the topic was \
         deleted or made again. Stop the standby and drop its copy (`projector view rebuild`, \
         which on a standby leaves the changelog alone): its next start copies the changelog \
         afresh"
    )]
    Behind {
        /// The topic.
        topic: String,
    },
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// Records applied from the changelog.
    pub records: u64,
    /// Entries written to the store: the records applied, less the
    /// versions a later record of the same key superseded during the
    /// restore.
    pub written: u64,
    /// Bytes of their keys and values.
    pub bytes: u64,
    /// Records after a shard's last positions record, logged again with
    /// the store's values.
    pub reverted: u64,
    /// Entries logged by a snapshot of the store.
    pub snapshot: u64,
    /// Seconds spent writing restored entries to the store (the rest of a
    /// restore reads the changelog).
    pub store_seconds: f64,
}

/// What a standby's [`Changelog::follow`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Followed {
    /// What it read and applied.
    pub restored: Restored,
    /// Per shard: the offset its copy reaches (after its last whole batch)
    /// and where its partition ends.
    pub shards: BTreeMap<ShardId, (i64, i64)>,
}

/// Who reads a changelog: its view's owner, which restores every record
/// and reverts a batch cut short, or a standby, which applies whole
/// batches only and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Owner,
    Standby,
}

impl Reader {
    /// How long a read goes past the end the broker reported. The owner
    /// restores before it writes, so its reads end by themselves: past the
    /// end while records come (tansu reports an end inside its last record
    /// batch). A standby reads a partition its owner keeps writing: a
    /// second past the end, and the rest next round.
    fn past_end(self) -> Option<std::time::Duration> {
        match self {
            Self::Owner => None,
            Self::Standby => Some(std::time::Duration::from_secs(1)),
        }
    }
}

/// What one shard's read covers.
struct Plan {
    shard: ShardId,
    /// The first offset to read.
    from: i64,
    /// The offset to read to (the partition's end, or after a standby's
    /// last whole batch).
    high: i64,
    /// The offset of the shard's last positions record, if any.
    last_whole: Option<i64>,
}

/// How many restored records go into one store write.
const RESTORE_CHUNK: usize = 4096;

/// How much a restore keeps in memory before it writes to the store: keys
/// and values, plus [`ENTRY_OVERHEAD`] each.
const RESTORE_WINDOW_BYTES: usize = 256 << 20;

/// What one kept entry costs beyond its key and value (the map's slot and
/// the two vectors' headers), roughly.
const ENTRY_OVERHEAD: usize = 64;

/// The latest value of each changelog key a restore read and has not
/// written yet. A later record of a key supersedes an earlier one, as
/// compaction keeps the latest, so a version superseded while it is still
/// here is never written: the store's work follows the keys, not the
/// versions, of the part of the changelog compaction has not cleaned.
/// Which keys are written first does not matter: each is written once, with
/// its latest value, and a window written later overwrites an earlier one.
#[derive(Default)]
struct Latest {
    entries: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    /// Whether a full window was written before the read ended.
    wrote: bool,
}

impl Latest {
    fn keep(&mut self, key: &[u8], value: Option<&[u8]>) {
        let size = value.map_or(0, <[u8]>::len);
        match self.entries.insert(key.to_vec(), value.map(<[u8]>::to_vec)) {
            Some(old) => {
                self.bytes = self.bytes + size - old.map_or(0, |old| old.len());
            }
            None => self.bytes += key.len() + size + ENTRY_OVERHEAD,
        }
    }

    /// Write every kept entry to `view`, [`RESTORE_CHUNK`] to a store
    /// write, and forget them; counted and timed in `restored`.
    fn write_to(
        &mut self,
        view: &impl ViewStore,
        restored: &mut Restored,
    ) -> Result<(), StoreError> {
        self.wrote = true;
        self.write_with(restored, |entries| {
            entries
                .chunks(RESTORE_CHUNK)
                .try_for_each(|chunk| view.restore_entries(chunk))
        })
    }

    /// Hand every kept entry, in key order, to `write`, and forget them;
    /// counted and timed in `restored`.
    fn write_with(
        &mut self,
        restored: &mut Restored,
        write: impl FnOnce(&[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let writing = Instant::now();
        let entries = self.take_sorted();
        write(&entries)?;
        restored.written += entries.len() as u64;
        restored.store_seconds += writing.elapsed().as_secs_f64();
        Ok(())
    }

    /// Every kept entry, in key order (sled writes sorted keys far faster
    /// than scattered ones, and leaves less to its background work), and
    /// forget them.
    fn take_sorted(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = self.entries.drain().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.bytes = 0;
        entries
    }
}

/// The store's error for a change the changelog did not acknowledge, so
/// the store does not make it: `what` happened, and why.
fn not_logged(what: &str, err: &ChangelogError) -> StoreError {
    StoreError::Backend {
        operation: "changelog",
        reason: format!("{what}: {err}"),
    }
}

/// A view's changelog.
#[derive(Debug)]
pub struct Changelog {
    topic: ChangelogTopic,
    shards: Shards,
    /// One writer of the topic at a time, so a positions record is never
    /// older than a batch logged before it: a batch from its send through
    /// its store commit, the expiry's writes, a reset, a restore.
    writing: Mutex<Writer>,
    /// Signalled when a batch sent is committed (or failed).
    idle: Condvar,
}

/// The state of the changelog's writer.
#[derive(Debug, Default)]
struct Writer {
    /// A batch was sent ([`Changelog::send_batch`]) and is not yet
    /// committed ([`Changelog::finish_batch`]): the worker goes on applying
    /// meanwhile, and every other writer waits.
    sending: bool,
    /// A batch's records were sent and not all acknowledged, or not
    /// committed: some may lie after the last positions record, where only
    /// a restart's restore may revert them; until then no other write may
    /// put a positions record after them.
    failed: bool,
}

/// A batch sent to the changelog and not yet committed: what
/// [`Changelog::finish_batch`] waits for and then commits.
#[derive(Debug)]
pub struct SentBatch {
    write: LogWrite,
    prepared: Prepared,
}

/// How long a writer other than the worker waits for a batch sent to be
/// committed.
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Changelog {
    /// The changelog of `view` (its config), split into `shards`: the
    /// topic checked, or created.
    ///
    /// # Errors
    /// When the topic cannot be used.
    pub fn open(
        broker: &BrokerConfig,
        view: &ViewConfig,
        shards: Shards,
    ) -> Result<Option<Self>, ChangelogError> {
        let (Some(settings), Some(topic)) = (&view.changelog, view.changelog_topic()) else {
            return Ok(None);
        };
        // A standby never makes its owner's changelog: with its own shard
        // count, it could make one its owner refuses.
        let replication = (view.role == crate::config::Role::Owner).then_some(settings.replication);
        let (topic, ensured) = ChangelogTopic::check(broker, &topic, shards.count(), replication)?;
        if ensured == Ensured::Found {
            tracing::info!(view = %view.name, topic = %topic.topic(), "changelog topic found");
        }
        Ok(Some(Self {
            topic,
            shards,
            writing: Mutex::new(Writer::default()),
            idle: Condvar::new(),
        }))
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic.topic()
    }

    /// The topic's `delete.retention.ms`, when the broker described it.
    pub fn delete_retention(&self) -> Option<std::time::Duration> {
        self.topic.delete_retention()
    }

    /// Hold the writer's lock.
    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hold the writer's lock once no batch sent is waiting for its commit
    /// (at most [`IDLE_WAIT`]): what every writer but the worker's batches
    /// takes.
    ///
    /// # Errors
    /// When a batch failed to be logged or committed (its records may lie
    /// after the last positions record until a restart), or a batch sent is
    /// still not committed after the wait.
    fn lock_idle(&self) -> Result<MutexGuard<'_, Writer>, ChangelogError> {
        let (writer, waited) = self
            .idle
            .wait_timeout_while(self.lock(), IDLE_WAIT, |writer| {
                writer.sending && !writer.failed
            })
            .unwrap_or_else(PoisonError::into_inner);
        if writer.failed || waited.timed_out() {
            return Err(ChangelogError::Busy {
                topic: self.topic().to_owned(),
            });
        }
        Ok(writer)
    }

    /// Prepare `batch` with every shard's positions and send it to the
    /// changelog, without waiting for the broker: the worker applies the
    /// next batch while its records travel. [`Changelog::finish_batch`]
    /// waits for them and commits it; until then no other writer logs
    /// anything. The store must hold every batch sent before (each
    /// positions record is the store's, with this batch on top).
    ///
    /// # Errors
    /// When the store fails, or a batch before failed to be logged.
    pub fn send_batch<V: ViewStore>(
        &self,
        view: &V,
        batch: &ViewBatch,
    ) -> Result<SentBatch, StoreError> {
        let mut writer = self.lock();
        if writer.failed || writer.sending {
            return Err(not_logged(
                "the batch is not logged",
                &ChangelogError::Busy {
                    topic: self.topic().to_owned(),
                },
            ));
        }
        let prepared = view.prepare(batch, true)?;
        let mut write = self.topic.begin();
        self.topic.send(&mut write, prepared.logged());
        writer.sending = true;
        Ok(SentBatch { write, prepared })
    }

    /// A batch sent was never finished (its view stopped on an error):
    /// what it sent may lie after the last positions record, so nothing
    /// more is logged until a restart, and no writer waits for it.
    pub fn abandon(&self) {
        let mut writer = self.lock();
        writer.sending = false;
        writer.failed = true;
        drop(writer);
        self.idle.notify_all();
    }

    /// Wait until every record of `sent` is acknowledged, then commit it
    /// by `commit` (the store's `commit_prepared`, or a caller's wrapping
    /// of it), with where each shard's partition ends after it. The store
    /// never holds what the changelog lacks.
    ///
    /// # Errors
    /// When the changelog does not acknowledge the batch (nothing is then
    /// committed, and nothing more is logged until a restart), or the
    /// store fails.
    pub fn finish_batch(
        &self,
        sent: SentBatch,
        commit: impl FnOnce(Prepared) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let SentBatch {
            write,
            mut prepared,
        } = sent;
        let mut writer = self.lock();
        let committed = match self.topic.finish(write) {
            Ok(ends) => {
                prepared.logged_to(&ends);
                crate::failpoint::hit("changelog-logged");
                commit(prepared)
            }
            Err(err) => Err(not_logged(
                "the batch was not logged to its changelog, so it is not committed",
                &err,
            )),
        };
        writer.sending = false;
        writer.failed |= committed.is_err();
        drop(writer);
        self.idle.notify_all();
        committed
    }

    /// Commit `batch` to `view` through the changelog: under the writer's
    /// lock, the batch prepared with every shard's positions, logged and
    /// acknowledged, then committed by `commit` (the store's
    /// `commit_prepared`, or a caller's wrapping of it). The store never
    /// holds what the changelog lacks. Every batch of a view with a
    /// changelog is committed here.
    ///
    /// # Errors
    /// When the changelog does not acknowledge the batch (nothing is then
    /// committed), or the store fails.
    pub fn commit_batch<V: ViewStore>(
        &self,
        view: &V,
        batch: &ViewBatch,
        commit: impl FnOnce(Prepared) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sent = self.send_batch(view, batch)?;
        self.finish_batch(sent, commit)
    }

    /// Log `removed` (identity records the store is about to forget), then
    /// each touched shard's positions record as the store holds them: what
    /// [`ViewStore::forget_identities`] and [`ViewStore::clear_identities`]
    /// hand over before they remove anything, so the store never holds a
    /// change the changelog lacks. An error is the store's: the removal is
    /// then not made.
    ///
    /// # Errors
    /// When the changelog does not acknowledge the removals, or the store
    /// fails.
    pub fn log_removals(
        &self,
        view: &impl ViewStore,
        removed: Vec<Logged>,
    ) -> Result<(), StoreError> {
        if removed.is_empty() {
            return Ok(());
        }
        let _writing = self
            .lock_idle()
            .map_err(|err| not_logged("the identities are kept", &err))?;
        let touched: BTreeSet<ShardId> = removed.iter().map(|entry| entry.shard).collect();
        let positions = view
            .positions()?
            .into_iter()
            .filter(|record| touched.contains(&record.shard));
        let ends = self
            .topic
            .write(removed.into_iter().chain(positions))
            .map_err(|err| {
                not_logged(
                    "the identities were not logged as forgotten, so they are kept",
                    &err,
                )
            })?;
        let mut prepared = Prepared::default();
        prepared.logged_to(&ends);
        view.commit_prepared(prepared)
    }

    /// Empty the changelog for a rebuild by `module`: a tombstone for every
    /// key it holds a value for, then per shard a positions record with no
    /// checkpoint, so that a restore brings back nothing of the old view.
    /// Returns how many keys it removed.
    ///
    /// # Errors
    /// When the changelog cannot be read or written.
    pub fn reset(&self, module: &str) -> Result<u64, ChangelogError> {
        let _writing = self.lock_idle()?;
        let mut removals = Vec::new();
        for shard in self.shards.all() {
            let (low, high) = self.topic.watermarks(shard)?;
            let mut present: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
            self.topic.read(shard, low, high, &mut |_, key, value| {
                if key != POSITIONS_KEY {
                    present.insert(key.to_vec(), value.is_some());
                }
                Ok(())
            })?;
            removals.extend(
                present
                    .into_iter()
                    .filter(|(_, present)| *present)
                    .map(|(key, _)| Logged {
                        shard,
                        key,
                        value: None,
                    }),
            );
        }
        let removed = removals.len() as u64;
        let empty = ShardPositions {
            module: module.to_owned(),
            ..ShardPositions::default()
        };
        let positions = self.shards.all().map(|shard| Logged {
            shard,
            key: POSITIONS_KEY.to_vec(),
            value: Some(crate::store::encode_positions(&empty)),
        });
        self.topic.write(removals.into_iter().chain(positions))?;
        Ok(removed)
    }

    /// Bring `view` up to its changelog before it applies anything: log
    /// the whole store when the changelog holds nothing of it, restore
    /// each shard from where the store's copy of it ends, and revert what a
    /// crash left after a shard's last whole batch.
    ///
    /// # Errors
    /// When the changelog cannot be read or written, or the store fails.
    pub fn restore(
        &self,
        view: &impl ViewStore,
        progress: &dyn Fn(Restoring),
    ) -> Result<Restored, ChangelogFailure> {
        let _writing = self.lock_idle()?;
        let started = Instant::now();
        let mut restored = Restored::default();
        let local = view.log_positions()?;
        let ends = self.ends()?;
        let lost = self.lost(&local, &ends);
        let has_state = !view.checkpoints()?.is_empty();
        let pending = view.snapshot_pending()?;
        if pending || lost || (has_state && local.is_empty()) {
            if lost {
                tracing::warn!(topic = %self.topic(), "the changelog topic holds nothing of what this store logged to it (deleted or made again?); logging the whole view again");
            }
            if pending {
                tracing::warn!(topic = %self.topic(), "a snapshot of the view to its changelog was cut short; taking it again");
            }
            restored.snapshot = self.snapshot(view, &ends)?;
            tracing::info!(topic = %self.topic(), entries = restored.snapshot, seconds = started.elapsed().as_secs_f64(), "the view's state logged whole to its changelog");
            return Ok(restored);
        }
        let plans = self.plans(view, &local, &ends, Reader::Owner)?;
        let cut_short = self.apply(view, plans, Reader::Owner, started, progress, &mut restored)?;
        if !cut_short.is_empty() {
            restored.reverted = cut_short.len() as u64;
            let touched: BTreeSet<ShardId> = cut_short.iter().map(|(shard, _)| *shard).collect();
            let mut reverts = Vec::new();
            for (shard, key) in cut_short {
                if key == POSITIONS_KEY {
                    continue;
                }
                reverts.push(Logged {
                    shard,
                    value: view.raw(&key)?,
                    key,
                });
            }
            reverts.extend(
                view.positions()?
                    .into_iter()
                    .filter(|record| touched.contains(&record.shard)),
            );
            let ends = self.topic.write(reverts.into_iter())?;
            let mut prepared = Prepared::default();
            prepared.logged_to(&ends);
            view.commit_prepared(prepared)?;
            tracing::warn!(topic = %self.topic(), records = restored.reverted, "records a crash left after a shard's last whole batch logged again with the store's values");
        }
        if restored.records > 0 {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(
                topic = %self.topic(),
                records = restored.records,
                written = restored.written,
                bytes = restored.bytes,
                rows = view.row_count(),
                seconds,
                "view restored from its changelog"
            );
        }
        Ok(restored)
    }

    /// Bring a standby's copy of the view up to its changelog, as far as
    /// whole batches go, and write nothing to the changelog: what a standby
    /// runs again and again. Records after a shard's last positions record
    /// are a batch being logged (or one a crash cut short, which its owner
    /// reverts): they are left for a later call, which reads them again
    /// from `l/<shard>`.
    ///
    /// # Errors
    /// When the changelog cannot be read, holds less than the copy (it was
    /// deleted or made again), was built by another module, or the store
    /// fails.
    pub fn follow(
        &self,
        view: &impl ViewStore,
        progress: &dyn Fn(Restoring),
    ) -> Result<Followed, ChangelogFailure> {
        let started = Instant::now();
        let mut restored = Restored::default();
        let local = view.log_positions()?;
        let ends = self.ends()?;
        if self.lost(&local, &ends) {
            return Err(ChangelogFailure::Behind {
                topic: self.topic().to_owned(),
            });
        }
        let plans = self.plans(view, &local, &ends, Reader::Standby)?;
        self.apply(
            view,
            plans,
            Reader::Standby,
            started,
            progress,
            &mut restored,
        )?;
        let applied = view.log_positions()?;
        let shards = ends
            .iter()
            .map(|(shard, (low, high))| {
                let at = applied.get(shard).copied().unwrap_or(*low).max(*low);
                (*shard, (at, *high))
            })
            .collect();
        Ok(Followed { restored, shards })
    }

    /// Where each shard's partition begins and ends now.
    fn ends(&self) -> Result<BTreeMap<ShardId, (i64, i64)>, ChangelogError> {
        let mut ends = BTreeMap::new();
        for shard in self.shards.all() {
            ends.insert(shard, self.topic.watermarks(shard)?);
        }
        Ok(ends)
    }

    /// Whether a partition holds nothing where this store logged (or
    /// followed) records: the topic was deleted or made again.
    fn lost(&self, local: &BTreeMap<ShardId, i64>, ends: &BTreeMap<ShardId, (i64, i64)>) -> bool {
        self.shards.all().any(|shard| {
            local
                .get(&shard)
                .is_some_and(|at| *at > 0 && ends.get(&shard).is_none_or(|(low, high)| high <= low))
        })
    }

    /// What to read of each shard's partition, from where the store's copy
    /// ends: the module that built it checked for every shard before
    /// anything is applied. For a standby, only whole batches: each read
    /// ends at the shard's last positions record.
    fn plans(
        &self,
        view: &impl ViewStore,
        local: &BTreeMap<ShardId, i64>,
        ends: &BTreeMap<ShardId, (i64, i64)>,
        reader: Reader,
    ) -> Result<Vec<Plan>, ChangelogFailure> {
        let mut plans = Vec::new();
        for shard in self.shards.all() {
            let (low, high) = ends.get(&shard).copied().unwrap_or((0, 0));
            let from = local.get(&shard).copied().unwrap_or(low).max(low);
            if from >= high {
                continue;
            }
            let last_whole = match self.last_positions_record(shard, from, high, reader)? {
                Some((_, own)) if own.module != view.module_hash() => {
                    return Err(ChangelogFailure::ModuleChanged {
                        topic: self.topic().to_owned(),
                        logged: own.module,
                        configured: view.module_hash().to_owned(),
                    });
                }
                last => last.map(|(offset, _)| offset),
            };
            match (reader, last_whole) {
                (Reader::Owner, _) => plans.push(Plan {
                    shard,
                    from,
                    high,
                    last_whole,
                }),
                (Reader::Standby, Some(last)) => plans.push(Plan {
                    shard,
                    from,
                    high: last + 1,
                    last_whole,
                }),
                (Reader::Standby, None) => {}
            }
        }
        Ok(plans)
    }

    /// Read and apply `plans`, counted in `restored` and told to
    /// `progress`: each shard's records up to its last positions record,
    /// then the positions and where each read ended, in one store step (a
    /// standby's: each shard's records and positions in one step). Returns,
    /// for the owner, the keys read after a shard's last positions record:
    /// a batch a crash cut short (a standby reads them again next round).
    fn apply(
        &self,
        view: &impl ViewStore,
        plans: Vec<Plan>,
        reader: Reader,
        started: Instant,
        progress: &dyn Fn(Restoring),
        restored: &mut Restored,
    ) -> Result<Vec<(ShardId, Vec<u8>)>, ChangelogFailure> {
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let mut report = Restoring {
            started,
            total: plans
                .iter()
                .map(|plan| u64::try_from(plan.high - plan.from).unwrap_or(0))
                .sum(),
            ..Restoring::default()
        };
        progress(report);
        let mut positions: BTreeMap<ShardId, ShardPositions> = BTreeMap::new();
        let mut log_positions = BTreeMap::new();
        let mut cut_short: Vec<(ShardId, Vec<u8>)> = Vec::new();
        for plan in plans {
            let Plan {
                shard,
                from,
                high,
                last_whole,
            } = plan;
            let past_end = reader.past_end();
            let mut latest = Latest::default();
            let mut tail = Vec::new();
            let mut shard_positions = None;
            let mut corrupt = None;
            let reached =
                self.topic
                    .read_past_end(shard, from, high, past_end, &mut |offset, key, value| {
                        if last_whole.is_none_or(|last| offset > last) {
                            tail.push(key.to_vec());
                            return Ok(());
                        }
                        restored.records += 1;
                        restored.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
                        crate::failpoint::hit("restore-record");
                        if restored.records.is_multiple_of(1024) || restored.records == 1 {
                            report.records = restored.records;
                            report.bytes = restored.bytes;
                            progress(report);
                        }
                        if key == POSITIONS_KEY {
                            let value = value.ok_or("a positions record without a value")?;
                            shard_positions = Some(decode_positions(value)?);
                        } else {
                            latest.keep(key, value);
                            if latest.bytes >= RESTORE_WINDOW_BYTES
                                && let Err(err) = latest.write_to(view, restored)
                            {
                                // Stop reading: the store's error is the one told.
                                corrupt = Some(err);
                                return Err("the store failed".to_owned());
                            }
                        }
                        Ok(())
                    });
            if let Some(err) = corrupt {
                return Err(err.into());
            }
            let reached = reached?;
            if reader == Reader::Standby && !latest.wrote {
                // A standby's round of this shard, whole batches only,
                // written with its positions in one step: a reader sees
                // the shard before it or after it, never part of it.
                let own: BTreeMap<ShardId, ShardPositions> = shard_positions
                    .map(|own| (shard, own))
                    .into_iter()
                    .collect();
                let ends: BTreeMap<ShardId, i64> = last_whole
                    .map(|last| (shard, last + 1))
                    .into_iter()
                    .collect();
                latest.write_with(restored, |entries| view.restore_whole(entries, &own, &ends))?;
                continue;
            }
            latest.write_to(view, restored)?;
            if let Some(own) = shard_positions {
                positions.insert(shard, own);
            }
            if reader == Reader::Owner {
                log_positions.insert(shard, reached);
                cut_short.extend(tail.into_iter().map(|key| (shard, key)));
            } else if let Some(last) = last_whole {
                // What came after the last whole batch is read again next
                // time.
                log_positions.insert(shard, last + 1);
            }
        }
        if !positions.is_empty() || !log_positions.is_empty() {
            view.restore_positions(&positions, &log_positions)?;
        }
        Ok(cut_short)
    }

    /// Log the whole view as the store holds it: a tombstone for every key
    /// the changelog holds that the store does not, every entry, and each
    /// shard's positions record. Marked in the store until done, so a
    /// snapshot cut short is taken again. Returns how many entries it
    /// logged.
    fn snapshot(
        &self,
        view: &impl ViewStore,
        ends: &BTreeMap<ShardId, (i64, i64)>,
    ) -> Result<u64, ChangelogFailure> {
        view.set_snapshot_pending(true)?;
        let mut entries = Vec::new();
        for shard in self.shards.all() {
            let (low, high) = ends.get(&shard).copied().unwrap_or((0, 0));
            let mut held: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
            self.topic.read(shard, low, high, &mut |_, key, value| {
                if key != POSITIONS_KEY {
                    held.insert(key.to_vec(), value.is_some());
                }
                Ok(())
            })?;
            for (key, present) in held {
                if present && view.raw(&key)?.is_none() {
                    entries.push(Logged {
                        shard,
                        key,
                        value: None,
                    });
                }
            }
        }
        view.snapshot(&mut |entry| entries.push(entry))?;
        let logged = entries.len() as u64;
        let ends = self.topic.write(entries.into_iter())?;
        let mut prepared = Prepared::default();
        prepared.logged_to(&ends);
        view.commit_prepared(prepared)?;
        view.set_snapshot_pending(false)?;
        Ok(logged)
    }

    /// The offset and content of the last positions record of `shard`'s
    /// partition at or after `from`: read back from the end, a window four times larger
    /// each time, down to `from`.
    fn last_positions_record(
        &self,
        shard: ShardId,
        from: i64,
        high: i64,
        reader: Reader,
    ) -> Result<Option<(i64, ShardPositions)>, ChangelogError> {
        let mut window = 64;
        loop {
            let start = high.saturating_sub(window).max(from);
            let mut last = None;
            self.topic.read_past_end(
                shard,
                start,
                high,
                reader.past_end(),
                &mut |offset, key, value| {
                    if key == POSITIONS_KEY {
                        let value = value.ok_or("a positions record without a value")?;
                        last = Some((offset, decode_positions(value)?));
                    }
                    Ok(())
                },
            )?;
            if last.is_some() || start == from {
                return Ok(last);
            }
            window = window.saturating_mul(4);
        }
    }
}
