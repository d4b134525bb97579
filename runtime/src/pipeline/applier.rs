//! Applying one record to its subject's row: the projection called with the
//! row as it stands, transient failures retried with the view's backoff,
//! the guest's log records forwarded, and the new row versioned. One
//! [`Applier`] per thread that applies (the worker's own, or one per
//! parallel applier), each with its own instance of the projection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use projector_sdk::{Level, Update};

use super::failure::Failure;
use super::status::ViewStatus;
use crate::apply::Apply;
use crate::config::ViewConfig;
use crate::engine::{ApplyError, Retry};
use crate::event::Event;
use crate::store::StoredRow;

/// Applies records with one instance of a view's projection.
#[derive(Debug)]
pub struct Applier<A> {
    projection: A,
    retry: Retry,
    status: Arc<ViewStatus>,
}

impl<A: Apply> Applier<A> {
    /// An applier of `projection` with `config`'s retries, counting into
    /// `status`.
    pub fn new(projection: A, config: &ViewConfig, status: Arc<ViewStatus>) -> Self {
        Self {
            projection,
            retry: config.retry(),
            status,
        }
    }

    /// Another applier of the same projection, with its own instance.
    pub fn fork(&self) -> Self {
        Self {
            projection: self.projection.fork(),
            retry: self.retry,
            status: Arc::clone(&self.status),
        }
    }

    /// What built the rows.
    pub fn module_hash(&self) -> &str {
        self.projection.module_hash()
    }

    /// Apply `event` to `subject`'s row `before`. Returns the row after
    /// it (`Some(None)`: deleted), or `None` when the row does not change.
    ///
    /// # Errors
    /// The record's failure, after transient ones were retried.
    pub fn apply(
        &mut self,
        before: Option<&StoredRow>,
        event: &Event,
        subject: &str,
    ) -> Result<Option<Option<StoredRow>>, Failure> {
        let update = self
            .apply_with_retries(before.map(|row| &row.json), event, subject)
            .map_err(Failure::from)?;
        Ok(match update {
            Update::Set(json) => Some(Some(StoredRow {
                json,
                version: before.map_or(1, |row| row.version + 1),
                last_event_id: event.id().to_owned(),
            })),
            Update::Delete => before.is_some().then_some(None),
            Update::Ignore => None,
        })
    }

    fn apply_with_retries(
        &mut self,
        state: Option<&String>,
        event: &Event,
        subject: &str,
    ) -> Result<Update<String>, ApplyError> {
        let Self {
            projection,
            retry,
            status,
        } = self;
        retry.run(
            || {
                let started = Instant::now();
                let result = projection.apply(state, event);
                status
                    .histograms
                    .apply_seconds
                    .observe(started.elapsed().as_secs_f64());
                for record in projection.take_logs() {
                    log_guest(&record, subject, event);
                }
                let dropped = projection.take_dropped_logs();
                if dropped > 0 {
                    status
                        .counters
                        .guest_logs_dropped
                        .fetch_add(dropped, Ordering::Relaxed);
                    tracing::warn!(target: "projector::guest", subject, event = %event.id(), dropped, "guest log records dropped (over max_log_records_per_call)");
                }
                let recycled = projection.take_recycled();
                if recycled > 0 {
                    status
                        .counters
                        .instances_recycled
                        .fetch_add(recycled, Ordering::Relaxed);
                    tracing::debug!(subject, event = %event.id(), recycled, "projection instance replaced: its memory kept growing");
                }
                result
            },
            |attempt, err, wait| {
                tracing::warn!(subject, event = %event.id(), attempt, error = %err, ?wait, "transient failure; retrying");
                status.count(|c| &c.retries);
            },
        )
    }
}

fn log_guest(record: &projector_sdk::LogRecord, subject: &str, event: &Event) {
    let (id, offset) = (event.id(), event.offset());
    let message = &record.message;
    match record.level {
        Level::Trace => {
            tracing::trace!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Debug => {
            tracing::debug!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Info => {
            tracing::info!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Warn => {
            tracing::warn!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
        Level::Error => {
            tracing::error!(target: "projector::guest", subject, event = %id, offset, "{message}");
        }
    }
}
