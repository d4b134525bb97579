//! The `projector` binary as a user runs it.

use std::process::{Command, Output};

fn projector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .output()
        .expect("the projector binary runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
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

/// `projector inspect` and `projector test` share one compiled-code
/// cache: what one compiled the other reads back, and each says which it
/// did. Another compiler's code is its own.
#[test]
fn inspect_and_test_share_the_compiled_code_cache_and_say_when_they_compile() {
    let cache = crate::kit::TempDir::new("shared-compile-cache");
    let cache_dir = cache.0.to_str().unwrap();
    let path = projector_examples::CUSTOMER_VIEW.path;
    let inspect = |compiler: &str| {
        let output = projector(&[
            "inspect",
            path,
            "--output",
            "json",
            "--cache-dir",
            cache_dir,
            "--compiler",
            compiler,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("inspect prints JSON");
        assert_eq!(report["compiler"], compiler, "{report}");
        (report["from_cache"].clone(), stderr(&output))
    };
    let (from_cache, said) = inspect("winch");
    assert_eq!(from_cache, false, "an empty cache: compiled");
    assert!(said.contains("compiled with winch in"), "{said}");
    assert!(said.contains("cached in"), "{said}");
    let (from_cache, said) = inspect("winch");
    assert_eq!(from_cache, true, "the second inspect does not compile");
    assert!(
        said.contains("compiled code from the cache (winch"),
        "{said}"
    );

    let scenarios = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guest-examples/customer-view/scenarios"
    );
    let test = projector(&[
        "test",
        path,
        "--scenarios",
        scenarios,
        "--cache-dir",
        cache_dir,
    ]);
    assert!(test.status.success(), "{}", stderr(&test));
    assert!(
        stderr(&test).contains("compiled code from the cache (winch"),
        "projector test reads what inspect compiled: {}",
        stderr(&test)
    );

    let (from_cache, said) = inspect("cranelift");
    assert_eq!(from_cache, false, "Cranelift's code is not Winch's");
    assert!(said.contains("compiled with cranelift in"), "{said}");
    let no_cache = projector(&["inspect", path, "--no-cache"]);
    assert!(
        stderr(&no_cache).contains("(not cached)"),
        "{}",
        stderr(&no_cache)
    );
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

#[test]
fn demo_runs_the_whole_flow_with_nothing_installed() {
    let output = projector(&["demo", "--customers", "50", "--show", "2"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    // 50 creations, 17 renames, 25 moves, 5 deletions; 5 malformed records.
    assert!(
        text.contains("producing 102 records for 50 customers (5 of them malformed)"),
        "{text}"
    );
    assert!(text.contains("97 applied, 5 dead-lettered"), "{text}");
    assert!(text.contains("45 customer rows"), "{text}");
    assert!(text.contains("customer-00000 (version 3)"), "{text}");
    // Written to pipes: plain text, the report on standard output and the
    // log on standard error, apart.
    let log = stderr(&output);
    assert!(log.contains(" INFO "), "the demo logs: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in the piped report");
    assert!(!text.contains(" INFO "), "log lines in the report: {text}");
}

#[test]
fn run_stops_gracefully_on_sigterm_with_rows_durable() {
    use crate::kit::{Broker, TempDir};
    use projector::store::{Store, ViewStore};

    let broker = Broker::new(&[("events", 2)]);
    for i in 0..100 {
        broker.publish(
            "events",
            i % 2,
            "Tick",
            &format!("e{i}"),
            Some(&format!("s{}", i % 7)),
            b"{}",
        );
    }
    broker.flush();
    let dir = TempDir::new("cli-run");
    let config = dir.0.join("projector.toml");
    let port = crate::kit::free_port();
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n[broker]\nbootstrap_servers = \"{}\"\n\n[[views]]\nname = \"counter\"\nmodule = \"{}\"\ntopics = [\"events\"]\n",
            broker.bootstrap(),
            projector_examples::EVENT_COUNTER.path
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["run", "-c"])
        .arg(&config)
        .env("PROJECTOR_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // The runtime commits offsets to Kafka only after their rows are
    // flushed, so once the group's committed offsets cover the 100 events,
    // they are durable. (The store itself is locked by the runtime.)
    let started = std::time::Instant::now();
    let store_dir = dir.0.join("data/store");
    let reader: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "projector-counter")
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    partitions.add_partition("events", 0);
    partitions.add_partition("events", 1);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "projector run exited early"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "offsets not committed in 60 s"
        );
        let committed: i64 = rdkafka::consumer::Consumer::committed_offsets(
            &reader,
            partitions.clone(),
            std::time::Duration::from_secs(5),
        )
        .map(|tpl| {
            tpl.elements()
                .iter()
                .filter_map(|e| e.offset().to_raw())
                .filter(|o| *o > 0)
                .sum()
        })
        .unwrap_or(0);
        if committed == 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    check_http_endpoints(port);
    // The commands that talk to a runtime find its API in its config: with
    // -c, and from the config's own directory without it (the port is not
    // the default one, so neither could guess it).
    let status = projector(&["status", "-c", config.to_str().unwrap(), "--output", "json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("\"counter\""),
        "{}",
        stdout(&status)
    );
    let here = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["query", "counter", "s1"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(here.status.success(), "{}", stderr(&here));
    assert!(stdout(&here).contains("count"), "{}", stdout(&here));
    // With --api and no -c, no config is read: a broken one where the
    // command runs stands in no way (and no token of it would be sent).
    let elsewhere = TempDir::new("cli-broken-config");
    std::fs::write(elsewhere.0.join("projector.toml"), "this is not toml [").unwrap();
    let broken = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["status", "--api", &format!("http://127.0.0.1:{port}")])
        .current_dir(&elsewhere.0)
        .output()
        .unwrap();
    assert!(broken.status.success(), "{}", stderr(&broken));
    let read = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["status"])
        .current_dir(&elsewhere.0)
        .output()
        .unwrap();
    assert!(
        !read.status.success(),
        "without --api the broken config is read"
    );
    assert!(
        stderr(&read).contains("projector.toml"),
        "{}",
        stderr(&read)
    );
    let rebuild = ["view", "rebuild", "counter", "-c"];
    let config_arg = config.to_str().unwrap();
    let refused = projector(&[&rebuild[..], &[config_arg]].concat());
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("in use by another projector process"),
        "{}",
        stderr(&refused)
    );

    // A second runtime on the same data directory (another HTTP port) is
    // refused with the lock error, before it consumes anything.
    let second = dir.0.join("second.toml");
    let other_port = crate::kit::free_port();
    std::fs::write(
        &second,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(&format!(":{port}\""), &format!(":{other_port}\"")),
    )
    .unwrap();
    let refused = projector(&["run", "-c", second.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("in use by another projector process"),
        "{}",
        stderr(&refused)
    );

    crate::kit::sigterm(&child);
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    // The first start compiled the module into <data_dir>/compiled, and said so.
    assert!(
        log.contains("the view's module compiled") && log.contains("compiler=cranelift"),
        "{log}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    let store = projector::store::SledStore::open(&store_dir).unwrap();
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let view = store.open_view("counter", &hash, &[], None).unwrap();
    let total: u64 = view
        .scan("", None, 100)
        .unwrap()
        .iter()
        .map(|(_, row)| {
            serde_json::from_str::<event_counter::Counter>(&row.json)
                .unwrap()
                .count
        })
        .sum();
    assert_eq!(
        total, 100,
        "every event applied once, and durable after SIGTERM"
    );
    let checkpoints: i64 = view
        .checkpoints()
        .unwrap()
        .iter()
        .map(|(_, _, next)| next)
        .sum();
    assert_eq!(checkpoints, 100);
}

/// The runtime's HTTP endpoints and `projector status`, once the 100 events
/// of `run_stops_gracefully_on_sigterm_with_rows_durable` are applied.
fn check_http_endpoints(port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: &str| -> (u16, String) {
        let mut response = ureq::get(&format!("{base}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("the runtime answers HTTP");
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    assert_eq!(get("/healthz"), (200, "ok\n".to_owned()));
    // Ready once the consumer's statistics (every second) reported where
    // each partition stood at start, and the view has caught up to it.
    let started = std::time::Instant::now();
    loop {
        let (status, body) = get("/readyz");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("not_ready"), "{body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not ready after 10 s: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, body) = get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("projector_events_total{view=\"counter\",outcome=\"applied\"} 100"),
        "{body}"
    );
    assert!(
        body.contains("projector_apply_seconds_count{view=\"counter\"} 100"),
        "{body}"
    );
    let (status, body) = get("/no/such/route");
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "{body}");

    let output = projector(&["status", "--api", &base, "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let view = &report["views"][0];
    assert_eq!(view["name"], "counter");
    assert_eq!(view["counters"]["applied"], 100);
    let checkpoints: i64 = view["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["checkpoint"].as_i64().unwrap())
        .sum();
    assert_eq!(checkpoints, 100);
    let output = projector(&["status", "--api", &base]);
    let shown = stdout(&output);
    assert!(shown.contains("events/0"), "{shown}");
    // Counters read as words, not JSON; no index reads as none.
    assert!(
        shown.contains("events since start: applied 100, batches "),
        "{shown}"
    );
    assert!(!shown.contains("\"applied\""), "{shown}");
    assert!(shown.contains("indexes none"), "{shown}");

    let output = projector(&["status", "--api", "http://127.0.0.1:9"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot reach projector"),
        "{}",
        stderr(&output)
    );
}

/// `projector` with `PROJECTOR_HOME` set to `home`, and `stdin` fed in.
pub(crate) fn projector_at(home: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .env("PROJECTOR_HOME", home)
        .env_remove("PROJECTOR_API_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the projector binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Store `value` as key `key` of secret `name` in `home`, typed on
/// standard input as a user would.
pub(crate) fn store_secret(home: &std::path::Path, name: &str, key: &str, value: &str) {
    let output = projector_at(
        home,
        &["secret", "create", "generic", name, "--from-stdin", key],
        &format!("{value}\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn secrets_are_created_listed_and_deleted_without_printing_values() {
    let home = crate::kit::TempDir::new("cli-secrets");
    let file = home.0.join("password.txt");
    std::fs::write(&file, "from-a-file-value\n").unwrap();
    let output = projector_at(
        &home.0,
        &[
            "secret",
            "create",
            "generic",
            "kafka",
            "--literal",
            "user=api-key",
            "--from-file",
            &format!("password={}", file.display()),
            "--from-stdin",
            "token",
        ],
        "typed-on-stdin\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let everything = |output: &Output| format!("{}{}", stdout(output), stderr(output));
    assert!(!everything(&output).contains("from-a-file-value"));
    let output = projector_at(&home.0, &["secret", "list", "--output", "json"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        list,
        serde_json::json!([{"name": "kafka", "keys": ["password", "token", "user"]}])
    );
    let stored = std::fs::read_to_string(home.0.join("secrets/kafka.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["password"], "from-a-file-value");
    assert_eq!(stored["token"], "typed-on-stdin");
    let again = projector_at(
        &home.0,
        &["secret", "create", "generic", "kafka", "--literal", "a=b"],
        "",
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    let output = projector_at(&home.0, &["secret", "delete", "kafka"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let output = projector_at(&home.0, &["secret", "delete", "kafka"], "");
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn query_and_watch_read_a_running_view() {
    use crate::kit::{Api, Broker, TempDir, start, view, wait_committed};
    let broker = Broker::new(&[("customers", 2)]);
    let dir = TempDir::new("cli-query");
    let mut config = view(
        "customers",
        projector_examples::CUSTOMER_VIEW.path,
        &["customers"],
        projector::config::OnError::Skip,
    );
    config.indexes = vec![projector::config::IndexConfig {
        name: "by_city".into(),
        pointer: "/address/city".into(),
    }];
    let service = start(&broker, &dir, vec![config], Default::default());
    for i in 0..5 {
        let data = serde_json::json!({
            "email": format!("c{i}@x"),
            "name": format!("Customer {i}"),
            "address": {"street": "1 Main St", "city": if i < 3 { "Oslo" } else { "Rome" }},
        });
        broker.publish(
            "customers",
            i % 2,
            "CustomerCreated",
            &format!("e{i}"),
            Some(&format!("team/c{i}")),
            data.to_string().as_bytes(),
        );
    }
    broker.flush();
    wait_committed(&service.statuses()["customers"], 5);
    let home = TempDir::new("cli-query-home");
    store_secret(&home.0, "api", "token", "t0ken");
    let api = Api::start(&service, Some("t0ken"));
    let query = |args: &[&str]| {
        let mut all = vec!["query", "customers"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", &api.base, "--token-secret", "api/token"]);
        projector_at(&home.0, &all, "")
    };

    let output = query(&["team/c1", "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let row: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(row["name"], "Customer 1");
    let output = query(&["team/c1"]);
    assert!(
        stdout(&output).contains("\n  \"name\": \"Customer 1\""),
        "pretty JSON: {}",
        stdout(&output)
    );

    let output = query(&["--index", "by_city", "--eq", "Oslo", "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let subjects: Vec<String> = stdout(&output)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["subject"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(subjects, ["team/c0", "team/c1", "team/c2"]);

    let output = query(&[
        "--prefix", "team/", "--limit", "2", "--all", "--output", "json",
    ]);
    assert_eq!(stdout(&output).lines().count(), 5, "{}", stderr(&output));
    let output = query(&["--limit", "2"]);
    assert!(stderr(&output).contains("--after"), "{}", stderr(&output));

    let output = query(&["nobody"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("404"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no row for subject"),
        "{}",
        stderr(&output)
    );
    let output = projector_at(
        &home.0,
        &["query", "customers", "team/c1", "--api", &api.base],
        "",
    );
    assert!(stderr(&output).contains("401"), "{}", stderr(&output));

    // watch: the current row first, then a change.
    let mut child = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args([
            "watch",
            "customers",
            "team/c4",
            "--output",
            "json",
            "--api",
            &api.base,
        ])
        .env("PROJECTOR_API_TOKEN", "t0ken")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "current");
    assert_eq!(first["version"], 1);
    broker.publish(
        "customers",
        0,
        "CustomerNameChanged",
        "rename",
        Some("team/c4"),
        br#"{"newName": "Renamed"}"#,
    );
    broker.flush();
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (second["event"].as_str(), second["version"].as_u64()),
        (Some("set"), Some(2))
    );
    assert_eq!(second["row"]["name"], "Renamed");
    child.kill().ok();
    child.wait().ok();
    drop(api);
    service.stop();
}

#[test]
fn run_refuses_to_start_when_the_api_token_secret_is_missing() {
    let dir = crate::kit::TempDir::new("cli-run-token");
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        "[http]\ntoken_secret = \"api/token\"\n[broker]\nbootstrap_servers = \"127.0.0.1:9\"\n\n\
         [[views]]\nname = \"v\"\nmodule = \"v.wasm\"\ntopics = [\"events\"]\n",
    )
    .unwrap();
    let output = projector_at(&dir.0, &["run", "-c", config.to_str().unwrap()], "");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("token_secret = \"api/token\""),
        "{message}"
    );
    assert!(
        message.contains("secret \"api\" does not exist"),
        "{message}"
    );
}

#[test]
fn new_says_every_language_it_scaffolds() {
    let help = projector(&["--help"]);
    let text = stdout(&help);
    assert!(
        text.contains("Rust, TypeScript, JavaScript or Python"),
        "{text}"
    );
    let help = projector(&["new", "--help"]);
    let text = stdout(&help);
    for lang in ["- rust:", "- ts:", "- js:", "- python:"] {
        assert!(text.contains(lang), "{lang}: {text}");
    }
}
