//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, `/v1/views`,
//! and each view's recent samples (`/v1/views/{view}/samples`) and failed
//! records (`/v1/views/{view}/failures`).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::{ApiError, ApiState};
use crate::pipeline::failures::{FailureRecord, Failures};
use crate::pipeline::samples::{Sample, Samples};
use crate::pipeline::{GapRange, PartitionState, ViewStatus};
use crate::service::{RunningView, ViewInfo};
use crate::store::ViewStore;

/// One partition in `/v1/views`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PartitionReport {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// True while the partition is assigned to this runtime (a partition
    /// held before a rebalance stays listed with its checkpoint).
    pub assigned: bool,
    /// The next offset to apply, as durable in the store.
    pub checkpoint: Option<i64>,
    /// The partition's high watermark.
    pub high_watermark: Option<i64>,
    /// High watermark minus checkpoint.
    pub lag: Option<i64>,
    /// `running` or `stopped` (at least one shard is stopped on it).
    pub state: String,
    /// The last failure.
    pub last_error: Option<String>,
    /// Offset gaps taken since start (proven to hold no record).
    #[serde(default)]
    pub gaps: u64,
    /// The last gap taken, `[from, to)`.
    #[serde(default)]
    pub last_gap: Option<GapRange>,
    /// The shards stopped on this partition; the others go on.
    #[serde(default)]
    pub stopped_shards: Vec<u32>,
}

/// One view in `/v1/views`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ViewReport {
    /// The view's name.
    pub name: String,
    /// SHA-256 of its module.
    pub module_hash: String,
    /// Its topics.
    pub topics: Vec<String>,
    /// Its consumer group.
    pub group: String,
    /// Its secondary indexes.
    pub indexes: Vec<String>,
    /// Rows it holds.
    pub rows: u64,
    /// How many shards its subjects are split into.
    #[serde(default)]
    pub shards: u32,
    /// `running`, or `failed: <reason>`.
    pub state: String,
    /// Event counters.
    pub counters: serde_json::Value,
    /// Failed records held for the dead-letter topic, not yet acknowledged
    /// by it.
    #[serde(default)]
    pub dead_letters_held: u64,
    /// Event identities remembered for deduplication (`dedup`; 0 without).
    #[serde(default)]
    pub identities_remembered: u64,
    /// The dedup watermark, milliseconds since the epoch: identities
    /// `keep` older are forgotten (`dedup`; absent without, or before it
    /// has read a record).
    #[serde(default)]
    pub dedup_watermark_ms: Option<i64>,
    /// Subjects held in quarantine now.
    #[serde(default)]
    pub quarantined_subjects: u64,
    /// Records held in quarantine now, over every subject.
    #[serde(default)]
    pub quarantined_records: u64,
    /// How long the view has owned no partition of its topics, in
    /// milliseconds; absent while it owns some.
    #[serde(default)]
    pub unassigned_ms: Option<u64>,
    /// How long it may own none before the runtime is not ready.
    #[serde(default)]
    pub max_unassigned_ms: u64,
    /// The restore from its changelog under way; absent when none is.
    #[serde(default)]
    pub restoring: Option<RestoreReport>,
    /// Which version of the view readers see: 1 as first configured, one
    /// more per deploy.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Its versions and a deploy's shadow, once a module was deployed to
    /// it (`projector view deploy`); absent before.
    #[serde(default)]
    pub deployment: Option<crate::deploy::DeploymentReport>,
    /// `owner` (this runtime builds it) or `standby` (it keeps a copy by
    /// following its changelog).
    #[serde(default)]
    pub role: crate::config::Role,
    /// How far a standby copy follows the changelog; absent on the owner.
    #[serde(default)]
    pub standby: Option<StandbyReport>,
    /// The standby copies its owner hears from, when its config expects
    /// some (`changelog.standby_replicas`).
    #[serde(default)]
    pub standbys: Option<StandbysReport>,
    /// Its partitions.
    pub partitions: Vec<PartitionReport>,
}

/// The standby copies an owner hears from through its standby directory.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StandbysReport {
    /// How many the config expects.
    pub expected: u32,
    /// Each one heard from in the last 30 s.
    pub heard: Vec<HeardStandbyReport>,
    /// The last error reading the directory, if the last read failed.
    pub last_error: Option<String>,
}

