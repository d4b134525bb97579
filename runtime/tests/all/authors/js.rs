//! TypeScript and JavaScript: the SDK's and the examples' `node --test`
//! tests, the SDK's generated files checked against their sources, the
//! examples built with `projector-componentize` (esbuild, then
//! componentize-js) and run by `projector test`, and `projector new --lang
//! ts|js` projects.

use std::path::{Path, PathBuf};
use std::process::Command;

use projector::engine::{Engine, EngineConfig};
use projector::event::Event;

use super::{passes, projector_test, repository, text};
use crate::kit::TempDir;

/// The npm workspace's `node_modules/.bin`, which
/// `scripts/install-test-tools.sh` fills with `npm ci`.
fn node_bin() -> PathBuf {
    let bin = repository().join("node_modules/.bin");
    for tool in ["tsc", "projector-componentize", "esbuild"] {
        assert!(
            bin.join(tool).exists(),
            "no {tool} in {}: scripts/install-test-tools.sh installs the npm workspace's packages (npm ci)",
            bin.display()
        );
    }
    bin
}

/// `npm ARGS` in `dir`, which must succeed; its output.
fn npm(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("npm")
        .current_dir(dir)
        .args(args)
        .args(["--no-audit", "--no-fund"])
        .output()
        .expect("npm runs (scripts/install-test-tools.sh installs Node.js)");
    let shown = text(&output);
    assert!(
        output.status.success(),
        "npm {args:?} in {}: {shown}",
        dir.display()
    );
    shown
}

/// The number of passed tests `node --test` reported in `report`, per run.
fn passed(report: &str) -> Vec<u32> {
    report
        .lines()
        .filter_map(|line| line.strip_prefix("# pass "))
        .map(|count| count.trim().parse().expect("a count"))
        .collect()
}

/// Build the example `name` (its entry module `entry`) into
/// `out/<name>.wasm`, type-checking TypeScript first as its build does.
fn build(name: &str, entry: &str, out: &Path) -> PathBuf {
    let bin = node_bin();
    let example = repository().join("guest-examples").join(name);
    if entry.ends_with(".ts") {
        let check = Command::new(bin.join("tsc"))
            .current_dir(&example)
            .args(["-p", "tsconfig.json", "--noEmit"])
            .output()
            .unwrap();
        assert!(check.status.success(), "tsc {name}: {}", text(&check));
    }
    let wasm = out.join(format!("{name}.wasm"));
    let output = Command::new(bin.join("projector-componentize"))
        .current_dir(&example)
        .arg(entry)
        .arg("-o")
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building {name}: {}",
        text(&output)
    );
    wasm
}

#[test]
fn the_js_sdk_and_examples_pass_their_mock_host_tests() {
    let _cores = crate::kit::cores_shared();
    node_bin();
    let report = npm(&repository(), &["test", "--workspaces"]);
    // Per workspace, in the order package.json names them: the counts are
    // what the files hold, so a test file gone missing shows.
    assert_eq!(passed(&report), [11, 7, 2], "{report}");
    assert!(!report.contains("\nnot ok"), "{report}");
}

#[test]
fn the_js_sdks_checked_in_build_is_what_its_sources_make() {
    let _cores = crate::kit::cores_shared();
    // dist/ and wit-types/ are generated (tsc; jco's type generator from
    // the WIT) and checked in, so that `projector new` can vendor them and
    // JavaScript authors need no compiler: they must not drift. The sources
    // are built in a copy with the same layout (tsc writes paths relative to
    // its output), inside the repository so that the workspace's packages
    // resolve.
    let bin = node_bin();
    let sdk = repository().join("sdk-js");
    let copy = repository().join("target/sdk-js-check");
    std::fs::remove_dir_all(&copy).ok();
    std::fs::create_dir_all(copy.join("wit")).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .args(["src", "scripts", "tsconfig.json", "package.json"].map(|name| sdk.join(name)))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", text(&copied));
    std::fs::copy(
        sdk.join("wit/projection.wit"),
        copy.join("wit/projection.wit"),
    )
    .unwrap();
    let generated = Command::new("node")
        .current_dir(&copy)
        .arg("scripts/generate-wit-types.mjs")
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", text(&generated));
    let compiled = Command::new(bin.join("tsc"))
        .current_dir(&copy)
        .args(["-p", "tsconfig.json"])
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", text(&compiled));
    for tree in ["dist", "wit-types"] {
        let diff = Command::new("diff")
            .args(["-r", "-u"])
            .arg(sdk.join(tree))
            .arg(copy.join(tree))
            .output()
            .unwrap();
        assert!(
            diff.status.success(),
            "sdk-js/{tree} is not what its sources make: run `npm run build` in sdk-js\n{}",
            text(&diff)
        );
    }
}

