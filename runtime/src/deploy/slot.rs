//! What readers see of a view across deploys: a [`ViewSlot`] holds the live
//! version, swapped in one step, and the versions beside it (the previous
//! one, kept for a rollback, and a shadow being built). [`Views`] is every
//! slot of a runtime, in config order.
//!
//! # What it promises
//!
//! - [`ViewSlot::live`] answers one version: a reader that takes it reads
//!   that version for the whole request (a page never mixes two).
//! - A swap changes the live version for every reader from one instant on,
//!   and tells watchers ([`ViewSlot::swaps`]) so they can resync.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::record::{Deployment, Version};
use crate::config::ViewConfig;
use crate::service::RunningView;
use crate::shutdown::{Shutdown, Stoppable};

/// The worker thread of a version, with the flag that stops it.
#[derive(Debug)]
struct VersionThread {
    shutdown: Shutdown,
    thread: Stoppable<Result<(), String>>,
}

/// One version of a view, running: what readers read, and its worker.
#[derive(Debug)]
pub struct RunningVersion {
    /// Which version it is.
    pub version: Version,
    /// Its rows, status and feed.
    pub view: Arc<RunningView>,
    thread: Mutex<Option<VersionThread>>,
    /// Its bound on records a second, while it is a shadow.
    rate: Option<crate::pipeline::throttle::Rate>,
}

impl RunningVersion {
    /// A version whose worker runs on `thread`, stopped by `shutdown`.
    pub fn new(
        version: Version,
        view: RunningView,
        shutdown: Shutdown,
        thread: Stoppable<Result<(), String>>,
        rate: Option<crate::pipeline::throttle::Rate>,
    ) -> Self {
        Self {
            version,
            view: Arc::new(view),
            thread: Mutex::new(Some(VersionThread { shutdown, thread })),
            rate,
        }
    }

    /// Its bound on records a second: `None` for a version that never had
    /// one, `Some(0)` once lifted.
    pub fn bound(&self) -> Option<u64> {
        self.rate
            .as_ref()
            .map(crate::pipeline::throttle::Rate::per_second)
    }

    /// Lift its bound on records a second: it is live now.
    pub fn unbound(&self) {
        if let Some(rate) = &self.rate {
            rate.lift();
        }
    }

    /// A version nothing runs (readers only): for tests of the API.
    pub fn idle(version: Version, view: RunningView) -> Self {
        Self {
            version,
            view: Arc::new(view),
            thread: Mutex::new(None),
            rate: None,
        }
    }

    /// Ask its worker to stop, without waiting.
    pub fn request_stop(&self) {
        if let Some(running) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            running.shutdown.request();
        }
    }

    /// Stop its worker (it commits what it applied) and wait for it; how it
    /// ended, `Ok` when it was stopped already.
    pub fn stop(&self) -> Result<(), String> {
        let running = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match running {
            None => Ok(()),
            Some(running) => {
                running.shutdown.request();
                running
                    .thread
                    .join()
                    .unwrap_or_else(|panicked| Err(panicked.to_string()))
            }
        }
    }

    /// True while its worker thread has not returned.
    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|running| !running.thread.is_finished())
    }
}

/// The versions of a view beside the live one.
#[derive(Debug, Default)]
pub struct Beside {
    /// The version the live one replaced.
    pub previous: Option<Arc<RunningVersion>>,
    /// The shadow being built.
    pub shadow: Option<Arc<RunningVersion>>,
}

/// One view as readers and deploys see it.
#[derive(Debug)]
pub struct ViewSlot {
    /// The view's config (with its static member id), which every version
    /// derives its own from.
    pub config: ViewConfig,
    live: RwLock<Arc<RunningVersion>>,
    /// The versions beside the live one.
    pub beside: Mutex<Beside>,
    /// The deployment record as stored; its lock serialises deploys,
    /// swaps and drops of this view.
    pub record: Mutex<Option<Deployment>>,
    swaps: tokio::sync::watch::Sender<u32>,
}

impl ViewSlot {
    /// A slot whose live version is `live`, with `record` as stored.
    pub fn new(config: ViewConfig, live: RunningVersion, record: Option<Deployment>) -> Self {
        let number = live.version.number;
        Self {
            config,
            live: RwLock::new(Arc::new(live)),
            beside: Mutex::new(Beside::default()),
            record: Mutex::new(record),
            swaps: tokio::sync::watch::Sender::new(number),
        }
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The live version.
    pub fn live(&self) -> Arc<RunningVersion> {
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The live version's rows, status and feed.
    pub fn live_view(&self) -> Arc<RunningView> {
        Arc::clone(&self.live().view)
    }

    /// The versions beside the live one, locked.
    pub fn beside(&self) -> std::sync::MutexGuard<'_, Beside> {
        self.beside.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Make `version` live, and return the one it replaces. Every reader
    /// from now on reads `version`; watchers are told.
    pub fn swap(&self, version: Arc<RunningVersion>) -> Arc<RunningVersion> {
        let number = version.version.number;
        let replaced = std::mem::replace(
            &mut *self.live.write().unwrap_or_else(PoisonError::into_inner),
            version,
        );
        self.swaps.send_replace(number);
        replaced
    }

    /// True once a module was deployed to the view (it has a deployment
    /// record).
    pub fn is_deployed(&self) -> bool {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// A receiver told the live version's number at every swap.
    pub fn swaps(&self) -> tokio::sync::watch::Receiver<u32> {
        self.swaps.subscribe()
    }

    /// Every running version of the view: live, previous, shadow.
    pub fn versions(&self) -> Vec<Arc<RunningVersion>> {
        let beside = self.beside();
        std::iter::once(self.live())
            .chain(beside.previous.iter().cloned())
            .chain(beside.shadow.iter().cloned())
            .collect()
    }
}

/// Every view of a runtime, in config order.
#[derive(Debug, Clone, Default)]
pub struct Views {
    slots: Arc<[Arc<ViewSlot>]>,
}

impl Views {
    /// The views of `slots`.
    pub fn new(slots: Vec<Arc<ViewSlot>>) -> Self {
        Self {
            slots: slots.into(),
        }
    }

    /// Views that are only read (nothing runs them, nothing deploys): for
    /// tests of the API.
    pub fn fixed(views: &[RunningView]) -> Self {
        Self::new(
            views
                .iter()
                .map(|view| {
                    let version = Version {
                        number: view.info.version,
                        module_hash: view.info.module_hash.clone(),
                    };
                    let config = ViewConfig::new(
                        &view.info.name,
                        std::path::PathBuf::new(),
                        view.info.topics.clone(),
                    );
                    Arc::new(ViewSlot::new(
                        config,
                        RunningVersion::idle(version, view.clone()),
                        None,
                    ))
                })
                .collect(),
        )
    }

    /// Every slot, in config order.
    pub fn slots(&self) -> &[Arc<ViewSlot>] {
        &self.slots
    }

    /// The slot of view `name`.
    pub fn slot(&self, name: &str) -> Option<&Arc<ViewSlot>> {
        self.slots.iter().find(|slot| slot.name() == name)
    }

    /// The live version of every view, in config order.
    pub fn live(&self) -> Vec<Arc<RunningView>> {
        self.slots.iter().map(|slot| slot.live_view()).collect()
    }

    /// Every running version of every view.
    pub fn versions(&self) -> Vec<Arc<RunningVersion>> {
        self.slots.iter().flat_map(|slot| slot.versions()).collect()
    }
}