/// One standby copy, as its owner heard it.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct HeardStandbyReport {
    /// Its name: its runtime's instance id and the view.
    pub name: String,
    /// Changelog records it lacks against what this owner has logged, over
    /// every shard, as of its word.
    pub lag: i64,
    /// Milliseconds since its word.
    pub said_ms_ago: i64,
}

/// How far a standby copy follows its view's changelog.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StandbyReport {
    /// Changelog records the copy lacks, over every shard, when it last
    /// looked.
    pub lag: i64,
    /// Milliseconds since it last looked; absent before its first look.
    pub followed_ms_ago: Option<u64>,
    /// The last error reading the changelog, while it retries.
    pub last_error: Option<String>,
    /// Changelog records read and applied since the start.
    pub records: u64,
    /// Why this start dropped the copy it found and copied the changelog
    /// afresh, if it did.
    pub copied_afresh: Option<String>,
    /// Per shard.
    pub shards: Vec<StandbyShardReport>,
}

/// One shard of a standby copy.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StandbyShardReport {
    /// The shard (its changelog partition).
    pub shard: u32,
    /// The offset the copy reaches: after the last whole batch it applied.
    pub at: i64,
    /// Where the partition ended when it last looked.
    pub end: i64,
    /// `end - at`.
    pub lag: i64,
}

/// A restore from the changelog under way.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct RestoreReport {
    /// Changelog records applied so far.
    pub records: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Records the changelog holds to restore, by its offsets (compaction
    /// makes the real count lower).
    pub total: u64,
    /// Records per second so far.
    pub records_per_second: f64,
    /// Seconds left at that rate, when it can tell.
    pub eta_seconds: Option<f64>,
}

/// The body of `/v1/views`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ViewsReport {
    /// Every view.
    pub views: Vec<ViewReport>,
}

fn report(view: &RunningView) -> ViewReport {
    let (info, status) = (&view.info, &view.status);
    let partitions = status
        .held_partitions()
        .map(|((topic, partition), p)| PartitionReport {
            topic,
            partition,
            assigned: p.assigned,
            checkpoint: p.checkpoint,
            high_watermark: p.high_watermark,
            lag: p.lag(),
            state: match p.state {
                PartitionState::Running => "running".to_owned(),
                PartitionState::Stopped => "stopped".to_owned(),
            },
            last_error: p.last_error,
            gaps: p.gaps,
            last_gap: p.last_gap,
            stopped_shards: p.stopped_shards,
        })
        .collect();
    ViewReport {
        name: info.name.clone(),
        module_hash: info.module_hash.clone(),
        topics: info.topics.clone(),
        group: info.group.clone(),
        indexes: info.indexes.clone(),
        rows: view.rows.row_count(),
        shards: view.rows.shards().count(),
        state: status
            .fatal_error()
            .map_or_else(|| "running".to_owned(), |err| format!("failed: {err}")),
        counters: serde_json::to_value(status.counters()).unwrap_or_default(),
        dead_letters_held: status.held_dead_letters(),
        identities_remembered: status.identities_remembered(),
        dedup_watermark_ms: status.dedup_watermark(),
        quarantined_subjects: status.quarantined().0,
        quarantined_records: status.quarantined().1,
        unassigned_ms: status
            .unassigned_for()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        max_unassigned_ms: u64::try_from(info.max_unassigned.as_millis()).unwrap_or(u64::MAX),
        version: info.version,
        deployment: None,
        restoring: status.restore_progress().map(|r| RestoreReport {
            records: r.records,
            bytes: r.bytes,
            total: r.total,
            records_per_second: r.rate(),
            eta_seconds: r.eta_seconds(),
        }),
        role: info.role,
        standbys: status.heard_standbys().map(|heard| {
            let logged = view.rows.log_positions().unwrap_or_default();
            let now = crate::clock::unix_ms();
            StandbysReport {
                expected: heard.expected,
                heard: heard
                    .words
                    .iter()
                    .map(|word| HeardStandbyReport {
                        name: word.name.clone(),
                        lag: logged
                            .iter()
                            .map(|(shard, end)| {
                                end.saturating_sub(word.shards.get(&shard.0).copied().unwrap_or(0))
                                    .max(0)
                            })
                            .sum(),
                        said_ms_ago: now.saturating_sub(word.at_ms).max(0),
                    })
                    .collect(),
                last_error: heard.last_error,
            }
        }),
        standby: status.standby_state().map(|state| StandbyReport {
            lag: state.lag(),
            followed_ms_ago: state
                .followed_at
                .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)),
            last_error: state.last_error.clone(),
            records: state.records,
            copied_afresh: state.afresh.clone(),
            shards: state
                .shards
                .iter()
                .map(|(shard, (at, end))| StandbyShardReport {
                    shard: shard.0,
                    at: *at,
                    end: *end,
                    lag: end.saturating_sub(*at).max(0),
                })
                .collect(),
        }),
        partitions,
    }
}

