//! The running runtime: every configured view on its own worker thread,
//! started together and stopped together.
//!
//! [`Service::start`] loads each view's module, opens its tree and its
//! Kafka clients, and fails before anything runs if one of them cannot
//! start. [`Service::stop`] asks every worker to stop, waits for each to
//! commit what it has applied, and reports how each one ended.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::config::{BrokerConfig, Config, DeployConfig, OnError, Role, ViewConfig};
use crate::deploy::{Deployer, Deployment, RunningVersion, Version, ViewSlot, Views};
use crate::engine::{Engine, Module};
use crate::pipeline::control::Controls;
use crate::pipeline::feed::ViewFeed;
use crate::pipeline::{BatchLimits, PreparedView, ViewConsumer, ViewStatus, Worker};
use crate::shutdown::{Shutdown, Stoppable};
use crate::store::{SledStore, SledView, ViewStore};

/// What a running view is.
#[derive(Debug, Clone, Serialize)]
pub struct ViewInfo {
    /// The view's name.
    pub name: String,
    /// Which version of the view it is: 1 as first configured, one more
    /// per deploy.
    pub version: u32,
    /// SHA-256 of the module that builds it.
    pub module_hash: String,
    /// The topics it consumes.
    pub topics: Vec<String>,
    /// Its consumer group.
    pub group: String,
    /// Its error policy.
    pub on_error: OnError,
    /// The names of its secondary indexes.
    pub indexes: Vec<String>,
    /// Whether this runtime builds it or keeps a standby copy of it.
    pub role: Role,
    /// How long it may own no partition before the runtime is not ready.
    #[serde(skip)]
    pub max_unassigned: std::time::Duration,
}

impl ViewInfo {
    /// What version `version` of the view `config` configures is, run as
    /// `versioned` (its store name, group and changelog) by `module`.
    fn of(config: &ViewConfig, versioned: &ViewConfig, version: &Version, module: &Module) -> Self {
        Self {
            name: config.name.clone(),
            version: version.number,
            module_hash: module.hash().to_owned(),
            role: config.role,
            topics: config.topics.clone(),
            group: versioned.group(),
            on_error: config.on_error,
            indexes: config
                .indexes
                .iter()
                .map(|index| index.name.clone())
                .collect(),
            max_unassigned: std::time::Duration::from_millis(config.max_unassigned_ms),
        }
    }
}

/// A running view, as readers see it.
#[derive(Debug, Clone)]
pub struct RunningView {
    /// What it is.
    pub info: ViewInfo,
    /// How it stands.
    pub status: Arc<ViewStatus>,
    /// Its rows.
    pub rows: SledView,
    /// Its committed positions and changes.
    pub feed: Arc<ViewFeed>,
    /// Requests to its worker (quarantine releases); `None` when nothing
    /// serves them.
    pub controls: Option<Controls>,
}

#[cfg(test)]
impl RunningView {
    /// A view named `v` over `rows`, built by module `h` from topic `t`,
    /// with a fresh status and a feed keeping `feed_capacity` batches: for
    /// tests of what readers see.
    pub(crate) fn for_tests(rows: SledView, feed_capacity: usize) -> Self {
        use crate::pipeline::feed::Positions;
        Self {
            info: ViewInfo {
                name: "v".to_owned(),
                version: 1,
                module_hash: "h".to_owned(),
                role: Role::Owner,
                topics: vec!["t".to_owned()],
                group: "g".to_owned(),
                on_error: crate::config::OnError::Stop,
                indexes: Vec::new(),
                max_unassigned: std::time::Duration::from_secs(30),
            },
            status: Arc::new(ViewStatus::default()),
            rows,
            feed: Arc::new(ViewFeed::new(Positions::new(), feed_capacity)),
            controls: None,
        }
    }
}

/// How a version's thread begins: with its worker open, or with the
/// restore from its changelog that opens it.
enum Start {
    Ready(
        Box<(
            Worker<SledStore, crate::engine::Instance>,
            ViewConsumer<SledStore>,
        )>,
    ),
    Restore(Box<PreparedView<SledStore, crate::engine::Instance>>),
}

/// What starting a version of a view needs: the service's start and every
/// deploy share it.
#[derive(Debug)]
pub struct Launcher {
    broker: BrokerConfig,
    engine: Arc<Engine>,
    store: Arc<SledStore>,
    limits: BatchLimits,
    /// Applier threads of a live version.
    threads: usize,
    /// Where deployed modules are kept (`<data_dir>/modules`).
    modules: PathBuf,
    /// How deploys build and swap.
    pub deploy: DeployConfig,
}

