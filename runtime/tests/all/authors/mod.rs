//! Authors beyond this repository's Rust examples: each language's SDK and
//! examples under their own test runners, the examples built into
//! components with their language's toolchain and the same scenario files
//! run on those components through the real engine by `projector test`
//! (hostile guests among them), the ports of customer-view run as views
//! beside the Rust original, and the author's path through the READMEs
//! from `projector new` on, in every language (`readme.rs`).
//!
//! The toolchains are installed by `scripts/install-test-tools.sh`: a venv
//! with componentize-py and pytest under `$PROJECTOR_TOOLS/python`, the npm
//! workspace's packages (TypeScript, esbuild, componentize-js) under the
//! repository's `node_modules`. Without them these tests fail, naming the
//! script.

mod js;
mod python;
mod readme;
mod rust;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use projector::config::OnError;
use projector::store::{Store, ViewStore};

use crate::kit::{Broker, TempDir, module_hash, start, view, wait_committed, wait_for};

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
    if lang == "python" {
        // The first steps it prints work on a machine with only Python:
        // pytest comes from the venv they make.
        assert!(
            text(&output).contains(
                "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1 pytest \
                 && .venv/bin/python -m pytest tests"
            ),
            "{}",
            text(&output)
        );
    }
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

/// The port of customer-view at `wasm` and the Rust original, as two views
/// of one runtime on one topic, fed as an application feeds it: three
/// partitions, an idempotent producer batching for 5 ms, 600 events of 40
/// customers (created, renamed, moved, some deleted and then changed), one
/// in 19 malformed (a name that is not a string). Both views apply and skip
/// the same records and leave the same rows, as JSON values. Each subject
/// stays on one partition: across partitions the order of a subject's
/// events is the consumer's, and could differ between the two views.
fn runs_as_a_view_like_the_rust_original(wasm: &Path) {
    const TOPIC: &str = "customers";
    const EVENTS: u64 = 600;
    const CUSTOMERS: u64 = 40;
    let broker = Broker::new(&[(TOPIC, 3)]).application_producer();
    let mut malformed = 0;
    for i in 0..EVENTS {
        let customer = i % CUSTOMERS;
        let subject = format!("c-{customer}");
        let round = i / CUSTOMERS;
        // After the customer's creation, so that it is refused, not ignored
        // as a change to an unknown customer.
        let (ty, data) = if round > 0 && i % 19 == 7 {
            malformed += 1;
            ("CustomerNameChanged", serde_json::json!({"newName": 42}))
        } else if round == 0 {
            let name = format!("Customer {customer}");
            let email = format!("{subject}@example.com");
            (
                "CustomerCreated",
                serde_json::json!({"email": email, "name": name}),
            )
        } else if round == 9 && customer.is_multiple_of(4) {
            ("CustomerDeleted", serde_json::Value::Null)
        } else if round % 2 == 1 {
            let name = format!("Customer {customer}, rename {round}");
            ("CustomerNameChanged", serde_json::json!({"newName": name}))
        } else {
            let street = format!("{round} Main Street");
            let address = serde_json::json!({"street": street, "city": "Springfield"});
            (
                "CustomerAddressChanged",
                serde_json::json!({"newAddress": address}),
            )
        };
        let partition = i32::try_from(customer % 3).unwrap();
        let data = serde_json::to_vec(&data).unwrap();
        broker.publish(
            TOPIC,
            partition,
            ty,
            &format!("e-{i}"),
            Some(&subject),
            &data,
        );
    }
    broker.flush();

    let dir = TempDir::new("authors-view");
    let rust = projector_examples::CUSTOMER_VIEW.path;
    let port = wasm.to_str().unwrap();
    let views = [("rust", rust), ("port", port)];
    let service = start(
        &broker,
        &dir,
        views
            .iter()
            .map(|(name, module)| view(name, module, &[TOPIC], OnError::Skip))
            .collect(),
        projector::engine::EngineConfig::default(),
    );
    let mut rows = Vec::new();
    let mut handled = Vec::new();
    for (name, module) in views {
        let status = service.statuses()[name].clone();
        wait_for(
            &status,
            Duration::from_secs(120),
            &format!("view {name}: {EVENTS} records handled"),
            |s| s.counters().applied + s.counters().skipped == EVENTS,
        );
        wait_committed(&status, i64::try_from(EVENTS).unwrap());
        let counters = status.counters();
        handled.push((counters.applied, counters.skipped));
        let hash = module_hash(&std::fs::read(module).unwrap());
        let store = service.store().open_view(name, &hash, &[], None).unwrap();
        let subjects: Vec<_> = (0..CUSTOMERS)
            .map(|customer| {
                store
                    .row(&format!("c-{customer}"))
                    .unwrap()
                    .map(|row| serde_json::from_str::<serde_json::Value>(&row.json).unwrap())
            })
            .collect();
        rows.push(subjects);
    }
    // The workload took effect: most malformed events refused (those of a
    // deleted customer are ignored), some customers deleted.
    let skipped = handled[0].1;
    assert!(
        skipped > malformed / 2 && skipped <= malformed,
        "{handled:?}"
    );
    let kept = rows[0].iter().flatten().count();
    assert!(kept > 0 && kept < 40, "{kept} rows: {:?}", rows[0]);
    assert_eq!(
        handled[0], handled[1],
        "(applied, skipped) of the original and the port"
    );
    assert_eq!(
        rows[0], rows[1],
        "the port's rows differ from the Rust original's"
    );
    service.stop();
}

