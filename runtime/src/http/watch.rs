//! `GET /v1/views/{view}/rows/{subject}/watch`: a subject's row as
//! Server-Sent Events.
//!
//! The stream opens with `current` (the row now, `row: null` when there is
//! none), then sends `set` or `delete` for every committed change of the
//! subject, in apply order. A watcher that falls more than the feed's
//! capacity behind receives `resync` with the row as it is now, and carries
//! on from there: memory per watcher is bounded. The stream ends when the
//! server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::broadcast::{self, error::RecvError};

use super::rows::{ReadQuery, raw};
use super::{ApiError, ApiState, MAX_WATCHERS, bad_request};
use crate::deploy::ViewSlot;
use crate::pipeline::feed::ChangeBatch;
use crate::service::RunningView;
use crate::store::{StoreError, StoredRow, ViewStore};

/// The data of one watch event.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The subject.
    pub subject: String,
    /// The row's version; `None` when there is no row.
    pub version: Option<u64>,
    /// The row; `None` when there is none (deleted or never created).
    pub row: Option<Box<RawValue>>,
}

/// One open watch stream, counted against [`MAX_WATCHERS`].
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn acquire(watchers: &Arc<AtomicUsize>) -> Result<Self, ApiError> {
        let taken = watchers.fetch_add(1, Ordering::AcqRel);
        let slot = Self(Arc::clone(watchers));
        if taken >= MAX_WATCHERS {
            return Err(ApiError::TooManyWatchers);
        }
        Ok(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Watch {
    view: Arc<RunningView>,
    /// The view's slot and its swaps, when a deploy can swap the view.
    swaps: Option<(Arc<ViewSlot>, tokio::sync::watch::Receiver<u32>)>,
    subject: String,
    changes: broadcast::Receiver<ChangeBatch>,
    pending: VecDeque<Event>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    done: bool,
    _slot: Slot,
}

fn event(kind: &'static str, subject: &str, row: Option<&StoredRow>) -> Event {
    let data = row
        .map(|row| raw(subject, row))
        .transpose()
        .map(|raw_row| WatchEvent {
            subject: subject.to_owned(),
            version: row.map(|row| row.version),
            row: raw_row,
        });
    match data.map(|data| serde_json::to_string(&data)) {
        Ok(Ok(json)) => Event::default().event(kind).data(json),
        Ok(Err(err)) => error_event(&err.to_string()),
        Err(err) => error_event(&err.to_string()),
    }
}

fn error_event(message: &str) -> Event {
    Event::default()
        .event("error")
        .data(serde_json::json!({ "error": message }).to_string())
}

/// Subscribe to `view`'s changes and read `subject`'s row, atomically.
fn subscribe(
    view: &RunningView,
    subject: &str,
) -> (
    broadcast::Receiver<ChangeBatch>,
    Result<Option<StoredRow>, StoreError>,
) {
    view.feed.subscribe(|| view.rows.row(subject))
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let swaps = &mut self.swaps;
            let swapped = async {
                match swaps {
                    Some((_, swaps)) => swaps.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let received = tokio::select! {
                _ = self.shutdown.wait_for(|closed| *closed) => return None,
                true = swapped => None,
                received = self.changes.recv() => Some(received),
            };
            let Some(received) = received else {
                // Another version is live: its row, then its changes.
                if let Some((slot, _)) = &self.swaps {
                    self.view = slot.live_view();
                }
                self.resync();
                continue;
            };
            match received {
                Ok(batch) => {
                    for change in batch.iter().filter(|c| c.subject == self.subject) {
                        let kind = if change.row.is_some() {
                            "set"
                        } else {
                            "delete"
                        };
                        self.pending
                            .push_back(event(kind, &self.subject, change.row.as_ref()));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(subject = %self.subject, missed, "watcher lagged; resyncing");
                    self.resync();
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Subscribe again and queue `resync` with the row as it is now.
    fn resync(&mut self) {
        let (changes, row) = subscribe(&self.view, &self.subject);
        self.changes = changes;
        match row {
            Ok(row) => {
                self.pending
                    .push_back(event("resync", &self.subject, row.as_ref()));
            }
            Err(err) => {
                self.pending.push_back(error_event(&err.to_string()));
                self.done = true;
            }
        }
    }
}

pub(super) async fn watch(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Path((view_name, subject)) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let view_slot = Arc::clone(state.slot(&view_name)?);
    // A standby's copy changes by whole changelog batches, with no change
    // events: a watch would miss them.
    super::owned(&view_slot.live_view(), "watch a row")?;
    let swaps = view_slot.swaps();
    let view = state
        .read_view(&view_name, query.min_offsets.as_deref(), query.timeout_ms)
        .await?;
    let slot = Slot::acquire(&state.watchers)?;
    let (changes, row) = subscribe(&view, &subject);
    let first = event("current", &subject, row?.as_ref());
    let watch = Watch {
        view,
        swaps: Some((view_slot, swaps)),
        subject,
        changes,
        pending: VecDeque::from([first]),
        shutdown: state.shutdown.clone(),
        done: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(watch, Watch::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::feed::Change;
    use crate::store::{SledStore, Store, ViewBatch};

    fn row(city: &str, version: u64) -> StoredRow {
        StoredRow {
            json: serde_json::json!({ "city": city }).to_string(),
            version,
            last_event_id: format!("e{version}"),
        }
    }

    /// Commit `row` for `subject` as the pipeline does: store, then feed.
    fn commit(view: &RunningView, subject: &str, before: Option<StoredRow>, after: &StoredRow) {
        let mut batch = ViewBatch::new();
        batch.change(subject, before, Some(after.clone()));
        let change = Change {
            subject: subject.to_owned(),
            row: Some(after.clone()),
        };
        view.feed
            .commit(|| view.rows.commit(&batch), vec![change])
            .unwrap();
    }

    #[test]
    fn a_lagging_watcher_resyncs_to_the_current_row_and_carries_on() {
        let dir = std::env::temp_dir().join(format!("projector-watch-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let store = SledStore::open(&dir).unwrap();
        // Two batches of backlog per watcher.
        let view = RunningView::for_tests(store.open_view("v", "h", &[], None).unwrap(), 2);
        let (changes, current) = subscribe(&view, "s");
        assert_eq!(current.unwrap(), None);
        let (_close, shutdown) = tokio::sync::watch::channel(false);
        let watchers = Arc::new(AtomicUsize::new(0));
        let watch = Watch {
            view: Arc::new(view.clone()),
            swaps: None,
            subject: "s".to_owned(),
            changes,
            pending: VecDeque::new(),
            shutdown,
            done: false,
            _slot: Slot::acquire(&watchers).unwrap(),
        };
        // Five changes while the watcher reads nothing: three are dropped.
        let mut before = None;
        for version in 1..=5 {
            let after = row(&format!("city-{version}"), version);
            commit(&view, "s", before.take(), &after);
            before = Some(after);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // An event's Debug output holds its name and data.
        let render = |event: Event| format!("{event:?}");
        let (event, watch) = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), watch.next()).await })
            .unwrap()
            .unwrap();
        let first = render(event.unwrap());
        assert!(first.contains("resync"), "{first}");
        assert!(
            first.contains("city-5"),
            "the resync carries the row now: {first}"
        );
        // After the resync, changes arrive one by one again.
        commit(&view, "s", before, &row("city-6", 6));
        let (event, watch) = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), watch.next()).await })
            .unwrap()
            .unwrap();
        let next = render(event.unwrap());
        assert!(next.contains("set") && next.contains("city-6"), "{next}");
        assert_eq!(watchers.load(Ordering::Relaxed), 1);
        drop(watch);
        assert_eq!(watchers.load(Ordering::Relaxed), 0, "the slot is released");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn watchers_are_bounded() {
        let watchers = Arc::new(AtomicUsize::new(0));
        let slots: Vec<Slot> = (0..MAX_WATCHERS)
            .map(|_| Slot::acquire(&watchers).unwrap())
            .collect();
        assert!(matches!(
            Slot::acquire(&watchers),
            Err(ApiError::TooManyWatchers)
        ));
        drop(slots);
        assert!(Slot::acquire(&watchers).is_ok());
    }
}
