//! What a view's worker applies events with: the [`Apply`] trait, and its
//! two implementations. [`Instance`] runs a WebAssembly component (the
//! product); [`NativeProjection`] calls a projection compiled into the host
//! through the SDK's native path, for the native baseline of the
//! benchmarks and for hosts that embed trusted projections.
//!
//! # What it promises
//!
//! Both hold a returned row to the same rules (valid JSON, at most
//! `max_row_bytes`) and report failures as the same [`ApplyError`]s, so the
//! worker treats them alike and a benchmark compares like with like.

use projector_sdk::native::{NativeApplier, NativeError};
use projector_sdk::{LogRecord, RawProjection, RawUpdate, Update};

use crate::engine::{ApplyError, EngineConfig, Instance, check_row};
use crate::event::Event;

/// Applies events to rows for one view's worker.
pub trait Apply {
    /// What built the view's rows: the module hash, stored with the view
    /// so that rows are never mixed across projections.
    fn module_hash(&self) -> &str;

    /// Apply `event` to `state`, the subject's current row as JSON text.
    ///
    /// # Errors
    /// The projection's failure, typed.
    fn apply(&mut self, state: Option<&String>, event: &Event) -> Result<RawUpdate, ApplyError>;

    /// The log records emitted since the last call, oldest first.
    fn take_logs(&mut self) -> Vec<LogRecord>;

    /// Log records dropped since the last call of this, because a call
    /// logged more than the engine keeps.
    fn take_dropped_logs(&mut self) -> u64 {
        0
    }

    /// Instances replaced since the last call of this because their memory
    /// kept growing (see the engine's recycle mark).
    fn take_recycled(&mut self) -> u64 {
        0
    }

    /// Another instance of the same projection, for another thread: the
    /// shards of a view apply in parallel, each thread with its own.
    fn fork(&self) -> Self
    where
        Self: Sized;
}

impl Apply for Instance {
    fn module_hash(&self) -> &str {
        self.module().hash()
    }

    fn apply(&mut self, state: Option<&String>, event: &Event) -> Result<RawUpdate, ApplyError> {
        Instance::apply(self, state, event)
    }

    fn take_logs(&mut self) -> Vec<LogRecord> {
        Instance::take_logs(self)
    }

    fn take_dropped_logs(&mut self) -> u64 {
        Instance::take_dropped_logs(self)
    }

    fn take_recycled(&mut self) -> u64 {
        Instance::take_recycled(self)
    }

    fn fork(&self) -> Self {
        self.module().instance()
    }
}

/// A projection compiled into the host, called through the SDK's native
/// path: the event is converted to the SDK's `Event` (as the component glue
/// does inside the guest), a panic is caught and reported as one.
pub struct NativeProjection<P> {
    applier: NativeApplier<P>,
    hash: String,
    max_row_bytes: usize,
}

impl<P> std::fmt::Debug for NativeProjection<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeProjection")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl<P: RawProjection> NativeProjection<P> {
    /// `P`, known to views as `native:<name>`, with the row limits of
    /// `config`.
    pub fn new(name: &str, config: &EngineConfig) -> Self {
        Self {
            applier: NativeApplier::default(),
            hash: format!("native:{name}"),
            max_row_bytes: config.max_row_bytes,
        }
    }
}

impl<P: RawProjection> Apply for NativeProjection<P> {
    fn module_hash(&self) -> &str {
        &self.hash
    }

    fn apply(&mut self, state: Option<&String>, event: &Event) -> Result<RawUpdate, ApplyError> {
        let event = projector_sdk::Event::from(event);
        match self.applier.apply(state.map(String::as_str), &event) {
            Ok(Update::Set(row)) => check_row(row, self.max_row_bytes).map(Update::Set),
            Ok(other) => Ok(other),
            Err(NativeError::Guest(err)) => Err(ApplyError::Guest {
                code: err.code,
                message: err.message,
            }),
            Err(NativeError::Panic(message)) => Err(ApplyError::Panic { message }),
        }
    }

    fn take_logs(&mut self) -> Vec<LogRecord> {
        self.applier.take_logs()
    }

    fn fork(&self) -> Self {
        Self {
            applier: NativeApplier::default(),
            hash: self.hash.clone(),
            max_row_bytes: self.max_row_bytes,
        }
    }
}