impl Launcher {
    /// The store every version writes to.
    pub fn store(&self) -> &Arc<SledStore> {
        &self.store
    }

    /// The engine that compiles modules.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The broker the views consume from.
    pub fn broker(&self) -> &BrokerConfig {
        &self.broker
    }

    /// Where the module with `hash` is kept once deployed.
    pub fn module_path(&self, hash: &str) -> PathBuf {
        self.modules.join(format!("{hash}.wasm"))
    }

    /// Keep `bytes` (a module whose hash is `hash`) where a restart finds
    /// it.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn keep_module(&self, hash: &str, bytes: &[u8]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.modules)
            .with_context(|| format!("cannot create {}", self.modules.display()))?;
        crate::files::write_atomically(&self.module_path(hash), bytes, 0o644)?;
        Ok(())
    }

    /// The module of `version` of view `config`: `configured` (the module
    /// its config names, loaded) when it is that one, else the copy kept
    /// when it was deployed.
    ///
    /// # Errors
    /// When the kept copy cannot be read or loaded.
    pub fn module_of(
        &self,
        config: &ViewConfig,
        configured: &Arc<Module>,
        version: &Version,
    ) -> anyhow::Result<Arc<Module>> {
        if configured.hash() == version.module_hash {
            return Ok(Arc::clone(configured));
        }
        let path = self.module_path(&version.module_hash);
        self.engine.load_file(&path).with_context(|| {
            format!(
                "view {}: version {} runs module {} (deployed with `projector view deploy`), \
                 whose copy {} cannot be loaded",
                config.name,
                version.number,
                version.module_hash,
                path.display()
            )
        })
    }

    /// Start `version` of view `config` (its static member id set) with
    /// `module`, its shards applied by `threads` threads: checked and
    /// opened here (an error means nothing runs), restored from its
    /// changelog and run on a thread of its own.
    ///
    /// # Errors
    /// When its store, changelog or Kafka clients cannot be opened.
    pub fn launch(
        &self,
        config: &ViewConfig,
        version: &Version,
        module: &Arc<Module>,
        threads: usize,
        priority: Priority,
    ) -> anyhow::Result<RunningVersion> {
        let versioned = version.config(config);
        let status = Arc::new(ViewStatus::default());
        let mut ready = Worker::prepare(
            &self.broker,
            versioned.clone(),
            module.instance(),
            Arc::clone(&self.store),
            Arc::clone(&status),
            self.limits,
        )?;
        let deferred = ready.restores() || priority == Priority::Low;
        let (start, rows, feed, controls) = if deferred {
            // A restore from the changelog runs on the view's thread: the
            // API answers meanwhile (503 for rows, with progress). So does
            // the whole start of a shadow, so that a deploy does not wait
            // for its consumer.
            // Readers get 503 from the start, not a 404 before the restore
            // begins.
            if ready.restores() {
                status.restoring(Some(crate::pipeline::status::Restoring::default()));
            }
            let (rows, feed, controls) = (ready.rows(), ready.feed(), ready.controls());
            (Start::Restore(Box::new(ready)), rows, feed, controls)
        } else {
            let (worker, consumer) = ready.start()?;
            let mut worker = worker.parallel(threads)?;
            let controls = worker.controls();
            let (rows, feed) = (worker.rows(), worker.feed());
            (
                Start::Ready(Box::new((worker, consumer))),
                rows,
                feed,
                controls,
            )
        };
        let view = RunningView {
            info: ViewInfo::of(config, &versioned, version, module),
            status: Arc::clone(&status),
            rows,
            feed,
            controls: Some(controls),
        };
        let name = versioned.name.clone();
        let shutdown = Shutdown::new();
        let rate = (priority == Priority::Low)
            .then(|| crate::pipeline::throttle::Rate::new(self.deploy.shadow_max_rate));
        let bound = rate.clone();
        let thread = Stoppable::spawn(format!("view-{name}"), &shutdown, move |shutdown| {
            let (worker, consumer) = match start {
                Start::Ready(started) => *started,
                Start::Restore(ready) => {
                    match ready.start().and_then(|(worker, consumer)| {
                        Ok((worker.parallel(threads)?.bounded(bound), consumer))
                    }) {
                        Ok(started) => started,
                        Err(err) => {
                            tracing::error!(view = %name, error = %err, "view could not start");
                            status.fatal(err.to_string());
                            return Err(err.to_string());
                        }
                    }
                }
            };
            worker
                .run(&consumer, shutdown)
                .map_err(|err| err.to_string())
        })
        .with_context(|| format!("view {}: cannot start its thread", config.name))?;
        if let (Some(changelog), Some(topic)) = (&versioned.changelog, versioned.changelog_topic())
            && changelog.standby_replicas > 0
            && priority == Priority::Normal
        {
            // Not joined at a stop: it only reads the directory, and ends
            // by itself within a few seconds of the stop.
            let broker = self.broker.clone();
            let (replication, expected) = (changelog.replication, changelog.standby_replicas);
            let status = Arc::clone(&view.status);
            let name = view.info.name.clone();
            let heard = Stoppable::spawn(format!("standbys-{name}"), &shutdown, move |shutdown| {
                crate::pipeline::standby::hear_standbys(
                    &name,
                    &broker,
                    &topic,
                    replication,
                    expected,
                    &status,
                    shutdown,
                );
                Ok::<(), String>(())
            });
            // The view runs without it: its standbys are then not listed.
            if let Err(err) = heard {
                tracing::warn!(view = %config.name, error = %err, "cannot start the thread that hears the view's standbys; they are not listed");
            }
        }
        Ok(RunningVersion::new(
            version.clone(),
            view,
            shutdown,
            thread,
            rate,
        ))
    }
}

