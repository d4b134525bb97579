//! The runtime's HTTP endpoints: health, readiness, Prometheus metrics and
//! view status. The query API (issue 4) adds its routes to [`router`].
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process is up |
//! | `GET /readyz` | 200 when every view runs and has partitions assigned; 503 with the reasons otherwise |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/views` | per view: module hash, topics, counters, and per partition its checkpoint, high watermark, lag, state and last error |
//!
//! Errors are JSON `{"error": "..."}`. The default bind address is
//! `127.0.0.1:8080` (loopback only).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::pipeline::{CounterValues, PartitionState, ViewStatus};
use crate::service::ViewInfo;

/// What the endpoints read: each view's description and live status.
#[derive(Debug, Clone)]
pub struct ApiState {
    views: Arc<Vec<(ViewInfo, Arc<ViewStatus>)>>,
}

impl ApiState {
    /// State over `views` and their `statuses` (by view name).
    pub fn new(views: &[ViewInfo], statuses: &BTreeMap<String, Arc<ViewStatus>>) -> Self {
        let views = views
            .iter()
            .filter_map(|info| {
                statuses
                    .get(&info.name)
                    .map(|status| (info.clone(), Arc::clone(status)))
            })
            .collect();
        Self {
            views: Arc::new(views),
        }
    }
}

/// The routes, over `state`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/views", get(views))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind `addr`, with an error that names it.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// One partition in `/v1/views`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PartitionReport {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to apply, as durable in the store.
    pub checkpoint: Option<i64>,
    /// The partition's high watermark.
    pub high_watermark: Option<i64>,
    /// High watermark minus checkpoint.
    pub lag: Option<i64>,
    /// `running` or `stopped`.
    pub state: String,
    /// The last failure.
    pub last_error: Option<String>,
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
    /// `running`, or `failed: <reason>`.
    pub state: String,
    /// Event counters.
    pub counters: serde_json::Value,
    /// Its partitions.
    pub partitions: Vec<PartitionReport>,
}

/// The body of `/v1/views`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ViewsReport {
    /// Every view.
    pub views: Vec<ViewReport>,
}

fn report(info: &ViewInfo, status: &ViewStatus) -> ViewReport {
    let partitions = status
        .partitions()
        .into_iter()
        .map(|((topic, partition), p)| PartitionReport {
            topic,
            partition,
            checkpoint: p.checkpoint,
            high_watermark: p.high_watermark,
            lag: p.lag(),
            state: match p.state {
                PartitionState::Running => "running".to_owned(),
                PartitionState::Stopped => "stopped".to_owned(),
            },
            last_error: p.last_error,
        })
        .collect();
    ViewReport {
        name: info.name.clone(),
        module_hash: info.module_hash.clone(),
        topics: info.topics.clone(),
        group: info.group.clone(),
        state: status
            .fatal_error()
            .map_or_else(|| "running".to_owned(), |err| format!("failed: {err}")),
        counters: serde_json::to_value(status.counters()).unwrap_or_default(),
        partitions,
    }
}

async fn views(State(state): State<ApiState>) -> Json<ViewsReport> {
    Json(ViewsReport {
        views: state
            .views
            .iter()
            .map(|(info, status)| report(info, status))
            .collect(),
    })
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let problems: Vec<String> = state
        .views
        .iter()
        .filter_map(|(info, status)| {
            if let Some(err) = status.fatal_error() {
                Some(format!("view {} failed: {err}", info.name))
            } else if status.partitions().is_empty()
                && status.counters() == CounterValues::default()
            {
                Some(format!("view {} has no partitions assigned yet", info.name))
            } else {
                None
            }
        })
        .collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, &problems.join("; "))
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    view: String,
    outcome: &'static str,
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
    for (info, status) in state.views.iter() {
        let c = status.counters();
        for (outcome, value) in [
            ("applied", c.applied),
            ("duplicate", c.duplicates),
            ("skipped", c.skipped),
            ("dead_lettered", c.dead_lettered),
            ("stopped", c.stopped),
            ("retried", c.retries),
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
    registry.register("events", "Records handled, by outcome", events);
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

async fn metrics(State(state): State<ApiState>) -> Response {
    match render_metrics(&state) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render metrics: {err}"),
        ),
    }
}
