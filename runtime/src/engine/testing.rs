//! The wasm test kit: an [`Applier`] that runs events through a compiled
//! component, so the SDK's [`MockHost`] scenarios test the shipped `.wasm`
//! and not only its native code.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use projector::engine::testing;
//! use projector_sdk::testing::EventBuilder;
//!
//! let mut host = testing::wasm_host_from_file("target/wasm32-wasip2/release/my_view.wasm".as_ref())?;
//! host.publish(EventBuilder::new("Created").subject("s-1"));
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use projector_sdk::testing::{Applier, FailureCode, MockHost};
use projector_sdk::{Event, LogRecord, RawUpdate};

use super::{ApplyError, Engine, EngineConfig, Instance, LoadError, Retry};

/// Applies events through a wasm [`Instance`].
#[derive(Debug)]
pub struct WasmApplier {
    instance: Instance,
    retry: Option<Retry>,
}

impl WasmApplier {
    /// An applier running `instance`; every failure is reported as it
    /// happens.
    pub fn new(instance: Instance) -> Self {
        Self {
            instance,
            retry: None,
        }
    }

    /// Retry transient failures (a deadline missed on a busy machine) as a
    /// view does, so a failure reported is one the runtime would report.
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The instance, for its counters.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }
}

impl Applier for WasmApplier {
    type Error = ApplyError;

    fn apply(&mut self, state: Option<&str>, event: &Event) -> Result<RawUpdate, ApplyError> {
        let state = state.map(str::to_owned);
        let event = crate::event::Event::from(event);
        match self.retry {
            Some(retry) => retry.run(|| self.instance.apply(state.as_ref(), &event), |_, _, _| {}),
            None => self.instance.apply(state.as_ref(), &event),
        }
    }

    fn take_logs(&mut self) -> Vec<LogRecord> {
        self.instance.take_logs()
    }
}

impl FailureCode for ApplyError {
    /// The projection's own code for its error, `panic` for a guest panic,
    /// and the engine's class otherwise.
    fn failure_code(&self) -> &str {
        match self {
            ApplyError::Guest { code, .. } => code,
            ApplyError::Panic { .. } => "panic",
            other => other.class(),
        }
    }
}

/// A mock host running the component `wasm` on `engine`.
pub fn wasm_host(engine: &Engine, wasm: &[u8]) -> Result<MockHost<WasmApplier>, LoadError> {
    let module = engine.load(wasm)?;
    Ok(MockHost::new(WasmApplier::new(module.instance())))
}

/// A mock host running the component in the file at `path`, on an engine
/// with the default limits.
pub fn wasm_host_from_file(path: &Path) -> anyhow::Result<MockHost<WasmApplier>> {
    let engine = Arc::new(Engine::new(EngineConfig::default())?);
    let module = engine.load_file(path)?;
    Ok(MockHost::new(WasmApplier::new(module.instance())))
}