impl Launcher {
    /// Start a standby copy of the view `config` configures, built by
    /// `module` (as its owner's must be): its store restored from the
    /// changelog and kept following it on a thread of its own
    /// ([`crate::pipeline::standby::Standby`]). Nothing is consumed from
    /// its topics; it answers reads marked with its lag, and refuses
    /// writes.
    ///
    /// # Errors
    /// When the view's store or changelog cannot be opened.
    pub fn launch_standby(
        &self,
        config: &ViewConfig,
        module: &Arc<Module>,
    ) -> anyhow::Result<RunningVersion> {
        let version = Version {
            number: 1,
            module_hash: module.hash().to_owned(),
        };
        let status = Arc::new(ViewStatus::default());
        // Reads answer 503 from the start, not a 404 before the copy is
        // restored.
        status.restoring(Some(crate::pipeline::status::Restoring::default()));
        let prepared = Worker::prepare(
            &self.broker,
            config.clone(),
            module.instance(),
            Arc::clone(&self.store),
            Arc::clone(&status),
            self.limits,
        )?;
        let (rows, feed) = (prepared.rows(), prepared.feed());
        let standby_name = match &config.group_instance_id {
            Some(id) => id.clone(),
            None => format!(
                "{}-{}",
                self.store
                    .instance_id()
                    .context("cannot read the instance id from the store")?,
                config.name
            ),
        };
        let standby = prepared.standby(standby_name)?;
        let view = RunningView {
            info: ViewInfo::of(config, config, &version, module),
            status,
            rows,
            feed,
            controls: None,
        };
        let name = config.name.clone();
        let shutdown = Shutdown::new();
        let thread = Stoppable::spawn(format!("standby-{name}"), &shutdown, move |shutdown| {
            standby.run(shutdown).map_err(|err| err.to_string())
        })
        .with_context(|| format!("view {}: cannot start its standby thread", config.name))?;
        Ok(RunningVersion::new(version, view, shutdown, thread, None))
    }
}

/// How much of the machine a version may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A live view's, or one kept for a rollback: the machine's.
    Normal,
    /// A shadow's: it takes at most `[deploy] shadow_max_rate` records a
    /// second until it is swapped in, and starts on its own thread.
    Low,
}

/// The views of one runtime, running.
#[derive(Debug)]
pub struct Service {
    launcher: Arc<Launcher>,
    shutdown: Shutdown,
    sampler: Option<Stoppable<()>>,
    views: Views,
    deployer: Arc<Deployer>,
}

