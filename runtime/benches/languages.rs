//! The same projection, customer-view, written in Rust, TypeScript and
//! Python (`guest-examples/customer-view`, `customer-view-ts`,
//! `customer-view-py`), each built into a component by its own toolchain and
//! run by the same engine: what an author's choice of language costs.
//!
//! For each: the component's size, its build by its toolchain, its cold
//! compile (Cranelift, no cache), its load from the compiled-code cache (a
//! new engine over a warm cache directory, as a restart or a second
//! `projector test` sees it), its first call (instantiation included),
//! calls per second on a reused instance with the `apply` benchmark's input,
//! calls per second with the same input but an event type the projection
//! ignores (the fixed cost of a call in that language: the event lifted into
//! the guest, the row parsed, the SDK's glue), calls per second of a no-op
//! component built by the same toolchain without the SDK (the toolchain's
//! own floor), the linear memory an instance holds after its first call
//! and what it keeps per call, and how often the engine replaced the
//! instance for its memory during the timed calls.
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
use projector::engine::{Compiler, Engine, EngineConfig};
use projector::event::Event;

mod common;
use common::{event, rate, row};

/// The benchmark's event with a type customer-view ignores.
fn ignored_event() -> projector_sdk::Event {
    projector_sdk::Event {
        ty: "CustomerViewed".into(),
        ..event()
    }
}

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

/// `projector-componentize ENTRY -o WASM` run in `dir`, as `npm run build`
/// does.
fn componentize_js(dir: &Path, entry: &str, wasm: &Path) -> Vec<u8> {
    run(
        "projector-componentize",
        Command::new(repository().join("node_modules/.bin/projector-componentize"))
            .current_dir(dir)
            .arg(entry)
            .arg("-o")
            .arg(wasm),
    );
    std::fs::read(wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
}

/// componentize-py building `module` in `dir`, with the SDK on its path, as
/// the Python examples' READMEs say.
fn componentize_py(dir: &Path, module: &str, wasm: &Path) -> Vec<u8> {
    let repository = repository();
    run(
        "componentize-py",
        Command::new(tools().join("python/bin/componentize-py"))
            .current_dir(dir)
            .arg("-d")
            .arg(repository.join("wit"))
            .args(["-w", "projection", "componentize", module, "-p", "."])
            .arg("-p")
            .arg(repository.join("sdk-python"))
            .args(["--stub-wasi", "-o"])
            .arg(wasm),
    );
    std::fs::read(wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
}

/// One language's customer-view, with what the benchmark compares it to.
struct Port {
    language: &'static str,
    wasm: Vec<u8>,
    /// How long its toolchain took to build it; `None` for Rust, built by
    /// the examples' build script before the benchmark starts.
    build_time: Option<Duration>,
    /// A no-op component built by the same toolchain without the SDK;
    /// `None` for Rust, whose floor is its `ignored/s` (its SDK's glue is a
    /// few field copies).
    no_op: Option<Vec<u8>>,
}

/// `build` timed.
fn timed(build: impl FnOnce() -> Vec<u8>) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let wasm = build();
    (wasm, Some(started.elapsed()))
}

/// The TypeScript port, built as its `npm run build` does.
fn typescript(out: &Path) -> Port {
    let example = repository().join("guest-examples/customer-view-ts");
    let (wasm, build_time) =
        timed(|| componentize_js(&example, "src/app.ts", &out.join("customer-view-ts.wasm")));
    Port {
        language: "typescript",
        wasm,
        build_time,
        no_op: Some(build_javascript_no_op(out)),
    }
}

/// The Python port, built as its README says.
fn python(out: &Path) -> Port {
    let example = repository().join("guest-examples/customer-view-py");
    let (wasm, build_time) =
        timed(|| componentize_py(&example, "app", &out.join("customer-view-py.wasm")));
    Port {
        language: "python",
        wasm,
        build_time,
        no_op: Some(build_python_no_op(out)),
    }
}

/// A JavaScript component whose `apply` returns `ignore` at once, with no
/// SDK: the floor of a call that componentize-js sets, whatever the
/// projection does.
fn build_javascript_no_op(out: &Path) -> Vec<u8> {
    let dir = out.join("no-op-js");
    write(
        &dir.join("app.js"),
        "export const apply = (state, event) => ({ tag: \"ignore\" });\n",
    );
    componentize_js(&dir, "app.js", &out.join("no-op-js.wasm"))
}

/// The same in Python, with componentize-py's generated bindings only.
fn build_python_no_op(out: &Path) -> Vec<u8> {
    let dir = out.join("no-op-py");
    write(
        &dir.join("app.py"),
        "from wit_world.imports import types\n\n\nclass WitWorld:\n    def apply(self, state, event):\n        return types.Update_Ignore()\n",
    );
    componentize_py(&dir, "app", &out.join("no-op-py.wasm"))
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

/// What one language's component measured.
struct Figures {
    language: &'static str,
    megabytes: f64,
    build_time: Option<Duration>,
    cold_compile: Duration,
    /// The same with Winch, as `projector test` and `projector inspect`
    /// compile.
    cold_compile_winch: Duration,
    cached_load: Duration,
    first_call: Duration,
    calls_per_second: f64,
    /// Calls per second with an event the projection ignores (same row and
    /// data, a type it does not handle): the fixed cost of a call, its
    /// event crossing into the guest, the row parsed, the SDK's glue.
    ignored_per_second: f64,
    /// Calls per second of Winch's code.
    calls_per_second_winch: f64,
    /// Calls per second of a component in the same language whose `apply`
    /// returns `ignore` at once, with no SDK: the toolchain's own floor.
    no_op_per_second: Option<f64>,
    /// Linear memory after the first call.
    memory_bytes: usize,
    /// Linear memory the instance keeps per call (over 10,000 calls).
    kept_per_call: f64,
    /// Instances replaced for their memory during the timed calls.
    recycled: u64,
}

/// Calls per second of `wasm`, which must ignore the benchmark's input.
fn no_op_rate(language: &str, wasm: &[u8]) -> f64 {
    let engine = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let module = engine
        .load(wasm)
        .unwrap_or_else(|err| panic!("{language} no-op: {err}"));
    let mut instance = module.instance();
    let row = row();
    let event = Event::from(&event());
    assert_eq!(
        instance.apply(Some(&row), &event).ok(),
        Some(projector_sdk::Update::Ignore),
        "{language}: the no-op component ignores every event"
    );
    rate(Duration::from_secs(3), || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &event));
    })
}

