//! The wasm engine: compiles projection components, checks them against the
//! world, and calls `apply` under limits.
//!
//! # What it promises
//!
//! - A component is compiled once per process (and once per machine with a
//!   cache directory) and checked against `projector:projection@0.1.0`
//!   before use: a wrong or missing export, or a forbidden import, is a
//!   [`LoadError`] that names it.
//! - An [`Instance`] keeps one instantiated component and reuses it across
//!   calls. After a failure that may have left it in a bad state (a trap, a
//!   panic, the deadline, the memory cap, a stack overflow) it is discarded
//!   and the next call gets a fresh one from the pre-linked component.
//! - An instance is also replaced when its linear memory keeps growing
//!   across calls, as language runtimes that leak or defer their garbage
//!   do (componentize-js keeps about 840 bytes per call): after a call
//!   that keeps it but leaves it above its *recycle mark* (half way from
//!   the memory its first call left to the cap), and when a call of a used
//!   instance hits the cap, which is then run again, once, on a fresh
//!   instance. Only a call that exceeds the cap on a fresh instance is the
//!   event's `memory-exceeded`. A projection is a pure function of (row,
//!   event), so no instance carries anything a call may depend on.
//! - Every failure is an [`ApplyError`], never a host panic.
//! - A `set` row is valid JSON of at most `max_row_bytes`.
//!
//! # Layout
//!
//! - `bindings`: the one `bindgen!` of the world, and record conversions.
//! - `config`: [`EngineConfig`], limits with documented defaults.
//! - `error`: [`LoadError`], [`ApplyError`], [`EngineError`].
//! - `host`: store state: memory limiter, log buffer, empty WASI sandbox.
//! - `imports`: which imports a projection may have.
//! - `ticker`: the epoch clock that enforces deadlines.
//! - `testing`: the wasm applier for the SDK's mock host.

pub mod bindings;
pub mod config;
pub mod error;
mod host;
mod imports;
mod retry;
mod row;
pub mod testing;
mod ticker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use projector_sdk::{LogRecord, RawUpdate, Update};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, types::ComponentItem};
use wasmtime::{Store, Trap};

use crate::event::Event;
pub(crate) use bindings::{WitEvent, WitKafkaOrigin};
pub use config::{Compiler, EngineConfig};
pub use error::{ApplyError, ConfigError, EngineError, LoadError};
pub(crate) use host::truncate;
pub use retry::Retry;
pub use row::check_row;

/// Why an export beyond the world's `apply` is accepted. A toolchain may
/// add its own; the runtime calls only `apply`, so none can change what a
/// projection does.
pub fn ignored_export_reason(name: &str) -> &'static str {
    match name {
        "exports" => {
            "componentize-py's initialisation entry, run once when the component is built; never called by the runtime"
        }
        _ => "not part of the projection world; never called by the runtime",
    }
}

use bindings::{Projection, ProjectionPre, WitUpdate};
use host::HostState;
use ticker::EpochTicker;

/// Compiles and caches projection components, and drives their deadlines.
///
/// Cheap to share: clone the [`Arc`] it usually lives in.
pub struct Engine {
    shared: Arc<Shared>,
    linker: Linker<HostState>,
    modules: Mutex<HashMap<String, Arc<Module>>>,
    /// The disk cache of compiled code, when there is one: its hit and
    /// miss counts tell whether a load compiled.
    cache: Option<wasmtime::Cache>,
    /// Held while a component is compiled, so the cache's counts change
    /// for that one component only.
    compiling: Mutex<()>,
}

/// How a module's machine code came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compilation {
    /// The compiler the engine uses.
    pub compiler: Compiler,
    /// Whether the code came from the disk cache rather than the
    /// compiler.
    pub from_cache: bool,
    /// How long loading took: compiling (or reading the cache) and
    /// checking against the world.
    pub took: Duration,
}

