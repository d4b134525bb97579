//! The pipeline of one view: consume → decode → route → apply → batch →
//! commit to the store → flush → commit offsets to Kafka.
//!
//! # What it promises, and where
//!
//! - **G1, at-least-once.** Every record is applied or handed to the error
//!   policy before its offset enters a checkpoint (`Worker::handle`, and
//!   the applier threads' results merged before every commit).
//! - **G2, no double application.** Each partition starts at the view's
//!   checkpoint on every assignment ([`rebalance::assign`]); a record
//!   below the partition's next offset, or below its shard's own
//!   checkpoint, is counted as a duplicate and not applied. Rows and
//!   checkpoints commit in one atomic batch.
//! - **G3 and G5, serialised per subject, in partition order.** A subject
//!   belongs to one shard and a shard to one applier (the worker itself,
//!   or one of the view's applier threads, [`pool`]), which applies its
//!   records one at a time in the order the consumer delivered them,
//!   reading each row through what it changed since the last commit, so no
//!   read-modify-write of a row overlaps another, even when one subject
//!   arrives on several partitions.
//! - **G4.** Offsets are committed to Kafka only after the batch holding
//!   their rows was committed and flushed ([`state::ViewState::commit_batch`];
//!   with a changelog, a full batch is sent to it and committed at the next
//!   commit, [`state::ViewState::commit_overlapped`], while the appliers
//!   keep the rows it changed),
//!   by the worker and, on revocation, by [`rebalance::revoke`]; never past
//!   a record the policy still holds ([`policy::ErrorPolicy::held_from`]),
//!   on those paths and on assignment.
//! - **G6.** A record that fails (invalid CloudEvent, no subject, any
//!   `ApplyError`) goes to the view's policy after transient failures were
//!   retried with backoff: `stop` halts its shard on its partition, `skip`
//!   counts it, `dead-letter` holds it in the store and produces it,
//!   `quarantine` holds its subject. A store failure stops the view, never
//!   silently.
//!
//! # Layout
//! - this file: the worker: polling, routing, commits, release and discard;
//! - `topic_partition`: how the pipeline names a partition;
//! - `failure`: a record that could not be applied, and why;
//! - `state`: what the worker, its consumer's callbacks and its applier
//!   threads share;
//! - `consumer_context`: the Kafka consumer's callbacks (rebalances,
//!   statistics, librdkafka's log);
//! - `rebalance`: the one rebalance path, for the consumer's callbacks and
//!   for workers driven from memory;
//! - `source`: what the worker asks of where its records come from;
//! - `standby`: a read-only copy of a view kept from its changelog;
//! - `cursor`: one partition's position over the shards;
//! - `gap`: offsets past the one due, proven before they are taken;
//! - `applier`: applying one record, with retries;
//! - `pool`: the applier threads;
//! - `in_flight`: records handed to them and not yet merged, and commits;
//! - `policy`: what happens to a record that cannot be applied, and what
//!   the policy holds;
//! - `control`: requests to the running worker (release and discard of
//!   quarantined subjects);
//! - `feed`: committed positions and row changes, for the query API;
//! - `samples`, `ring`: recent figures, one a second, for charts;
//! - `failures`: the last failed records;
//! - `status`: counters and per-partition state it reports.

pub mod applier;
pub mod changelog;
pub mod consumer_context;
pub mod control;
pub mod cursor;
pub mod dedup;
pub mod failure;
pub mod failures;
pub mod feed;
pub mod gap;
pub mod in_flight;
pub mod policy;
pub mod pool;
pub mod rebalance;
pub mod record;
pub mod ring;
pub mod samples;
pub mod source;
pub mod standby;
pub mod state;
pub mod status;
pub mod throttle;
pub mod topic_partition;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use crate::apply::Apply;
use crate::config::{BrokerConfig, ViewConfig};
use crate::decode::decode;
use crate::engine::Instance;
use crate::event::Event;
use crate::kafka;
use crate::shard::{ShardId, Shards};
use crate::shutdown::Shutdown;
use crate::store::{self, Store, StoreError, ViewStore};

use applier::Applier;
use changelog::Changelog;
use consumer_context::ViewContext;
use control::{Control, ControlQueue, Controls, ReleaseReport, SubjectDiscard, SubjectRelease};
use failure::Failure;
use failures::FailureOutcome;
use feed::ViewFeed;
use gap::Verdict;
use policy::{ErrorPolicy, Outcome, PolicyError};
use pool::Pool;
use record::{Done, Job, RecordApplier};
use state::{ViewState, lock};

pub use record::HELD_BEHIND;
pub use source::{Source, give_offsets};
pub use topic_partition::TopicPartition;

pub use status::{CounterValues, GapRange, PartitionState, PartitionStatus, ViewStatus};

/// How long a partition with records past its next offset may deliver
/// nothing before it is read again from further back.
const STALL_IDLE: Duration = Duration::from_secs(2);

/// Held records a release or a discard reads, applies or moves per store
/// batch: what it keeps in memory at once.
pub const HELD_PER_BATCH: usize = 1000;

/// How events are grouped into store batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Commit once a batch holds this many records. Default 1000.
    pub max_records: usize,
    /// Commit a non-empty batch this long after its first record at the
    /// latest. Default 10 ms. A batch also commits as soon as no record is
    /// waiting, so this only bounds the latency of a steady trickle.
    pub linger: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 1000,
            linger: Duration::from_millis(10),
        }
    }
}

/// Why a view stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The Kafka client could not be created or subscribed.
    #[error("view {view}: Kafka: {source}")]
    Kafka {
        /// The view.
        view: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The error policy could not start (its dead-letter topic cannot be
    /// used).
    #[error("view {view}: {source}")]
    Policy {
        /// The view.
        view: String,
        /// Why.
        #[source]
        source: Box<PolicyError>,
    },
    /// The view has no shard count yet, and the partition count that
    /// decides it (its changelog topic's, else its first topic's) cannot be
    /// read.
    #[error(
        "view {view}: cannot read the partition count of topic {topic} to split the new view into \
         as many shards ({reason}); create the topic, or set `shards` for the view"
    )]
    ShardCount {
        /// The view.
        view: String,
        /// Its first topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The store holds records an earlier error policy held, which the
    /// policy configured now would neither send nor release: starting would
    /// let the group's offset pass them.
    #[error(
        "view {view}: the store holds {count} {what} from an earlier on_error, which on_error = \
         {configured} does not handle; {remedy}"
    )]
    HeldByAnotherPolicy {
        /// The view.
        view: String,
        /// How many records.
        count: usize,
        /// What they are.
        what: &'static str,
        /// The policy configured now, as written in the config.
        configured: String,
        /// What to do.
        remedy: &'static str,
    },
    /// The view's changelog cannot be used, or its restore failed.
    #[error("view {view}: changelog: {reason}")]
    Changelog {
        /// The view.
        view: String,
        /// Why.
        reason: String,
    },
    /// The view's applier threads could not be started, or one died.
    #[error("view {view}: applier threads: {reason}")]
    Threads {
        /// The view.
        view: String,
        /// Why.
        reason: String,
    },
    /// The store failed; nothing after the last committed batch is lost,
    /// and the view resumes from there on restart.
    #[error("view {view}: {source}")]
    Store {
        /// The view.
        view: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
}

