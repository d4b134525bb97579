//! Live redeploy: a new module builds a shadow of its view (its own rows,
//! checkpoints, consumer group and changelog, replaying the view's topics
//! from their earliest offsets) while the live version serves, then is
//! swapped in at one instant; the replaced version keeps applying, so a
//! rollback is a swap back, until `drop-previous`.
//!
//! # What it promises
//!
//! - A module is checked as `projector inspect` checks it before anything
//!   starts; a refusal changes nothing.
//! - A swap is one durable write of the deployment record, then one swap
//!   of the live version in memory: after a crash, either the old or the
//!   new version is live, never neither; from the swap on every read sees
//!   the new version, none a mix.
//! - Before it swaps, the incoming version has durably applied everything
//!   the outgoing one had applied: a read that waits for offsets it saw
//!   applied (`min_offsets`) never sees the view go back.
//! - A shadow whose module fails on more records than
//!   `[deploy] max_shadow_failures` (or that stops a partition, or whose
//!   worker fails) stops itself and is dropped; the live view is untouched.
//!
//! # Layout
//!
//! - this file: [`Deployer`], the operations (deploy, swap, rollback,
//!   drop-previous, cancel), the watch over a shadow, and their reports;
//! - `record`: the deployment record kept in the store, and how a version
//!   is named and configured;
//! - `slot`: what readers see of a view across swaps.

mod record;
mod slot;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use record::{Deployment, Shadow, SwapMode, Version, drop_other_versions, store_name};
pub use slot::{Beside, RunningVersion, ViewSlot, Views};

use crate::config::ViewConfig;
use crate::pipeline::PartitionState;
use crate::service::{Launcher, RunningView};
use crate::shutdown::{Shutdown, Stoppable};
use crate::store::{Store, StoreError, ViewStore};

/// How long a swap waits for the incoming version to pass what the live
/// one had applied.
const FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a shadow's watch looks at it.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// What a deploy is asked to do besides building the shadow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployOptions {
    /// When the shadow is swapped in.
    pub swap: SwapMode,
    /// Build the shadow even where a topic's earliest records are gone.
    pub allow_partial_history: bool,
}

/// Why a deploy operation was refused or failed. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No view has that name.
    #[error("no view named {0:?}")]
    UnknownView(String),
    /// The module cannot serve as a projection.
    #[error("the module cannot run as a projection: {0}")]
    NotAComponent(String),
    /// A shadow of the view is being built already.
    #[error(
        "a deploy of view {view} is under way (version {version}); watch it with \
         `projector view deploy --watch {view}`, or cancel it with \
         `projector view deploy --cancel {view}`"
    )]
    Busy {
        /// The view.
        view: String,
        /// The shadow's version.
        version: u32,
    },
    /// The view is a standby copy on this runtime.
    #[error(
        "view {0} is a standby copy on this runtime: deploy its module on the runtime that owns \
         it, and point this runtime's config at the same module"
    )]
    Standby(String),
    /// The view runs that module already.
    #[error("view {view} already runs module {hash}")]
    SameModule {
        /// The view.
        view: String,
        /// The module's hash.
        hash: String,
    },
    /// A topic no longer holds its earliest records.
    #[error(
        "topic {topic} partition {partition} starts at offset {earliest}: the start of its \
         history is gone (retention or a deletion), so a shadow would build the view from part \
         of it. Deploy with --allow-partial-history to accept that"
    )]
    HistoryGone {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Its earliest offset.
        earliest: i64,
    },
    /// There is no shadow to swap in or cancel.
    #[error("view {0} has no shadow being built: deploy a module first")]
    NoShadow(String),
    /// The shadow has not caught up.
    #[error("view {view}'s shadow has not caught up: {detail}")]
    NotCaughtUp {
        /// The view.
        view: String,
        /// How far it is.
        detail: String,
    },
    /// There is no previous version.
    #[error(
        "view {0} has no previous version (it was never deployed, or the previous one was \
         dropped)"
    )]
    NoPrevious(String),
    /// The broker could not say what the deploy needs to know.
    #[error("view {view}: {reason}")]
    Kafka {
        /// The view.
        view: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A version could not be started or stopped.
    #[error("{0}")]
    Start(String),
}

