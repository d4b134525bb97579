//! `projector new NAME --lang rust|python|ts|js`: scaffold a projection project in
//! a new directory, ready to test and build: the source with one handler, a
//! mock-host test, sample events with the rows they leave, a scenario file,
//! the build command, a README and a `.gitignore`.
//!
//! A scaffold is self-contained: it carries the SDK and the WIT contract
//! this `projector` was built with (`vendor/`, `wit/`), so it builds with
//! no checkout of this repository and no package registry for the SDK.
//! Rust projects still fetch `serde` and `wit-bindgen` from crates.io;
//! Python projects need componentize-py and pytest, TypeScript and
//! JavaScript projects Node.js 20 and `npm install` (their READMEs say how).

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
    /// TypeScript, with `projector-sdk` (npm) and componentize-js.
    Ts,
    /// JavaScript, with `projector-sdk` (npm) and componentize-js.
    Js,
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

/// The files of one language's scaffold.
struct Scaffold {
    /// Written with `{name}`, `{crate}` and `{version}` filled in.
    templates: &'static [(&'static str, &'static str)],
    /// Written as they are: the vendored SDK and the WIT (their braces are
    /// code, not placeholders).
    vendored: &'static [(&'static str, &'static str)],
}

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

const PYTHON: Scaffold = Scaffold {
    templates: &[
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
    ],
    vendored: &[
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
    ],
};

const RUST: Scaffold = Scaffold {
    templates: &[
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
    ],
    vendored: &[
        ("vendor/projector-sdk/wit/projection.wit", WIT),
        (
            "vendor/projector-sdk/src/abi.rs",
            include_str!("../../../sdk/src/abi.rs"),
        ),
        (
            "vendor/projector-sdk/src/dedup.rs",
            include_str!("../../../sdk/src/dedup.rs"),
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
    ],
};

/// The JavaScript SDK as a scaffold vendors it: its built modules, their
/// declarations, the WIT and its generated types, and the build command.
const JS_SDK: [(&str, &str); 16] = [
    (
        "vendor/projector-sdk/dist/component.d.ts",
        include_str!("../../../sdk-js/dist/component.d.ts"),
    ),
    (
        "vendor/projector-sdk/dist/component.js",
        include_str!("../../../sdk-js/dist/component.js"),
    ),
    (
        "vendor/projector-sdk/dist/determinism.d.ts",
        include_str!("../../../sdk-js/dist/determinism.d.ts"),
    ),
    (
        "vendor/projector-sdk/dist/determinism.js",
        include_str!("../../../sdk-js/dist/determinism.js"),
    ),
    (
        "vendor/projector-sdk/dist/index.d.ts",
        include_str!("../../../sdk-js/dist/index.d.ts"),
    ),
    (
        "vendor/projector-sdk/dist/index.js",
        include_str!("../../../sdk-js/dist/index.js"),
    ),
    (
        "vendor/projector-sdk/dist/scenarios.d.ts",
        include_str!("../../../sdk-js/dist/scenarios.d.ts"),
    ),
    (
        "vendor/projector-sdk/dist/scenarios.js",
        include_str!("../../../sdk-js/dist/scenarios.js"),
    ),
    (
        "vendor/projector-sdk/dist/testing.d.ts",
        include_str!("../../../sdk-js/dist/testing.d.ts"),
    ),
    (
        "vendor/projector-sdk/dist/testing.js",
        include_str!("../../../sdk-js/dist/testing.js"),
    ),
    (
        "vendor/projector-sdk/wit-types/projection.d.ts",
        include_str!("../../../sdk-js/wit-types/projection.d.ts"),
    ),
    (
        "vendor/projector-sdk/wit-types/interfaces/projector-projection-log.d.ts",
        include_str!("../../../sdk-js/wit-types/interfaces/projector-projection-log.d.ts"),
    ),
    (
        "vendor/projector-sdk/wit-types/interfaces/projector-projection-types.d.ts",
        include_str!("../../../sdk-js/wit-types/interfaces/projector-projection-types.d.ts"),
    ),
    (
        "vendor/projector-sdk/bin/projector-componentize.js",
        include_str!("../../../sdk-js/bin/projector-componentize.js"),
    ),
    (
        "vendor/projector-sdk/package.json",
        include_str!("../../../sdk-js/package.json"),
    ),
    ("vendor/projector-sdk/wit/projection.wit", WIT),
];

const TYPESCRIPT: Scaffold = Scaffold {
    templates: &[
        ("package.json", include_str!("scaffold/ts_package.json")),
        ("tsconfig.json", include_str!("scaffold/ts_tsconfig.json")),
        (
            "src/projection.ts",
            include_str!("scaffold/ts_projection.ts"),
        ),
        ("src/app.ts", include_str!("scaffold/ts_app.ts")),
        (
            "test/projection.test.ts",
            include_str!("scaffold/ts_test.ts"),
        ),
        ("README.md", include_str!("scaffold/ts_readme.md")),
    ],
    vendored: &JS_SDK,
};

const JAVASCRIPT: Scaffold = Scaffold {
    templates: &[
        ("package.json", include_str!("scaffold/js_package.json")),
        ("projection.js", include_str!("scaffold/js_projection.js")),
        ("app.js", include_str!("scaffold/js_app.js")),
        (
            "test/projection.test.js",
            include_str!("scaffold/js_test.js"),
        ),
        ("README.md", include_str!("scaffold/js_readme.md")),
    ],
    vendored: &JS_SDK,
};

/// True for a name a project, a crate and a component may all carry.
fn is_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

impl Lang {
    fn scaffold(self) -> &'static Scaffold {
        match self {
            Lang::Rust => &RUST,
            Lang::Python => &PYTHON,
            Lang::Ts => &TYPESCRIPT,
            Lang::Js => &JAVASCRIPT,
        }
    }

    /// What to run in the new project first.
    fn next_steps(self) -> &'static str {
        match self {
            Lang::Rust => "cargo test && cargo build --release --target wasm32-wasip2",
            Lang::Python => {
                "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1 pytest \
                 && .venv/bin/python -m pytest tests && PATH=.venv/bin:$PATH ./build.sh"
            }
            Lang::Ts | Lang::Js => "npm install && npm test && npm run build",
        }
    }

    fn article_and_name(self) -> &'static str {
        match self {
            Lang::Rust => "a Rust",
            Lang::Python => "a Python",
            Lang::Ts => "a TypeScript",
            Lang::Js => "a JavaScript",
        }
    }
}