/// What the engine and every module it loaded share. Modules hold it too,
/// so the clock keeps ticking (and deadlines keep working) for as long as
/// any module or instance is alive, even after the [`Engine`] is dropped.
struct Shared {
    wasmtime: wasmtime::Engine,
    config: EngineConfig,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with `config`'s limits.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        config.validate()?;
        let mut wasm_config = wasmtime::Config::new();
        wasm_config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack_bytes)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .strategy(match config.compiler {
                Compiler::Cranelift => wasmtime::Strategy::Cranelift,
                Compiler::Winch => wasmtime::Strategy::Winch,
            })
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
        let mut disk_cache = None;
        if let Some(dir) = &config.cache_dir {
            let cache_error = |reason: String| EngineError::Cache {
                path: dir.clone(),
                reason,
            };
            std::fs::create_dir_all(dir).map_err(|err| cache_error(err.to_string()))?;
            // wasmtime wants an absolute path; a relative one is taken from
            // the working directory, as everywhere else.
            let dir = std::path::absolute(dir).map_err(|err| cache_error(err.to_string()))?;
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            let cache = wasmtime::Cache::new(cache_config)
                .map_err(|err| cache_error(format!("{err:#}")))?;
            wasm_config.cache(Some(cache.clone()));
            disk_cache = Some(cache);
        }
        let wasmtime = wasmtime::Engine::new(&wasm_config)
            .map_err(|err| EngineError::Wasmtime(format!("{err:#}")))?;

        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|err| EngineError::Wasmtime(format!("{err:#}")))?;
        Projection::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|err| EngineError::Wasmtime(format!("{err:#}")))?;

        let ticker =
            EpochTicker::start(&wasmtime, config.epoch_tick()).map_err(EngineError::Clock)?;
        Ok(Self {
            shared: Arc::new(Shared {
                wasmtime,
                config,
                _ticker: ticker,
            }),
            linker,
            modules: Mutex::new(HashMap::new()),
            cache: disk_cache,
            compiling: Mutex::new(()),
        })
    }

    /// The engine's limits.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Load the component in the file at `path`.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Module>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(&bytes)
    }

    /// Compile `bytes` as a projection component and check it against the
    /// world. The same bytes are compiled once; later loads share the
    /// result.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<Module>, LoadError> {
        let hash = hex::encode(Sha256::digest(bytes));
        if let Some(module) = self.cached(&hash) {
            return Ok(module);
        }
        let module = Arc::new(self.compile(bytes, hash.clone())?);
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(modules.entry(hash).or_insert(module)))
    }

    fn cached(&self, hash: &str) -> Option<Arc<Module>> {
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// How many components the disk cache has served so far.
    fn cache_hits(&self) -> usize {
        self.cache.as_ref().map_or(0, wasmtime::Cache::cache_hits)
    }

    fn compile(&self, bytes: &[u8], hash: String) -> Result<Module, LoadError> {
        match bytes.get(..8) {
            Some([b'\0', b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => {}
            Some([b'\0', b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => {
                return Err(LoadError::CoreModule);
            }
            _ => return Err(LoadError::NotWasm),
        }
        let wasmtime = &self.shared.wasmtime;
        let started = Instant::now();
        let (component, from_cache) = {
            let _compiling = self
                .compiling
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let hits = self.cache_hits();
            let component = Component::new(wasmtime, bytes)
                .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
            (component, self.cache_hits() > hits)
        };

        let component_type = component.component_type();
        let mut imports = Vec::new();
        for (name, _) in component_type.imports(wasmtime) {
            imports::check_import(name)?;
            imports.push(name.to_owned());
        }
        let exports: Vec<String> = component_type
            .exports(wasmtime)
            .map(|(name, _)| name.to_owned())
            .collect();
        match component_type
            .get_export(wasmtime, "apply")
            .map(|export| export.ty)
        {
            Some(ComponentItem::ComponentFunc(_)) => {}
            _ => {
                return Err(LoadError::MissingApply {
                    exports: if exports.is_empty() {
                        "none".to_owned()
                    } else {
                        exports.join(", ")
                    },
                });
            }
        }

        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| LoadError::WorldMismatch(format!("{err:#}")))?;
        let pre = ProjectionPre::new(instance_pre)
            .map_err(|err| LoadError::WorldMismatch(format!("{err:#}")))?;
        Ok(Module {
            hash,
            size: bytes.len(),
            imports,
            exports,
            pre,
            compilation: Compilation {
                compiler: self.shared.config.compiler,
                from_cache,
                took: started.elapsed(),
            },
            shared: Arc::clone(&self.shared),
        })
    }
}

/// A compiled, checked, pre-linked projection component.
pub struct Module {
    hash: String,
    size: usize,
    imports: Vec<String>,
    exports: Vec<String>,
    pre: ProjectionPre<HostState>,
    compilation: Compilation,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .field("imports", &self.imports)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// The SHA-256 of the component's bytes, in hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The component's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How its machine code came to be: which compiler, whether from the
    /// disk cache, how long it took.
    pub fn compilation(&self) -> Compilation {
        self.compilation
    }

    /// The component's imports, all of them allowed.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The component's exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// The component's exports beyond the world's `apply`, each with why
    /// it is accepted: the runtime never calls them.
    pub fn ignored_exports(&self) -> Vec<(&str, &'static str)> {
        self.exports
            .iter()
            .filter(|name| name.as_str() != "apply")
            .map(|name| (name.as_str(), ignored_export_reason(name)))
            .collect()
    }

    /// A reusable instance. It is instantiated on its first call.
    pub fn instance(self: &Arc<Self>) -> Instance {
        Instance {
            module: Arc::clone(self),
            live: None,
            logs: Vec::new(),
            stats: InstanceStats::default(),
            dropped_unreported: 0,
            recycled_unreported: 0,
        }
    }

    fn instantiate(&self) -> Result<Live, ApplyError> {
        let config = &self.shared.config;
        let mut store = Store::new(
            &self.shared.wasmtime,
            HostState::new(
                config.max_memory_bytes,
                config.max_log_records_per_call,
                config.max_log_record_bytes,
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        // Instantiation runs guest start code too: it gets a deadline.
        store.set_epoch_deadline(config.deadline_ticks());
        let projection =
            self.pre
                .instantiate(&mut store)
                .map_err(|err| ApplyError::Instantiate {
                    reason: format!("{err:#}"),
                })?;
        Ok(Live {
            store,
            projection,
            recycle_mark: None,
        })
    }
}

/// Counters of one [`Instance`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InstanceStats {
    /// Calls of `apply`.
    pub calls: u64,
    /// Instances created (the first one and each replacement).
    pub instantiations: u64,
    /// Log records dropped because a call logged too many.
    pub dropped_logs: u64,
    /// Instances replaced after a call that kept them because their linear
    /// memory had grown past their recycle mark.
    pub recycled: u64,
    /// Calls that exceeded the memory cap on a used instance and were run
    /// again on a fresh one.
    pub memory_retries: u64,
}

struct Live {
    store: Store<HostState>,
    projection: Projection,
    /// Linear memory past which the instance is replaced after a call: half
    /// way from what its first call left to the cap. Set by that call, so an
    /// instance without one has served no call (a call that does not keep
    /// the instance drops it).
    recycle_mark: Option<usize>,
}

impl Live {
    fn memory_bytes(&self) -> usize {
        self.store.data().limiter.in_use()
    }

    /// After a call that keeps the instance: whether it has outgrown its
    /// mark (setting the mark after its first call).
    fn outgrown(&mut self, cap: usize) -> bool {
        let in_use = self.memory_bytes();
        match self.recycle_mark {
            Some(mark) => in_use > mark,
            None => {
                self.recycle_mark = Some(in_use + cap.saturating_sub(in_use) / 2);
                false
            }
        }
    }
}

/// One projection instance, reused across calls; not shared between threads
/// at once (each worker owns its own).
pub struct Instance {
    module: Arc<Module>,
    live: Option<Live>,
    logs: Vec<LogRecord>,
    stats: InstanceStats,
    /// Log records dropped since [`Instance::take_dropped_logs`] last ran.
    dropped_unreported: u64,
    /// Instances replaced for their memory since [`Instance::take_recycled`]
    /// last ran.
    recycled_unreported: u64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("module", &self.module.hash)
            .field("live", &self.live.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The module this instance runs.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// Counters of this instance.
    pub fn stats(&self) -> InstanceStats {
        self.stats
    }

    /// The linear memory the live instance holds, in bytes (all its
    /// memories together, as the memory cap counts them); `None` before its
    /// first call or after a failure discarded it.
    pub fn memory_bytes(&self) -> Option<usize> {
        self.live.as_ref().map(Live::memory_bytes)
    }

    /// Log records emitted by the guest since the last call to this method.
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.logs)
    }

    /// Log records dropped (over `max_log_records_per_call`) since the last
    /// call of this.
    pub fn take_dropped_logs(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_unreported)
    }

    /// Instances replaced because their memory grew (past the recycle mark,
    /// or to the cap on a used instance) since the last call of this.
    pub fn take_recycled(&mut self) -> u64 {
        std::mem::take(&mut self.recycled_unreported)
    }

    /// Apply `event` to `state`, the subject's current row as JSON text.
    ///
    /// A call that exceeds the memory cap on an instance that served calls
    /// before is run again on a fresh instance (the memory may be the
    /// instance's history, not the event's); its logs are those of the
    /// second run.
    pub fn apply(
        &mut self,
        state: Option<&String>,
        event: &Event,
    ) -> Result<RawUpdate, ApplyError> {
        let event = event.wit();
        let logs_before = self.logs.len();
        match self.call(state, event) {
            (Err(ApplyError::MemoryExceeded { .. }), Served::Before) => {
                self.logs.truncate(logs_before);
                self.stats.memory_retries += 1;
                self.recycled_unreported += 1;
                self.call(state, event).0
            }
            (outcome, _) => outcome,
        }
    }

    /// One call, on the live instance or a new one; says which.
    fn call(
        &mut self,
        state: Option<&String>,
        event: &WitEvent,
    ) -> (Result<RawUpdate, ApplyError>, Served) {
        let shared = Arc::clone(&self.module.shared);
        let config = &shared.config;
        let live = match &mut self.live {
            Some(live) => live,
            empty @ None => {
                self.stats.instantiations += 1;
                match self.module.instantiate() {
                    Ok(live) => empty.insert(live),
                    Err(err) => return (Err(err), Served::Nothing),
                }
            }
        };
        let served = if live.recycle_mark.is_none() {
            Served::Nothing
        } else {
            Served::Before
        };
        self.stats.calls += 1;
        live.store.data_mut().begin_call();
        live.store.set_epoch_deadline(config.deadline_ticks());
        let result = live.projection.call_apply(&mut live.store, state, event);

        let host = live.store.data_mut();
        self.logs.extend(host.logs.take());
        let dropped = host.logs.take_dropped();
        self.stats.dropped_logs += dropped;
        self.dropped_unreported += dropped;

        let outcome = match result {
            Ok(Ok(update)) => check_update(update, config),
            // Bounded as log records and panics are: the message travels
            // in a dead letter's headers, which a broker may refuse whole.
            Ok(Err(err)) => Err(ApplyError::Guest {
                code: host::truncate(err.code, config.max_log_record_bytes),
                message: host::truncate(err.message, config.max_log_record_bytes),
            }),
            Err(err) => Err(classify(&err, host, config)),
        };
        let discard = match &outcome {
            Err(err) if err.discards_instance() => true,
            _ if live.outgrown(config.max_memory_bytes) => {
                self.stats.recycled += 1;
                self.recycled_unreported += 1;
                true
            }
            _ => false,
        };
        if discard {
            self.live = None;
        }
        (outcome, served)
    }
}

/// Whether an instance had served calls before the one at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Nothing,
    Before,
}

fn check_update(update: WitUpdate, config: &EngineConfig) -> Result<RawUpdate, ApplyError> {
    match update {
        WitUpdate::Set(row) => check_row(row, config.max_row_bytes).map(Update::Set),
        WitUpdate::Delete => Ok(Update::Delete),
        WitUpdate::Ignore => Ok(Update::Ignore),
    }
}

/// Turn a failed call into its typed error. What the host saw during the
/// call (a refused memory growth, a reported panic) explains the trap that
/// followed it, so it comes first.
fn classify(err: &wasmtime::Error, host: &mut HostState, config: &EngineConfig) -> ApplyError {
    if let Some(requested) = host.limiter.refused.take() {
        return ApplyError::MemoryExceeded {
            requested,
            limit: config.max_memory_bytes,
        };
    }
    if let Some(message) = host.panic.take() {
        return ApplyError::Panic { message };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => ApplyError::DeadlineExceeded {
            limit: config.call_deadline(),
        },
        Some(Trap::StackOverflow) => ApplyError::StackOverflow {
            limit: config.max_wasm_stack_bytes,
        },
        _ => ApplyError::Trap {
            trap: format!("{err:#}"),
        },
    }
}