impl DeployError {
    /// True when the request itself is at fault, or the view's state
    /// refuses it (as opposed to a failure of the runtime or the broker).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Kafka { .. } | Self::Store(_) | Self::Start(_))
    }
}

/// One version in a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionReport {
    /// Its number.
    pub version: u32,
    /// SHA-256 of its module.
    pub module_hash: String,
    /// Its rows.
    pub rows: u64,
    /// Records not yet applied over its partitions, when known.
    pub lag: Option<i64>,
    /// Why it does not apply any more (its worker failed or stopped), if
    /// so: a version kept for a rollback that cannot be swapped in.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// A shadow in a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShadowReport {
    /// Its version.
    pub version: u32,
    /// SHA-256 of its module.
    pub module_hash: String,
    /// `building`, `caught-up` (lag within `[deploy] swap_max_lag`; with
    /// `swap = manual` it waits for `projector view swap`), or `failed`.
    pub state: String,
    /// Why it failed.
    pub failed: Option<String>,
    /// When it is swapped in.
    pub swap: SwapMode,
    /// Records replayed so far, over every partition.
    pub replayed: i64,
    /// Records to replay up to the partitions' high watermarks.
    pub total: i64,
    /// Records not yet applied, when known.
    pub lag: Option<i64>,
    /// Replay rate since the deploy began.
    pub records_per_second: f64,
    /// Seconds left at that rate, when it can tell.
    pub eta_seconds: Option<f64>,
    /// Records its module failed on (errors, traps, deadlines, limits; not
    /// records no module could apply).
    pub failures: u64,
    /// Records this run of it applied (since the deploy, or since the
    /// restart that resumed it).
    #[serde(default)]
    pub applied: u64,
    /// Rows it holds.
    pub rows: u64,
    /// When the deploy began, milliseconds since the epoch.
    pub started_ms: i64,
}

/// A view's deployment: its live version, the previous one, a shadow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploymentReport {
    /// The view.
    pub view: String,
    /// The version readers see.
    pub live: VersionReport,
    /// The version a rollback returns to.
    pub previous: Option<VersionReport>,
    /// The shadow being built, or the last one that failed.
    pub shadow: Option<ShadowReport>,
}

/// What `drop-previous` freed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dropped {
    /// The view.
    pub view: String,
    /// The version dropped.
    pub version: u32,
    /// Bytes of keys and values removed from the store.
    pub bytes: u64,
}

/// Where a version stands over its partitions.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    replayed: i64,
    total: i64,
    /// `None` while it cannot tell (not joined, a partition not assigned or
    /// its high watermark not known yet).
    lag: Option<i64>,
}

/// Where `view` stands: records replayed and to replay, and its lag once
/// every partition of its topics is assigned to it with a known high
/// watermark.
fn progress(view: &RunningView) -> Progress {
    let status = &view.status;
    let partitions = status.partitions();
    let mut progress = Progress::default();
    let mut known = status.has_joined();
    let mut lag = 0;
    for topic in &view.info.topics {
        let Some(count) = status.partitions_of(topic) else {
            known = false;
            continue;
        };
        for partition in 0..count {
            let Some(p) = partitions.get(&(topic.clone(), partition)) else {
                known = false;
                continue;
            };
            let low = p.low_watermark.unwrap_or(0);
            let position = p.checkpoint.unwrap_or(low);
            progress.replayed += (position - low).max(0);
            match (p.high_watermark, p.lag(), p.assigned) {
                (Some(high), Some(behind), true) => {
                    progress.total += (high - low).max(0);
                    lag += behind;
                }
                _ => known = false,
            }
        }
    }
    progress.lag = known.then_some(lag);
    progress
}

/// Records `view`'s module failed on (an error, trap, deadline or limit;
/// not records no module could apply, which every version fails on).
fn failures(view: &RunningView) -> u64 {
    view.status.module_failures()
}

