//! Calling a projection's Rust code directly, in the host's process: its
//! log records captured, a panic caught and reported as one (as the
//! runtime reports a guest's). The mock host applies events through it, and
//! the runtime through it for projections compiled into the host (the
//! native baseline of the benchmarks, or hosts that embed trusted
//! projections). Not available inside a component.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::log::LogRecord;
use crate::{Error, Event, RawProjection, RawUpdate};

/// Why [`NativeApplier`] could not apply an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// The projection returned an error.
    Guest(Error),
    /// The projection panicked, with this message.
    Panic(String),
}

impl fmt::Display for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NativeError::Guest(err) => write!(f, "the projection returned an error: {err}"),
            NativeError::Panic(message) => write!(f, "the projection panicked: {message}"),
        }
    }
}

impl std::error::Error for NativeError {}

/// Applies events by calling a [`RawProjection`]'s Rust code directly.
///
/// A panic in the projection is caught and reported as
/// [`NativeError::Panic`], as the runtime reports a guest panic.
pub struct NativeApplier<P> {
    logs: Vec<LogRecord>,
    projection: std::marker::PhantomData<P>,
}

impl<P> fmt::Debug for NativeApplier<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeApplier")
            .field("projection", &std::any::type_name::<P>())
            .finish_non_exhaustive()
    }
}

impl<P> Default for NativeApplier<P> {
    fn default() -> Self {
        Self {
            logs: Vec::new(),
            projection: std::marker::PhantomData,
        }
    }
}

impl<P: RawProjection> NativeApplier<P> {
    /// Apply `event` to `state`, the subject's current row as JSON text.
    ///
    /// # Errors
    /// The projection's error, or its panic.
    pub fn apply(&mut self, state: Option<&str>, event: &Event) -> Result<RawUpdate, NativeError> {
        let (result, logs) =
            crate::log::sink::capture(|| catch_unwind(AssertUnwindSafe(|| P::apply(state, event))));
        self.logs.extend(logs);
        match result {
            Ok(Ok(update)) => Ok(update),
            Ok(Err(err)) => Err(NativeError::Guest(err)),
            Err(payload) => Err(NativeError::Panic(panic_message(payload.as_ref()))),
        }
    }

    /// The log records emitted since the last call, oldest first.
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.logs)
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}
