//! Where one assigned partition stands, over the view's shards: the one
//! per-partition position type of the pipeline.
//!
//! # What it promises
//!
//! - `next` is the partition's next offset to take: every record below it
//!   was applied by its shard, handled by the policy, found a duplicate by
//!   its shard, or belongs to a shard stopped on this partition.
//! - A shard's own checkpoint ([`Cursor::shard_next`]) is where it stopped,
//!   else `next`, else higher when the store says the shard got further
//!   (a restart after other shards were held back). A record below its
//!   shard's checkpoint is a duplicate for that shard (G2).
//! - The partition's checkpoint ([`Cursor::position`]) is the lowest over
//!   its shards: where it resumes, what readers wait on, and the highest
//!   offset ever given to Kafka for it (G4).

use std::collections::{BTreeMap, BTreeSet};

use crate::shard::{ShardId, Shards};
use crate::store::ViewBatch;

/// One partition's position over the view's shards.
#[derive(Debug, Clone)]
pub struct Cursor {
    next: i64,
    /// Shards the store says got further than the partition's checkpoint.
    ahead: BTreeMap<ShardId, i64>,
    /// Shards stopped on this partition (`on_error = "stop"`), at the
    /// offset of the record that stopped them.
    stopped: BTreeMap<ShardId, i64>,
    /// Shards whose own checkpoint the store holds now (the ones that were
    /// above the partition's when last committed).
    stored: BTreeSet<ShardId>,
}

impl Cursor {
    /// A cursor at the partition's checkpoint `next`, with the shards the
    /// store has further along (`ahead`).
    pub fn new(next: i64, ahead: BTreeMap<ShardId, i64>) -> Self {
        let stored = ahead.keys().copied().collect();
        let ahead = ahead.into_iter().filter(|(_, at)| *at > next).collect();
        Self {
            next,
            ahead,
            stopped: BTreeMap::new(),
            stored,
        }
    }

    /// The partition's next offset to take.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The next offset `shard` applies on this partition.
    pub fn shard_next(&self, shard: ShardId) -> i64 {
        if let Some(at) = self.stopped.get(&shard) {
            return *at;
        }
        self.ahead
            .get(&shard)
            .map_or(self.next, |ahead| (*ahead).max(self.next))
    }

    /// True when `shard` is stopped on this partition.
    pub fn is_stopped(&self, shard: ShardId) -> bool {
        self.stopped.contains_key(&shard)
    }