fn measure(port: &Port, cache: &Path, c: &mut Criterion) -> Figures {
    let language = port.language;
    let wasm = port.wasm.as_slice();
    let cold = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let started = Instant::now();
    cold.load(wasm)
        .unwrap_or_else(|err| panic!("{language}: {err}"));
    let cold_compile = started.elapsed();
    let winch = Engine::new(EngineConfig {
        compiler: Compiler::Winch,
        ..EngineConfig::default()
    })
    .unwrap_or_else(|err| panic!("engine: {err}"));
    let started = Instant::now();
    let winch_module = winch
        .load(wasm)
        .unwrap_or_else(|err| panic!("{language} with winch: {err}"));
    let cold_compile_winch = started.elapsed();

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
    let event = Event::from(&event());
    let mut instance = module.instance();
    let started = Instant::now();
    instance
        .apply(Some(&row), &event)
        .unwrap_or_else(|err| panic!("{language}: first call: {err}"));
    let first_call = started.elapsed();
    let memory_bytes = instance
        .memory_bytes()
        .unwrap_or_else(|| panic!("{language}: the instance is live"));
    // What the instance keeps per call: 10,000 calls, below its recycle
    // mark for every language here.
    for _ in 0..10_000 {
        let _ = std::hint::black_box(instance.apply(Some(&row), &event));
    }
    assert_eq!(
        instance.stats().instantiations,
        1,
        "{language}: replaced within 10,000 calls"
    );
    let kept_per_call = instance
        .memory_bytes()
        .unwrap_or_else(|| panic!("{language}: the instance is live"))
        .saturating_sub(memory_bytes) as f64
        / 10_000.0;

    let mut group = c.benchmark_group("customer-view apply by language");
    group.bench_function(language, |b| {
        b.iter(|| instance.apply(Some(&row), &event));
    });
    group.finish();
    let calls_per_second = rate(Duration::from_secs(3), || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &event));
    });
    let ignored = Event::from(&ignored_event());
    assert_eq!(
        instance.apply(Some(&row), &ignored).ok(),
        Some(projector_sdk::Update::Ignore),
        "{language}: an event type customer-view does not handle is ignored"
    );
    let ignored_per_second = rate(Duration::from_secs(3), || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &ignored));
    });
    let recycled = instance.stats().recycled;
    drop(instance);
    let mut winch_instance = winch_module.instance();
    assert_eq!(
        winch_instance.apply(Some(&row), &event).ok(),
        module.instance().apply(Some(&row), &event).ok(),
        "{language}: Winch's code returns what Cranelift's does"
    );
    let calls_per_second_winch = rate(Duration::from_secs(3), || {
        let _ = std::hint::black_box(winch_instance.apply(Some(&row), &event));
    });
    let no_op_per_second = port.no_op.as_deref().map(|wasm| no_op_rate(language, wasm));
    Figures {
        language,
        megabytes: wasm.len() as f64 / 1e6,
        build_time: port.build_time,
        cold_compile,
        cold_compile_winch,
        cached_load,
        first_call,
        calls_per_second,
        ignored_per_second,
        calls_per_second_winch,
        no_op_per_second,
        memory_bytes,
        kept_per_call,
        recycled,
    }
}

