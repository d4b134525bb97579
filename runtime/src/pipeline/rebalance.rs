//! The one rebalance path of a view: what happens when partitions are
//! assigned to it or taken away. The Kafka consumer's callbacks
//! ([`super::consumer_context::ViewContext`]) call it with the consumer as the
//! source; the model test and the engine-only benchmark call it through
//! [`super::Worker::assign`] and [`super::Worker::revoke`] with sources in
//! memory. So the code under test is the code the consumer runs.
//!
//! # What it promises
//!
//! - **Assignment (G2).** Each partition starts at the next offset the view
//!   knows: what it applied in memory, else the store's checkpoint, else the
//!   partition's start. A partition stopped by `on_error = "stop"` is paused
//!   again; one paused because its start was unknown is resumed. The store's
//!   checkpoints are committed to Kafka then, never past a record the policy
//!   still holds, so the group's offsets catch up with a flush whose offset
//!   commit a crash cut off.
//! - **Revocation (G4).** The pending batch is committed to the store and
//!   flushed, and its offsets committed to Kafka synchronously, before the
//!   partitions go, so that the next owner's group offsets are current.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::source::{Source, give_offsets};
use super::state::{ViewState, lock};
use super::status::ViewStatus;
use super::topic_partition::TopicPartition;
use crate::store::{Store, StoreError};

/// `partitions` are assigned to the view (in addition to the ones it has,
/// when `incremental`): start each where the view is, and pause the
/// stopped ones.
pub fn assign<S: Store>(
    state: &Mutex<ViewState<S>>,
    status: &ViewStatus,
    source: &impl Source,
    partitions: &[TopicPartition],
    incremental: bool,
) {
    let mut guard = lock(state);
    let (starts, durable) = guard.start_offsets(partitions);
    let assignment: Vec<_> = partitions.iter().cloned().zip(starts).collect();
    if let Err(err) = source.take_partitions(&assignment, incremental) {
        tracing::error!(error = %err, "cannot apply the new assignment");
        return;
    }
    let assigned = guard.assigned(partitions, incremental, status);
    drop(guard);
    give_offsets(source, &durable);
    for (topic, partition) in &assigned.restarted {
        if let Err(err) = source.resume(topic, *partition) {
            tracing::error!(topic = %topic, partition, error = %err, "cannot resume a partition that starts again");
        }
    }
    for (topic, partition) in &assigned.stopped {
        if let Err(err) = source.pause(topic, *partition) {
            tracing::error!(topic = %topic, partition, error = %err, "cannot pause a stopped partition; its records are ignored");
        }
    }
}

/// `partitions` are taken from the view: commit what was applied, give its
/// offsets to the group, then let the partitions go.
///
/// # Errors
/// When the store fails; the batch stays pending, and the worker's next
/// commit reports it and stops the view. The partitions go regardless: the
/// group has given them to another member.
pub fn revoke<S: Store>(
    state: &Mutex<ViewState<S>>,
    status: &ViewStatus,
    source: &impl Source,
    partitions: &[TopicPartition],
    incremental: bool,
) -> Result<(), StoreError> {
    tracing::info!(
        ?partitions,
        "partitions revoked; committing what was applied"
    );
    // Every record handed to an applier thread is in the batch first.
    let in_flight = lock(state).in_flight();
    if !in_flight.wait_idle() {
        // A batch missing records must not be committed; the worker stops
        // the view at its next commit.
        tracing::error!("an applier thread died; the revoked partitions go without a commit");
        if let Err(err) = source.drop_partitions(partitions, incremental) {
            tracing::error!(error = %err, "cannot drop the revoked partitions");
        }
        return Ok(());
    }
    let released = lock(state).release(partitions, status);
    match &released {
        Ok(offsets) if offsets.count() > 0 => {
            if let Err(err) = source.commit_offsets_now(offsets) {
                // The store holds the checkpoints; a missed Kafka commit
                // only means redeliveries for the next owner.
                status
                    .counters
                    .offset_commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "offset commit on revocation failed");
            }
        }
        Ok(_) => {}
        Err(err) => {
            tracing::error!(error = %err, "cannot commit the batch on revocation");
        }
    }
    if let Err(err) = source.drop_partitions(partitions, incremental) {
        tracing::error!(error = %err, "cannot drop the revoked partitions");
    }
    released.map(|_| ())
}