#[test]
fn projector_test_with_dedup_reports_a_copy_and_an_events_line_can_expect_it() {
    // A producer's re-send of a stale rename, at a new offset on another
    // partition: with --dedup it is a duplicate-id and the row keeps the
    // later rename; without, it is applied and brings the stale name back.
    let dir = TempDir::new("test-dedup");
    let events = dir.0.join("events.jsonl");
    let line = |id: &str, ty: &str, data: &str, extra: &str| {
        format!(
            r#"{{"specversion": "1.0", "id": "{id}", "source": "/crm", "type": "{ty}", "subject": "c-1", "datacontenttype": "application/json", "data": {data}{extra}}}"#
        )
    };
    std::fs::write(
        &events,
        [
            line(
                "e-1",
                "CustomerCreated",
                r#"{"email": "a@example.com", "name": "alice"}"#,
                "",
            ),
            line("e-2", "CustomerNameChanged", r#"{"newName": "Alice"}"#, ""),
            line("e-3", "CustomerNameChanged", r#"{"newName": "Alicia"}"#, ""),
            line(
                "e-2",
                "CustomerNameChanged",
                r#"{"newName": "Alice"}"#,
                r#", "partition": 1, "expect": "duplicate-id""#,
            ),
        ]
        .join("\n"),
    )
    .unwrap();
    let cache = dir.0.join("compiled");
    let run = |extra: &[&str]| {
        let mut args = vec![
            projector_examples::CUSTOMER_VIEW.path,
            "--events",
            events.to_str().unwrap(),
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        let output = projector_test(&cache, &args);
        let report = serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap();
        (output.status.success(), report)
    };
    let (passed, with) = run(&["--dedup", "1h"]);
    assert!(passed, "{with}");
    assert_eq!(with["unexpected"].as_array().unwrap().len(), 0, "{with}");
    assert_eq!(with["rows"]["c-1"]["name"], "Alicia", "{with}");
    let failures = with["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{with}");
    assert_eq!(failures[0]["class"], "duplicate-id");
    assert_eq!(failures[0]["line"], 4);
    assert_eq!(failures[0]["origin"], "events/1@0");
    // Without, the copy is applied, which its line does not expect: the
    // test fails and says which line.
    let (passed, without) = run(&[]);
    assert!(!passed, "{without}");
    assert_eq!(without["rows"]["c-1"]["name"], "Alice", "{without}");
    assert_eq!(
        without["failures"].as_array().unwrap().len(),
        0,
        "{without}"
    );
    let unexpected = without["unexpected"].as_array().unwrap();
    assert_eq!(unexpected.len(), 1, "{without}");
    assert!(
        unexpected[0]
            .as_str()
            .unwrap()
            .starts_with("line 4: expected"),
        "{without}"
    );
    // A window that is no duration is refused, naming the flag.
    let refused = projector_test(
        &cache,
        &[
            projector_examples::CUSTOMER_VIEW.path,
            "--events",
            events.to_str().unwrap(),
            "--dedup",
            "7 weeks",
        ],
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--dedup"), "{}", text(&refused));
}
