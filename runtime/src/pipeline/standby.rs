//! A standby copy of a view: its rows, held records, identities and
//! checkpoints kept by tailing the view's changelog, for reads and for a
//! fast takeover, without consuming the view's topics or applying anything.
//!
//! # What it promises
//!
//! - **Whole batches only.** Each round applies, per shard, the changelog's
//!   records up to the shard's last positions record (the end of a batch
//!   its owner logged whole), with their positions, and records where it
//!   got to (`l/<shard>`): [`Changelog::follow`]. A batch being logged, or
//!   one a crash cut short (which its owner reverts), is read again next
//!   round. Each shard's part of a round is written with its positions in
//!   one store step, so the copy's rows and checkpoints are those of one
//!   moment of its owner's store, per shard (a first copy larger than the
//!   restore's window is written in parts, while it is still restoring).
//! - **It writes nothing to the changelog**, and commits no offset. It
//!   never makes the changelog topic (its owner does); it writes a word
//!   every few seconds to the view's standby directory.
//! - **A copy that may lack deletes is dropped**: one that last followed
//!   longer ago than the changelog keeps tombstones is copied afresh.
//! - **Its lag is known**: per shard, the records between where its copy
//!   reaches and where the partition ends ([`StandbyState`]), shown in
//!   `/v1/views`. A broker it cannot reach is retried, and shown, never a
//!   stop; a changelog built by another module, or one that holds less
//!   than the copy (deleted or made again), stops the copy, named.
//! - Until its first round ends the view is *restoring*: reads answer 503,
//!   never a 404 for a row the owner has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PipelineError;
use super::changelog::{Changelog, ChangelogFailure};
use super::feed::ViewFeed;
use super::status::{HeardStandbys, Restoring, StandbyState, ViewStatus};
use crate::clock::unix_ms;
use crate::kafka::directory::{Directory, StandbyWord};
use crate::shutdown::Shutdown;
use crate::store::{Store, ViewStore};

/// How long a round that found nothing new waits before the next.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// How long a failed round waits before the next.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// A standby copy of one view, ready to follow its changelog.
pub struct Standby<S: Store> {
    pub(super) name: String,
    pub(super) changelog: Arc<Changelog>,
    pub(super) rows: S::View,
    pub(super) store: Arc<S>,
    pub(super) status: Arc<ViewStatus>,
    pub(super) feed: Arc<ViewFeed>,
    /// Its name in the view's standby directory.
    pub(super) standby_name: String,
    pub(super) broker: crate::config::BrokerConfig,
    /// Replicas of the directory topic, when this standby creates it.
    pub(super) replication: i32,
}

impl<S: Store> std::fmt::Debug for Standby<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standby")
            .field("view", &self.name)
            .field("changelog", &self.changelog.topic())
            .finish_non_exhaustive()
    }
}

