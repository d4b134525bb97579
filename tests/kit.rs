//! The test kit shared by workspace-level tests.
//!
//! Layout:
//! - this file: one engine per test process, and mock hosts that run an
//!   example's compiled component on it;
//! - `wasm_examples.rs`: each example's scenarios against its `.wasm`.

// A test kit: it fails the asking test by panicking.
#![allow(clippy::panic)]

use std::sync::{Arc, OnceLock};

use projector::engine::testing::{WasmApplier, wasm_host};
use projector::engine::{Engine, EngineConfig};
use projector_examples::Example;
use projector_sdk::testing::MockHost;

/// The engine shared by the tests of one process, with default limits.
///
/// # Panics
///
/// If the engine cannot start, which fails the test that asked.
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        Arc::new(
            Engine::new(EngineConfig::default())
                .unwrap_or_else(|err| panic!("engine starts: {err}")),
        )
    }))
}

/// A mock host running `example`'s compiled component.
///
/// # Panics
///
/// If the component does not load, which fails the test that asked.
pub fn host(example: &Example) -> MockHost<WasmApplier> {
    wasm_host(&engine(), example.wasm).unwrap_or_else(|err| panic!("{} loads: {err}", example.name))
}
