//! Rust outside the workspace: the SDK crate packaged on its own. (A
//! `projector new --lang rust` project is walked in `readme.rs`.)

use std::process::Command;

use super::{repository, text};
use crate::kit::TempDir;

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
