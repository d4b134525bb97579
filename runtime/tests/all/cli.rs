//! The `projector` binary as a user runs it.

use std::process::{Command, Output};

fn projector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .output()
        .expect("the projector binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn inspect_example_reports_the_world_and_imports() {
    let output = projector(&["inspect", "--example", "customer-view"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("a valid projection for projector:projection@0.1.0"),
        "{text}"
    );
    assert!(text.contains("projector:projection/log@0.1.0"), "{text}");
}

#[test]
fn inspect_json_matches_the_module_on_disk() {
    let path = projector_examples::ORDER_TOTALS.path;
    let output = projector(&["inspect", path, "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("inspect prints JSON");
    assert_eq!(
        report["size_bytes"],
        projector_examples::ORDER_TOTALS.wasm.len()
    );
    assert_eq!(report["exports"], serde_json::json!(["apply"]));
    assert_eq!(report["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn inspect_refuses_what_is_not_a_component() {
    let output = projector(&["inspect", env!("CARGO_MANIFEST_DIR")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot read module"),
        "{}",
        stderr(&output)
    );

    let output = projector(&[
        "inspect",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not a WebAssembly file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn inspect_unknown_example_lists_the_known_ones() {
    let output = projector(&["inspect", "--example", "nope"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("customer-view, order-totals"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn inspect_needs_a_module_or_an_example() {
    let output = projector(&["inspect"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
}
