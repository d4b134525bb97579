//! The state a projection instance's store carries, and the host side of
//! the world's imports.
//!
//! It owns:
//! - the memory limiter, which caps all of the instance's linear memories
//!   together and remembers a refused growth, so a trap that follows is
//!   reported as `MemoryExceeded`;
//! - the log buffer, bounded in records and bytes per call;
//! - the panic message a guest reports before it aborts;
//! - a WASI context with nothing in it: no arguments, no environment, no
//!   preopened directories, no network, a closed stdin, and stdout and
//!   stderr that discard what they get. It backs only the stdio interfaces
//!   the Rust standard library links; the import check refuses clocks,
//!   randomness, filesystem and sockets before a component gets this far.

use projector_sdk::{Level, LogRecord};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{WitLevel, projector::projection::log};

/// Per-store host state.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: LogBuffer,
    pub(crate) panic: Option<String>,
}

impl HostState {
    pub(crate) fn new(
        max_memory_bytes: usize,
        max_records: usize,
        max_record_bytes: usize,
    ) -> Self {
        Self {
            // The builder's defaults are the sandbox we want: nothing
            // inherited from the host process.
            wasi: WasiCtx::builder()
                .allow_blocking_current_thread(true)
                .build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(max_memory_bytes),
            logs: LogBuffer::new(max_records, max_record_bytes),
            panic: None,
        }
    }

    /// Forget what the previous call left behind, before a new call.
    pub(crate) fn begin_call(&mut self) {
        self.limiter.refused = None;
        self.panic = None;
        self.logs.begin_call();
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: WitLevel, message: String) {
        self.logs.push(level.into(), message);
    }

    fn report_panic(&mut self, message: String) {
        self.panic = Some(truncate(message, self.logs.max_record_bytes));
    }
}

// The `types` interface has no functions; its host trait is empty.
impl super::bindings::projector::projection::types::Host for HostState {}

/// Caps the total size of an instance's linear memories.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    in_use: usize,
    /// The total size a refused growth asked for, during the current call.
    pub(crate) refused: Option<usize>,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            in_use: 0,
            refused: None,
        }
    }

    /// The bytes of linear memory the instance holds now, all memories
    /// together.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = self.in_use.saturating_sub(current).saturating_add(desired);
        if requested > self.max_bytes {
            self.refused = Some(requested);
            return Ok(false);
        }
        self.in_use = requested;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond
        // any real projection and still small for the host.
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        // A component holds a handful of core instances (the guest, the
        // WASI adapter, shims); this bounds pathological ones.
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// Log records of the current call, bounded in number and size.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    records: Vec<LogRecord>,
    max_records: usize,
    max_record_bytes: usize,
    this_call: usize,
    /// Records dropped because a call logged more than `max_records`.
    pub(crate) dropped: u64,
}

impl LogBuffer {
    fn new(max_records: usize, max_record_bytes: usize) -> Self {
        Self {
            records: Vec::new(),
            max_records,
            max_record_bytes,
            this_call: 0,
            dropped: 0,
        }
    }

    fn begin_call(&mut self) {
        self.this_call = 0;
    }

    /// The records dropped since the last call of this, and start again
    /// from zero.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn push(&mut self, level: Level, message: String) {
        if self.this_call >= self.max_records {
            self.dropped += 1;
            return;
        }
        self.this_call += 1;
        self.records.push(LogRecord {
            level,
            message: truncate(message, self.max_record_bytes),
        });
    }

    /// Take the records logged so far.
    pub(crate) fn take(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.records)
    }
}

/// Cut `text` to at most `max` bytes, at a character boundary, marking the cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub(3);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo wörld".to_owned(), 6), "hé...");
        assert_eq!(truncate("short".to_owned(), 16), "short");
    }

    #[test]
    fn log_buffer_drops_and_counts_past_the_cap() {
        let mut logs = LogBuffer::new(2, 64);
        for i in 0..5 {
            logs.push(Level::Info, format!("r{i}"));
        }
        assert_eq!(logs.take().len(), 2);
        assert_eq!(logs.dropped, 3);
        logs.begin_call();
        logs.push(Level::Warn, "next call".to_owned());
        assert_eq!(logs.take().len(), 1);
    }

    #[test]
    fn limiter_counts_all_memories_together() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(!limiter.memory_growing(0, 50, None).unwrap());
        assert_eq!(limiter.refused, Some(110));
        assert!(limiter.memory_growing(60, 90, None).unwrap());
    }
}
