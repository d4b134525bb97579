//! A view's feed to its readers: how far the view has applied each
//! partition (for read-your-writes) and its committed row changes in apply
//! order (for watchers).
//!
//! # What it promises
//!
//! - [`ViewFeed::positions`] moves forward only after the batch holding the
//!   applied rows was committed to the store and flushed: a reader that saw
//!   a position reads at least the rows up to it.
//! - A watcher that [`subscribes`](ViewFeed::subscribe) reads the current
//!   row and receives every change committed after that read, in apply
//!   order, with nothing missed and nothing repeated: the subscription and
//!   the read happen under the same gate as a commit and its publication.
//! - Memory is bounded: the change channel keeps the last
//!   `capacity` batches. A watcher that falls further behind is told it
//!   lagged and subscribes again (a resync), never buffered without bound.
//! - Changes are collected only while someone watches, so a view nobody
//!   watches pays nothing for the feature.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{broadcast, watch};

use crate::store::StoredRow;

/// Per `(topic, partition)`, the next offset to apply, as durable.
pub type Positions = BTreeMap<(String, i32), i64>;

/// One committed change of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The row's subject.
    pub subject: String,
    /// The row after the change; `None` when it was deleted.
    pub row: Option<StoredRow>,
}

/// The changes of one committed batch, in apply order.
pub type ChangeBatch = Arc<[Change]>;

/// The feed of one view. Shared by its worker (the only writer) and the
/// query API.
#[derive(Debug)]
pub struct ViewFeed {
    positions: watch::Sender<Positions>,
    changes: broadcast::Sender<ChangeBatch>,
    gate: Mutex<()>,
}

impl ViewFeed {
    /// Batches a watcher may fall behind by before it must resync.
    pub const DEFAULT_CAPACITY: usize = 64;

    /// A feed starting at `positions` (the store's checkpoints), keeping at
    /// most `capacity` batches for slow watchers.
    pub fn new(positions: Positions, capacity: usize) -> Self {
        let (changes, _) = broadcast::channel(capacity.max(1));
        Self {
            positions: watch::Sender::new(positions),
            changes,
            gate: Mutex::new(()),
        }
    }

    /// True while at least one watcher is subscribed.
    pub fn is_watched(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    /// Write a batch with `commit` and publish its `changes` to the current
    /// watchers, under the gate that [`subscribe`](Self::subscribe) takes.
    pub fn commit<T, E>(
        &self,
        commit: impl FnOnce() -> Result<T, E>,
        changes: Vec<Change>,
    ) -> Result<T, E> {
        let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let written = commit()?;
        if !changes.is_empty() {
            // An error only means nobody watches any more.
            let _ = self.changes.send(changes.into());
        }
        Ok(written)
    }

    /// Record that `checkpoints` are durable.
    pub fn advance<'a>(&self, checkpoints: impl IntoIterator<Item = (&'a (String, i32), &'a i64)>) {
        self.positions.send_modify(|positions| {
            for (partition, next) in checkpoints {
                let entry = positions.entry(partition.clone()).or_insert(*next);
                *entry = (*entry).max(*next);
            }
        });
    }

    /// Subscribe to the changes, and `read` the current state under the
    /// same gate: every change after the read arrives, none before it.
    pub fn subscribe<T>(&self, read: impl FnOnce() -> T) -> (broadcast::Receiver<ChangeBatch>, T) {
        let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = self.changes.subscribe();
        (receiver, read())
    }

    /// Run `held` while no batch can commit (the gate a commit takes):
    /// what a swap of versions does, so that the rows it compares are the
    /// rows readers see.
    pub fn hold<T>(&self, held: impl FnOnce() -> T) -> T {
        let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        held()
    }

    /// A receiver of the durable positions.
    pub fn positions(&self) -> watch::Receiver<Positions> {
        self.positions.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(subject: &str, version: u64) -> Change {
        Change {
            subject: subject.to_owned(),
            row: Some(StoredRow {
                json: "{}".to_owned(),
                version,
                last_event_id: format!("e{version}"),
            }),
        }
    }

    #[test]
    fn a_subscriber_gets_every_later_change_in_order() {
        let feed = ViewFeed::new(Positions::new(), 4);
        assert!(!feed.is_watched());
        let (mut receiver, ()) = feed.subscribe(|| ());
        assert!(feed.is_watched());
        feed.commit(|| Ok::<_, ()>(()), vec![change("a", 1), change("a", 2)])
            .unwrap();
        feed.commit(|| Ok::<_, ()>(()), vec![change("a", 3)])
            .unwrap();
        let first = receiver.try_recv().unwrap();
        let second = receiver.try_recv().unwrap();
        let versions: Vec<u64> = first
            .iter()
            .chain(second.iter())
            .map(|c| c.row.as_ref().unwrap().version)
            .collect();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[test]
    fn a_failed_commit_publishes_nothing() {
        let feed = ViewFeed::new(Positions::new(), 4);
        let (mut receiver, ()) = feed.subscribe(|| ());
        let result = feed.commit(|| Err::<(), _>("disk full"), vec![change("a", 1)]);
        assert_eq!(result, Err("disk full"));
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn a_slow_subscriber_lags_instead_of_buffering() {
        let feed = ViewFeed::new(Positions::new(), 2);
        let (mut receiver, ()) = feed.subscribe(|| ());
        for version in 1..=5 {
            feed.commit(|| Ok::<_, ()>(()), vec![change("a", version)])
                .unwrap();
        }
        assert!(matches!(
            receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }

    #[test]
    fn positions_only_move_forward() {
        let feed = ViewFeed::new(Positions::from([(("t".to_owned(), 0), 5)]), 2);
        let key = ("t".to_owned(), 0);
        feed.advance([(&key, &9)]);
        feed.advance([(&key, &7)]);
        assert_eq!(feed.positions().borrow()[&key], 9);
    }
}
