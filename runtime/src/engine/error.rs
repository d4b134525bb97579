//! The engine's typed errors.
//!
//! [`LoadError`] says why a module cannot serve as a projection; it names
//! what is missing or forbidden. [`ApplyError`] says why one call of `apply`
//! failed. Every guest failure is an `ApplyError`, never a host panic, and
//! each one tells whether the instance survived ([`ApplyError::discards_instance`])
//! and whether retrying may help ([`ApplyError::is_transient`]).

use std::path::PathBuf;
use std::time::Duration;

/// A wrong engine configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine config `{key}` must be {expected}, found {found}")]
pub struct ConfigError {
    /// The key, as written in the `[engine]` table.
    pub key: &'static str,
    /// What the key accepts.
    pub expected: &'static str,
    /// What it was.
    pub found: String,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// wasmtime refused the configuration.
    #[error("cannot configure wasmtime: {0}")]
    Wasmtime(String),
    /// The compiled-code cache could not be set up.
    #[error("cannot use {path} as the compiled-code cache: {reason}")]
    Cache {
        /// The configured cache directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The thread that drives deadlines could not be started.
    #[error("cannot start the engine's clock thread: {0}")]
    Clock(#[source] std::io::Error),
}

/// Why a module cannot serve as a projection.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module file could not be read.
    #[error("cannot read module {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (the first bytes are not `\\0asm`)")]
    NotWasm,
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build the projection for \
         `wasm32-wasip2` (cargo build --target wasm32-wasip2), or wrap a core module with \
         `wasm-tools component new`"
    )]
    CoreModule,
    /// The component does not compile.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component imports an interface projections may not use.
    #[error(
        "the component imports `{import}`, which projections may not use: {reason}. \
         A projection may import only the world's `projector:projection/log` and `types` \
         interfaces (and the WASI stdio and environment interfaces the Rust standard library links)"
    )]
    ForbiddenImport {
        /// The import's name.
        import: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The component does not export `apply`.
    #[error(
        "the component does not export `apply`, so it does not implement the \
         `projection` world of projector:projection@0.1.0 (its exports: {exports})"
    )]
    MissingApply {
        /// What it does export, comma-separated.
        exports: String,
    },
    /// `apply` or an import has a type other than the world's.
    #[error(
        "the component does not match the `projection` world of projector:projection@0.1.0: {0}"
    )]
    WorldMismatch(String),
}

/// Why one call of `apply` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The projection returned an error for this event.
    #[error("the projection refused the event: {message}")]
    Guest {
        /// The guest's machine-readable code.
        code: String,
        /// The guest's message.
        message: String,
    },
    /// The projection panicked.
    #[error("the projection panicked: {message}")]
    Panic {
        /// The panic message the guest reported.
        message: String,
    },
    /// The projection trapped.
    #[error("the projection trapped: {trap}")]
    Trap {
        /// The trap, with the guest backtrace when one is available.
        trap: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("the projection ran past its deadline of {} ms", limit.as_millis())]
    DeadlineExceeded {
        /// The configured deadline.
        limit: Duration,
    },
    /// The projection tried to use more memory than allowed.
    #[error(
        "the projection tried to grow its memory to {requested} bytes, over the cap of {limit} bytes"
    )]
    MemoryExceeded {
        /// The size it asked for, all memories together.
        requested: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The projection recursed past the wasm stack limit.
    #[error("the projection overflowed its stack (limit {limit} bytes)")]
    StackOverflow {
        /// The configured stack limit.
        limit: usize,
    },
    /// The projection set a row that is not valid JSON.
    #[error("the projection set a row that is not valid JSON: {reason}")]
    InvalidRow {
        /// The JSON parser's complaint.
        reason: String,
    },
    /// The projection set a row larger than allowed.
    #[error("the projection set a row of {size} bytes, over the cap of {limit} bytes")]
    RowTooLarge {
        /// The row's size.
        size: usize,
        /// The configured cap.
        limit: usize,
    },
    /// A fresh instance could not be created.
    #[error("the projection could not be instantiated: {reason}")]
    Instantiate {
        /// wasmtime's reason.
        reason: String,
    },
}

/// True when a guest's failure `code` can stand in a class: a plain token
/// that does not make one of the engine's own classes.
fn is_class_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && !matches!(code, "trap" | "panic" | "error")
}

impl ApplyError {
    /// The class a failed record is reported with: [`Self::class`], but for
    /// an event the projection refused, `guest-` and the projection's own
    /// code (`guest-rejected`, `guest-invalid-data`) when the code is a
    /// plain token (lower-case letters, digits, `-`, `_` or `.`, at most 64)
    /// that does not make one of the engine's own classes (`guest-trap`,
    /// `guest-panic`, `guest-error`), so that dead letters and failures can
    /// be told apart by it; else `guest-error`, with the code in the
    /// message ([`Self::failure_message`]).
    pub fn failure_class(&self) -> std::borrow::Cow<'static, str> {
        match self {
            ApplyError::Guest { code, .. } if is_class_code(code) => {
                std::borrow::Cow::Owned(format!("guest-{code}"))
            }
            other => std::borrow::Cow::Borrowed(other.class()),
        }
    }

    /// The message a failed record is reported with: this error's, and for
    /// a refusal whose code is not in its class ([`Self::failure_class`]),
    /// the code too.
    pub fn failure_message(&self) -> String {
        match self {
            ApplyError::Guest { code, message } if !is_class_code(code) => {
                format!("the projection refused the event (code {code:?}): {message}")
            }
            other => other.to_string(),
        }
    }

    /// A short, stable class: one per kind of error (what `projector test`
    /// and the metrics group by).
    pub fn class(&self) -> &'static str {
        match self {
            ApplyError::Guest { .. } => "guest-error",
            ApplyError::Panic { .. } => "guest-panic",
            ApplyError::Trap { .. } => "guest-trap",
            ApplyError::DeadlineExceeded { .. } => "deadline-exceeded",
            ApplyError::MemoryExceeded { .. } => "memory-exceeded",
            ApplyError::StackOverflow { .. } => "stack-overflow",
            ApplyError::InvalidRow { .. } => "invalid-row",
            ApplyError::RowTooLarge { .. } => "row-too-large",
            ApplyError::Instantiate { .. } => "instantiate",
        }
    }

    /// Whether the failed call left the instance unusable, so the engine
    /// replaced it. Only a clean return (an error value or a bad row) keeps
    /// it.
    pub fn discards_instance(&self) -> bool {
        !matches!(
            self,
            ApplyError::Guest { .. }
                | ApplyError::InvalidRow { .. }
                | ApplyError::RowTooLarge { .. }
        )
    }

    /// Whether retrying the same event may succeed.
    ///
    /// A projection is deterministic, so only failures that depend on the
    /// machine are transient: a deadline (the host may have been busy) and an
    /// instantiation failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApplyError::DeadlineExceeded { .. } | ApplyError::Instantiate { .. }
        )
    }
}
