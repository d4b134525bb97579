//! `projector new NAME --lang rust|python`: scaffold a projection project in
//! a new directory, ready to test and build: the source with one handler, a
//! mock-host test, sample events with the rows they leave, a scenario file,
//! the build command, a README and a `.gitignore`.
//!
//! A scaffold is self-contained: it carries the SDK and the WIT contract
//! this `projector` was built with (`vendor/`, `wit/`), so it builds with
//! no checkout of this repository and no package registry for the SDK.
//! Rust projects still fetch `serde` and `wit-bindgen` from crates.io;
//! Python projects need componentize-py and pytest (their README says how).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

/// The languages `projector new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the `projector-sdk` crate.
    Rust,
    /// Python, with `projector_sdk` and componentize-py.
    Python,
}

/// Arguments of `projector new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The projection's name: lower-case letters, digits and `-`, starting
    /// with a letter. The project goes in a new directory of that name.
    pub name: String,
    /// The language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where to make the project's directory.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

const WIT: &str = include_str!("../../../sdk/wit/projection.wit");

/// Files every scaffold has.
const COMMON: [(&str, &str); 4] = [
    (".gitignore", include_str!("scaffold/gitignore")),
    (
        "scenarios/example.json",
        include_str!("scaffold/scenario.json"),
    ),
    ("events.jsonl", include_str!("scaffold/events.jsonl")),
    (
        "expected-rows.json",
        include_str!("scaffold/expected-rows.json"),
    ),
];

const PYTHON: [(&str, &str); 12] = [
    (
        "projection.py",
        include_str!("scaffold/python_projection.py"),
    ),
    ("app.py", include_str!("scaffold/python_app.py")),
    (
        "tests/test_projection.py",
        include_str!("scaffold/python_test.py"),
    ),
    (
        "tests/conftest.py",
        include_str!("scaffold/python_conftest.py"),
    ),
    ("build.sh", include_str!("scaffold/python_build.sh")),
    ("README.md", include_str!("scaffold/python_readme.md")),
    ("wit/projection.wit", WIT),
    (
        "vendor/projector_sdk/__init__.py",
        include_str!("../../../sdk-python/projector_sdk/__init__.py"),
    ),
    (
        "vendor/projector_sdk/_determinism.py",
        include_str!("../../../sdk-python/projector_sdk/_determinism.py"),
    ),
    (
        "vendor/projector_sdk/component.py",
        include_str!("../../../sdk-python/projector_sdk/component.py"),
    ),
    (
        "vendor/projector_sdk/testing.py",
        include_str!("../../../sdk-python/projector_sdk/testing.py"),
    ),
    (
        "vendor/projector_sdk/scenarios.py",
        include_str!("../../../sdk-python/projector_sdk/scenarios.py"),
    ),
];

const RUST: [(&str, &str); 15] = [
    ("Cargo.toml", include_str!("scaffold/rust_cargo.toml")),
    (
        "rust-toolchain.toml",
        include_str!("scaffold/rust_toolchain.toml"),
    ),
    ("src/lib.rs", include_str!("scaffold/rust_lib.rs")),
    ("README.md", include_str!("scaffold/rust_readme.md")),
    (
        "vendor/projector-sdk/Cargo.toml",
        include_str!("scaffold/sdk_cargo.toml"),
    ),
    ("vendor/projector-sdk/wit/projection.wit", WIT),
    (
        "vendor/projector-sdk/src/abi.rs",
        include_str!("../../../sdk/src/abi.rs"),
    ),
    (
        "vendor/projector-sdk/src/error.rs",
        include_str!("../../../sdk/src/error.rs"),
    ),
    (
        "vendor/projector-sdk/src/event.rs",
        include_str!("../../../sdk/src/event.rs"),
    ),
    (
        "vendor/projector-sdk/src/lib.rs",
        include_str!("../../../sdk/src/lib.rs"),
    ),
    (
        "vendor/projector-sdk/src/log.rs",
        include_str!("../../../sdk/src/log.rs"),
    ),
    (
        "vendor/projector-sdk/src/native.rs",
        include_str!("../../../sdk/src/native.rs"),
    ),
    (
        "vendor/projector-sdk/src/projection.rs",
        include_str!("../../../sdk/src/projection.rs"),
    ),
    (
        "vendor/projector-sdk/src/testing.rs",
        include_str!("../../../sdk/src/testing.rs"),
    ),
    (
        "vendor/projector-sdk/src/update.rs",
        include_str!("../../../sdk/src/update.rs"),
    ),
];

/// True for a name a project, a crate and a component may all carry.
fn is_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// True for the files written as they are: the vendored sources and the
/// WIT (their braces are code, not placeholders).
fn is_verbatim(path: &str) -> bool {
    (path.starts_with("vendor/") && (path.ends_with(".rs") || path.ends_with(".py")))
        || path.ends_with(".wit")
}

/// The files of a `lang` project called `name`, with their text.
pub fn files(name: &str, lang: Lang) -> Vec<(&'static str, String)> {
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{name}", name)
            .replace("{crate}", &crate_name)
            .replace("{version}", env!("CARGO_PKG_VERSION"))
    };
    let specific: &[(&str, &str)] = match lang {
        Lang::Python => &PYTHON,
        Lang::Rust => &RUST,
    };
    COMMON
        .iter()
        .chain(specific)
        .map(|(path, text)| {
            let text = if is_verbatim(path) {
                (*text).to_owned()
            } else {
                fill(text)
            };
            (*path, text)
        })
        .collect()
}

/// Run `projector new`.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_project_name(&args.name),
        "{:?} cannot name a projection: use lower-case letters, digits and `-`, starting with a letter (such as `order-totals`)",
        args.name
    );
    let root = args.dir.join(&args.name);
    anyhow::ensure!(
        !root.exists(),
        "{} exists already; choose another name or remove it",
        root.display()
    );
    for (path, text) in files(&args.name, args.lang) {
        write(&root.join(path), &text)?;
    }
    if args.lang == Lang::Python {
        make_executable(&root.join("build.sh"))?;
    }
    let next = match args.lang {
        Lang::Rust => "cargo test && cargo build --release --target wasm32-wasip2",
        Lang::Python => "python -m pytest tests && ./build.sh",
    };
    println!(
        "made {} ({} projection); next: cd {} && {next}",
        root.display(),
        match args.lang {
            Lang::Rust => "a Rust",
            Lang::Python => "a Python",
        },
        root.display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions)
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["orders", "order-totals", "v2-view"] {
            assert!(is_project_name(good), "{good}");
        }
        for bad in ["", "Orders", "2view", "order_totals", "a-", "a/b", "../x"] {
            assert!(!is_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python] {
            for (path, text) in files("cart-view", lang) {
                if is_verbatim(path) {
                    continue;
                }
                for placeholder in ["{name}", "{crate}", "{version}"] {
                    assert!(!text.contains(placeholder), "{path} keeps {placeholder}");
                }
            }
        }
    }
}