/// The files of a `lang` project called `name`, with their text.
pub fn files(name: &str, lang: Lang) -> Vec<(&'static str, String)> {
    let crate_name = name.replace('-', "_");
    let class = class_name(name);
    let fill = |text: &str| {
        text.replace("{name}", name)
            .replace("{crate}", &crate_name)
            .replace("{class}", &class)
            .replace("{version}", env!("CARGO_PKG_VERSION"))
    };
    let scaffold = lang.scaffold();
    let templates = COMMON
        .iter()
        .chain(scaffold.templates)
        .map(|(path, text)| (*path, fill(text)));
    let vendored = scaffold
        .vendored
        .iter()
        .map(|(path, text)| (*path, (*text).to_owned()));
    templates.chain(vendored).collect()
}

/// Names a JavaScript or TypeScript scaffold imports or declares: a class
/// named so would clash.
const TAKEN_NAMES: [&str; 9] = [
    "Event",
    "EventBuilder",
    "MockHost",
    "Projection",
    "ProjectionError",
    "Row",
    "Update",
    "Component",
    "ScenarioTests",
];

/// The class a JavaScript or TypeScript project called `name` exports:
/// its words capitalised and joined (`cart-view`: `CartView`,
/// `inventory`: `Inventory`), with `View` added to a name the scaffold
/// uses already (`update`: `UpdateView`).
fn class_name(name: &str) -> String {
    let class: String = name
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if TAKEN_NAMES.contains(&class.as_str()) {
        class + "View"
    } else {
        class
    }
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
    println!(
        "made {} ({} projection); next: cd {} && {}",
        root.display(),
        args.lang.article_and_name(),
        root.display(),
        args.lang.next_steps()
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
        for lang in [Lang::Rust, Lang::Python, Lang::Ts, Lang::Js] {
            let scaffold = lang.scaffold();
            for (path, text) in files("cart-view", lang) {
                if scaffold
                    .vendored
                    .iter()
                    .any(|(vendored, _)| *vendored == path)
                {
                    continue;
                }
                for placeholder in ["{name}", "{crate}", "{class}", "{version}"] {
                    assert!(!text.contains(placeholder), "{path} keeps {placeholder}");
                }
            }
        }
    }
}