/// The Kafka consumer of one view, with its context.
pub type ViewConsumer<S> = BaseConsumer<ViewContext<S>>;

/// One view's worker. Runs on its own thread; see [`Worker::run`].
pub struct Worker<S: Store, A: Apply = Instance> {
    name: String,
    config: ViewConfig,
    /// The record path on the worker's own thread: every record with one
    /// applier, releases, and a record whose thread is gone.
    applier: RecordApplier<A, S::View>,
    state: Arc<Mutex<ViewState<S>>>,
    status: Arc<ViewStatus>,
    limits: BatchLimits,
    shards: Shards,
    /// The applier threads, when the shards apply in parallel.
    pool: Option<Pool>,
    /// Requests from the API, when it has a way to send them.
    controls: Option<ControlQueue>,
    /// True when the policy keeps failed records: a record handed to an
    /// applier thread travels with its body.
    keeps_records: bool,
    /// Forgets identities past their window, with `dedup` on.
    _expiry: Option<dedup::Expiry>,
    /// At most so many records a second, when bounded (a deploy's shadow).
    throttle: Option<throttle::Throttle>,
}

/// `config`'s view in `store`, built by `projection`'s module.
fn open_view<S: Store, A: Apply>(
    store: &Arc<S>,
    config: &ViewConfig,
    projection: &A,
) -> Result<S::View, PipelineError> {
    store
        .open_view(
            &config.name,
            projection.module_hash(),
            &config.indexes,
            config.shards.and_then(Shards::new),
        )
        .map_err(|source| PipelineError::Store {
            view: config.name.clone(),
            source,
        })
}

/// The shard count of a view new to its store whose config names none:
/// its changelog topic's partition count when that topic exists (a restore:
/// the changelog has one partition per shard), else its first topic's (a
/// topic keyed by subject is then co-partitioned with the view).
fn new_view_shards(
    broker: &BrokerConfig,
    config: &ViewConfig,
) -> Result<Option<u32>, PipelineError> {
    let name = &config.name;
    let shard_count_error = |topic: &str, err: kafka::TopicLookupError| PipelineError::ShardCount {
        view: name.clone(),
        topic: topic.to_owned(),
        reason: err.to_string(),
    };
    let count_of = |topic: &str| {
        kafka::partition_count(broker, topic, Duration::from_secs(30))
            .map(|count| u32::try_from(count).unwrap_or(Shards::MAX).min(Shards::MAX))
    };
    if let Some(topic) = config.changelog_topic() {
        match count_of(&topic) {
            Ok(count) => {
                tracing::info!(view = %name, topic = %topic, shards = count, "a view new to this store: as many shards as its changelog topic has partitions");
                return Ok(Some(count));
            }
            Err(kafka::TopicLookupError::Missing) => {}
            Err(err) => return Err(shard_count_error(&topic, err)),
        }
    }
    let Some(topic) = config.topics.first() else {
        return Ok(None);
    };
    let count = count_of(topic).map_err(|err| shard_count_error(topic, err))?;
    tracing::info!(view = %name, topic = %topic, shards = count, "a new view: as many shards as its first topic has partitions");
    Ok(Some(count))
}

/// A view checked and ready to start ([`Worker::prepare`]): what
/// [`PreparedView::start`] restores from the changelog and opens. Readers
/// can have its feed and send it requests before it starts.
pub struct PreparedView<S: Store, A: Apply> {
    broker: BrokerConfig,
    config: ViewConfig,
    projection: A,
    store: Arc<S>,
    status: Arc<ViewStatus>,
    limits: BatchLimits,
    policy: ErrorPolicy,
    changelog: Option<Arc<Changelog>>,
    /// The view's rows, opened (restored on start when it has a
    /// changelog), what readers get before it starts.
    rows: S::View,
    feed: Arc<ViewFeed>,
    controls: Option<ControlQueue>,
}

