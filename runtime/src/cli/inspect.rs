//! `projector inspect`: load a component exactly as the runtime would
//! (compile, check imports and the `apply` export against the world), and
//! describe it. A component that would be refused at run time is refused
//! here, with the same error.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::Output;
use super::compile::{self, CompileArgs};

/// Arguments of `projector inspect`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("module_source").required(true).args(["module", "example"])))]
pub struct InspectArgs {
    /// The component (`.wasm`) to inspect.
    pub module: Option<PathBuf>,
    /// Inspect a built-in example instead: customer-view, order-totals,
    /// event-counter or misbehaving.
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// How the component is compiled, and where its code is cached
    /// (shared with `projector test`).
    #[command(flatten)]
    pub compile: CompileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// What `inspect` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where the component came from.
    pub source: String,
    /// The world it implements.
    pub world: &'static str,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size_bytes: usize,
    /// How long compiling (or reading the cache) and checking took, in
    /// milliseconds.
    pub compile_ms: u128,
    /// The compiler whose code was checked.
    pub compiler: &'static str,
    /// Whether the code came from the compiled-code cache.
    pub from_cache: bool,
    /// Its imports, every one allowed.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    /// Its exports beyond `apply`, with why they are accepted.
    pub ignored_exports: Vec<IgnoredExport>,
}

/// An export the runtime never calls.
#[derive(Debug, Serialize)]
pub struct IgnoredExport {
    /// Its name.
    pub name: String,
    /// Why it is accepted.
    pub reason: &'static str,
}

/// Run `projector inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let (source, bytes) = match (&args.module, &args.example) {
        (Some(path), _) => (
            path.display().to_string(),
            std::fs::read(path)
                .with_context(|| format!("cannot read module {}", path.display()))?,
        ),
        (None, Some(name)) => {
            let example = projector_examples::find(name).with_context(|| {
                let names: Vec<_> = projector_examples::ALL.iter().map(|e| e.name).collect();
                format!(
                    "no example called {name:?}; the examples are {}",
                    names.join(", ")
                )
            })?;
            (format!("example:{}", example.name), example.wasm.to_vec())
        }
        (None, None) => anyhow::bail!("name a module file or pass --example NAME"),
    };
    let (_engine, module) = compile::load(&args.compile, &source, &bytes)?;
    let compilation = module.compilation();
    let report = Report {
        source,
        world: projector_sdk::WIT_PACKAGE,
        sha256: module.hash().to_owned(),
        size_bytes: module.size(),
        compile_ms: compilation.took.as_millis(),
        compiler: compilation.compiler.name(),
        from_cache: compilation.from_cache,
        imports: module.imports().to_vec(),
        exports: module.exports().to_vec(),
        ignored_exports: module
            .ignored_exports()
            .into_iter()
            .map(|(name, reason)| IgnoredExport {
                name: name.to_owned(),
                reason,
            })
            .collect(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            println!("{}: a valid projection for {}", report.source, report.world);
            println!("  sha256   {}", report.sha256);
            println!("  size     {} bytes", report.size_bytes);
            let how = if report.from_cache {
                "read from the cache"
            } else {
                "compiled"
            };
            println!("  {how} in {} ms ({})", report.compile_ms, report.compiler);
            println!("  exports  {}", report.exports.join(", "));
            for ignored in &report.ignored_exports {
                println!("    {} ignored: {}", ignored.name, ignored.reason);
            }
            println!("  imports  (all allowed)");
            for import in &report.imports {
                println!("    {import}");
            }
        }
    }
    Ok(())
}