impl Service {
    /// Start every view of `config` against `broker`, with rows in `store`:
    /// each view's live version, and the versions its deployment record
    /// keeps beside it (a previous one, a shadow being built).
    pub fn start(
        config: &Config,
        broker: &BrokerConfig,
        engine: &Arc<Engine>,
        store: Arc<SledStore>,
        limits: BatchLimits,
    ) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let launcher = Arc::new(Launcher {
            broker: broker.clone(),
            engine: Arc::clone(engine),
            store,
            limits,
            threads: config.engine.threads,
            modules: config.data_dir.join("modules"),
            deploy: config.deploy.clone(),
        });
        let instance = match (&config.instance_id, config.static_membership) {
            (_, false) => None,
            (Some(id), true) => Some(id.clone()),
            (None, true) => Some(
                launcher
                    .store
                    .instance_id()
                    .context("cannot read the instance id from the store")?,
            ),
        };
        let mut slots = Vec::new();
        let stop_started = |slots: &[Arc<ViewSlot>]| {
            for slot in slots {
                for version in slot.versions() {
                    let _ = version.stop();
                }
            }
        };
        for view in &config.views {
            let mut view = view.clone();
            if view.group_instance_id.is_none()
                && let Some(instance) = &instance
            {
                view.group_instance_id = Some(format!("{instance}-{}", view.name));
            }
            match start_view(&launcher, &view) {
                Ok(slot) => slots.push(Arc::new(slot)),
                Err(err) => {
                    stop_started(&slots);
                    return Err(err);
                }
            }
        }
        let views = Views::new(slots);
        let deployer = Arc::new(Deployer::new(
            Arc::clone(&launcher),
            views.clone(),
            shutdown.clone(),
        ));
        deployer.resume();
        let sampled = views.clone();
        let sampler = Stoppable::spawn("sampler", &shutdown, move |shutdown| {
            sample_every_second(&sampled, shutdown);
        })
        .context("cannot start the sampler thread")?;
        Ok(Self {
            launcher,
            shutdown,
            sampler: Some(sampler),
            views,
            deployer,
        })
    }

    /// Load `view`'s module, with an error naming the view and the module.
    ///
    /// # Errors
    /// When the module cannot be read or cannot serve as a projection.
    pub fn load_module(engine: &Engine, view: &ViewConfig) -> anyhow::Result<Arc<Module>> {
        engine.load_file(&view.module).map_err(|err| {
            // A read error names the file already.
            let context = match &err {
                crate::engine::LoadError::Read { .. } => format!("view {}", view.name),
                _ => format!("view {}: module {}", view.name, view.module.display()),
            };
            anyhow::Error::new(err).context(context)
        })
    }

    /// The store the views write to.
    pub fn store(&self) -> &Arc<SledStore> {
        self.launcher.store()
    }

    /// The status of each view's live version, by name.
    pub fn statuses(&self) -> BTreeMap<String, Arc<ViewStatus>> {
        self.views
            .slots()
            .iter()
            .map(|slot| (slot.name().to_owned(), Arc::clone(&slot.live_view().status)))
            .collect()
    }

    /// Every view, in config order.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// What deploys new modules to the views.
    pub fn deployer(&self) -> &Arc<Deployer> {
        &self.deployer
    }

    /// Stop every view: each version finishes the record in hand, commits
    /// its batch to the store, flushes, and commits its offsets. Returns
    /// how each live version ended (a version beside it that failed is
    /// logged).
    pub fn stop(self) -> BTreeMap<String, Result<(), String>> {
        self.shutdown.request();
        self.deployer.stop();
        if let Some(sampler) = self.sampler {
            // It only reads; a panic there loses charts, not rows.
            let _ = sampler.join();
        }
        let versions = self.views.versions();
        for version in &versions {
            version.request_stop();
        }
        let mut ended = BTreeMap::new();
        for slot in self.views.slots() {
            let live = slot.live();
            for version in slot.versions() {
                let outcome = version.stop();
                if Arc::ptr_eq(&version, &live) {
                    ended.insert(slot.name().to_owned(), outcome);
                } else if let Err(err) = outcome {
                    tracing::warn!(view = %slot.name(), version = version.version.number, error = %err, "a version beside the live one ended with an error");
                }
            }
        }
        ended
    }
}

