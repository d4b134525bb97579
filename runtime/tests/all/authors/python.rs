//! Python: the SDK's and the examples' pytest tests, the examples built with
//! componentize-py (`--stub-wasi`) and run by `projector test`, and a
//! `projector new --lang python` project.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{passes, projector_test, repository, text, tools};
use crate::kit::TempDir;

/// The venv `scripts/install-test-tools.sh` made.
fn python_tools() -> PathBuf {
    let python = tools().join("python");
    assert!(
        python.join("bin/componentize-py").exists() && python.join("bin/python").exists(),
        "no Python toolchain at {}: scripts/install-test-tools.sh installs componentize-py and pytest there",
        python.display()
    );
    python
}

/// Build the Python example `name` into `out/<name>.wasm`, as its README
/// says.
fn build(name: &str, out: &Path) -> PathBuf {
    let example = repository().join("guest-examples").join(name);
    let wasm = out.join(format!("{name}.wasm"));
    let output = Command::new(python_tools().join("bin/componentize-py"))
        .current_dir(&example)
        .args(["-d", "../../wit", "-w", "projection", "componentize", "app"])
        .args(["-p", ".", "-p", "../../sdk-python", "--stub-wasi", "-o"])
        .arg(&wasm)
        .output()
        .expect("componentize-py runs");
    assert!(
        output.status.success(),
        "building {name}: {}",
        text(&output)
    );
    wasm
}

#[test]
fn the_python_sdk_and_examples_pass_their_mock_host_tests() {
    let _cores = crate::kit::cores_shared();
    let root = repository();
    let output = Command::new(python_tools().join("bin/python"))
        .current_dir(&root)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args([
            "sdk-python/tests",
            "guest-examples/order-totals-py/tests",
            "guest-examples/misbehaving-py/tests",
            "guest-examples/customer-view-py/tests",
        ])
        .output()
        .expect("pytest runs");
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    // The count is what the files hold: a test file gone missing shows.
    assert!(report.contains("13 passed"), "{report}");
}

#[test]
fn the_python_examples_pass_the_same_scenarios_as_components_under_projector_test() {
    let _cores = crate::kit::cores_shared();
    let dir = TempDir::new("authors-python");
    let cache = dir.0.join("compiled");
    let totals = build("order-totals-py", &dir.0);
    let example = repository().join("guest-examples/order-totals-py");
    let path = |name: &str| example.join(name).display().to_string();
    let wasm = totals.display().to_string();

    // The engine takes the component as it is: its WASI imports stubbed
    // away, its one extra export (componentize-py's init) named.
    let inspect = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["inspect", &wasm, "--output", "json"])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(report["ignored_exports"][0]["name"], "exports", "{report}");
    assert!(
        report["ignored_exports"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("componentize-py"),
        "{report}"
    );
    assert_eq!(
        report["imports"],
        serde_json::json!([
            "projector:projection/log@0.1.0",
            "projector:projection/types@0.1.0"
        ])
    );

    // The scenario files pytest ran on the source pass on the component.
    passes(
        &cache,
        &[&wasm, "--scenarios", &path("scenarios")],
        "4 scenarios passed",
    );

    // The sample events leave the expected rows...
    let events = projector_test(
        &cache,
        &[
            &wasm,
            "--events",
            &path("events.jsonl"),
            "--expect",
            &path("expected-rows.json"),
        ],
    );
    assert!(events.status.success(), "{}", text(&events));
    let shown = text(&events);
    assert!(shown.contains("the rows are as expected"), "{shown}");
    assert!(shown.contains("line 6: invalid-data"), "{shown}");
    // ...and a wrong expectation fails, showing the difference.
    let wrong = dir.0.join("wrong-rows.json");
    std::fs::write(
        &wrong,
        r#"{"alice": {"orderCount": 2, "totalCents": 750, "lastOrderId": "o-3"}, "carol": {}}"#,
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
    assert!(shown.contains("~ alice: expected"), "{shown}");
    assert!(shown.contains("- carol"), "{shown}");
    assert!(shown.contains("+ bob"), "{shown}");

    // The customer view's language-neutral scenarios pass on the Python
    // port, as on the Rust original and the TypeScript port.
    let customers = build("customer-view-py", &dir.0);
    passes(
        &cache,
        &[
            customers.to_str().unwrap(),
            "--scenarios",
            repository()
                .join("guest-examples/customer-view/scenarios")
                .to_str()
                .unwrap(),
        ],
        "5 scenarios passed",
    );
    super::runs_as_a_view_like_the_rust_original(&customers);

    // Hostile Python: each misbehaviour fails alone with its class, the
    // instance is replaced and the next event applies.
    let misbehaving = build("misbehaving-py", &dir.0);
    passes(
        &cache,
        &[
            misbehaving.to_str().unwrap(),
            "--scenarios",
            repository()
                .join("guest-examples/misbehaving-py/component-scenarios")
                .to_str()
                .unwrap(),
        ],
        "1 scenario passed",
    );
}
