//! The engine's clock: a thread that advances wasmtime's epoch every tick,
//! which is what interrupts a call that runs past its deadline.
//!
//! It holds only a weak reference to the engine and stops when the
//! [`EpochTicker`] is dropped or the engine is gone.

use std::time::Duration;

use crate::shutdown::Periodic;

/// Owns the clock thread; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    /// Kept for its drop, which stops the thread.
    _thread: Periodic,
}

impl EpochTicker {
    pub(crate) fn start(engine: &wasmtime::Engine, tick: Duration) -> std::io::Result<Self> {
        let engine = engine.weak();
        Periodic::start("projector-epoch", tick, move || match engine.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        })
        .map(|thread| Self { _thread: thread })
    }
}