#[cfg(test)]
mod naming {
    use super::*;

    #[test]
    fn a_projects_class_is_named_after_it() {
        assert_eq!(class_name("cart-view"), "CartView");
        assert_eq!(class_name("inventory"), "Inventory");
        assert_eq!(class_name("a2-b--c"), "A2BC");
        for taken in ["update", "event", "projection-error", "mock-host", "row"] {
            let class = class_name(taken);
            assert!(class.ends_with("View"), "{taken}: {class}");
        }
        // Every name the JavaScript and TypeScript scaffolds use is in the
        // list: none is declared or imported under a project's class.
        for (path, text) in files("x", Lang::Ts).into_iter().chain(files("x", Lang::Js)) {
            if !(path.ends_with(".ts") || path.ends_with(".js")) || path.starts_with("vendor/") {
                continue;
            }
            for line in text
                .lines()
                .filter(|line| line.trim_start().starts_with("import "))
            {
                let names = line
                    .split(['{', '}', ',', ' '])
                    .filter(|word| word.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
                for name in names {
                    assert!(
                        TAKEN_NAMES.contains(&name) || name == "X",
                        "{path}: {name} imported but not in TAKEN_NAMES"
                    );
                }
            }
        }
        let projection = files("inventory", Lang::Ts)
            .into_iter()
            .find(|(path, _)| *path == "src/projection.ts")
            .expect("a projection source");
        assert!(
            projection.1.contains("export class Inventory "),
            "{}",
            projection.1
        );
    }
}

#[cfg(test)]
mod vendoring {
    use std::path::Path;

    use super::*;

    /// The files under `dir` (relative to `root`), sorted.
    fn listed(root: &Path, dir: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![root.join(dir)];
        while let Some(at) = pending.pop() {
            for entry in std::fs::read_dir(&at).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    /// The esbuild a new JavaScript or TypeScript project approves (and,
    /// in TypeScript, tests with) is the one its vendored SDK depends on,
    /// so `npm install` finds no other install script to warn about.
    #[test]
    fn the_js_scaffolds_approve_the_esbuild_their_sdk_installs() {
        let sdk: serde_json::Value =
            serde_json::from_str(include_str!("../../../sdk-js/package.json")).unwrap();
        let version = sdk["dependencies"]["esbuild"]
            .as_str()
            .expect("the SDK depends on esbuild");
        for package in [
            include_str!("scaffold/ts_package.json"),
            include_str!("scaffold/js_package.json"),
        ] {
            let package: serde_json::Value = serde_json::from_str(package).unwrap();
            assert_eq!(
                package["allowScripts"][format!("esbuild@{version}")],
                true,
                "{package}"
            );
        }
        let ts: serde_json::Value =
            serde_json::from_str(include_str!("scaffold/ts_package.json")).unwrap();
        assert_eq!(ts["devDependencies"]["esbuild"], version);
    }

    #[test]
    fn the_js_scaffold_vendors_every_built_file_of_the_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-js");
        let mut expected: Vec<String> = ["dist", "wit-types", "bin"]
            .iter()
            .flat_map(|dir| listed(&sdk, dir))
            .chain(["package.json".to_owned(), "wit/projection.wit".to_owned()])
            .collect();
        expected.sort();
        let mut vendored: Vec<String> = JS_SDK
            .iter()
            .map(|(path, _)| path.trim_start_matches("vendor/projector-sdk/").to_owned())
            .collect();
        vendored.sort();
        assert_eq!(vendored, expected);
    }
}