impl<S: Store> Standby<S> {
    /// Follow the changelog until `shutdown`: a round at once after one
    /// that applied something, else after [`IDLE_WAIT`].
    ///
    /// # Errors
    /// When the copy cannot go on: the changelog was built by another
    /// module or holds less than the copy, or the store failed.
    pub fn run(self, shutdown: &Shutdown) -> Result<(), PipelineError> {
        let failed = |reason: String| {
            self.status.fatal(reason.clone());
            PipelineError::Changelog {
                view: self.name.clone(),
                reason,
            }
        };
        self.status.restoring(Some(Restoring::default()));
        let afresh = self
            .drop_stale_copy()
            .map_err(|err| failed(err.to_string()))?;
        self.status.standby(StandbyState {
            afresh: afresh.clone(),
            ..StandbyState::default()
        });
        let mut records = 0;
        let mut caught_up = false;
        let mut last_error_logged: Option<Instant> = None;
        let mut directory: Option<Directory> = None;
        let mut announced: Option<Instant> = None;
        while !shutdown.requested() {
            let round = self.changelog.follow(&self.rows, &|progress| {
                if !caught_up {
                    self.status.restoring(Some(progress));
                }
            });
            let followed = match round {
                Ok(followed) => followed,
                Err(ChangelogFailure::Topic(err)) => {
                    // The broker: retried, and shown, until it answers.
                    let reason = err.to_string();
                    if last_error_logged.is_none_or(|at| at.elapsed() > Duration::from_secs(30)) {
                        tracing::warn!(view = %self.name, error = %reason, "standby: cannot read the changelog; retrying");
                        last_error_logged = Some(Instant::now());
                    }
                    let mut state = self.status.standby_state().unwrap_or_default();
                    state.last_error = Some(reason);
                    self.status.standby(state);
                    shutdown.sleep(RETRY_WAIT);
                    continue;
                }
                Err(err) => {
                    tracing::error!(view = %self.name, error = %err, "standby: the copy stops");
                    return Err(failed(err.to_string()));
                }
            };
            let checkpoints = self
                .rows
                .checkpoints()
                .map_err(|err| failed(err.to_string()))?;
            let checkpoints: std::collections::BTreeMap<(String, i32), i64> = checkpoints
                .into_iter()
                .map(|(topic, partition, next)| ((topic, partition), next))
                .collect();
            for ((topic, partition), next) in &checkpoints {
                self.status.committed(topic, *partition, *next);
            }
            self.feed.advance(&checkpoints);
            if followed.restored.records > 0 || !caught_up {
                self.count_held().map_err(|err| failed(err.to_string()))?;
            }
            records += followed.restored.records;
            let state = StandbyState {
                shards: followed.shards,
                followed_at: Some(Instant::now()),
                last_error: None,
                records,
                afresh: afresh.clone(),
            };
            let lag = state.lag();
            self.status.standby(state);
            if !caught_up {
                caught_up = true;
                self.status.restoring(None);
                tracing::info!(
                    view = %self.name,
                    records = followed.restored.records,
                    rows = self.rows.row_count(),
                    lag,
                    "standby: the copy has caught up with the changelog; it follows it from now on"
                );
                // What it restored is kept even if the machine stops now.
                self.store.flush().map_err(|err| failed(err.to_string()))?;
            }
            if announced.is_none_or(|at| at.elapsed() >= ANNOUNCE_EVERY) {
                announced = Some(Instant::now());
                self.rows
                    .set_standby_followed_at(unix_ms())
                    .map_err(|err| failed(err.to_string()))?;
                self.announce(&mut directory);
            }
            if followed.restored.records == 0 {
                shutdown.sleep(IDLE_WAIT);
            }
        }
        if let Some(directory) = &directory
            && let Err(err) = directory.withdraw(&self.standby_name)
        {
            tracing::warn!(view = %self.name, error = %err, "standby: cannot take this copy out of the view's standby directory; its owner sees it go stale");
        }
        Ok(())
    }

    /// Tell the view's owner, through its standby directory, how far this
    /// copy reaches; the directory opened first when it is not yet. A
    /// failure is logged and tried again next time: the copy goes on.
    fn announce(&self, directory: &mut Option<Directory>) {
        if directory.is_none() {
            match Directory::open(&self.broker, self.changelog.topic(), self.replication) {
                Ok(opened) => *directory = Some(opened),
                Err(err) => {
                    tracing::warn!(view = %self.name, error = %err, "standby: cannot open the view's standby directory; its owner does not see this copy");
                    return;
                }
            }
        }
        let Some(directory) = directory else { return };
        let shards = self
            .status
            .standby_state()
            .map(|state| {
                state
                    .shards
                    .iter()
                    .map(|(shard, (at, _))| (shard.0, *at))
                    .collect()
            })
            .unwrap_or_default();
        let word = StandbyWord {
            name: self.standby_name.clone(),
            shards,
            at_ms: unix_ms(),
        };
        if let Err(err) = directory.announce(&word) {
            tracing::warn!(view = %self.name, error = %err, "standby: cannot write to the view's standby directory");
        }
    }
}

/// How long compaction keeps a tombstone when the broker does not say:
/// Kafka's default `delete.retention.ms`.
const DEFAULT_DELETE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How often a standby tells its owner how far it reaches.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);

