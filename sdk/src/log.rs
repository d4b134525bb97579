//! Logging, the only service the host offers a projection.
//!
//! In a component, records go to the runtime, which attributes them to the
//! view and the event and bounds their number and size. Natively, records go
//! to the mock host that is applying the event (see
//! [`testing`](crate::testing)), or to standard error when there is none.

use std::fmt;

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the projection handled.
    Warn,
    /// Something went wrong.
    Error,
}

impl Level {
    /// The level's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its severity.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// Emit a log record.
pub fn log(level: Level, message: &str) {
    sink::emit(level, message);
}

/// Emit a `trace` record.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Emit a `debug` record.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Emit an `info` record.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Emit a `warn` record.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Emit an `error` record.
pub fn error(message: &str) {
    log(Level::Error, message);
}

#[cfg(target_family = "wasm")]
mod sink {
    use super::Level;
    use crate::abi::bindings::projector::projection::log as host;

    pub(super) fn emit(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_family = "wasm"))]
pub(crate) mod sink {
    use std::cell::RefCell;

    use super::{Level, LogRecord};

    thread_local! {
        static CAPTURE: RefCell<Option<Vec<LogRecord>>> = const { RefCell::new(None) };
    }

    pub(super) fn emit(level: Level, message: &str) {
        let captured = CAPTURE.with(|capture| match capture.borrow_mut().as_mut() {
            Some(records) => {
                records.push(LogRecord {
                    level,
                    message: message.to_owned(),
                });
                true
            }
            None => false,
        });
        if !captured {
            eprintln!("[{level}] {message}");
        }
    }

    /// Run `f`, capturing the records it logs on this thread.
    pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<LogRecord>) {
        let previous = CAPTURE.with(|capture| capture.borrow_mut().replace(Vec::new()));
        let result = f();
        let records = CAPTURE.with(|capture| {
            let mut capture = capture.borrow_mut();
            let records = capture.take().unwrap_or_default();
            *capture = previous;
            records
        });
        (result, records)
    }
}