/// Why `version` cannot serve, if it cannot: its worker failed or stopped.
fn stopped(version: &RunningVersion) -> Option<String> {
    if let Some(err) = version.view.status.fatal_error() {
        return Some(format!("its worker failed: {err}"));
    }
    (!version.is_running()).then(|| "its worker stopped".to_owned())
}

fn version_report(version: &RunningVersion) -> VersionReport {
    VersionReport {
        version: version.version.number,
        module_hash: version.version.module_hash.clone(),
        rows: crate::store::ViewStore::row_count(&version.view.rows),
        lag: progress(&version.view).lag,
        stopped: stopped(version),
    }
}

/// One of the versions beside the live one: the one a swap brings in, or
/// a cancel or a drop takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The shadow: a deploy's swap, a cancel.
    Shadow,
    /// The previous version: a rollback, a drop.
    Previous,
}

/// Deploys new modules to the views of a runtime, and watches the shadows
/// they build.
#[derive(Debug)]
pub struct Deployer {
    launcher: Arc<Launcher>,
    views: Views,
    shutdown: Shutdown,
    watches: Mutex<Vec<Stoppable<()>>>,
}

impl Deployer {
    /// A deployer of `views`, starting versions with `launcher`; its
    /// watches stop with `shutdown`.
    pub fn new(launcher: Arc<Launcher>, views: Views, shutdown: Shutdown) -> Self {
        Self {
            launcher,
            views,
            shutdown,
            watches: Mutex::new(Vec::new()),
        }
    }

    /// Watch every shadow the start resumed.
    pub fn resume(self: &Arc<Self>) {
        for slot in self.views.slots() {
            let shadow = slot.beside().shadow.clone();
            if let Some(shadow) = shadow {
                tracing::info!(view = %slot.name(), version = shadow.version.number, "resuming the build of a shadow from its own checkpoints");
                self.watch(Arc::clone(slot), shadow);
            }
        }
    }

    /// Wait for every watch to end (the shutdown was requested).
    pub fn stop(&self) {
        let watches = std::mem::take(&mut *self.watches_locked());
        for watch in watches {
            let _ = watch.join();
        }
    }