/// Read the standby directory of `changelog` every [`ANNOUNCE_EVERY`] until
/// `shutdown`, telling `status` which standbys were heard (those silent for
/// [`Directory::STALE`] left out) and logging when fewer than `expected`
/// are: what an owner with `changelog.standby_replicas` runs.
pub fn hear_standbys(
    view: &str,
    broker: &crate::config::BrokerConfig,
    changelog: &str,
    replication: i32,
    expected: u32,
    status: &ViewStatus,
    shutdown: &Shutdown,
) {
    let mut directory = None;
    let mut short = false;
    let started = Instant::now();
    while !shutdown.requested() {
        if directory.is_none() {
            match Directory::open(broker, changelog, replication) {
                Ok(opened) => directory = Some(opened),
                Err(err) => status.standbys_heard(HeardStandbys {
                    expected,
                    words: Vec::new(),
                    last_error: Some(err.to_string()),
                }),
            }
        }
        if let Some(directory) = &directory {
            let stale_before =
                unix_ms() - i64::try_from(Directory::STALE.as_millis()).unwrap_or(i64::MAX);
            let heard = match directory.heard() {
                Ok(heard) => HeardStandbys {
                    expected,
                    words: heard
                        .into_values()
                        .filter(|word| word.at_ms >= stale_before)
                        .collect(),
                    last_error: None,
                },
                Err(err) => HeardStandbys {
                    expected,
                    words: status
                        .heard_standbys()
                        .map(|heard| heard.words)
                        .unwrap_or_default(),
                    last_error: Some(err.to_string()),
                },
            };
            let fewer = heard.words.len() < expected as usize;
            // Standbys take a moment to speak after a start.
            if fewer != short && (!fewer || started.elapsed() > Directory::STALE) {
                short = fewer;
                if fewer {
                    tracing::warn!(
                        view,
                        expected,
                        heard = heard.words.len(),
                        "fewer standby copies than changelog.standby_replicas are heard from"
                    );
                } else {
                    tracing::info!(
                        view,
                        expected,
                        heard = heard.words.len(),
                        "every expected standby copy is heard from"
                    );
                }
            }
            status.standbys_heard(heard);
        }
        shutdown.sleep(ANNOUNCE_EVERY);
    }
}

impl<S: Store> Standby<S> {
    /// Drop the copy this start found when it last followed the changelog
    /// longer ago than the changelog keeps a tombstone (its
    /// `delete.retention.ms`, less a tenth for clocks; 24 h, Kafka's
    /// default, when the broker does not say): compaction may have removed
    /// tombstones of rows deleted meanwhile, which the copy would then keep
    /// for ever. A copy with no record of when it followed is dropped too.
    /// Returns why it dropped it, if it did.
    fn drop_stale_copy(&self) -> Result<Option<String>, crate::store::StoreError> {
        if self.rows.log_positions()?.is_empty() {
            return Ok(None);
        }
        let retention = self
            .changelog
            .delete_retention()
            .unwrap_or(DEFAULT_DELETE_RETENTION);
        let bound = i64::try_from((retention - retention / 10).as_millis()).unwrap_or(i64::MAX);
        let why = match self.rows.standby_followed_at()? {
            Some(at) if unix_ms().saturating_sub(at) <= bound => return Ok(None),
            Some(at) => format!(
                "it last followed the changelog {} s ago, longer than the changelog keeps a \
                 tombstone ({} s): it may lack deletes",
                unix_ms().saturating_sub(at) / 1000,
                retention.as_secs()
            ),
            None => "it has no record of when it last followed the changelog".to_owned(),
        };
        tracing::warn!(view = %self.name, reason = %why, "standby: the copy found is dropped and the changelog copied afresh");
        self.store.reset_view(&self.name, self.rows.module_hash())?;
        Ok(Some(why))
    }

    /// Count what the copy holds for its owner (dead letters not yet
    /// acknowledged, quarantined records) in the status, as the owner's
    /// worker does.
    fn count_held(&self) -> Result<(), crate::store::StoreError> {
        let letters = self.rows.held_dead_letter_origins()?.len();
        self.status.dead_letters_held(letters);
        let quarantined = self.rows.quarantine_summaries()?;
        let subjects: std::collections::BTreeSet<&str> = quarantined
            .iter()
            .map(|held| held.subject.as_str())
            .collect();
        self.status
            .quarantine_held(subjects.len(), quarantined.len() as u64);
        Ok(())
    }
}