fn bench(c: &mut Criterion) {
    let out = repository().join("target/bench-components");
    std::fs::create_dir_all(&out).unwrap_or_else(|err| panic!("{}: {err}", out.display()));
    let cache = out.join("cache");
    // A cold start each run: the cache is made here.
    let _ = std::fs::remove_dir_all(&cache);
    let ports = [
        Port {
            language: "rust",
            wasm: projector_examples::CUSTOMER_VIEW.wasm.to_vec(),
            build_time: None,
            no_op: None,
        },
        typescript(&out),
        python(&out),
    ];

    // The three must agree before they are timed.
    let engine = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let row = row();
    let event = Event::from(&event());
    let outputs: Vec<_> = ports
        .iter()
        .map(|Port { language, wasm, .. }| {
            let module = engine
                .load(wasm)
                .unwrap_or_else(|err| panic!("{language}: {err}"));
            // Compared as JSON values: each language writes an object's
            // members in its own order (Rust in field order, JavaScript and
            // Python in insertion order), an order JSON gives no meaning.
            module
                .instance()
                .apply(Some(&row), &event)
                .unwrap_or_else(|err| panic!("{language}: {err}"))
                .map(|text| {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .unwrap_or_else(|err| panic!("{language}: a row that is not JSON: {err}"))
                })
        })
        .collect();
    assert!(
        outputs.windows(2).all(|pair| pair[0] == pair[1]),
        "the ports disagree: {outputs:?}"
    );
    drop(engine);

    let figures: Vec<Figures> = ports.iter().map(|port| measure(port, &cache, c)).collect();
    let rust = figures[0].calls_per_second;
    println!(
        "customer-view by language, one core (input: row {} bytes):",
        row.len()
    );
    println!("  building and loading:");
    println!(
        "  {:<11} {:>8} {:>8} {:>13} {:>13} {:>12} {:>11} {:>11} {:>12} {:>9}",
        "language",
        "size MB",
        "build",
        "cold compile",
        "winch compile",
        "cached load",
        "first call",
        "memory MiB",
        "kept B/call",
        "recycled"
    );
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    for f in &figures {
        println!(
            "  {:<11} {:>8.1} {:>8} {:>11.2} s {:>11.2} s {:>9.0} ms {:>8.1} ms {:>11.1} {:>12.0} {:>9}",
            f.language,
            f.megabytes,
            or_dash(
                f.build_time
                    .map(|time| format!("{:.1} s", time.as_secs_f64()))
            ),
            f.cold_compile.as_secs_f64(),
            f.cold_compile_winch.as_secs_f64(),
            f.cached_load.as_secs_f64() * 1e3,
            f.first_call.as_secs_f64() * 1e3,
            f.memory_bytes as f64 / (1024.0 * 1024.0),
            f.kept_per_call,
            f.recycled,
        );
    }
    println!("  calls on one instance:");
    println!(
        "  {:<11} {:>12} {:>8} {:>12} {:>12} {:>14} {:>15}",
        "language",
        "calls/s",
        "/ rust",
        "ignored/s",
        "no-op/s",
        "winch calls/s",
        "winch / cranelift"
    );
    for f in &figures {
        println!(
            "  {:<11} {:>12.0} {:>8.3} {:>12.0} {:>12} {:>14.0} {:>15.2}",
            f.language,
            f.calls_per_second,
            f.calls_per_second / rust,
            f.ignored_per_second,
            or_dash(f.no_op_per_second.map(|rate| format!("{rate:.0}"))),
            f.calls_per_second_winch,
            f.calls_per_second_winch / f.calls_per_second,
        );
    }

    let loops: Vec<Loop> = ["rust", "ts", "js", "python"]
        .into_iter()
        .map(|lang| author_loop(lang, &out.join("loop")))
        .collect();
    println!("  the author's loop on a new project (projector new), after an edit:");
    println!(
        "  {:<11} {:>15} {:>8} {:>15} {:>17} {:>12} {:>15}",
        "language",
        "mock-host test",
        "build",
        "compile (winch)",
        "compile (cranelift)",
        "cached load",
        "projector test"
    );
    for l in &loops {
        println!(
            "  {:<11} {:>13.2} s {:>6.1} s {:>13.2} s {:>17.2} s {:>9.0} ms {:>13.2} s",
            l.language,
            l.mock_host_test.as_secs_f64(),
            l.build.as_secs_f64(),
            l.compile_winch.as_secs_f64(),
            l.compile_cranelift.as_secs_f64(),
            l.cached_load.as_secs_f64() * 1e3,
            l.projector_test.as_secs_f64(),
        );
    }
}

