//! The running runtime: every configured view on its own worker thread,
//! started together and stopped together.
//!
//! [`Service::start`] loads each view's module, opens its tree and its
//! Kafka clients, and fails before anything runs if one of them cannot
//! start. [`Service::stop`] asks every worker to stop, waits for each to
//! commit what it has applied, and reports how each one ended.

use crate::shutdown::{Shutdown, Stoppable};
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::config::{BrokerConfig, Config, OnError, ViewConfig};
use crate::engine::{Engine, Module};
use crate::pipeline::control::Controls;
use crate::pipeline::feed::ViewFeed;
use crate::pipeline::{BatchLimits, PipelineError, PreparedView, ViewConsumer, ViewStatus, Worker};
use crate::store::{SledStore, SledView, ViewStore};

/// What a running view is.
#[derive(Debug, Clone, Serialize)]
pub struct ViewInfo {
    /// The view's name.
    pub name: String,
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
    /// How long it may own no partition before the runtime is not ready.
    #[serde(skip)]
    pub max_unassigned: std::time::Duration,
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
                module_hash: "h".to_owned(),
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

/// How a view's thread begins: with its worker open, or with the restore
/// from its changelog that opens it.
enum Start {
    Ready(
        Box<(
            Worker<SledStore, crate::engine::Instance>,
            ViewConsumer<SledStore>,
        )>,
    ),
    Restore(Box<PreparedView<SledStore, crate::engine::Instance>>),
}

/// The views of one runtime, running.
#[derive(Debug)]
pub struct Service {
    store: Arc<SledStore>,
    shutdown: Shutdown,
    workers: Vec<Stoppable<Result<(), PipelineError>>>,
    sampler: Option<Stoppable<()>>,
    statuses: BTreeMap<String, Arc<ViewStatus>>,
    views: Vec<RunningView>,
}

impl Service {
    /// Start every view of `config` against `broker`, with rows in `store`.
    pub fn start(
        config: &Config,
        broker: &BrokerConfig,
        engine: &Engine,
        store: Arc<SledStore>,
        limits: BatchLimits,
    ) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let mut prepared = Vec::new();
        let mut infos = Vec::new();
        let instance = match (&config.instance_id, config.static_membership) {
            (_, false) => None,
            (Some(id), true) => Some(id.clone()),
            (None, true) => Some(
                store
                    .instance_id()
                    .context("cannot read the instance id from the store")?,
            ),
        };
        for view in &config.views {
            let mut view = view.clone();
            if view.group_instance_id.is_none()
                && let Some(instance) = &instance
            {
                view.group_instance_id = Some(format!("{instance}-{}", view.name));
            }
            let view = &view;
            let module = Self::load_module(engine, view)?;
            let status = Arc::new(ViewStatus::default());
            let mut ready = Worker::prepare(
                broker,
                view.clone(),
                module.instance(),
                Arc::clone(&store),
                Arc::clone(&status),
                limits,
            )?;
            let threads = config.engine.threads;
            let (start, rows, feed, controls) = match ready.rows() {
                // A restore from the changelog runs on the view's thread:
                // the API answers meanwhile (503 for rows, with progress).
                Some(rows) if ready.restores() => {
                    // Readers get 503 from the start, not a 404 before the
                    // restore begins.
                    status.restoring(Some(crate::pipeline::status::Restoring::default()));
                    let controls = ready.controls();
                    let feed = ready.feed();
                    (Start::Restore(Box::new(ready)), rows, feed, controls)
                }
                _ => {
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
                }
            };
            infos.push(RunningView {
                info: ViewInfo {
                    name: view.name.clone(),
                    module_hash: module.hash().to_owned(),
                    topics: view.topics.clone(),
                    group: view.group(),
                    on_error: view.on_error,
                    indexes: view
                        .indexes
                        .iter()
                        .map(|index| index.name.clone())
                        .collect(),
                    max_unassigned: std::time::Duration::from_millis(view.max_unassigned_ms),
                },
                status: Arc::clone(&status),
                rows,
                feed,
                controls: Some(controls),
            });
            prepared.push((view.name.clone(), start, threads, status));
        }
        let mut service = Self {
            store,
            shutdown,
            workers: Vec::new(),
            sampler: None,
            statuses: BTreeMap::new(),
            views: infos,
        };
        for (name, start, threads, status) in prepared {
            let view_status = Arc::clone(&status);
            let view_name = name.clone();
            let thread =
                Stoppable::spawn(format!("view-{name}"), &service.shutdown, move |shutdown| {
                    let (worker, consumer) = match start {
                        Start::Ready(started) => *started,
                        Start::Restore(ready) => {
                            match ready
                                .start()
                                .and_then(|(worker, consumer)| Ok((worker.parallel(threads)?, consumer)))
                            {
                                Ok(started) => started,
                                Err(err) => {
                                    tracing::error!(view = %view_name, error = %err, "view could not start");
                                    view_status.fatal(err.to_string());
                                    return Err(err);
                                }
                            }
                        }
                    };
                    worker.run(&consumer, shutdown)
                })
                .with_context(|| format!("view {name}: cannot start its thread"))?;
            service.workers.push(thread);
            service.statuses.insert(name, status);
        }
        let views = service.views.clone();
        service.sampler = Some(
            Stoppable::spawn("sampler", &service.shutdown, move |shutdown| {
                sample_every_second(&views, shutdown);
            })
            .context("cannot start the sampler thread")?,
        );
        Ok(service)
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
        &self.store
    }

    /// The status of each view, by name.
    pub fn statuses(&self) -> &BTreeMap<String, Arc<ViewStatus>> {
        &self.statuses
    }

    /// Each running view, in config order.
    pub fn views(&self) -> &[RunningView] {
        &self.views
    }

    /// Stop every view: each finishes the record in hand, commits its batch
    /// to the store, flushes, and commits its offsets. Returns how each
    /// view ended.
    pub fn stop(self) -> BTreeMap<String, Result<(), String>> {
        self.shutdown.request();
        if let Some(sampler) = self.sampler {
            // It only reads; a panic there loses charts, not rows.
            let _ = sampler.join();
        }
        self.workers
            .into_iter()
            .map(|thread| {
                let name = thread
                    .name()
                    .strip_prefix("view-")
                    .unwrap_or(thread.name())
                    .to_owned();
                let outcome = match thread.join() {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err("the worker thread panicked".to_owned()),
                };
                (name, outcome)
            })
            .collect()
    }
}

/// Take a sample of every view once a second until `shutdown`.
fn sample_every_second(views: &[RunningView], shutdown: &Shutdown) {
    use crate::pipeline::samples::Samples;
    let interval = std::time::Duration::from_millis(Samples::INTERVAL_MS);
    let mut next = std::time::Instant::now();
    while !shutdown.requested() {
        let now = std::time::Instant::now();
        if now >= next {
            for view in views {
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