/// The body of `/v1/views/{view}/samples`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct SamplesReport {
    /// Milliseconds between two samples.
    pub interval_ms: u64,
    /// How many samples are kept at most.
    pub capacity: usize,
    /// The samples kept, oldest first.
    pub samples: Vec<Sample>,
}

pub(super) async fn samples(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SamplesReport>, ApiError> {
    let Path(view_name) = path.map_err(super::bad_request)?;
    let view = state.view(&view_name)?;
    Ok(Json(SamplesReport {
        interval_ms: Samples::INTERVAL_MS,
        capacity: Samples::CAPACITY,
        samples: view.status.samples.snapshot(),
    }))
}

/// The body of `/v1/views/{view}/failures`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct FailuresReport {
    /// How many failures are kept at most.
    pub capacity: usize,
    /// The failures kept, newest first.
    pub failures: Vec<FailureRecord>,
}

pub(super) async fn failures(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FailuresReport>, ApiError> {
    let Path(view_name) = path.map_err(super::bad_request)?;
    let view = state.view(&view_name)?;
    Ok(Json(FailuresReport {
        capacity: Failures::CAPACITY,
        failures: view.status.failures.newest_first(),
    }))
}

fn first_version() -> u32 {
    1
}

pub(super) async fn views(State(state): State<ApiState>) -> Json<ViewsReport> {
    let settings = state.deployer.as_ref().map(|d| d.settings().clone());
    Json(ViewsReport {
        views: state
            .views
            .slots()
            .iter()
            .map(|slot| {
                let mut view = report(&slot.live_view());
                if slot.is_deployed() {
                    view.deployment = Some(crate::deploy::report(slot, settings.as_ref()));
                }
                view
            })
            .collect(),
    })
}

/// Why `status` is not ready, if it is not: it failed, has not joined its
/// group, has owned no partition for longer than its bound, has a stopped
/// partition, or has not caught up to where its partitions stood when it
/// started.
/// How long a standby copy may go without reading its changelog before the
/// runtime is not ready.
const STANDBY_CUT_OFF: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a view is not ready: the word `/readyz` answers (open to probes, so
/// it names no view, topic or error) and the detail it logs.
fn not_ready(info: &ViewInfo, status: &ViewStatus) -> Option<(&'static str, String)> {
    let name = &info.name;
    if let Some(err) = status.fatal_error() {
        return Some(("failed", format!("view {name} failed: {err}")));
    }
    if let Some(restoring) = status.restore_progress() {
        return Some((
            "restoring",
            format!(
                "view {name} is restoring from its changelog ({} of about {} records)",
                restoring.records, restoring.total
            ),
        ));
    }
    if let Some(standby) = status.standby_state() {
        // A standby owns no partition and joins no group: restored and
        // following is ready; one that has not read its changelog for a
        // while serves what may be far behind.
        return standby
            .followed_at
            .filter(|at| at.elapsed() > STANDBY_CUT_OFF)
            .map(|at| {
                (
                    "standby-cut-off",
                    format!(
                        "view {name} is a standby copy that has not read its changelog for {} s: {}",
                        at.elapsed().as_secs(),
                        standby.last_error.as_deref().unwrap_or("no error reported")
                    ),
                )
            });
    }
    if let Some(unassigned) = status.unassigned_for()
        && unassigned >= info.max_unassigned
    {
        return Some((
            "unassigned",
            format!(
                "view {name} has owned no partition of its topics for {} s (group {}): \
                 another member holds them, possibly one that died and has not expired yet",
                unassigned.as_secs(),
                info.group
            ),
        ));
    }
    if !status.has_joined() {
        return Some((
            "joining",
            format!("view {name} has not joined its consumer group yet"),
        ));
    }
    let mut word = "catching-up";
    let behind: Vec<String> = status
        .partitions()
        .into_iter()
        .filter(|(_, p)| p.assigned)
        .filter_map(|((topic, partition), p)| {
            if p.state == PartitionState::Stopped {
                word = "stopped";
                Some(format!("{topic}/{partition} is stopped"))
            } else if !p.caught_up() {
                Some(format!(
                    "{topic}/{partition} is catching up (at {}, started behind {})",
                    p.checkpoint
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    p.start_high_watermark
                        .map_or_else(|| "an unknown offset".to_owned(), |h| h.to_string())
                ))
            } else {
                None
            }
        })
        .collect();
    (!behind.is_empty()).then(|| (word, format!("view {name}: {}", behind.join(", "))))
}

/// `/readyz`: `ready`, or 503 with one word saying why not (`failed`,
/// `unassigned`, `joining`, `stopped`, `catching-up`: the first view's
/// that is not ready). Open to probes, so the answer names no view, topic
/// or error; the reasons in full go to the log when readiness changes, and
/// `/v1/views` (guarded) shows each view's state.
pub(super) async fn readyz(State(state): State<ApiState>) -> Response {
    let problems: Vec<(&'static str, String)> = state
        .views()
        .iter()
        .filter_map(|view| not_ready(&view.info, &view.status))
        .collect();
    let ready = problems.is_empty();
    if state.readiness_changed(ready) {
        if ready {
            tracing::info!("ready");
        } else {
            let reasons: Vec<&str> = problems.iter().map(|(_, reason)| reason.as_str()).collect();
            tracing::info!(reason = %reasons.join("; "), "not ready");
        }
    }
    match problems.first() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some((word, _)) => ApiError::NotReady((*word).to_owned()).into_response(),
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    view: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViewLabels {
    view: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    view: String,
    topic: String,
    partition: i32,
}

fn render_metrics(state: &ApiState) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("projector");
    let events = Family::<OutcomeLabels, Counter>::default();
    let lag = Family::<PartitionLabels, Gauge>::default();
    let checkpoint = Family::<PartitionLabels, Gauge>::default();
    let rows = Family::<ViewLabels, Gauge>::default();
    let held = Family::<ViewLabels, Gauge>::default();
    let quarantined = Family::<ViewLabels, Gauge>::default();
    let identities = Family::<ViewLabels, Gauge>::default();
    let dropped_logs = Family::<ViewLabels, Counter>::default();
    let recycled = Family::<ViewLabels, Counter>::default();
    let commit_failures = Family::<ViewLabels, Counter>::default();
    for view in &state.views() {
        let (info, status) = (&view.info, &view.status);
        rows.get_or_create(&ViewLabels {
            view: info.name.clone(),
        })
        .set(i64::try_from(view.rows.row_count()).unwrap_or(i64::MAX));
        held.get_or_create(&ViewLabels {
            view: info.name.clone(),
        })
        .set(i64::try_from(status.held_dead_letters()).unwrap_or(i64::MAX));
        quarantined
            .get_or_create(&ViewLabels {
                view: info.name.clone(),
            })
            .set(i64::try_from(status.quarantined().1).unwrap_or(i64::MAX));
        identities
            .get_or_create(&ViewLabels {
                view: info.name.clone(),
            })
            .set(i64::try_from(status.identities_remembered()).unwrap_or(i64::MAX));
        let c = status.counters();
        dropped_logs
            .get_or_create(&ViewLabels {
                view: info.name.clone(),
            })
            .inc_by(c.guest_logs_dropped);
        recycled
            .get_or_create(&ViewLabels {
                view: info.name.clone(),
            })
            .inc_by(c.instances_recycled);
        commit_failures
            .get_or_create(&ViewLabels {
                view: info.name.clone(),
            })
            .inc_by(c.offset_commit_failures);
        for (outcome, value) in [
            ("applied", c.applied),
            ("duplicate", c.duplicates),
            ("duplicate_by_id", c.duplicates_by_id),
            ("skipped", c.skipped),
            ("dead_lettered", c.dead_lettered),
            ("stopped", c.stopped),
            ("retried", c.retries),
            ("refetched", c.refetches),
            ("gap", c.gaps),
            ("quarantined", c.quarantined),
            ("discarded", c.discarded),
        ] {
            events
                .get_or_create(&OutcomeLabels {
                    view: info.name.clone(),
                    outcome,
                })
                .inc_by(value);
        }
        for ((topic, partition), p) in status.partitions() {
            let labels = PartitionLabels {
                view: info.name.clone(),
                topic,
                partition,
            };
            if let Some(value) = p.lag() {
                lag.get_or_create(&labels).set(value);
            }
            if let Some(value) = p.checkpoint {
                checkpoint.get_or_create(&labels).set(value);
            }
        }
        let view = registry.sub_registry_with_label(("view".into(), info.name.clone().into()));
        let histograms = &status.histograms;
        view.register(
            "apply_seconds",
            "Time per apply call of the projection",
            histograms.apply_seconds.clone(),
        );
        view.register(
            "batch_records",
            "Records per batch committed to the store",
            histograms.batch_records.clone(),
        );
        view.register(
            "flush_seconds",
            "Time to commit and flush one batch",
            histograms.flush_seconds.clone(),
        );
    }
    let version = Family::<ViewLabels, Gauge>::default();
    let shadow_lag = Family::<ViewLabels, Gauge>::default();
    let shadow_replayed = Family::<ViewLabels, Gauge>::default();
    for slot in state.views.slots() {
        let labels = ViewLabels {
            view: slot.name().to_owned(),
        };
        version
            .get_or_create(&labels)
            .set(i64::from(slot.live().version.number));
        let deployment = crate::deploy::report(slot, None);
        if let Some(shadow) = deployment.shadow.filter(|s| s.failed.is_none()) {
            shadow_replayed.get_or_create(&labels).set(shadow.replayed);
            if let Some(lag) = shadow.lag {
                shadow_lag.get_or_create(&labels).set(lag);
            }
        }
    }
    registry.register(
        "view_version",
        "The version of the view readers see: 1 as first configured, one more per deploy",
        version,
    );
    registry.register(
        "deploy_shadow_lag",
        "Records the shadow a deploy builds has not applied yet, over every partition",
        shadow_lag,
    );
    registry.register(
        "deploy_shadow_replayed",
        "Records the shadow a deploy builds has replayed",
        shadow_replayed,
    );
    registry.register("events", "Records handled, by outcome", events);
    registry.register("view_rows", "Rows in the view", rows);
    registry.register(
        "guest_logs_dropped",
        "Guest log records dropped because a call logged more than max_log_records_per_call",
        dropped_logs,
    );
    registry.register(
        "instances_recycled",
        "Projection instances replaced because their linear memory kept growing across calls (a language runtime that does not give memory back)",
        recycled,
    );
    registry.register(
        "offset_commit_failures",
        "Offset commits to Kafka that failed (the store keeps the checkpoints; a failure means redeliveries for the next owner)",
        commit_failures,
    );
    registry.register(
        "dead_letters_held",
        "Failed records held for the dead-letter topic, not yet acknowledged",
        held,
    );
    registry.register(
        "dedup_identities",
        "Event identities remembered for deduplication (dedup), inside the window",
        identities,
    );
    registry.register(
        "quarantined_records",
        "Records held in quarantine now (on_error = \"quarantine\"), over every subject held",
        quarantined,
    );
    registry.register("partition_lag", "High watermark minus checkpoint", lag);
    registry.register(
        "partition_checkpoint",
        "Next offset to apply, as durable",
        checkpoint,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

pub(super) async fn metrics(State(state): State<ApiState>) -> Response {
    match render_metrics(&state) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => ApiError::Internal(format!("cannot render metrics: {err}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::{SledStore, Store};

    #[test]
    fn failed_offset_commits_and_shards_are_reported() {
        let dir = std::env::temp_dir().join(format!("projector-ops-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let store = SledStore::open(&dir).unwrap();
        let view = RunningView::for_tests(
            store
                .open_view("v", "h", &[], crate::shard::Shards::new(6))
                .unwrap(),
            2,
        );
        view.status
            .counters
            .offset_commit_failures
            .fetch_add(3, Ordering::Relaxed);
        let state = ApiState::new(std::slice::from_ref(&view));
        let metrics = render_metrics(&state).unwrap();
        assert!(
            metrics.contains("projector_offset_commit_failures_total{view=\"v\"} 3"),
            "{metrics}"
        );
        let report = report(&view);
        assert_eq!(report.shards, 6);
        assert_eq!(report.counters["offset_commit_failures"], 3);
        drop(store);
        std::fs::remove_dir_all(&dir).ok();
    }
}
