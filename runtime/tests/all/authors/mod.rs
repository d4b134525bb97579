//! Authors beyond this repository's Rust examples: each language's SDK and
//! examples under their own test runners, the examples built into
//! components with their language's toolchain and the same scenario files
//! run on those components through the real engine by `projector test`
//! (hostile guests among them), and `projector new` projects that test and
//! build right away.
//!
//! The toolchains are installed by `scripts/install-test-tools.sh`: a venv
//! with componentize-py and pytest under `$PROJECTOR_TOOLS/python`, the npm
//! workspace's packages (TypeScript, esbuild, componentize-js) under the
//! repository's `node_modules`. Without them these tests fail, naming the
//! script.

mod js;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime lives in the repository")
        .to_owned()
}

/// Where `scripts/install-test-tools.sh` puts the tools.
fn tools() -> PathBuf {
    std::env::var_os("PROJECTOR_TOOLS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/projector-tools")
        },
        PathBuf::from,
    )
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `projector test` with `args`, caching compiled code in `cache`.
fn projector_test(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("test")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("the projector binary runs")
}

/// `projector test` with `args`, which must succeed and say `says`; its
/// output.
fn passes(cache: &Path, args: &[&str], says: &str) -> String {
    let output = projector_test(cache, args);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains(says), "{shown}");
    shown
}

/// `projector new NAME --lang LANG` in `dir`: the project's directory.
fn scaffold(dir: &Path, lang: &str) -> PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["new", "cart-view", "--lang", lang, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let project = dir.join("cart-view");
    for file in [
        "README.md",
        ".gitignore",
        "events.jsonl",
        "expected-rows.json",
        "scenarios/example.json",
    ] {
        assert!(project.join(file).exists(), "{lang}: no {file}");
    }
    // A second time, the directory exists: refused, nothing overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["new", "cart-view", "--lang", lang, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    project
}

/// The scaffold's sample events and scenario pass on its built component.
fn passes_projector_test(project: &Path, wasm: &Path, cache: &Path) {
    let wasm = wasm.to_str().unwrap();
    let path = |name: &str| project.join(name).display().to_string();
    let output = projector_test(
        cache,
        &[
            wasm,
            "--scenarios",
            &path("scenarios"),
            "--events",
            &path("events.jsonl"),
            "--expect",
            &path("expected-rows.json"),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("the rows are as expected") && shown.contains("1 scenario passed"),
        "{shown}"
    );
}