/// What one language's loop took on a new project.
struct Loop {
    language: &'static str,
    /// The project's mock-host tests, as its README runs them, after an
    /// edit of the projection's source.
    mock_host_test: Duration,
    /// Its build of the component, after an edit.
    build: Duration,
    /// The component's first compile, no cache, with Winch.
    compile_winch: Duration,
    /// The same with Cranelift, as `projector run` compiles.
    compile_cranelift: Duration,
    /// A new engine loading Winch's code from the cache.
    cached_load: Duration,
    /// `projector test` with the sample events and the scenario, its code
    /// in the cache: the whole command.
    projector_test: Duration,
}

/// `command` in `dir`, which must succeed, timed.
fn timed_in(dir: &Path, what: &str, command: &mut Command) -> Duration {
    let started = Instant::now();
    run(what, command.current_dir(dir));
    started.elapsed()
}

/// Rewrite `path` as it is, as an editor's save does: the build sees a
/// newer source.
fn touch(path: &Path) {
    let text = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    std::fs::write(path, text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

/// `projector new` for `lang` in `out`, its toolchain installed (not
/// timed: once per project), then one edit-test-build-compile round timed
/// step by step.
fn author_loop(lang: &'static str, out: &Path) -> Loop {
    let projector = Path::new(env!("CARGO_BIN_EXE_projector"));
    let dir = out.join(lang);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    run(
        "projector new",
        Command::new(projector)
            .args(["new", "cart-view", "--lang", lang, "--dir"])
            .arg(&dir),
    );
    let project = dir.join("cart-view");
    let python = tools().join("python/bin");
    let with_python = format!(
        "{}:{}",
        python.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cargo = |args: &[&str]| {
        let mut command = Command::new("cargo");
        command
            .args(args)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_MANIFEST_DIR");
        command
    };
    let (source, test, build, wasm): (&str, Command, Command, PathBuf) = match lang {
        "rust" => {
            // Its dependencies, once.
            run(
                "cargo test",
                cargo(&["test", "--quiet"]).current_dir(&project),
            );
            let mut build = cargo(&["build", "--release", "--target", "wasm32-wasip2", "--quiet"]);
            run("cargo build", build.current_dir(&project));
            (
                "src/lib.rs",
                cargo(&["test", "--quiet"]),
                build,
                project.join("target/wasm32-wasip2/release/cart_view.wasm"),
            )
        }
        "ts" | "js" => {
            run(
                "npm install",
                Command::new("npm")
                    .args(["install", "--prefer-offline"])
                    .current_dir(&project),
            );
            let mut test = Command::new("npm");
            test.arg("test");
            let mut build = Command::new("npm");
            build.args(["run", "build"]);
            (
                if lang == "ts" {
                    "src/projection.ts"
                } else {
                    "projection.js"
                },
                test,
                build,
                project.join("cart-view.wasm"),
            )
        }
        _ => {
            let mut test = Command::new(python.join("python"));
            test.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]);
            let mut build = Command::new(project.join("build.sh"));
            build.env("PATH", &with_python);
            ("projection.py", test, build, project.join("cart-view.wasm"))
        }
    };
    let (mut test, mut build) = (test, build);
    touch(&project.join(source));
    let mock_host_test = timed_in(&project, "mock-host test", &mut test);
    touch(&project.join(source));
    let build = timed_in(&project, "build", &mut build);
    let bytes = std::fs::read(&wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()));

    let compile = |compiler: Compiler, cache: Option<PathBuf>| {
        let engine = Engine::new(EngineConfig {
            compiler,
            cache_dir: cache,
            ..EngineConfig::default()
        })
        .unwrap_or_else(|err| panic!("engine: {err}"));
        let module = engine
            .load(&bytes)
            .unwrap_or_else(|err| panic!("{lang} with {compiler}: {err}"));
        module.compilation()
    };
    let cache = dir.join("compiled");
    let first = compile(Compiler::Winch, Some(cache.clone()));
    assert!(!first.from_cache, "{lang}: a fresh cache");
    let cranelift = compile(Compiler::Cranelift, None);
    let cached = compile(Compiler::Winch, Some(cache.clone()));
    assert!(cached.from_cache, "{lang}: the second load reads the cache");
    let projector_test = timed_in(
        &project,
        "projector test",
        Command::new(projector)
            .arg("test")
            .arg(&wasm)
            .args([
                "--scenarios",
                "scenarios",
                "--events",
                "events.jsonl",
                "--expect",
                "expected-rows.json",
                "--cache-dir",
            ])
            .arg(&cache),
    );
    Loop {
        language: lang,
        mock_host_test,
        build,
        compile_winch: first.took,
        compile_cranelift: cranelift.took,
        cached_load: cached.took,
        projector_test,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
