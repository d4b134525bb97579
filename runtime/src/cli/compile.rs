//! Compiling a component for the author's commands, `projector test` and
//! `projector inspect`: one compiled-code cache both share, Winch (fast to
//! compile) unless told otherwise, Cranelift when Winch cannot compile a
//! component, and one line on stderr saying whether the code was compiled
//! or came from the cache, with which compiler and how long it took. And
//! `projector run`'s first start: a module that takes more than a second
//! to load is said to be loading, maybe compiling (a log line, and a
//! spinner on a terminal), rather than left as a silence of seconds, and
//! what it cost is logged once loaded.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use clap::Args;

use crate::engine::{Compiler, Engine, EngineConfig, LoadError, Module};

/// How `projector test` and `projector inspect` compile.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Where compiled code is cached, shared by `projector test` and
    /// `projector inspect`, so a component is compiled once per machine.
    /// Default: `$XDG_CACHE_HOME/projector/compiled`, else
    /// `~/.cache/projector/compiled`.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile without the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// The compiler: `winch` compiles three to five times faster and runs
    /// the code slower, which suits a test; `cranelift` compiles as `projector
    /// run` does by default. A component Winch cannot compile is compiled
    /// with Cranelift, and the line on stderr says so.
    #[arg(long, value_enum, default_value_t = Compiler::Winch)]
    pub compiler: Compiler,
}

impl CompileArgs {
    /// The cache directory these arguments choose (the engine makes it
    /// when missing).
    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache)
        }
    }

    /// An engine with default limits, this compiler and this cache.
    fn engine(&self, compiler: Compiler) -> anyhow::Result<Engine> {
        Ok(Engine::new(EngineConfig {
            cache_dir: self.cache_dir(),
            compiler,
            ..EngineConfig::default()
        })?)
    }
}

/// `$XDG_CACHE_HOME/projector/compiled`, else `$HOME/.cache/projector/compiled`.
fn default_cache() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("projector").join("compiled"))
}

/// Load `bytes` (the component called `source`) as `args` say, and say on
/// stderr how its code came to be. The engine is returned with the module:
/// the module's calls need it alive.
pub fn load(
    args: &CompileArgs,
    source: &str,
    bytes: &[u8],
) -> anyhow::Result<(Engine, Arc<Module>)> {
    let refused = |err: LoadError| {
        anyhow::Error::new(err).context(format!("{source} cannot serve as a projection"))
    };
    let engine = args.engine(args.compiler)?;
    let (engine, module) = match engine.load(bytes) {
        Ok(module) => (engine, module),
        Err(LoadError::Compile(reason)) if args.compiler == Compiler::Winch => {
            // Cranelift's error, when it cannot either: the component's
            // fault, not Winch's.
            let engine = args.engine(Compiler::Cranelift)?;
            let module = engine.load(bytes).map_err(refused)?;
            eprintln!("{source}: winch cannot compile it ({reason}); compiled with cranelift");
            (engine, module)
        }
        Err(err) => return Err(refused(err)),
    };
    eprintln!("{source}: {}", said(&module, engine.config()));
    Ok((engine, module))
}

/// What loading `module` cost, in words.
fn said(module: &Module, config: &EngineConfig) -> String {
    let compilation = module.compilation();
    let seconds = compilation.took.as_secs_f64();
    match &config.cache_dir {
        _ if compilation.from_cache => format!(
            "compiled code from the cache ({}, {seconds:.2} s)",
            compilation.compiler
        ),
        Some(dir) => format!(
            "compiled with {} in {seconds:.1} s (cached in {} for the next time)",
            compilation.compiler,
            dir.display()
        ),
        None => format!(
            "compiled with {} in {seconds:.1} s (not cached)",
            compilation.compiler
        ),
    }
}

/// Run `load` (which loads the component at `module` for `view`), and when it has not
/// finished after a second, which a read from the cache usually does, say
/// that the module may be compiling: a log line, and on a terminal a spinner
/// until it is done. Then log how its code came to be.
pub fn announced(
    view: &str,
    module: &std::path::Path,
    load: impl FnOnce() -> anyhow::Result<Arc<Module>>,
) -> anyhow::Result<Arc<Module>> {
    let (done, finished) = mpsc::channel::<()>();
    let loaded = std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(Duration::from_secs(1)) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            tracing::info!(view, module = %module.display(), "loading the view's module: compiling takes seconds on its first start, cached afterwards");
            if std::io::stderr().is_terminal() {
                let spinner = indicatif::ProgressBar::new_spinner()
                    .with_message(format!("loading view {view}'s module"));
                spinner.enable_steady_tick(Duration::from_millis(100));
                let _ = finished.recv();
                spinner.finish_and_clear();
            }
        });
        let loaded = load();
        drop(done);
        loaded
    })?;
    let compilation = loaded.compilation();
    let seconds = compilation.took.as_secs_f64();
    if compilation.from_cache {
        tracing::info!(view, module = %module.display(), compiler = %compilation.compiler, seconds, "the view's module: compiled code from the cache");
    } else {
        tracing::info!(view, module = %module.display(), compiler = %compilation.compiler, seconds, "the view's module compiled");
    }
    Ok(loaded)
}
