//! The author's path as a new user walks it, from a clean directory, with
//! nothing but the READMEs: the main README's `projector new` line for each
//! language, then every command of the new project's own README, run as
//! written by `sh` with `projector` on the `PATH` (as `cargo install --path
//! runtime` puts it). The three places that say what to run after
//! `projector new` (the main README, the command's own hint, the project's
//! README) must say the same thing, and each command must do what it says.

use std::path::Path;
use std::process::Command;

use super::{repository, scaffold, text};
use crate::kit::TempDir;

/// What the main README says to run after `projector new cart-view --lang
/// LANG`: the commands after `cd cart-view && ` on that line.
fn main_readme_steps(lang: &str) -> String {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| {
            line.split_whitespace().collect::<Vec<_>>()[..].starts_with(&[
                "projector",
                "new",
                "cart-view",
                "--lang",
                lang,
            ])
        })
        .unwrap_or_else(|| {
            panic!("the README has no `projector new cart-view --lang {lang}` line")
        });
    let (_, then) = line
        .split_once("# then: cd cart-view && ")
        .unwrap_or_else(|| panic!("no `# then: cd cart-view && ...` in {line:?}"));
    then.trim().to_owned()
}

/// The commands of the first `sh` block of the project's README, each
/// without its comment.
fn project_readme_commands(project: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the project's README has a sh block");
    block
        .lines()
        .map(|line| line.split("  #").next().unwrap_or(line).trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// `projector new` for `lang`, then the project's README, every command
/// in order; what they printed, together.
fn walk(lang: &str) -> String {
    let dir = TempDir::new(&format!("readme-{lang}"));
    let project = scaffold(&dir.0, lang);
    let hint = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["new", "other", "--lang", lang, "--dir"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let hint = text(&hint);
    let commands = project_readme_commands(&project);
    // Building and testing: every command but the runtime's own.
    let steps = commands
        .iter()
        .filter(|command| !command.starts_with("projector "))
        .cloned()
        .collect::<Vec<_>>()
        .join(" && ");
    assert_eq!(
        main_readme_steps(lang),
        steps,
        "the main README and the project's README"
    );
    assert!(
        hint.trim_end().ends_with(&format!("&& {steps}")),
        "projector new's hint and the project's README: {hint}"
    );

    let projector = Path::new(env!("CARGO_BIN_EXE_projector"));
    let path = format!(
        "{}:{}",
        projector.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut said = String::new();
    for command in &commands {
        let output = Command::new("sh")
            .args(["-c", command])
            .current_dir(&project)
            .env("PATH", &path)
            // A user's shell, not this workspace's build: the project's own
            // toolchain file, lock and target directory.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        let shown = text(&output);
        assert!(
            output.status.success(),
            "{lang}: `{command}` failed:\n{shown}"
        );
        said.push_str(&shown);
    }
    assert!(said.contains("the rows are as expected"), "{said}");
    // The sample events' last line must be refused, and was: `projector
    // test` exits 1 when a line does not do what its `expect` says.
    assert!(said.contains("3 events applied, 1 not"), "{said}");
    assert!(said.contains("1 scenario passed"), "{said}");
    said
}

#[test]
fn a_new_rust_author_follows_the_readmes() {
    let _cores = crate::kit::cores_shared();
    let said = walk("rust");
    assert!(said.contains("test result: ok. 2 passed"), "{said}");
}

#[test]
fn a_new_typescript_author_follows_the_readmes() {
    let _cores = crate::kit::cores_shared();
    let said = walk("ts");
    assert!(
        said.contains("# pass 3") && said.contains("# fail 0"),
        "{said}"
    );
    assert!(!said.contains("allowScripts"), "npm install warns: {said}");
}

#[test]
fn a_new_javascript_author_follows_the_readmes() {
    let _cores = crate::kit::cores_shared();
    let said = walk("js");
    assert!(
        said.contains("# pass 3") && said.contains("# fail 0"),
        "{said}"
    );
    assert!(!said.contains("allowScripts"), "npm install warns: {said}");
}

#[test]
fn a_new_python_author_follows_the_readmes() {
    let _cores = crate::kit::cores_shared();
    let said = walk("python");
    assert!(said.contains("3 passed"), "{said}");
}
