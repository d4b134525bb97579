//! The store bound: raw sled read-modify-write batches with the keys, value
//! sizes and batch size of the engine-only run, with no decode and no wasm.
//! It is the ceiling the chosen store allows the pipeline.
//!
//! Each event reads its key (from the pending batch, else the tree),
//! writes a value of the view's average row size back into the batch;
//! every 1,000 events the batch, with a checkpoint key, is applied
//! atomically and flushed, as the view store does.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::input::{Generator, Workload};

/// What the store-bound run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreBound {
    /// Read-modify-writes done.
    pub events: u64,
    /// Value size written, in bytes.
    pub value_bytes: usize,
    /// Events per batch.
    pub batch: usize,
    /// Time spent.
    pub seconds: f64,
    /// Read-modify-writes per second.
    pub events_per_second: f64,
}

/// Run `events` read-modify-writes over the subjects of `workload`'s input
/// in a sled database at `dir`.
///
/// # Errors
/// When sled fails.
pub fn run(
    workload: Workload,
    events: u64,
    subjects: u64,
    value_bytes: usize,
    dir: &Path,
) -> anyhow::Result<StoreBound> {
    const BATCH: usize = 1000;
    let db = sled::open(dir)?;
    let tree = db.open_tree(workload.name())?;
    let mut generator = Generator::new(workload, subjects, crate::PARTITIONS, 42);
    let mut spent = Duration::ZERO;
    let mut done = 0_u64;
    while done < events {
        let keys: Vec<Vec<u8>> = generator
            .by_ref()
            .take(usize::try_from((events - done).min(BATCH as u64))?)
            .map(|event| format!("r/{}", event.subject).into_bytes())
            .collect();
        let started = Instant::now();
        let mut pending: HashMap<&[u8], Vec<u8>> = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let mut value = match pending.remove(key.as_slice()) {
                Some(value) => value,
                None => tree
                    .get(key)?
                    .map_or_else(|| vec![b' '; value_bytes.max(8)], |value| value.to_vec()),
            };
            value[..8].copy_from_slice(&(done + i as u64).to_le_bytes());
            pending.insert(key, value);
        }
        let mut batch = sled::Batch::default();
        for (key, value) in pending {
            batch.insert(key, value);
        }
        // The checkpoint and the row count, as the view store writes them.
        batch.insert(
            &b"c/checkpoint"[..],
            &(done + keys.len() as u64).to_be_bytes()[..],
        );
        batch.insert(&b"m/rows"[..], &done.to_be_bytes()[..]);
        tree.apply_batch(batch)?;
        db.flush()?;
        spent += started.elapsed();
        done += keys.len() as u64;
    }
    let seconds = spent.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let events_per_second = events as f64 / seconds;
    Ok(StoreBound {
        events,
        value_bytes,
        batch: BATCH,
        seconds,
        events_per_second,
    })
}
