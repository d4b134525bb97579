//! The engine's limits and options, with documented defaults.
//!
//! Every limit applies to one call of `apply` on one instance. They are
//! layered, as wasmtime recommends: an epoch deadline for wall time, a memory
//! cap enforced by the store's resource limiter, a wasm stack limit, and caps
//! on what the host buffers from the guest (the row and the log records).
//! Nothing is unlimited, and there is no fuel to top up.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;

/// Limits and options of the wasm engine.
///
/// In `projector.toml` this is the `[engine]` table; every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Wall-clock deadline of one `apply` call, in milliseconds.
    ///
    /// Default 500. A call still running at the deadline is interrupted and
    /// fails with `DeadlineExceeded`; the instance is discarded. Must be at
    /// least `epoch_tick_ms`.
    pub call_deadline_ms: u64,
    /// How often the engine's clock ticks, in milliseconds: the granularity
    /// of the deadline. Default 5. A call is interrupted at most one tick
    /// after its deadline. Must be between 1 and 1000.
    pub epoch_tick_ms: u64,
    /// Linear memory one instance may use, in bytes, all memories together.
    ///
    /// Default 64 MiB. A guest that tries to grow past it gets a failed
    /// `memory.grow`; if that makes it trap, the call fails with
    /// `MemoryExceeded`. Must be at least 1 MiB.
    pub max_memory_bytes: usize,
    /// Wasm stack one call may use, in bytes. Default 512 KiB (wasmtime's
    /// default). Deeper recursion fails with `StackOverflow`. Must be
    /// between 64 KiB and 64 MiB.
    pub max_wasm_stack_bytes: usize,
    /// Largest row a projection may return, in bytes. Default 1 MiB. A
    /// larger `set` fails with `RowTooLarge`. Must be at least 1 KiB.
    pub max_row_bytes: usize,
    /// Log records kept per call. Default 100; further records are dropped
    /// and counted.
    pub max_log_records_per_call: usize,
    /// Longest log record kept, in bytes. Default 4096; longer records are
    /// cut at a character boundary.
    pub max_log_record_bytes: usize,
    /// Where compiled code is cached across restarts, so a module is
    /// compiled once per machine. Default: no disk cache (modules are still
    /// compiled once per process).
    pub cache_dir: Option<PathBuf>,
    /// Which compiler turns components into machine code: `"cranelift"`
    /// (default), the optimising compiler, or `"winch"`, wasmtime's
    /// baseline compiler, which compiles three to five times faster and
    /// runs the code at about half to three quarters of the speed (figures
    /// in docs/benchmarks.md). `projector test`
    /// and `projector inspect` use Winch; a runtime keeps Cranelift unless
    /// told otherwise, because it compiles once and applies for days.
    pub compiler: Compiler,
    /// Threads that apply one view's shards in parallel (at most one per
    /// shard), each with its own instance. Default: the number of cores
    /// available. With 1, the view's worker applies every shard itself.
    /// Between 1 and 256.
    pub threads: usize,
}

/// Which of wasmtime's compilers an engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Compiler {
    /// Cranelift, optimising: slower to compile, faster to run.
    #[default]
    Cranelift,
    /// Winch, wasmtime's baseline compiler: one pass, fast to compile,
    /// slower code.
    Winch,
}

impl Compiler {
    /// Its name, as in `projector.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cranelift => "cranelift",
            Self::Winch => "winch",
        }
    }
}

impl std::fmt::Display for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The cores this process may use, at least 1.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            call_deadline_ms: 500,
            epoch_tick_ms: 5,
            max_memory_bytes: 64 << 20,
            max_wasm_stack_bytes: 512 << 10,
            max_row_bytes: 1 << 20,
            max_log_records_per_call: 100,
            max_log_record_bytes: 4096,
            cache_dir: None,
            compiler: Compiler::Cranelift,
            threads: available_cores(),
        }
    }
}

impl EngineConfig {
    /// The deadline of one call.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.call_deadline_ms)
    }

    /// The engine clock's tick.
    pub fn epoch_tick(&self) -> Duration {
        Duration::from_millis(self.epoch_tick_ms)
    }

    /// Ticks from the start of a call to its deadline: rounded up, plus
    /// one, because a call starts anywhere between two ticks. The first
    /// tick may come at once, so N ticks can take as little as N - 1 tick
    /// periods; with one more, a call is never interrupted before its
    /// deadline and at most one tick after it.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        self.call_deadline_ms.div_ceil(self.epoch_tick_ms.max(1)) + 1
    }

    /// Check every value, naming the first wrong one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            ok: bool,
            key: &'static str,
            expected: &'static str,
            found: String,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError {
                    key,
                    expected,
                    found,
                })
            }
        }
        check(
            (1..=256).contains(&self.threads),
            "threads",
            "between 1 and 256",
            self.threads.to_string(),
        )?;
        check(
            (1..=1000).contains(&self.epoch_tick_ms),
            "epoch_tick_ms",
            "between 1 and 1000",
            self.epoch_tick_ms.to_string(),
        )?;
        check(
            self.call_deadline_ms >= self.epoch_tick_ms && self.call_deadline_ms <= 3_600_000,
            "call_deadline_ms",
            "at least epoch_tick_ms and at most 3600000 (one hour)",
            self.call_deadline_ms.to_string(),
        )?;
        check(
            self.max_memory_bytes >= 1 << 20,
            "max_memory_bytes",
            "at least 1048576 (1 MiB)",
            self.max_memory_bytes.to_string(),
        )?;
        check(
            (64 << 10..=64 << 20).contains(&self.max_wasm_stack_bytes),
            "max_wasm_stack_bytes",
            "between 65536 (64 KiB) and 67108864 (64 MiB)",
            self.max_wasm_stack_bytes.to_string(),
        )?;
        check(
            self.max_row_bytes >= 1024,
            "max_row_bytes",
            "at least 1024",
            self.max_row_bytes.to_string(),
        )?;
        check(
            self.max_log_record_bytes >= 16,
            "max_log_record_bytes",
            "at least 16",
            self.max_log_record_bytes.to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        EngineConfig::default().validate().unwrap();
        assert_eq!(
            EngineConfig::default().deadline_ticks(),
            101,
            "500 ms in 5 ms ticks, plus the partial first tick"
        );
    }

    #[test]
    fn a_wrong_value_names_its_key() {
        let config = EngineConfig {
            call_deadline_ms: 1,
            ..EngineConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "call_deadline_ms");
        assert!(err.to_string().contains("call_deadline_ms"), "{err}");
    }

    #[test]
    fn threads_are_bounded_and_default_to_the_cores() {
        assert_eq!(EngineConfig::default().threads, available_cores());
        assert!(available_cores() >= 1);
        for threads in [0, 257] {
            let config = EngineConfig {
                threads,
                ..EngineConfig::default()
            };
            assert_eq!(config.validate().unwrap_err().key, "threads");
        }
        let config: EngineConfig = serde_json::from_str(r#"{"threads": 3}"#).unwrap();
        assert_eq!(config.threads, 3);
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<EngineConfig>(r#"{"call_deadline": 5}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `call_deadline`"),
            "{err}"
        );
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let config: EngineConfig = serde_json::from_str(r#"{"max_row_bytes": 2048}"#).unwrap();
        assert_eq!(config.max_row_bytes, 2048);
        assert_eq!(config.call_deadline_ms, 500);
    }
}