/// Start view `config`: its live version, and what its deployment record
/// keeps beside it.
fn start_view(launcher: &Launcher, config: &ViewConfig) -> anyhow::Result<ViewSlot> {
    let record = Deployment::load(launcher.store.as_ref(), &config.name)
        .with_context(|| format!("view {}: cannot read its deployment record", config.name))?;
    // What a crash during a deploy, a failure or a drop left behind.
    let keep: Vec<u32> = record.as_ref().map_or_else(Vec::new, |record| {
        std::iter::once(record.live.number)
            .chain(record.previous.as_ref().map(|p| p.number))
            .chain(
                record
                    .shadow
                    .as_ref()
                    .filter(|s| s.failed.is_none())
                    .map(|s| s.version.number),
            )
            .collect()
    });
    for dropped in crate::deploy::drop_other_versions(launcher.store.as_ref(), &config.name, &keep)
        .with_context(|| {
            format!(
                "view {}: cannot drop what an earlier deploy left",
                config.name
            )
        })?
    {
        tracing::info!(view = %config.name, stored = %dropped, "dropped the rows of a version no deploy keeps (left by a crash or a failed deploy)");
    }
    let configured = Service::load_module(&launcher.engine, config)?;
    if config.role == Role::Standby {
        // A standby copies the owner's view: deploys are the owner's.
        let standby = launcher.launch_standby(config, &configured)?;
        return Ok(ViewSlot::new(config.clone(), standby, None));
    }
    let Some(record) = record else {
        let module = configured;
        let version = Version {
            number: 1,
            module_hash: module.hash().to_owned(),
        };
        let live = launcher.launch(
            config,
            &version,
            &module,
            launcher.threads,
            Priority::Normal,
        )?;
        return Ok(ViewSlot::new(config.clone(), live, None));
    };
    let module = launcher.module_of(config, &configured, &record.live)?;
    if configured.hash() != record.live.module_hash {
        tracing::warn!(
            view = %config.name,
            version = record.live.number,
            running = %record.live.module_hash,
            configured = %configured.hash(),
            "the view runs the module deployed with `projector view deploy`, not the one its config names: \
             point the config at the deployed module, or deploy the configured one"
        );
    }
    let live = launcher.launch(
        config,
        &record.live,
        &module,
        launcher.threads,
        Priority::Normal,
    )?;
    let slot = ViewSlot::new(config.clone(), live, Some(record.clone()));
    let beside = [
        (record.previous.clone(), false),
        (
            record
                .shadow
                .as_ref()
                .filter(|shadow| shadow.failed.is_none())
                .map(|shadow| shadow.version.clone()),
            true,
        ),
    ];
    for (version, is_shadow) in beside {
        let Some(version) = version else { continue };
        let started = launcher
            .module_of(config, &configured, &version)
            .and_then(|module| {
                let (threads, priority) = if is_shadow {
                    (launcher.deploy.shadow_threads, Priority::Low)
                } else {
                    (launcher.threads, Priority::Normal)
                };
                launcher.launch(config, &version, &module, threads, priority)
            });
        // The live version runs whatever happens beside it: a shadow that
        // cannot start is a failed deploy, a previous version that cannot
        // is no rollback.
        let started = match started {
            Ok(started) => Arc::new(started),
            Err(err) if is_shadow => {
                let reason = format!("it could not start again after a restart: {err:#}");
                tracing::error!(view = %config.name, version = version.number, reason = %reason, "deploy: the shadow being built failed");
                let mut record = slot
                    .record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(shadow) = record.as_mut().and_then(|r| r.shadow.as_mut()) {
                    shadow.failed = Some(reason);
                }
                if let Some(record) = record.as_ref() {
                    record
                        .save(launcher.store.as_ref(), &config.name)
                        .with_context(|| {
                            format!("view {}: cannot record the failed deploy", config.name)
                        })?;
                }
                continue;
            }
            Err(err) => {
                tracing::error!(view = %config.name, version = version.number, error = %format!("{err:#}"), "the previous version could not start: no rollback until it can");
                continue;
            }
        };
        let mut beside = slot.beside();
        if is_shadow {
            beside.shadow = Some(started);
        } else {
            beside.previous = Some(started);
        }
    }
    Ok(slot)
}

/// Take a sample of every running version once a second until `shutdown`.
fn sample_every_second(views: &Views, shutdown: &Shutdown) {
    use crate::pipeline::samples::Samples;
    let interval = std::time::Duration::from_millis(Samples::INTERVAL_MS);
    let mut next = std::time::Instant::now();
    while !shutdown.requested() {
        let now = std::time::Instant::now();
        if now >= next {
            for version in views.versions() {
                let view = &version.view;
                view.status.take_sample(view.rows.row_count());
            }
            next += interval;
            if next < now {
                // Behind by more than a sample: start again from now.
                next = now + interval;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