#[test]
fn the_js_examples_pass_the_same_scenarios_as_components_under_projector_test() {
    let _cores = crate::kit::cores_shared();
    let dir = TempDir::new("authors-js");
    let cache = dir.0.join("compiled");
    let customers = build("customer-view-ts", "src/app.ts", &dir.0);
    let example = repository().join("guest-examples/customer-view-ts");
    let path = |name: &str| example.join(name).display().to_string();
    let wasm = customers.display().to_string();

    // The component imports the world's interfaces and nothing else: every
    // WASI feature of componentize-js is off, and it adds no export.
    let inspect = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["inspect", &wasm, "--output", "json"])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        report["imports"],
        serde_json::json!([
            "projector:projection/log@0.1.0",
            "projector:projection/types@0.1.0"
        ]),
        "{report}"
    );
    assert_eq!(report["ignored_exports"], serde_json::json!([]), "{report}");

    // The customer view's language-neutral scenarios, which node --test ran
    // on the source, pass on the component, and on the Rust original's.
    let shared = repository().join("guest-examples/customer-view/scenarios");
    let shared = shared.to_str().unwrap();
    passes(
        &cache,
        &[
            projector_examples::CUSTOMER_VIEW.path,
            "--scenarios",
            shared,
        ],
        "5 scenarios passed",
    );
    passes(
        &cache,
        &[&wasm, "--scenarios", shared],
        "5 scenarios passed",
    );

    a_js_instance_is_replaced_before_its_memory_runs_out(&customers, &cache);
    super::runs_as_a_view_like_the_rust_original(&customers);

    // The sample events leave the expected rows; a wrong expectation fails,
    // showing the difference.
    passes(
        &cache,
        &[
            &wasm,
            "--events",
            &path("events.jsonl"),
            "--expect",
            &path("expected-rows.json"),
        ],
        "the rows are as expected",
    );
    let wrong = dir.0.join("wrong-rows.json");
    std::fs::write(
        &wrong,
        r#"{"c-1": {"customerId": "c-1", "email": "alice@example.com", "name": "alice"}, "c-3": {}}"#,
    )
    .unwrap();
    let failing = projector_test(
        &cache,
        &[
            &wasm,
            "--events",
            &path("events.jsonl"),
            "--expect",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(!failing.status.success());
    let shown = text(&failing);
    assert!(shown.contains("~ c-1: expected"), "{shown}");
    assert!(shown.contains("- c-3"), "{shown}");
    assert!(shown.contains("+ c-2"), "{shown}");

    // Hostile JavaScript: each misbehaviour fails alone with its class, the
    // instance is replaced and the next event applies.
    let misbehaving = build("misbehaving-js", "app.js", &dir.0);
    passes(
        &cache,
        &[
            misbehaving.to_str().unwrap(),
            "--scenarios",
            repository()
                .join("guest-examples/misbehaving-js/component-scenarios")
                .to_str()
                .unwrap(),
        ],
        "1 scenario passed",
    );
}

/// componentize-js keeps about 840 bytes of linear memory per call and
/// never gives them back (measured: a no-op component grows as fast). Under
/// a 16 MiB cap, with about 9 MiB taken by a fresh instance, its ~10,000th
/// call would fail `memory-exceeded`; the engine replaces the instance
/// before that, so 20,000 calls all apply.
fn a_js_instance_is_replaced_before_its_memory_runs_out(wasm: &Path, cache: &Path) {
    let engine = Engine::new(EngineConfig {
        max_memory_bytes: 16 << 20,
        cache_dir: Some(cache.to_owned()),
        ..EngineConfig::default()
    })
    .unwrap();
    let module = engine.load(&std::fs::read(wasm).unwrap()).unwrap();
    let mut instance = module.instance();
    let event = Event::from(&projector_sdk::Event {
        id: "e-1".into(),
        source: "/crm".into(),
        specversion: "1.0".into(),
        ty: "CustomerCreated".into(),
        subject: Some("c-1".into()),
        data: Some(br#"{"email": "ada@example.com", "name": "Ada"}"#.to_vec()),
        ..projector_sdk::Event::default()
    });
    let first = instance.apply(None, &event).unwrap();
    assert_eq!(first.kind(), "set", "{first:?}");
    for call in 1..20_000 {
        let update = instance.apply(None, &event);
        assert_eq!(
            update.as_ref().ok(),
            Some(&first),
            "call {call}: {update:?}"
        );
    }
    let stats = instance.stats();
    // The growth took effect: one instance could not have served them all.
    assert!(stats.recycled >= 1, "{stats:?}");
}
