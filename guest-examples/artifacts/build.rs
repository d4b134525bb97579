//! Compiles the example projections in `guest-examples/` to WebAssembly
//! components (`wasm32-wasip2`) and writes `artifacts.rs`, which names each
//! one's path and embeds its bytes.
//!
//! The guests are built by a nested `cargo build` into a target directory of
//! their own under `OUT_DIR`, so it never waits on the outer build's lock. The
//! build fails loudly, with cargo's own output, when the `wasm32-wasip2`
//! target is missing: `rust-toolchain.toml` lists it, and rustup installs it.

#![allow(clippy::expect_used, clippy::panic)] // A build script reports failure by panicking.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (package name, crate name as it appears in the `.wasm` file name).
const GUESTS: &[(&str, &str)] = &[
    ("customer-view", "customer_view"),
    ("order-totals", "order_totals"),
    ("event-counter", "event_counter"),
    ("misbehaving", "misbehaving"),
];

/// Guests built by a cargo of their own, in a target directory of their
/// own: event-counter-v2 depends on event-counter without its export,
/// which one build of both would unify away (cargo unifies the features of
/// the packages it builds together), giving two exports of `apply`.
const SEPARATE_GUESTS: &[(&str, &str)] = &[("event-counter-v2", "event_counter_v2")];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("guest-examples/artifacts sits two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let target_dir = out_dir.join("guests");

    for watched in [
        "sdk/wit",
        "sdk/src",
        "sdk/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for (package, _) in GUESTS.iter().chain(SEPARATE_GUESTS) {
        let dir = root.join("guest-examples").join(package);
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
    }

    let separate_dir = out_dir.join("guests-separate");
    build_guests(&root, &target_dir, GUESTS);
    build_guests(&root, &separate_dir, SEPARATE_GUESTS);

    let mut artifacts = String::new();
    let built = GUESTS
        .iter()
        .map(|guest| (guest, &target_dir))
        .chain(SEPARATE_GUESTS.iter().map(|guest| (guest, &separate_dir)));
    for ((package, crate_name), target_dir) in built {
        let wasm = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{crate_name}.wasm"));
        assert!(
            wasm.exists(),
            "the guest build did not produce {}",
            wasm.display()
        );
        let ident = crate_name.to_uppercase();
        writeln!(
            artifacts,
            "/// The `{package}` example, compiled.\npub const {ident}: Example = Example {{ name: {package:?}, path: {path:?}, wasm: include_bytes!({path:?}) }};",
            path = wasm.display().to_string(),
        )
        .expect("writing to a String cannot fail");
    }
    let all: Vec<String> = GUESTS
        .iter()
        .chain(SEPARATE_GUESTS)
        .map(|(_, c)| c.to_uppercase())
        .collect();
    writeln!(
        artifacts,
        "/// Every example.\npub const ALL: &[Example] = &[{}];",
        all.join(", ")
    )
    .expect("writing to a String cannot fail");
    std::fs::write(out_dir.join("artifacts.rs"), artifacts)
        .expect("writing artifacts.rs into OUT_DIR");
}

/// Build `guests` for `wasm32-wasip2` with one cargo, into `target_dir`.
fn build_guests(root: &Path, target_dir: &Path, guests: &[(&str, &str)]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        // Keep the guests small: no debug info; the name section stays, so
        // traps still name the guest's functions.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Flags meant for the host build must not leak into the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    for (package, _) in guests {
        command.args(["--package", package]);
    }
    let status = command
        .status()
        .expect("failed to run cargo to build the example guests");
    assert!(
        status.success(),
        "building the example guests for wasm32-wasip2 failed ({status}); see cargo's output above"
    );
}