impl<S: Store, A: Apply> std::fmt::Debug for PreparedView<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedView")
            .field("view", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl<S: Store, A: Apply> PreparedView<S, A> {
    /// True when [`PreparedView::start`] restores the view from its
    /// changelog: slow, so a service runs it on the view's thread.
    pub fn restores(&self) -> bool {
        self.changelog.is_some()
    }

    /// The view's rows, for readers before it starts.
    pub fn rows(&self) -> S::View {
        self.rows.clone()
    }

    /// The view's feed: committed positions and changes, for readers.
    pub fn feed(&self) -> Arc<ViewFeed> {
        Arc::clone(&self.feed)
    }

    /// Requests to the worker once it runs; they wait until then.
    pub fn controls(&mut self) -> Controls {
        let (controls, queue) = control::controls();
        self.controls = Some(queue);
        controls
    }

    /// The view as a standby copy: its changelog followed, nothing
    /// consumed or applied ([`standby::Standby`]).
    ///
    /// # Errors
    /// When the view has no changelog. `standby_name` names the copy in
    /// the view's standby directory.
    pub fn standby(self, standby_name: String) -> Result<standby::Standby<S>, PipelineError> {
        let Some(changelog) = self.changelog else {
            return Err(PipelineError::Changelog {
                view: self.config.name,
                reason: "a standby copy needs the view's changelog (`changelog = {}`)".to_owned(),
            });
        };
        Ok(standby::Standby {
            name: self.config.name,
            changelog,
            rows: self.rows,
            store: self.store,
            status: self.status,
            feed: self.feed,
            standby_name,
            broker: self.broker,
            replication: self
                .config
                .changelog
                .as_ref()
                .map_or(1, |changelog| changelog.replication),
        })
    }

    /// Bring the view's store up to its changelog ([`Changelog::restore`]),
    /// telling `progress` how far it got, and flush it; `None` for a view
    /// without a changelog. What [`PreparedView::start`] does first, and
    /// what `projector view restore` does alone.
    ///
    /// # Errors
    /// When the changelog cannot be read or written, or the store fails.
    pub fn restore(
        &self,
        progress: &dyn Fn(status::Restoring),
    ) -> Result<Option<changelog::Restored>, PipelineError> {
        let (Some(changelog), view) = (&self.changelog, &self.rows) else {
            return Ok(None);
        };
        let name = &self.config.name;
        // A standby's copy is brought up to whole batches and writes
        // nothing to the changelog.
        let restored = match self.config.role {
            crate::config::Role::Owner => changelog.restore(view, progress),
            crate::config::Role::Standby => changelog
                .follow(view, progress)
                .map(|followed| followed.restored),
        }
        .map_err(|err| PipelineError::Changelog {
            view: name.clone(),
            reason: err.to_string(),
        })?;
        self.store.flush().map_err(|source| PipelineError::Store {
            view: name.clone(),
            source,
        })?;
        Ok(Some(restored))
    }

    /// Restore the store from the changelog (progress in the view's
    /// status, readers answered 503 meanwhile), then open the worker and
    /// its consumer, subscribed.
    ///
    /// # Errors
    /// When the restore, the store or the client fails.
    pub fn start(self) -> Result<(Worker<S, A>, ViewConsumer<S>), PipelineError> {
        if self.restores() {
            self.status.restoring(Some(status::Restoring::default()));
            // On failure it stays marked as restoring: a store restored in
            // part is never read.
            self.restore(&|progress| self.status.restoring(Some(progress)))?;
            self.status.restoring(None);
        }
        let Self {
            broker,
            config,
            projection,
            store,
            status,
            limits,
            policy,
            changelog,
            rows,
            feed,
            controls,
        } = self;
        let name = config.name.clone();
        let kafka_error = |source| PipelineError::Kafka {
            view: name.clone(),
            source,
        };
        let topics = config.topics.clone();
        let group = config.group();
        let mut worker = Worker::open_with(
            config,
            projection,
            store,
            status,
            limits,
            policy,
            changelog,
            Some(feed),
            Some(rows),
        )?;
        worker.controls = controls;
        let instance = worker.config.group_instance_id.clone();
        let consumer: ViewConsumer<S> =
            kafka::consumer_config(&broker, &group, instance.as_deref())
                .create_with_context(ViewContext::new(
                    Arc::clone(&worker.state),
                    Arc::clone(&worker.status),
                ))
                .map_err(kafka_error)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(kafka_error)?;
        Ok((worker, consumer))
    }
}

impl<S: Store, A: Apply> std::fmt::Debug for Worker<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("view", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S: Store, A: Apply> Worker<S, A> {
    /// A worker for `config`, applying `projection`, keeping rows in `store`,
    /// with the Kafka consumer it applies records from:
    /// [`Worker::prepare`], then [`PreparedView::start`].
    pub fn new(
        broker: &BrokerConfig,
        config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
    ) -> Result<(Self, ViewConsumer<S>), PipelineError> {
        Self::prepare(broker, config, projection, store, status, limits)?.start()
    }

    /// Check what a start needs and decide what it leaves open: the error
    /// policy connected (its dead-letter topic checked), the shard count of
    /// a new view, the changelog topic checked or created. Quick, and fails
    /// before anything runs; [`PreparedView::start`] does the rest.
    pub fn prepare(
        broker: &BrokerConfig,
        mut config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
    ) -> Result<PreparedView<S, A>, PipelineError> {
        let name = config.name.clone();
        let policy =
            ErrorPolicy::connect(&config, broker).map_err(|source| PipelineError::Policy {
                view: name.clone(),
                source: Box::new(source.into()),
            })?;
        let stored_shards = store
            .view_shards(&name)
            .map_err(|source| PipelineError::Store {
                view: name.clone(),
                source,
            })?;
        if config.shards.is_none() && stored_shards.is_none() {
            config.shards = new_view_shards(broker, &config)?;
        }
        let (changelog, rows) = match &config.changelog {
            None => (None, open_view(&store, &config, &projection)?),
            Some(_) => {
                // The changelog checked against the view's shard count
                // before the view is opened: a new view's count is stored
                // only once its changelog is known to fit it.
                let shards = stored_shards
                    .or_else(|| config.shards.and_then(Shards::new))
                    .unwrap_or(Shards::ONE);
                let changelog = Changelog::open(broker, &config, shards)
                    .map_err(|err| PipelineError::Changelog {
                        view: name.clone(),
                        reason: err.to_string(),
                    })?
                    .map(Arc::new);
                let view = open_view(&store, &config, &projection)?;
                (changelog, view)
            }
        };
        Ok(PreparedView {
            broker: broker.clone(),
            config,
            projection,
            store,
            status,
            limits,
            policy,
            changelog,
            rows,
            feed: Arc::new(ViewFeed::new(
                feed::Positions::new(),
                ViewFeed::DEFAULT_CAPACITY,
            )),
            controls: None,
        })
    }

    /// A worker for `config` without a consumer: records come from the
    /// caller, through [`Worker::assign`], [`Worker::handle`],
    /// [`Worker::commit_if_due`] and [`Worker::revoke`], as the consumer's
    /// callbacks and [`Worker::run`] call them. Failed records go to
    /// `policy` (made from `config` by [`ErrorPolicy::connect`], or given
    /// by a test). A policy with dead letters first picks up what the last
    /// run held.
    pub fn open(
        config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
        policy: ErrorPolicy,
    ) -> Result<Self, PipelineError> {
        Self::open_with(
            config, projection, store, status, limits, policy, None, None, None,
        )
    }

    #[allow(clippy::too_many_arguments)] // `open`'s, and what a prepared start hands over.
    fn open_with(
        config: ViewConfig,
        projection: A,
        store: Arc<S>,
        status: Arc<ViewStatus>,
        limits: BatchLimits,
        mut policy: ErrorPolicy,
        changelog: Option<Arc<Changelog>>,
        feed: Option<Arc<ViewFeed>>,
        view: Option<S::View>,
    ) -> Result<Self, PipelineError> {
        let name = config.name.clone();
        let store_error = |source| PipelineError::Store {
            view: name.clone(),
            source,
        };
        // The view a prepared start opened already, else opened now.
        let view = match view {
            Some(view) => view,
            None => open_view(&store, &config, &projection)?,
        };
        let shards = view.shards();
        Self::check_held_records(&name, &config, &view, &mut policy)?;
        if let Some(letters) = policy.dead_letters() {
            let recovered = letters
                .recover(&view)
                .map_err(|source| PipelineError::Policy {
                    view: name.clone(),
                    source: Box::new(source),
                })?;
            if !recovered.is_empty() {
                // Released through the changelog like any batch, or a
                // restore would bring them back held.
                match &changelog {
                    Some(changelog) => changelog
                        .commit_batch(&view, &recovered, |prepared| view.commit_prepared(prepared)),
                    None => view.commit(&recovered),
                }
                .map_err(store_error)?;
                store.flush().map_err(store_error)?;
            }
            letters.send_held(&view);
            status.dead_letters_held(letters.held());
        }
        if let Some(quarantine) = policy.quarantine() {
            quarantine.load(&view).map_err(store_error)?;
            status.quarantine_held(quarantine.subject_count(), quarantine.record_count());
            if quarantine.subject_count() > 0 {
                tracing::warn!(view = %name, subjects = quarantine.subject_count(), records = quarantine.record_count(), "subjects held in quarantine; `projector view release` applies their records");
            }
        }
        let positions: feed::Positions = view
            .checkpoints()
            .map_err(store_error)?
            .into_iter()
            .map(|(topic, partition, next)| {
                // Report what is durable from the start, not only after
                // this run's first commit: readiness and lag depend on it.
                status.committed(&topic, partition, next);
                ((topic, partition), next)
            })
            .collect();
        let feed = match feed {
            Some(feed) => {
                // Readers had it before the store was restored.
                feed.advance(positions.iter());
                feed
            }
            None => Arc::new(ViewFeed::new(positions, ViewFeed::DEFAULT_CAPACITY)),
        };
        let keeps_records = policy.keeps_records();
        let held_back = policy.held_back();
        let rows = view.clone();
        let (dedup, expiry) = match &config.dedup {
            None => (None, None),
            Some(dedup) => {
                let window = dedup.window(&format!("views.{name}")).map_err(|err| {
                    PipelineError::Threads {
                        view: name.clone(),
                        reason: err.to_string(),
                    }
                })?;
                let dedup =
                    dedup::Dedup::open(window, &view, Arc::clone(&status)).map_err(store_error)?;
                let expiry =
                    dedup::Expiry::start(&name, view.clone(), dedup.clone(), changelog.clone())
                        .map_err(|err| PipelineError::Threads {
                            view: name.clone(),
                            reason: format!("cannot start the dedup expiry: {err}"),
                        })?;
                (Some(dedup), Some(expiry))
            }
        };
        if dedup.is_none() {
            // Identities left by a run with dedup on would never expire,
            // and would be stale should it come back on.
            // Logged as forgotten first, then removed from the store.
            let forgotten = view
                .clear_identities(&mut |removed| match &changelog {
                    Some(changelog) => changelog.log_removals(&view, removed),
                    None => Ok(()),
                })
                .map_err(store_error)?;
            if forgotten > 0 {
                tracing::info!(view = %name, records = forgotten, "dedup is off: the identities an earlier run remembered are forgotten");
            }
        }
        if config.changelog.is_none() {
            // Changes made now are not logged: turning the changelog on
            // again must log the whole view first.
            view.forget_log_positions().map_err(store_error)?;
        }
        let mut state = ViewState::new(store, view, feed, policy);
        if let Some(changelog) = changelog {
            state.log_to(changelog);
        }
        let applier = RecordApplier::new(
            Applier::new(projection, &config, Arc::clone(&status)),
            rows,
            held_back,
            Arc::clone(&status),
            state.in_flight(),
            dedup,
        );
        let state = Arc::new(Mutex::new(state));
        Ok(Self {
            name,
            config,
            applier,
            state,
            status,
            limits,
            shards,
            pool: None,
            controls: None,
            keeps_records,
            _expiry: expiry,
            throttle: None,
        })
    }

    /// Refuse to start when the store holds records that `policy` would
    /// neither send nor release (an earlier `on_error` held them): the
    /// group's offset would pass them, and nothing would ever write them.
    fn check_held_records(
        name: &str,
        config: &ViewConfig,
        view: &S::View,
        policy: &mut ErrorPolicy,
    ) -> Result<(), PipelineError> {
        let store_error = |source| PipelineError::Store {
            view: name.to_owned(),
            source,
        };
        if policy.dead_letters().is_none() {
            let count = view.held_dead_letter_origins().map_err(store_error)?.len();
            if count > 0 {
                return Err(PipelineError::HeldByAnotherPolicy {
                    view: name.to_owned(),
                    count,
                    what: "dead letters not yet written to their topic",
                    configured: serde_json::to_string(&config.on_error).unwrap_or_default(),
                    remedy: "set on_error = \"dead-letter\" (or \"quarantine\" with a \
                             dead_letter_topic) back until they are written, or rebuild the view \
                             (`projector view rebuild`), which drops them",
                });
            }
        }
        if policy.quarantine().is_none() {
            let count = view.quarantine_summaries().map_err(store_error)?.len();
            if count > 0 {
                return Err(PipelineError::HeldByAnotherPolicy {
                    view: name.to_owned(),
                    count,
                    what: "records held in quarantine",
                    configured: serde_json::to_string(&config.on_error).unwrap_or_default(),
                    remedy: "set on_error = \"quarantine\" back, then release or discard them \
                             (`projector view release`, `projector view discard`), or rebuild \
                             the view (`projector view rebuild`), which drops them",
                });
            }
        }
        Ok(())
    }

    /// Partitions `partitions` are assigned to this worker (in addition to
    /// the others when `incremental`): `source` takes each at the next
    /// offset the view knows, else the earliest, as on a consumer's
    /// rebalance ([`rebalance::assign`]).
    pub fn assign(&self, source: &impl Source, partitions: &[TopicPartition], incremental: bool) {
        rebalance::assign(&self.state, &self.status, source, partitions, incremental);
    }

    /// Partitions `partitions` are taken away: the pending batch is
    /// committed and flushed and its offsets given to `source` before
    /// `source` drops them, as on a consumer's rebalance
    /// ([`rebalance::revoke`]).
    ///
    /// # Errors
    /// When the store fails.
    pub fn revoke(
        &self,
        source: &impl Source,
        partitions: &[TopicPartition],
        incremental: bool,
    ) -> Result<(), PipelineError> {
        rebalance::revoke(&self.state, &self.status, source, partitions, incremental)
            .map_err(|source| self.store_error(source))
    }

    /// The view's deduplication by CloudEvents identity, when it is on.
    pub fn dedup(&self) -> Option<&dedup::Dedup> {
        self.applier.dedup()
    }

    /// The view's rows, for readers.
    pub fn rows(&self) -> S::View {
        lock(&self.state).view().clone()
    }

    /// What the view reports about itself.
    pub fn status(&self) -> &Arc<ViewStatus> {
        &self.status
    }

    /// The view's feed of positions and changes, for readers.
    pub fn feed(&self) -> Arc<ViewFeed> {
        Arc::clone(lock(&self.state).feed())
    }

    /// Consume and apply until `shutdown` is set, then commit what is
    /// pending and return. A store failure stops the view with an error.
    pub fn run(
        mut self,
        consumer: &ViewConsumer<S>,
        shutdown: &Shutdown,
    ) -> Result<(), PipelineError> {
        let span = tracing::info_span!("view", view = %self.name);
        let _entered = span.enter();
        tracing::info!(topics = ?self.config.topics, group = %self.config.group(), "view started");
        let result = self.consume(consumer, shutdown);
        let result = result.and_then(|()| self.finish(consumer));
        if let Err(err) = &result {
            tracing::error!(error = %err, "view stopped");
            self.status.fatal(err.to_string());
        } else {
            tracing::info!("view stopped cleanly");
        }
        result
    }

    fn consume(
        &mut self,
        consumer: &ViewConsumer<S>,
        shutdown: &Shutdown,
    ) -> Result<(), PipelineError> {
        let mut ownership =
            OwnershipWatch::new(Duration::from_millis(self.config.max_unassigned_ms));
        let mut stall_check = Instant::now();
        while !shutdown.requested() {
            ownership.check(&self.status, &self.config);
            if stall_check.elapsed() >= STALL_IDLE {
                stall_check = Instant::now();
                self.probe_stalled(consumer, STALL_IDLE);
            }
            // With a batch pending, look for a waiting record without
            // blocking: none waiting means the view has caught up with what
            // was fetched, and the batch commits at once instead of
            // lingering (low latency at low load; under load records keep
            // waiting and batches fill up).
            let pending = lock(&self.state).has_pending();
            let timeout = if pending {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            match consumer.poll(timeout) {
                None if pending => self.commit(consumer)?,
                None => {}
                Some(Err(err)) => {
                    self.status.count(|c| &c.consumer_errors);
                    tracing::warn!(error = %err, "consumer error");
                }
                Some(Ok(message)) => {
                    self.handle(consumer, &message)?;
                    if let Some(throttle) = &mut self.throttle {
                        throttle.took();
                    }
                }
            }
            self.poll_dead_letters(consumer);
            self.commit_if_due(consumer)?;
            self.serve_controls(consumer)?;
        }
        Ok(())
    }

    /// A way for the API to send this worker requests ([`control`]).
    pub fn controls(&mut self) -> Controls {
        let (controls, queue) = control::controls();
        self.controls = Some(queue);
        controls
    }

    /// Serve the requests waiting, if any.
    ///
    /// # Errors
    /// When the store fails.
    pub fn serve_controls(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        while let Some(control) = self.controls.as_ref().and_then(ControlQueue::next) {
            match control {
                Control::Release { subject, reply } => {
                    let outcome = self.release(source, subject.as_deref());
                    let answer = match &outcome {
                        Ok(report) => Ok(report.clone()),
                        Err(err) => Err(err.to_string()),
                    };
                    let _ = reply.send(answer);
                    outcome?;
                }
                Control::Discard { subject, reply } => {
                    let outcome = self.discard(source, &subject);
                    let answer = match &outcome {
                        Ok(report) => Ok(report.clone()),
                        Err(err) => Err(err.to_string()),
                    };
                    let _ = reply.send(answer);
                    outcome?;
                }
            }
        }
        Ok(())
    }

    /// Release `subject` from quarantine (every subject held when `None`):
    /// its held records are applied in order with the current module, each
    /// removed from the store in the batch that holds its change, at most
    /// [`HELD_PER_BATCH`] per batch. One that fails again stays held, with
    /// every record behind it, and the subject stays quarantined. Commits
    /// before (so that the applier threads are idle and everything held is
    /// durable) and after.
    ///
    /// # Errors
    /// When the store fails.
    pub fn release(
        &mut self,
        source: &impl Source,
        subject: Option<&str>,
    ) -> Result<ReleaseReport, PipelineError> {
        self.commit(source)?;
        let subjects = self.held_subjects(subject);
        let mut report = ReleaseReport {
            subjects: Vec::new(),
        };
        for subject in subjects {
            let total = {
                let mut state = lock(&self.state);
                let total = state.held_records_of(&subject);
                state.lift_quarantine(&subject);
                total
            };
            let mut applied = 0;
            let mut error = None;
            let mut from = 0;
            'pages: loop {
                let page = self.held_page(&subject, from)?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                from = last + 1;
                for (sequence, record) in page {
                    match self.reapply(&subject, &record)? {
                        Ok(()) => {
                            lock(&self.state).release_quarantined(&subject, sequence);
                            applied += 1;
                        }
                        Err(failure) => {
                            tracing::warn!(subject = %subject, origin = %record.origin, class = %failure.class, error = %failure.message, "a released record failed again; it and those behind it stay held");
                            self.status.record_failure(
                                (&record.origin.topic, record.origin.partition),
                                record.origin.offset,
                                Some(self.shards.of_subject(&subject)),
                                &failure,
                                FailureOutcome::Quarantined,
                            );
                            error = Some(format!("{}: {}", failure.class, failure.message));
                            let mut record = record;
                            failure.class.as_ref().clone_into(&mut record.class);
                            record.message.clone_from(&failure.message);
                            lock(&self.state).keep_quarantined(
                                &subject,
                                sequence,
                                record,
                                &self.status,
                            );
                            break 'pages;
                        }
                    }
                }
                // What was applied leaves the store page by page.
                self.commit(source)?;
            }
            tracing::info!(subject = %subject, applied, still_held = total.saturating_sub(applied), "quarantined subject released");
            report.subjects.push(SubjectRelease {
                subject,
                applied,
                still_held: total.saturating_sub(applied),
                error,
            });
        }
        lock(&self.state).report_quarantine(&self.status);
        self.commit(source)?;
        Ok(report)
    }

    /// Discard `subject`'s records held in quarantine: each moves to the
    /// view's dead-letter topic in the batch that removes it from the
    /// quarantine (and is then written once, as any dead letter), or, with
    /// no dead-letter topic, is dropped, counted and logged by origin; at
    /// most [`HELD_PER_BATCH`] per batch. The subject is no longer held
    /// after it. `None` when the subject is not held.
    ///
    /// # Errors
    /// When the store fails.
    pub fn discard(
        &mut self,
        source: &impl Source,
        subject: &str,
    ) -> Result<Option<SubjectDiscard>, PipelineError> {
        self.commit(source)?;
        if !lock(&self.state).is_quarantined(subject) {
            return Ok(None);
        }
        lock(&self.state).lift_quarantine(subject);
        let mut discarded = 0;
        let mut dead_letter_topic = None;
        let mut from = 0;
        loop {
            let page = self.held_page(subject, from)?;
            let Some((last, _)) = page.last() else {
                break;
            };
            from = last + 1;
            let mut state = lock(&self.state);
            for (sequence, record) in page {
                dead_letter_topic =
                    state.discard_quarantined(subject, sequence, record, &self.status);
                discarded += 1;
            }
            drop(state);
            self.commit(source)?;
        }
        lock(&self.state).report_quarantine(&self.status);
        tracing::info!(
            subject,
            discarded,
            to = dead_letter_topic.as_deref().unwrap_or("(dropped)"),
            "quarantined subject discarded"
        );
        Ok(Some(SubjectDiscard {
            subject: subject.to_owned(),
            discarded,
            dead_letter_topic,
        }))
    }

    /// `subject` if it is held, or every subject held when `None`.
    fn held_subjects(&self, subject: Option<&str>) -> Vec<String> {
        let mut state = lock(&self.state);
        match subject {
            Some(subject) if state.is_quarantined(subject) => vec![subject.to_owned()],
            Some(_) => Vec::new(),
            None => state.quarantined_subjects(),
        }
    }

    /// `subject`'s held records from `sequence` on: one page.
    fn held_page(
        &self,
        subject: &str,
        sequence: u64,
    ) -> Result<Vec<(u64, store::DeadLetter)>, PipelineError> {
        lock(&self.state)
            .view()
            .quarantined_from(subject, sequence, HELD_PER_BATCH)
            .map_err(|source| self.store_error(source))
    }

    /// Apply a record held in quarantine for `subject` again, decoded as
    /// when it was consumed, on the worker's record path: a change is
    /// merged into the pending batch, a failure returned (the release keeps
    /// the record).
    fn reapply(
        &mut self,
        subject: &str,
        record: &store::DeadLetter,
    ) -> Result<Result<(), Failure>, PipelineError> {
        let message = policy::message_of(record);
        let event = match decode(&kafka::record(&message), kafka::headers(&message)) {
            Ok(event) if self.subject_of(&event).as_deref() == Some(subject) => event,
            Ok(_) => {
                return Ok(Err(Failure::new(
                    "no-subject",
                    "the held record has no subject of its own",
                )));
            }
            Err(err) => return Ok(Err(Failure::new("invalid-event", err.to_string()))),
        };
        let origin = &record.origin;
        let job = Job {
            partition: (origin.topic.clone(), origin.partition),
            offset: origin.offset,
            shard: self.shards.of_subject(subject),
            subject: subject.to_owned(),
            event,
            letter: None,
            quarantined: false,
        };
        match self.applier.apply(job) {
            Done::Failed(failed) => Ok(Err(failed.1)),
            Done::StoreFailed(err) => Err(self.store_error(err)),
            done => {
                record::merge(&mut lock(&self.state), &self.status, done, || None);
                Ok(Ok(()))
            }
        }
    }

    /// Commit what is pending, wait (bounded) for the dead letters in
    /// flight, and commit their release.
    ///
    /// # Errors
    /// When the store fails.
    pub fn finish(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        self.commit(source)?;
        lock(&self.state).drain_dead_letters(&self.status);
        self.commit(source)
    }

    /// Act on the dead letters' outcomes: a record that failed
    /// `max_attempts` times stops its partition (it stays held and is sent
    /// again).
    pub fn poll_dead_letters(&mut self, source: &impl Source) {
        let outcomes = lock(&self.state).poll_dead_letters(&self.status);
        for outcome in outcomes {
            if let Outcome::Failed {
                origin,
                error,
                attempts,
                exhausted,
            } = outcome
            {
                tracing::warn!(origin = %origin, attempts, error = %error, "dead letter not acknowledged; sending it again after the backoff");
                if exhausted {
                    let partition = (origin.topic.clone(), origin.partition);
                    let failure = Failure::new(
                        "dead-letter-failed",
                        format!(
                            "the dead-letter topic refused the record {attempts} times ({error}); it is held in the store and sent again, and the partition resumes after a restart"
                        ),
                    );
                    self.status.record_failure(
                        (&origin.topic, origin.partition),
                        origin.offset,
                        None,
                        &failure,
                        FailureOutcome::Stopped,
                    );
                    self.halt(source, &partition, &failure);
                }
            }
        }
    }

    /// Commit the pending batch if it is full or has lingered long enough.
    ///
    /// # Errors
    /// When the store fails.
    pub fn commit_if_due(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        let due = lock(&self.state).batch_due(self.limits.max_records, self.limits.linger);
        if due {
            // Records keep coming: the batch's changelog acknowledgement is
            // waited for at the next commit, while the next batch applies.
            self.commit_with(source, true)?;
        }
        Ok(())
    }

    fn store_error(&self, source: StoreError) -> PipelineError {
        PipelineError::Store {
            view: self.name.clone(),
            source,
        }
    }

    /// Apply one record, or hand it to the error policy. A redelivered
    /// record is recognised and not applied again; a record past the
    /// partition's next offset makes `source` deliver from that offset
    /// again.
    ///
    /// # Errors
    /// When the store fails; the view must stop.
    pub fn handle(
        &mut self,
        source: &impl Source,
        message: &impl Message,
    ) -> Result<(), PipelineError> {
        let partition: TopicPartition = (message.topic().to_owned(), message.partition());
        let offset = message.offset();
        // A debug span: free unless PROJECTOR_LOG enables debug.
        let span =
            tracing::debug_span!("record", topic = %partition.0, partition = partition.1, offset);
        let _entered = span.enter();
        let next = {
            let mut state = lock(&self.state);
            if state.fully_stopped(&partition) {
                // Fetched before the pause took effect; applied after a
                // restart.
                return Ok(());
            }
            state.note_delivery(&partition);
            state
                .cursor(&partition)
                .map(|cursor| cursor.map(|c| c.next()))
                .map_err(|source| self.store_error(source))?
        };
        if let Some(next) = next
            && offset < next
        {
            self.status.count(|c| &c.duplicates);
            tracing::debug!(topic = %partition.0, partition = partition.1, offset, next, "redelivery not applied again");
            lock(&self.state).gaps().below_due(&partition, offset);
            return Ok(());
        }
        // Where this record should have been: the next offset, or for a
        // partition the view never applied from, its earliest offset.
        let due = match next {
            Some(next) => next,
            None => match self.earliest_offset(source, &partition) {
                Some(low) => low,
                // Not known: the record is not taken as the start.
                None => return Ok(()),
            },
        };
        if offset > due && !self.past_due(source, &partition, due, offset) {
            return Ok(());
        }
        // The record's shard, and whether that shard takes it.
        let decoded = decode(&kafka::record(message), kafka::headers(message));
        let routed = match &decoded {
            Ok(event) => self.subject_of(event).map(|subject| {
                let shard = self.shards.of_subject(&subject);
                (subject, shard)
            }),
            Err(_) => None,
        };
        let shard = routed.as_ref().map_or_else(
            || self.shards.of_unrouted(message.key(), partition.1),
            |(_, shard)| *shard,
        );
        let quarantined = {
            let mut state = lock(&self.state);
            let taken = state
                .cursor_in_memory(&partition)
                .map(|cursor| (cursor.shard_next(shard), cursor.is_stopped(shard)));
            match taken {
                Some((shard_next, _)) if offset < shard_next => {
                    // Applied by its shard before a restart that resumed
                    // the partition lower, for another shard.
                    self.status.count(|c| &c.duplicates);
                    tracing::debug!(topic = %partition.0, partition = partition.1, offset, shard = %shard, shard_next, "redelivery not applied again by its shard");
                    state.advance(&partition, offset + 1);
                    return Ok(());
                }
                Some((_, true)) => {
                    // Its shard is stopped on this partition; the others
                    // go on, and the partition resumes here after a restart.
                    state.advance(&partition, offset + 1);
                    return Ok(());
                }
                _ => {}
            }
            routed
                .as_ref()
                .is_some_and(|(subject, _)| state.is_quarantined(subject))
        };
        let (event, subject) = match (decoded, routed) {
            (Ok(event), Some((subject, _))) => (event, subject),
            (decoded, _) => {
                let failure = match decoded {
                    Err(err) => Failure::new("invalid-event", err.to_string()),
                    Ok(_) if self.config.subject_from_key => Failure::new(
                        "no-subject",
                        "the event has no subject and the record no UTF-8 key",
                    ),
                    Ok(_) => Failure::new(
                        "no-subject",
                        "the event has no subject (subject_from_key is off)",
                    ),
                };
                self.fail(source, message, &partition, (shard, None), &failure);
                return Ok(());
            }
        };
        // Taken: a quarantined subject's record is held behind by whoever
        // applies the subject, in the order of its records there (records
        // of the subject already queued on a thread come first).
        let job = Job {
            partition: partition.clone(),
            offset,
            shard,
            subject,
            event,
            letter: None,
            quarantined,
        };
        let job = match &self.pool {
            Some(pool) => {
                // It travels with its record, should the policy keep it.
                let job = Job {
                    letter: self
                        .keeps_records
                        .then(|| policy::dead_letter_of(message, "", "")),
                    ..job
                };
                match pool.dispatch(job) {
                    Ok(()) => {
                        // The commit waits for it to be applied.
                        lock(&self.state).advance(&partition, offset + 1);
                        return Ok(());
                    }
                    // Its thread is gone: applied here.
                    Err(job) => *job,
                }
            }
            None => job,
        };
        let done = match self.applier.apply(job) {
            // Not taken: the view stops, and resumes before this record.
            Done::StoreFailed(err) => return Err(self.store_error(err)),
            done => done,
        };
        let pause = {
            let mut state = lock(&self.state);
            state.advance(&partition, offset + 1);
            record::merge(&mut state, &self.status, done, || {
                Some(policy::dead_letter_of(message, "", ""))
            })
        };
        if let Some((topic, number)) = pause
            && let Err(err) = source.pause(&topic, number)
        {
            tracing::error!(error = %err, "cannot pause the stopped partition; its records are ignored");
        }
        Ok(())
    }

    /// The earliest offset of `partition`, a partition the view never
    /// applied from: where its first record is due. Read with the view's
    /// retries; when it cannot be read, the partition is stopped (paused,
    /// reported) until it is assigned again, rather than started at the
    /// first record delivered, which may lie past records the broker
    /// skipped.
    fn earliest_offset(&mut self, source: &impl Source, partition: &TopicPartition) -> Option<i64> {
        let (topic, number) = (&partition.0, partition.1);
        let mut attempts = 1;
        let error = match self.config.retry().run_while(
            || source.low_watermark(topic, number),
            |_| true,
            |attempt, err, wait| {
                attempts = attempt + 1;
                tracing::warn!(topic = %topic, partition = number, attempt, error = %err, ?wait, "cannot read the partition's earliest offset; retrying");
                self.status.count(|c| &c.retries);
            },
        ) {
            Ok(low) => return Some(low),
            Err(err) => err,
        };
        let described = format!(
            "cannot read the partition's earliest offset ({error}) after {attempts} attempts: \
             it is not started at the first record delivered, which may lie past records the \
             broker skipped; it starts again when next assigned (a restart or a rebalance)"
        );
        tracing::error!(topic = %topic, partition = number, "{described}");
        self.status.count(|c| &c.stopped);
        self.status.failed(topic, number, described, true);
        lock(&self.state).unstartable(partition);
        if let Err(err) = source.pause(topic, number) {
            tracing::error!(error = %err, "cannot pause the partition; its records are ignored");
        }
        None
    }

    /// The broker delivered `offset` on `partition` where `due` was. The
    /// gap is taken only once proven ([`gap`]); until then the record is
    /// dropped and the partition read again from further back. Returns
    /// true when `offset` is to be applied now.
    fn past_due(
        &mut self,
        source: &impl Source,
        partition: &TopicPartition,
        due: i64,
        offset: i64,
    ) -> bool {
        let (topic, number) = (&partition.0, partition.1);
        let earliest = source.low_watermark(topic, number).unwrap_or_else(|err| {
            // Offset 0 is before any partition's start: at worst a longer
            // read of duplicates.
            tracing::warn!(topic = %topic, partition = number, error = %err, "cannot read the partition's earliest offset; reading back from 0");
            0
        });
        let verdict = lock(&self.state)
            .gaps()
            .past_due(partition, due, offset, earliest);
        match verdict {
            Verdict::Proven { from, to, seeks } => {
                self.status.count(|c| &c.gaps);
                self.status.gap(topic, number, from, to);
                tracing::warn!(topic = %topic, partition = number, from, to, seeks, "offsets [from, to) hold no record (proven by reading again from before them); going on");
                true
            }
            Verdict::ReadFrom { from, seek } => {
                self.status.count(|c| &c.refetches);
                tracing::info!(topic = %topic, partition = number, due, received = offset, from, seek, "the broker delivered past the offset due; reading again from before it");
                if let Err(err) = source.seek(topic, number, from) {
                    tracing::error!(topic = %topic, partition = number, from, error = %err, "cannot seek back before the offset due");
                }
                false
            }
        }
    }

    /// Read again every assigned partition that has records past its next
    /// offset (as its last reported high watermark says) but delivered none
    /// for `idle`: a broker that answers a read beginning inside its last
    /// batch with nothing leaves the view behind for good otherwise. Each
    /// call reads from further back, down to the partition's start.
    pub fn probe_stalled(&mut self, source: &impl Source, idle: Duration) {
        let reported = self.status.partitions();
        let mut state = lock(&self.state);
        let assigned: Vec<TopicPartition> = state
            .assigned_partitions()
            .filter(|partition| !state.fully_stopped(partition))
            .cloned()
            .collect();
        for partition in assigned {
            let Some(high) = reported.get(&partition).and_then(|p| p.high_watermark) else {
                continue;
            };
            let next = state
                .cursor(&partition)
                .ok()
                .flatten()
                .map(|cursor| cursor.next());
            let Some(next) = next else {
                // Never applied from: its first record is checked against
                // the earliest offset when it comes.
                continue;
            };
            let quiet = state.quiet_for(&partition, idle);
            if high <= next || !quiet {
                continue;
            }
            let earliest = source.low_watermark(&partition.0, partition.1).unwrap_or(0);
            let Some(from) = state.gaps().stalled(&partition, next, earliest) else {
                continue;
            };
            // Give the read that begins now its own quiet time.
            state.note_delivery(&partition);
            self.status.count(|c| &c.refetches);
            tracing::info!(topic = %partition.0, partition = partition.1, next, high_watermark = high, from, "the partition delivers nothing although it has records past the next offset; reading again from before it");
            if let Err(err) = source.seek(&partition.0, partition.1, from) {
                tracing::error!(topic = %partition.0, partition = partition.1, from, error = %err, "cannot seek back before the next offset");
            }
        }
    }

    fn subject_of(&self, event: &Event) -> Option<String> {
        match (event.subject(), event.key()) {
            (Some(subject), _) => Some(subject.to_owned()),
            (None, Some(key)) if self.config.subject_from_key => {
                String::from_utf8(key.to_vec()).ok()
            }
            _ => None,
        }
    }

    fn fail(
        &mut self,
        source: &impl Source,
        message: &impl Message,
        partition: &TopicPartition,
        (shard, subject): (ShardId, Option<&str>),
        failure: &Failure,
    ) {
        let offset = message.offset();
        let pause = {
            let mut state = lock(&self.state);
            let pause = state.fail(
                &self.status,
                partition,
                offset,
                shard,
                subject,
                failure,
                || {
                    Some(policy::dead_letter_of(
                        message,
                        &failure.class,
                        &failure.message,
                    ))
                },
            );
            state.advance(partition, offset + 1);
            pause
        };
        if pause && let Err(err) = source.pause(&partition.0, partition.1) {
            tracing::error!(error = %err, "cannot pause the stopped partition; its records are ignored");
        }
    }

    /// Stop every shard of `partition` where it is (a dead letter its topic
    /// keeps refusing): nothing more is taken from it until a restart.
    fn halt(&mut self, source: &impl Source, partition: &TopicPartition, failure: &Failure) {
        tracing::error!(topic = %partition.0, partition = partition.1, class = %failure.class, error = %failure.message, "partition stopped; it resumes after a restart");
        self.status.count(|c| &c.stopped);
        self.status.failed(
            &partition.0,
            partition.1,
            format!("{}: {}", failure.class, failure.message),
            true,
        );
        match lock(&self.state).halt(partition) {
            Ok(shards) => {
                for shard in shards {
                    self.status.shard_stopped(&partition.0, partition.1, shard);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read the partition's checkpoints; its records are ignored until a restart");
            }
        }
        if let Err(err) = source.pause(&partition.0, partition.1) {
            tracing::error!(error = %err, "cannot pause the stopped partition; its records are ignored");
        }
    }

    /// Commit the pending batch to the store, flush it, then give its
    /// offsets to `source`.
    ///
    /// # Errors
    /// When the store fails.
    pub fn commit(&mut self, source: &impl Source) -> Result<(), PipelineError> {
        self.commit_with(source, false)
    }

    /// [`Worker::commit`], or with `overlap` the pending batch only sent
    /// to the changelog, the batch sent before it committed
    /// ([`ViewState::commit_overlapped`]).
    fn commit_with(&mut self, source: &impl Source, overlap: bool) -> Result<(), PipelineError> {
        // Every record handed to an applier thread is in the batch first.
        let in_flight = lock(&self.state).in_flight();
        if !in_flight.wait_idle() {
            // The batch sent before is whole: it is committed first.
            self.finish_sent_before_stopping(source);
            return Err(PipelineError::Threads {
                view: self.name.clone(),
                reason: "an applier thread panicked; nothing after the last commit is lost, \
                         and the view resumes there on restart"
                    .to_owned(),
            });
        }
        let (offsets, pauses) = {
            let mut state = lock(&self.state);
            if let Some(err) = state.take_store_failure() {
                drop(state);
                self.finish_sent_before_stopping(source);
                return Err(self.store_error(err));
            }
            let offsets = if overlap {
                state.commit_overlapped(&self.status)
            } else {
                state.commit_batch(&self.status)
            }
            .map_err(|source| self.store_error(source))?;
            (offsets, state.take_pauses())
        };
        give_offsets(source, &offsets);
        for (topic, partition) in pauses {
            if let Err(err) = source.pause(&topic, partition) {
                tracing::error!(error = %err, "cannot pause the stopped partition; its records are ignored");
            }
        }
        Ok(())
    }

    /// Commit the batch sent to the changelog and waiting, if one is, as
    /// the view stops for a failure of the batch after it, and give its
    /// offsets; a failure of its own is logged (the restart's restore
    /// brings it back from the changelog, or reverts it).
    fn finish_sent_before_stopping(&self, source: &impl Source) {
        match lock(&self.state).finish_sent(&self.status) {
            Ok(offsets) => give_offsets(source, &offsets),
            Err(err) => {
                tracing::error!(error = %err, "the batch sent to the changelog before the failure could not be committed");
            }
        }
    }

    /// Apply the view's shards on `threads` threads of their own (at most
    /// one per shard), each with its own instance of the projection. With
    /// one thread, or one shard, the worker applies them itself.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn parallel(mut self, threads: usize) -> Result<Self, PipelineError>
    where
        A: Send + 'static,
    {
        self.pool = None;
        if threads > 1 && self.shards.count() > 1 {
            let pool = Pool::start(
                &self.name,
                threads,
                &self.applier,
                &self.state,
                &self.status,
            )
            .map_err(|err| PipelineError::Threads {
                view: self.name.clone(),
                reason: err.to_string(),
            })?;
            tracing::info!(view = %self.name, threads = pool.threads(), shards = self.shards.count(), "shards apply in parallel");
            self.pool = Some(pool);
        }
        Ok(self)
    }
}

impl<S: Store, A: Apply> Worker<S, A> {
    /// Take at most `rate` records a second (none: no bound).
    #[must_use]
    pub fn bounded(mut self, rate: Option<throttle::Rate>) -> Self {
        self.throttle = rate.map(throttle::Throttle::new);
        self
    }
}

/// Says in the log when a view has owned no partition for longer than its
/// bound, once per such time, and when it owns some again.
struct OwnershipWatch {
    bound: Duration,
    checked: Instant,
    warned: bool,
}

impl OwnershipWatch {
    fn new(bound: Duration) -> Self {
        Self {
            bound,
            checked: Instant::now(),
            warned: false,
        }
    }

    fn check(&mut self, status: &ViewStatus, config: &ViewConfig) {
        if self.checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.checked = Instant::now();
        match status.unassigned_for() {
            Some(unassigned) if unassigned >= self.bound && !self.warned => {
                self.warned = true;
                tracing::warn!(
                    group = %config.group(),
                    instance = config.group_instance_id.as_deref().unwrap_or("-"),
                    seconds = unassigned.as_secs(),
                    "the view owns no partition of its topics: another member of its group holds them \
                     (one that died keeps them until session.timeout.ms passes; with static membership \
                     a restart with the same data directory takes them back); the runtime is not ready"
                );
            }
            None if self.warned => {
                self.warned = false;
                tracing::info!("the view owns partitions again");
            }
            _ => {}
        }
    }
}
