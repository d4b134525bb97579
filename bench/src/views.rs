//! The views the benchmark runs, and what applies their events: the shipped
//! wasm components, or the same projections compiled natively.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use customer_view::CustomerView;
use order_totals::OrderTotalsView;
use projector::apply::{Apply, NativeProjection};
use projector::config::ViewConfig;
use projector::engine::{Engine, EngineConfig, Module};
use projector_sdk::projection::Typed;

use crate::input::Workload;

/// How a view's projection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// The shipped WebAssembly component, in wasmtime.
    Wasm,
    /// The same Rust projection compiled into the host (the SDK's native
    /// path).
    Native,
}

/// The config of the view for `workload`: named after it, reading the
/// topic of the same name.
///
/// # Errors
/// Never in practice; the config is built from constants.
pub fn config(workload: Workload) -> anyhow::Result<ViewConfig> {
    let example = example(workload);
    serde_json::from_value(serde_json::json!({
        "name": workload.name(),
        "module": example.path,
        "topics": [workload.name()],
    }))
    .context("view config")
}

fn example(workload: Workload) -> &'static projector_examples::Example {
    match workload {
        Workload::Customers => &projector_examples::CUSTOMER_VIEW,
        Workload::Orders => &projector_examples::ORDER_TOTALS,
    }
}

/// The compiled component of `workload`, cached in `cache` (as `projector
/// run` caches in its data directory).
///
/// # Errors
/// When the engine or the component cannot be loaded.
pub fn module(workload: Workload, cache: &Path) -> anyhow::Result<Arc<Module>> {
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    })?;
    Ok(engine.load_file(Path::new(example(workload).path))?)
}

/// Call `run` with the projection of `workload` as `runner` says.
///
/// # Errors
/// What `run` returns, or a failure to load the component.
pub fn with_projection<T>(
    workload: Workload,
    runner: Runner,
    cache: &Path,
    run: impl ProjectionUser<T>,
) -> anyhow::Result<T> {
    let engine_config = EngineConfig::default();
    match (runner, workload) {
        (Runner::Wasm, _) => run.with(module(workload, cache)?.instance()),
        (Runner::Native, Workload::Customers) => run.with(
            NativeProjection::<Typed<CustomerView>>::new("customer-view", &engine_config),
        ),
        (Runner::Native, Workload::Orders) => run.with(
            NativeProjection::<Typed<OrderTotalsView>>::new("order-totals", &engine_config),
        ),
    }
}

/// Something run with a projection of any kind.
pub trait ProjectionUser<T> {
    /// Run with `projection`.
    ///
    /// # Errors
    /// Whatever the run fails with.
    fn with<A: Apply + Send + 'static>(self, projection: A) -> anyhow::Result<T>;
}