    fn watches_locked(&self) -> MutexGuard<'_, Vec<Stoppable<()>>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, view: &str) -> Result<Arc<ViewSlot>, DeployError> {
        self.views
            .slot(view)
            .cloned()
            .ok_or_else(|| DeployError::UnknownView(view.to_owned()))
    }

    /// The views this deployer serves.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// The `[deploy]` settings.
    pub fn settings(&self) -> &crate::config::DeployConfig {
        &self.launcher.deploy
    }

    /// Deploy `bytes` as view `view`'s new module: checked, kept in the
    /// data directory, and built as a shadow that replays the view's
    /// topics from their earliest offsets, swapped in as `options` say.
    ///
    /// # Errors
    /// A refusal (nothing changed) or a failure to start the shadow.
    pub fn deploy(
        self: &Arc<Self>,
        view: &str,
        bytes: &[u8],
        options: DeployOptions,
    ) -> Result<DeploymentReport, DeployError> {
        self.refuse_when_stopping()?;
        let slot = self.slot(view)?;
        if slot.live_view().info.role == crate::config::Role::Standby {
            return Err(DeployError::Standby(view.to_owned()));
        }
        let module = self
            .launcher
            .engine()
            .load(bytes)
            .map_err(|err| DeployError::NotAComponent(format!("{err:#}")))?;
        let busy = |record: &Option<Deployment>| -> Result<(), DeployError> {
            let building = record
                .as_ref()
                .and_then(|record| record.shadow.as_ref())
                .filter(|shadow| shadow.failed.is_none());
            match building {
                Some(shadow) => Err(DeployError::Busy {
                    view: view.to_owned(),
                    version: shadow.version.number,
                }),
                None => Ok(()),
            }
        };
        busy(&lock(&slot.record))?;
        if module.hash() == slot.live().version.module_hash {
            return Err(DeployError::SameModule {
                view: view.to_owned(),
                hash: module.hash().to_owned(),
            });
        }
        // Checked without the record's lock: the broker may take seconds.
        if !options.allow_partial_history {
            self.check_history(&slot.config)?;
        }
        self.launcher
            .keep_module(module.hash(), bytes)
            .map_err(|err| DeployError::Start(format!("{err:#}")))?;
        // The shadow reserved in the record, so a second deploy meanwhile
        // is refused and a crash from here on resumes it.
        let store = self.launcher.store();
        let version = {
            let mut record = lock(&slot.record);
            busy(&record)?;
            let mut next = record
                .clone()
                .unwrap_or_else(|| Deployment::first(&slot.live().version.module_hash));
            let version = Version {
                number: next.next_number,
                module_hash: module.hash().to_owned(),
            };
            next.next_number += 1;
            next.shadow = Some(Shadow {
                version: version.clone(),
                swap: options.swap,
                failed: None,
                started_ms: crate::clock::unix_ms(),
            });
            // Whatever an interrupted deploy left under that name goes first.
            store.drop_view(&version.store_name(view))?;
            next.save(store.as_ref(), view)?;
            *record = Some(next);
            version
        };
        // Started without the record's lock: opening its clients and
        // topics may take seconds, and reports read the record meanwhile.
        // A panic while it starts must not leave the reservation behind.
        let launched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.launcher.launch(
                &slot.config,
                &version,
                &module,
                self.launcher.deploy.shadow_threads,
                crate::service::Priority::Low,
            )
        }))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("starting the shadow panicked")));
        let mut record = lock(&slot.record);
        let reserved = record
            .as_ref()
            .and_then(|record| record.shadow.as_ref())
            .is_some_and(|shadow| shadow.version == version && shadow.failed.is_none());
        let shadow = match launched {
            Ok(shadow) if reserved => Arc::new(shadow),
            Ok(shadow) => {
                // Cancelled while it started.
                drop(record);
                self.retire(view, &shadow)?;
                return Err(DeployError::NoShadow(view.to_owned()));
            }
            Err(err) => {
                if let Some(next) = record.as_mut().filter(|_| reserved) {
                    next.shadow = None;
                    next.save(store.as_ref(), view)?;
                }
                drop(record);
                store.drop_view(&version.store_name(view))?;
                return Err(DeployError::Start(format!("{err:#}")));
            }
        };
        slot.beside().shadow = Some(Arc::clone(&shadow));
        drop(record);
        if self.shutdown.requested() {
            // The runtime began to stop meanwhile and will not stop this
            // one: stopped here, it resumes at the next start.
            let _ = shadow.stop();
            return Err(DeployError::Start(
                "the runtime is stopping; the shadow resumes when it starts again".to_owned(),
            ));
        }
        tracing::info!(view, version = version.number, module = %version.module_hash, swap = ?options.swap, "deploy: building a shadow of the view with the new module");
        self.watch(Arc::clone(&slot), shadow);
        Ok(self.report_of(&slot))
    }

    /// Refuse an operation once the runtime is stopping.
    fn refuse_when_stopping(&self) -> Result<(), DeployError> {
        if self.shutdown.requested() {
            return Err(DeployError::Start(
                "the runtime is stopping; deploy after it starts again".to_owned(),
            ));
        }
        Ok(())
    }

    /// Refuse a topic whose earliest records are gone.
    fn check_history(&self, config: &ViewConfig) -> Result<(), DeployError> {
        for topic in &config.topics {
            let earliest = crate::kafka::earliest_offsets(
                self.launcher.broker(),
                topic,
                Duration::from_secs(30),
            )
            .map_err(|err| DeployError::Kafka {
                view: config.name.clone(),
                reason: format!("cannot read the earliest offsets of topic {topic}: {err}"),
            })?;
            if let Some((partition, earliest)) =
                earliest.into_iter().find(|(_, earliest)| *earliest > 0)
            {
                return Err(DeployError::HistoryGone {
                    topic: topic.clone(),
                    partition,
                    earliest,
                });
            }
        }
        Ok(())
    }

    /// Watch `shadow` of `slot` on a thread of its own until it is swapped
    /// in, fails, or is cancelled.
    fn watch(self: &Arc<Self>, slot: Arc<ViewSlot>, shadow: Arc<RunningVersion>) {
        let deployer = Arc::clone(self);
        let name = format!("deploy-{}", slot.name());
        let spawned = Stoppable::spawn(name, &self.shutdown, move |shutdown| {
            deployer.watch_until_done(&slot, &shadow, shutdown);
        });
        match spawned {
            Ok(watch) => {
                let mut watches = self.watches_locked();
                watches.retain(|watch| !watch.is_finished());
                watches.push(watch);
            }
            Err(err) => {
                tracing::error!(error = %err, "deploy: cannot start the thread that watches the shadow; swap it by hand");
            }
        }
    }

    fn watch_until_done(&self, slot: &ViewSlot, shadow: &Arc<RunningVersion>, shutdown: &Shutdown) {
        let view = slot.name();
        while !shutdown.requested() {
            let current = slot.beside().shadow.clone();
            if !current.is_some_and(|current| Arc::ptr_eq(&current, shadow)) {
                return;
            }
            if let Some(reason) = self.failure_of(shadow) {
                tracing::error!(view, version = shadow.version.number, reason = %reason, "deploy: the shadow stops itself; the live view is untouched");
                if let Err(err) = self.fail(slot, shadow, &reason) {
                    tracing::error!(view, error = %err, "deploy: cannot record the shadow's failure");
                }
                return;
            }
            let auto = lock(&slot.record)
                .as_ref()
                .and_then(|record| record.shadow.as_ref())
                .is_some_and(|s| s.swap == SwapMode::Auto);
            if auto && self.lag_within_bound(&shadow.view).is_ok() {
                match self.swap_in(slot, Which::Shadow) {
                    Ok(_) => return,
                    Err(err) => {
                        tracing::info!(view, error = %err, "deploy: not swapped yet");
                    }
                }
            }
            std::thread::sleep(WATCH_INTERVAL);
        }
    }

    /// Why `shadow` must stop, if it must.
    fn failure_of(&self, shadow: &RunningVersion) -> Option<String> {
        let view = &shadow.view;
        if let Some(why) = stopped(shadow) {
            return Some(why);
        }
        if let Some(((topic, partition), p)) = view
            .status
            .partitions()
            .into_iter()
            .find(|(_, p)| p.state == PartitionState::Stopped)
        {
            return Some(format!(
                "its module stopped partition {topic}/{partition}: {}",
                p.last_error.unwrap_or_default()
            ));
        }
        let failed = failures(view);
        let bound = self.launcher.deploy.max_shadow_failures;
        (failed > bound).then(|| {
            format!(
                "its module failed on {failed} records, more than [deploy] max_shadow_failures = {bound}"
            )
        })
    }

    /// Ok when `view` is within `[deploy] swap_max_lag`, else how far it
    /// is.
    fn lag_within_bound(&self, view: &RunningView) -> Result<(), String> {
        let bound = self.launcher.deploy.swap_max_lag;
        match progress(view).lag {
            None => Err("its position on every partition is not known yet".to_owned()),
            Some(lag) if u64::try_from(lag).unwrap_or(u64::MAX) > bound => Err(format!(
                "{lag} records behind, more than [deploy] swap_max_lag = {bound}"
            )),
            Some(_) => Ok(()),
        }
    }

    /// Stop `shadow` for `reason`, record why, and drop its rows; nothing
    /// when it is no longer the view's shadow (swapped in, cancelled).
    fn fail(
        &self,
        slot: &ViewSlot,
        shadow: &Arc<RunningVersion>,
        reason: &str,
    ) -> Result<(), DeployError> {
        let mut saved = Ok(());
        {
            let mut record = lock(&slot.record);
            let mut beside = slot.beside();
            if !beside
                .shadow
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, shadow))
            {
                return Ok(());
            }
            // Out of reach of a swap first, then recorded: a crash from here
            // on drops its rows at the next start.
            beside.shadow = None;
            drop(beside);
            if let Some(next) = record.as_mut()
                && let Some(recorded) = next.shadow.as_mut()
            {
                recorded.failed = Some(reason.to_owned());
                saved = next.save(self.launcher.store().as_ref(), slot.name());
            }
        }
        // Stopped whatever the save did: nothing else can reach it now.
        if let Err(err) = shadow.stop() {
            tracing::warn!(view = %slot.name(), error = %err, "deploy: the failed shadow's worker ended with an error");
        }
        saved?;
        self.launcher
            .store()
            .drop_view(&shadow.version.store_name(slot.name()))?;
        Ok(())
    }

    /// Swap the shadow of view `view` in now (it must have caught up): what
    /// `projector view swap` asks for a deploy with `swap = manual`.
    ///
    /// # Errors
    /// When there is no shadow, it has not caught up, or the store fails.
    pub fn swap(&self, view: &str) -> Result<DeploymentReport, DeployError> {
        let slot = self.slot(view)?;
        self.swap_in(&slot, Which::Shadow)?;
        Ok(self.report_of(&slot))
    }

    /// Swap the previous version of view `view` back in; the version it
    /// replaces becomes the previous one (so a rollback can be undone).
    ///
    /// # Errors
    /// When there is no previous version, or the store fails.
    pub fn rollback(&self, view: &str) -> Result<DeploymentReport, DeployError> {
        let slot = self.slot(view)?;
        self.swap_in(&slot, Which::Previous)?;
        Ok(self.report_of(&slot))
    }

    /// Make `incoming` live: once, with the live version's commits held, it
    /// has committed everything the live version had, one durable write of
    /// the record, then the swap readers see, still under the hold. A
    /// shadow's swap drops the version that was previous before.
    fn swap_in(&self, slot: &ViewSlot, incoming: Which) -> Result<(), DeployError> {
        self.refuse_when_stopping()?;
        let view = slot.name();
        let not_caught_up = |detail: String| DeployError::NotCaughtUp {
            view: view.to_owned(),
            detail,
        };
        let coming = match incoming {
            Which::Shadow => {
                let shadow = slot
                    .beside()
                    .shadow
                    .clone()
                    .ok_or_else(|| DeployError::NoShadow(view.to_owned()))?;
                self.lag_within_bound(&shadow.view).map_err(not_caught_up)?;
                shadow
            }
            Which::Previous => slot
                .beside()
                .previous
                .clone()
                .ok_or_else(|| DeployError::NoPrevious(view.to_owned()))?,
        };
        if let Some(why) = stopped(&coming) {
            return Err(DeployError::Start(format!(
                "view {view}: version {} cannot be swapped in: {why}",
                coming.version.number
            )));
        }
        let deadline = Instant::now() + FENCE_TIMEOUT;
        let replaced_previous = loop {
            let live = slot.live();
            // Waited for without the record's lock or the hold: reports
            // read the record and the live version commits meanwhile.
            self.fence(&live.view, &coming.view, deadline)
                .map_err(not_caught_up)?;
            let mut record = lock(&slot.record);
            let unchanged = {
                let beside = slot.beside();
                let still = match incoming {
                    Which::Shadow => beside.shadow.as_ref(),
                    Which::Previous => beside.previous.as_ref(),
                };
                still.is_some_and(|still| Arc::ptr_eq(still, &coming))
                    && Arc::ptr_eq(&slot.live(), &live)
            };
            if !unchanged {
                return Err(not_caught_up(
                    "another operation changed the view's versions meanwhile; try again".to_owned(),
                ));
            }
            // With the live version's commits held, the rows readers see
            // are its store's: the incoming version must have committed as
            // far on every partition, or the view would go back.
            let swapped = live.view.feed.hold(|| -> Result<_, DeployError> {
                // Checked again here: it may have died during the fence.
                if let Some(why) = stopped(&coming) {
                    return Err(DeployError::Start(format!(
                        "view {view}: version {} cannot be swapped in: {why}",
                        coming.version.number
                    )));
                }
                let (theirs, ours) = (
                    live.view.rows.checkpoints()?,
                    coming.view.rows.checkpoints()?,
                );
                let behind = theirs.iter().any(|(topic, partition, next)| {
                    !ours
                        .iter()
                        .any(|(t, p, at)| t == topic && p == partition && at >= next)
                });
                if behind {
                    return Ok(None);
                }
                let mut next = record
                    .clone()
                    .unwrap_or_else(|| Deployment::first(&live.version.module_hash));
                next.live = coming.version.clone();
                next.previous = Some(live.version.clone());
                if incoming == Which::Shadow {
                    next.shadow = None;
                }
                crate::failpoint::hit("deploy-swap");
                next.save(self.launcher.store().as_ref(), view)?;
                crate::failpoint::hit("deploy-swapped");
                *record = Some(next);
                let mut beside = slot.beside();
                // Live now: a shadow's bound on records a second goes.
                coming.unbound();
                let replaced = slot.swap(Arc::clone(&coming));
                Ok(Some(match incoming {
                    Which::Shadow => {
                        beside.shadow = None;
                        beside.previous.replace(replaced)
                    }
                    Which::Previous => {
                        beside.previous = Some(replaced);
                        None
                    }
                }))
            })?;
            if let Some(replaced_previous) = swapped {
                break replaced_previous;
            }
            drop(record);
            if Instant::now() >= deadline {
                return Err(not_caught_up(format!(
                    "it has not committed what the live version had within {} s",
                    FENCE_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        tracing::info!(view, live = coming.version.number, module = %coming.version.module_hash, "swapped: every read now sees this version");
        if let Some(old) = replaced_previous {
            // The swap took effect: what is left is cleaning up.
            if let Err(err) = self.retire(view, &old) {
                tracing::warn!(view, version = old.version.number, error = %err, "cannot drop the rows of the version a deploy replaced; the next start drops them");
            }
        }
        Ok(())
    }

    /// Wait until `incoming` has durably applied, on every partition, what
    /// `live` had applied when the wait began; how far it is at `deadline`
    /// or when the runtime stops.
    fn fence(
        &self,
        live: &RunningView,
        incoming: &RunningView,
        deadline: Instant,
    ) -> Result<(), String> {
        let wanted = live.feed.positions().borrow().clone();
        let positions = incoming.feed.positions();
        loop {
            let behind: Vec<String> = {
                let reached = positions.borrow();
                wanted
                    .iter()
                    .filter(|(partition, next)| reached.get(*partition).is_none_or(|at| at < *next))
                    .map(|((topic, partition), next)| {
                        format!(
                            "{topic}/{partition} at {} of {next}",
                            reached
                                .get(&(topic.clone(), *partition))
                                .map_or_else(|| "-".to_owned(), i64::to_string)
                        )
                    })
                    .collect()
            };
            if behind.is_empty() {
                return Ok(());
            }
            if self.shutdown.requested() {
                return Err("the runtime is stopping".to_owned());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it has not applied what the live version had within {} s: {}",
                    FENCE_TIMEOUT.as_secs(),
                    behind.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop the previous version of view `view` and free its rows; a
    /// rollback is no longer possible.
    ///
    /// # Errors
    /// When there is none, or the store fails.
    pub fn drop_previous(&self, view: &str) -> Result<Dropped, DeployError> {
        let previous = self.take_out(view, Which::Previous)?;
        let bytes = self.retire(view, &previous)?;
        tracing::info!(
            view,
            version = previous.version.number,
            bytes,
            "dropped the previous version"
        );
        Ok(Dropped {
            view: view.to_owned(),
            version: previous.version.number,
            bytes,
        })
    }

    /// Stop the shadow of view `view` being built and drop it.
    ///
    /// # Errors
    /// When there is none, or the store fails.
    pub fn cancel(&self, view: &str) -> Result<DeploymentReport, DeployError> {
        let shadow = self.take_out(view, Which::Shadow)?;
        self.retire(view, &shadow)?;
        tracing::info!(view, version = shadow.version.number, "deploy cancelled");
        Ok(self.report_of(self.slot(view)?.as_ref()))
    }

    /// Take `which` version out of view `view`: out of its record (durably)
    /// and out of reach of readers and swaps, still running.
    fn take_out(&self, view: &str, which: Which) -> Result<Arc<RunningVersion>, DeployError> {
        self.refuse_when_stopping()?;
        let slot = self.slot(view)?;
        let mut record = lock(&slot.record);
        let mut beside = slot.beside();
        let kept = match which {
            Which::Shadow => &mut beside.shadow,
            Which::Previous => &mut beside.previous,
        };
        let version = kept.clone().ok_or_else(|| match which {
            Which::Shadow => DeployError::NoShadow(view.to_owned()),
            Which::Previous => DeployError::NoPrevious(view.to_owned()),
        })?;
        if let Some(next) = record.as_mut() {
            match which {
                Which::Shadow => next.shadow = None,
                Which::Previous => next.previous = None,
            }
            next.save(self.launcher.store().as_ref(), view)?;
        }
        *kept = None;
        Ok(version)
    }

    /// Stop `version` of view `view` (taken out of it) and drop its rows;
    /// the bytes they took.
    fn retire(&self, view: &str, version: &RunningVersion) -> Result<u64, StoreError> {
        if let Err(err) = version.stop() {
            tracing::warn!(view, version = version.version.number, error = %err, "a version taken out of the view ended with an error");
        }
        self.launcher
            .store()
            .drop_view(&version.version.store_name(view))
    }

    /// The deployment of view `view`.
    ///
    /// # Errors
    /// When there is no such view.
    pub fn report(&self, view: &str) -> Result<DeploymentReport, DeployError> {
        Ok(self.report_of(self.slot(view)?.as_ref()))
    }

    fn report_of(&self, slot: &ViewSlot) -> DeploymentReport {
        report(slot, Some(&self.launcher.deploy))
    }
}

/// The deployment of `slot`'s view; `deploy` (the settings) tells a
/// caught-up shadow from one still building.
pub fn report(slot: &ViewSlot, deploy: Option<&crate::config::DeployConfig>) -> DeploymentReport {
    let record = lock(&slot.record).clone();
    let beside = {
        let beside = slot.beside();
        (beside.previous.clone(), beside.shadow.clone())
    };
    let recorded = record.as_ref().and_then(|record| record.shadow.clone());
    let shadow = match (&beside.1, recorded) {
        (Some(shadow), recorded) => {
            let now = progress(&shadow.view);
            let started_ms = recorded.as_ref().map_or(0, |r| r.started_ms);
            let seconds = (crate::clock::unix_ms() - started_ms).max(1) as f64 / 1000.0;
            let rate = now.replayed as f64 / seconds;
            let caught_up = match (now.lag, deploy) {
                (Some(lag), Some(deploy)) => {
                    u64::try_from(lag).unwrap_or(u64::MAX) <= deploy.swap_max_lag
                }
                _ => false,
            };
            Some(ShadowReport {
                version: shadow.version.number,
                module_hash: shadow.version.module_hash.clone(),
                state: if caught_up { "caught-up" } else { "building" }.to_owned(),
                failed: None,
                swap: recorded.as_ref().map_or(SwapMode::Auto, |r| r.swap),
                replayed: now.replayed,
                total: now.total,
                lag: now.lag,
                records_per_second: rate,
                eta_seconds: now.lag.filter(|_| rate > 0.0).map(|lag| lag as f64 / rate),
                failures: failures(&shadow.view),
                applied: shadow.view.status.counters().applied,
                rows: crate::store::ViewStore::row_count(&shadow.view.rows),
                started_ms,
            })
        }
        (None, Some(recorded)) if recorded.failed.is_some() => Some(ShadowReport {
            version: recorded.version.number,
            module_hash: recorded.version.module_hash.clone(),
            state: "failed".to_owned(),
            failed: recorded.failed.clone(),
            swap: recorded.swap,
            replayed: 0,
            total: 0,
            lag: None,
            records_per_second: 0.0,
            eta_seconds: None,
            failures: 0,
            applied: 0,
            rows: 0,
            started_ms: recorded.started_ms,
        }),
        _ => None,
    };
    DeploymentReport {
        view: slot.name().to_owned(),
        live: version_report(&slot.live()),
        previous: beside.0.as_deref().map(version_report),
        shadow,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
