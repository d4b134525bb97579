//! The same projection, customer-view, written in Rust, TypeScript and
//! Python (`guest-examples/customer-view`, `customer-view-ts`,
//! `customer-view-py`), each built into a component by its own toolchain and
//! run by the same engine: what an author's choice of language costs.
//!
//! For each: the component's size, its cold compile (Cranelift, no cache),
//! its load from the compiled-code cache (a new engine over a warm cache
//! directory, as a restart or a second `projector test` sees it), its first
//! call (instantiation included), calls per second on a reused instance with
//! the `apply` benchmark's input, and the linear memory the instance holds.
//!
//! Run: `cargo bench -p projector --bench languages`. It builds the
//! TypeScript and Python components first, with the toolchains
//! `scripts/install-test-tools.sh` installs (the npm workspace's
//! `projector-componentize`, the venv's componentize-py), and fails naming
//! that script when one is missing.

// A benchmark fails by panicking.
#![allow(clippy::panic, clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use projector::engine::{Engine, EngineConfig, WitEvent};

mod common;
use common::{event, rate, row};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("the runtime lives in the repository"))
        .to_owned()
}

fn tools() -> PathBuf {
    std::env::var_os("PROJECTOR_TOOLS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/projector-tools")
        },
        PathBuf::from,
    )
}

/// Run `command`, which must succeed; `what` names it in the panic.
fn run(what: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err} (scripts/install-test-tools.sh installs it)"));
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The TypeScript port, built as its `npm run build` does.
fn build_typescript(out: &Path) -> Vec<u8> {
    let example = repository().join("guest-examples/customer-view-ts");
    let wasm = out.join("customer-view-ts.wasm");
    run(
        "projector-componentize",
        Command::new(repository().join("node_modules/.bin/projector-componentize"))
            .current_dir(&example)
            .arg("src/app.ts")
            .arg("-o")
            .arg(&wasm),
    );
    std::fs::read(&wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
}

/// The Python port, built as its README says.
fn build_python(out: &Path) -> Vec<u8> {
    let example = repository().join("guest-examples/customer-view-py");
    let wasm = out.join("customer-view-py.wasm");
    run(
        "componentize-py",
        Command::new(tools().join("python/bin/componentize-py"))
            .current_dir(&example)
            .args(["-d", "../../wit", "-w", "projection", "componentize", "app"])
            .args(["-p", ".", "-p", "../../sdk-python", "--stub-wasi", "-o"])
            .arg(&wasm),
    );
    std::fs::read(&wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
}

/// What one language's component measured.
struct Figures {
    language: &'static str,
    megabytes: f64,
    cold_compile: Duration,
    cached_load: Duration,
    first_call: Duration,
    calls_per_second: f64,
    memory_bytes: usize,
}

fn measure(language: &'static str, wasm: &[u8], cache: &Path, c: &mut Criterion) -> Figures {
    let cold = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let started = Instant::now();
    cold.load(wasm)
        .unwrap_or_else(|err| panic!("{language}: {err}"));
    let cold_compile = started.elapsed();

    // Warm the cache with one engine, then load with a fresh one, as a
    // restarted runtime does.
    let cached = || {
        Engine::new(EngineConfig {
            cache_dir: Some(cache.join(language)),
            ..EngineConfig::default()
        })
        .unwrap_or_else(|err| panic!("engine: {err}"))
    };
    cached()
        .load(wasm)
        .unwrap_or_else(|err| panic!("{language}: {err}"));
    let engine = cached();
    let started = Instant::now();
    let module = engine
        .load(wasm)
        .unwrap_or_else(|err| panic!("{language}: {err}"));
    let cached_load = started.elapsed();

    let row = row();
    let event = WitEvent::from(&event());
    let mut instance = module.instance();
    let started = Instant::now();
    instance
        .apply(Some(&row), &event)
        .unwrap_or_else(|err| panic!("{language}: first call: {err}"));
    let first_call = started.elapsed();

    let mut group = c.benchmark_group("customer-view apply by language");
    group.bench_function(language, |b| {
        b.iter(|| instance.apply(Some(&row), &event));
    });
    group.finish();
    let calls_per_second = rate(Duration::from_secs(3), || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &event));
    });
    let memory_bytes = instance
        .memory_bytes()
        .unwrap_or_else(|| panic!("{language}: the instance is live"));
    Figures {
        language,
        megabytes: wasm.len() as f64 / 1e6,
        cold_compile,
        cached_load,
        first_call,
        calls_per_second,
        memory_bytes,
    }
}

fn bench(c: &mut Criterion) {
    let out = repository().join("target/bench-components");
    std::fs::create_dir_all(&out).unwrap_or_else(|err| panic!("{}: {err}", out.display()));
    let cache = out.join("cache");
    // A cold start each run: the cache is made here.
    let _ = std::fs::remove_dir_all(&cache);
    let components = [
        ("rust", projector_examples::CUSTOMER_VIEW.wasm.to_vec()),
        ("typescript", build_typescript(&out)),
        ("python", build_python(&out)),
    ];

    // The three must agree before they are timed.
    let engine = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let row = row();
    let event = WitEvent::from(&event());
    let outputs: Vec<_> = components
        .iter()
        .map(|(language, wasm)| {
            let module = engine
                .load(wasm)
                .unwrap_or_else(|err| panic!("{language}: {err}"));
            module
                .instance()
                .apply(Some(&row), &event)
                .unwrap_or_else(|err| panic!("{language}: {err}"))
        })
        .collect();
    assert!(
        outputs.windows(2).all(|pair| pair[0] == pair[1]),
        "the ports disagree: {outputs:?}"
    );
    drop(engine);

    let figures: Vec<Figures> = components
        .iter()
        .map(|(language, wasm)| measure(language, wasm, &cache, c))
        .collect();
    let rust = figures[0].calls_per_second;
    println!(
        "customer-view by language, one core (input: row {} bytes):",
        row.len()
    );
    println!(
        "  {:<11} {:>9} {:>13} {:>12} {:>11} {:>12} {:>8} {:>11}",
        "language",
        "size MB",
        "cold compile",
        "cached load",
        "first call",
        "calls/s",
        "/ rust",
        "memory MiB"
    );
    for f in &figures {
        println!(
            "  {:<11} {:>9.1} {:>11.2} s {:>9.0} ms {:>8.1} ms {:>12.0} {:>8.3} {:>11.1}",
            f.language,
            f.megabytes,
            f.cold_compile.as_secs_f64(),
            f.cached_load.as_secs_f64() * 1e3,
            f.first_call.as_secs_f64() * 1e3,
            f.calls_per_second,
            f.calls_per_second / rust,
            f.memory_bytes as f64 / (1024.0 * 1024.0),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
