//! Rust outside the workspace: a `projector new --lang rust` project, and
//! the SDK crate packaged on its own.

use std::process::Command;

use super::{passes_projector_test, repository, scaffold, text};
use crate::kit::TempDir;

#[test]
fn a_new_rust_project_tests_and_builds_right_away_outside_the_workspace() {
    let _cores = crate::kit::cores_shared();
    let dir = TempDir::new("new-rust");
    let project = scaffold(&dir.0, "rust");
    let target = dir.0.join("target");
    let cargo = |args: &[&str]| {
        let output = Command::new("cargo")
            .current_dir(&project)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            // Not this workspace's build: its own toolchain file and lock.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "cargo {args:?}: {}", text(&output));
        text(&output)
    };
    let tests = cargo(&["test", "--quiet"]);
    assert!(tests.contains("2 passed"), "{tests}");
    cargo(&["build", "--release", "--target", "wasm32-wasip2", "--quiet"]);
    passes_projector_test(
        &project,
        &target.join("wasm32-wasip2/release/cart_view.wasm"),
        &dir.0.join("compiled"),
    );
}

#[test]
fn the_rust_sdk_packages_on_its_own() {
    let _cores = crate::kit::cores_shared();
    // What publishing it would check: the crate builds from its package
    // alone (its WIT inside it, no workspace around it).
    let dir = TempDir::new("sdk-package");
    let output = Command::new("cargo")
        .current_dir(repository())
        .args([
            "package",
            "-p",
            "projector-sdk",
            "--allow-dirty",
            "--target-dir",
        ])
        .arg(dir.0.join("target"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "{}", text(&output));
    let listed = Command::new("tar")
        .arg("tzf")
        .arg(dir.0.join("target/package/projector-sdk-0.1.0.crate"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("projector-sdk-0.1.0/wit/projection.wit"),
        "{}",
        text(&listed)
    );
}