    /// The shards stopped on this partition.
    pub fn stopped_shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        self.stopped.keys().copied()
    }

    /// True when every one of `shards` is stopped: the partition has
    /// nothing left to apply and may be paused.
    pub fn all_stopped(&self, shards: Shards) -> bool {
        self.stopped.len() == shards.count() as usize
    }

    /// Every record below `next` is taken.
    pub fn advance(&mut self, next: i64) {
        self.next = self.next.max(next);
        let floor = self.next;
        self.ahead.retain(|_, at| *at > floor);
    }

    /// `shard` stopped at the record at `offset`: it takes nothing more of
    /// this partition until a restart.
    pub fn stop(&mut self, shard: ShardId, offset: i64) {
        self.stopped.entry(shard).or_insert(offset);
    }

    /// The partition's checkpoint: the lowest over its shards.
    pub fn position(&self) -> i64 {
        self.stopped.values().copied().fold(self.next, i64::min)
    }

    /// Write the partition's checkpoint to `batch`, with the own checkpoint
    /// of each of `shards` that is above it, and drop the stored ones that
    /// no longer are.
    pub fn write(&mut self, topic: &str, partition: i32, shards: Shards, batch: &mut ViewBatch) {
        let position = self.position();
        batch.checkpoint(topic, partition, position);
        // Shards above the partition's checkpoint: every one when a shard
        // is stopped below `next`, else only those ahead of it.
        let above: BTreeMap<ShardId, i64> = if position < self.next {
            shards
                .all()
                .map(|shard| (shard, self.shard_next(shard)))
                .filter(|(_, at)| *at > position)
                .collect()
        } else {
            self.ahead
                .keys()
                .map(|shard| (*shard, self.shard_next(*shard)))
                .filter(|(_, at)| *at > position)
                .collect()
        };
        for shard in &self.stored {
            if !above.contains_key(shard) {
                batch.shard_checkpoint(topic, partition, *shard, None);
            }
        }
        for (shard, at) in &above {
            batch.shard_checkpoint(topic, partition, *shard, Some(*at));
        }
        self.stored = above.into_keys().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn four() -> Shards {
        Shards::new(4).unwrap()
    }

    #[test]
    fn without_stops_every_shard_is_at_the_partitions_next_offset() {
        let mut cursor = Cursor::new(10, BTreeMap::new());
        cursor.advance(15);
        assert_eq!(cursor.position(), 15);
        assert!(four().all().all(|s| cursor.shard_next(s) == 15));
        let mut batch = ViewBatch::new();
        cursor.write("t", 0, four(), &mut batch);
        assert_eq!(batch.pending_checkpoint("t", 0), Some(15));
        assert!(batch.shard_checkpoints().is_empty(), "no shard keys");
    }

    #[test]
    fn a_stopped_shard_holds_the_partition_back_and_the_others_keep_their_own() {
        let mut cursor = Cursor::new(0, BTreeMap::new());
        cursor.stop(ShardId(2), 4);
        cursor.advance(9);
        assert_eq!(cursor.position(), 4);
        assert_eq!(cursor.shard_next(ShardId(2)), 4);
        assert_eq!(cursor.shard_next(ShardId(1)), 9);
        let mut batch = ViewBatch::new();
        cursor.write("t", 0, four(), &mut batch);
        assert_eq!(batch.pending_checkpoint("t", 0), Some(4));
        let keys: Vec<_> = batch
            .shard_checkpoints()
            .iter()
            .map(|((_, _, shard), at)| (shard.0, *at))
            .collect();
        assert_eq!(keys, [(0, Some(9)), (1, Some(9)), (3, Some(9))]);
    }

    #[test]
    fn after_a_restart_shards_ahead_skip_what_they_applied_and_their_keys_go() {
        // Shard 2 stopped at 4 while the others reached 9.
        let ahead = [(ShardId(0), 9), (ShardId(1), 9), (ShardId(3), 9)].into();
        let mut cursor = Cursor::new(4, ahead);
        assert_eq!(cursor.shard_next(ShardId(2)), 4);
        assert_eq!(cursor.shard_next(ShardId(0)), 9);
        cursor.advance(6);
        let mut batch = ViewBatch::new();
        cursor.write("t", 0, four(), &mut batch);
        assert_eq!(batch.pending_checkpoint("t", 0), Some(6));
        assert_eq!(batch.shard_checkpoints().len(), 3, "still ahead");
        cursor.advance(12);
        let mut batch = ViewBatch::new();
        cursor.write("t", 0, four(), &mut batch);
        assert_eq!(batch.pending_checkpoint("t", 0), Some(12));
        assert!(
            batch.shard_checkpoints().values().all(Option::is_none),
            "every stored shard key is dropped once the partition caught up"
        );
        assert_eq!(batch.shard_checkpoints().len(), 3);
    }

    #[test]
    fn the_partition_pauses_only_when_every_shard_stopped() {
        let mut cursor = Cursor::new(0, BTreeMap::new());
        cursor.stop(ShardId(0), 1);
        cursor.advance(2);
        assert!(!cursor.all_stopped(Shards::new(2).unwrap()));
        assert!(cursor.all_stopped(Shards::ONE));
        cursor.stop(ShardId(1), 3);
        cursor.advance(4);
        assert!(cursor.all_stopped(Shards::new(2).unwrap()));
        assert_eq!(cursor.position(), 1);
    }
}
