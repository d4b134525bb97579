//! The benchmark runs on a tiny input and writes a well-formed result. It
//! says nothing about speed: figures are checked for shape and consistency
//! only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn number(value: &Value, what: &str) -> f64 {
    let n = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(n.is_finite() && n >= 0.0, "{what} = {n}");
    n
}

fn rate(value: &Value, what: &str) -> f64 {
    let n = number(&value["events_per_second"], what);
    assert!(n > 0.0, "{what}: rate {n}");
    n
}

#[test]
fn the_benchmark_runs_on_a_tiny_input_and_writes_a_well_formed_result() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_projector-bench"));
    let projector = exe.parent().unwrap().join("projector");
    assert!(
        projector.exists(),
        "{} is missing: the workspace test command builds it",
        projector.display()
    );
    let dir = std::env::temp_dir().join(format!("projector-bench-tiny-{}", std::process::id()));
    let out = dir.join("result.json");
    let output = Command::new(&exe)
        .args(["--events", "600", "--subjects", "50", "--scales", "20,200"])
        .args(["--latency-seconds", "0.5"])
        .args(["--changelog-rows", "300"])
        // At the shadow's default bound (10,000 records/s) a build of
        // 20,000 outlasts a measure of 0.5 s.
        .args(["--deploy-events", "20000"])
        .arg("--out")
        .arg(&out)
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--projector")
        .arg(&projector)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the benchmark failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("raw consume") && stdout.contains("ratio"),
        "{stdout}"
    );
    let result: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        !dir.join("work").exists(),
        "the work directory is left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);

    assert!(result["command"].as_str().unwrap().contains("--events 600"));
    assert!(number(&result["machine"]["nproc"], "nproc") >= 1.0);
    assert!(number(&result["machine"]["memory_gib"], "memory") > 0.0);
    assert_eq!(result["events"], 600);
    // Both inputs read raw: the clean one, and an application's with one
    // malformed record in 500 besides the 600 events.
    let raw = result["raw_consume"].as_array().unwrap();
    assert_eq!(raw.len(), 2, "{raw:?}");
    assert_eq!(
        (raw[0]["input"].as_str(), raw[0]["events"].as_u64()),
        (Some("clean"), Some(600))
    );
    assert_eq!(
        (raw[1]["input"].as_str(), raw[1]["events"].as_u64()),
        (Some("application"), Some(601))
    );
    for run in raw {
        rate(run, "raw consume");
    }

    for section in ["end_to_end", "engine_only"] {
        let runs = result[section].as_array().unwrap();
        let mut seen: Vec<(String, String, String, u64)> = runs
            .iter()
            .map(|run| {
                assert_eq!(run["events"], 600, "{section}: {run}");
                rate(run, section);
                let input = run["input"].as_str().unwrap_or("clean").to_owned();
                if input == "application" {
                    assert_eq!(run["dead_lettered"], 1, "{run}");
                }
                (
                    run["view"].as_str().unwrap().to_owned(),
                    run["runner"].as_str().unwrap().to_owned(),
                    input,
                    run["threads"].as_u64().unwrap(),
                )
            })
            .collect();
        seen.sort();
        // Customers in wasm with 1, 2 and 4 applier threads.
        let mut expected = vec![
            ("customers", "native", "clean", 1),
            ("customers", "wasm", "clean", 1),
            ("customers", "wasm", "clean", 2),
            ("customers", "wasm", "clean", 4),
            ("orders", "native", "clean", 1),
            ("orders", "wasm", "clean", 1),
        ];
        if section == "end_to_end" {
            expected.insert(1, ("customers", "wasm", "application", 1));
        }
        let expected: Vec<(String, String, String, u64)> = expected
            .into_iter()
            .map(|(v, r, i, t)| (v.to_owned(), r.to_owned(), i.to_owned(), t))
            .collect();
        assert_eq!(seen, expected, "{section}");
    }
    assert!(number(&result["latency_base_rate"], "latency base rate") > 0.0);
    for run in result["engine_only"].as_array().unwrap() {
        assert_eq!(run["rows"], 50, "every subject has its row: {run}");
    }
    rate(&result["store_bound"], "store bound");
    assert_eq!(result["store_bound"]["events"], 600);

    let latency = result["latency"].as_array().unwrap();
    let loads: Vec<f64> = latency.iter().map(|l| number(&l["load"], "load")).collect();
    assert_eq!(loads, [0.25, 0.5, 0.8]);
    for level in latency {
        let (p50, p99, max) = (
            number(&level["p50_ms"], "p50"),
            number(&level["p99_ms"], "p99"),
            number(&level["max_ms"], "max"),
        );
        assert!(p50 <= p99 && p99 <= max, "{level}");
        let (plain50, plain99) = (
            number(&level["consumer_p50_ms"], "consumer p50"),
            number(&level["consumer_p99_ms"], "consumer p99"),
        );
        assert!(plain50 > 0.0 && plain50 <= plain99, "{level}");
        let (beside99, own50, own99) = (
            number(&level["beside_p99_ms"], "beside p99"),
            number(&level["own_p50_ms"], "own p50"),
            number(&level["own_p99_ms"], "own p99"),
        );
        assert!(beside99 > 0.0, "{level}");
        assert!(own50 <= own99 && own99 <= max, "{level}");
        assert!(level["events"].as_u64().unwrap() > 0, "{level}");
    }

    let scaling = result["scaling"].as_array().unwrap();
    assert_eq!(scaling.len(), 2);
    for (scale, subjects) in scaling.iter().zip([20, 200]) {
        assert_eq!(scale["subjects"], subjects);
        assert_eq!(scale["rows"], subjects, "{scale}");
        rate(scale, "scale");
        assert!(number(&scale["peak_rss_mib"], "rss") > 1.0);
        assert!(number(&scale["disk_mib"], "disk") > 0.0);
    }
    assert_eq!(result["restart"]["rows"], 200);
    assert!(number(&result["restart"]["after_kill_seconds"], "restart") > 0.0);

    // The deploy part: the live view measured four times, the shadow
    // within its bound.
    let deploy = &result["deploy"];
    assert_eq!(deploy["events"], 20000, "{deploy}");
    for measure in [
        "without_build",
        "during_plain_replay",
        "during_build",
        "without_build_after",
    ] {
        assert!(
            number(&deploy[measure]["p99_ms"], measure) > 0.0,
            "{measure}: {deploy}"
        );
    }
    let under_load = number(&deploy["build_per_second_under_load"], "shadow rate");
    assert!(
        under_load > 0.0 && under_load <= 10_500.0,
        "the shadow keeps to its bound: {deploy}"
    );

    // The dedup part: off and on alternately, every event remembered.
    let dedup = &result["dedup"];
    for (side, on) in [("off", false), ("on", true)] {
        let runs = dedup[side].as_array().unwrap();
        assert_eq!(runs.len(), 3, "{dedup}");
        for run in runs {
            assert_eq!(run["dedup"], on, "{run}");
            rate(run, "dedup");
            assert!(run["disk_bytes"].as_u64().unwrap() > 0, "{run}");
            assert_eq!(run["dedup_index_bytes"].as_u64().unwrap() > 0, on, "{run}");
        }
    }
    assert!(number(&dedup["ratio"], "dedup ratio") > 0.0);
    assert!(number(&dedup["memory_bytes_per_identity"], "memory per identity") >= 24.0);

    // The changelog part: off and on alternately over 600 events, and a
    // restore of the 300 rows, each compared with the rows that logged it.
    let changelog = &result["changelog"];
    let runs = changelog["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{changelog}");
    for (n, run) in runs.iter().enumerate() {
        assert_eq!(run["changelog"], n % 2 == 1, "{run}");
        assert_eq!(run["events"], 600, "{run}");
        rate(run, "changelog");
    }
    assert_eq!(changelog["restore"]["rows"], 300, "{changelog}");
    assert!(
        changelog["restore"]["records"].as_u64().unwrap() >= 300,
        "{changelog}"
    );
    assert!(number(&changelog["restore_speedup"], "restore speedup") > 0.0);
    let ratios = result["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 14, "{ratios:?}");
    for ratio in ratios {
        let value = number(&ratio["value"], "ratio");
        let target = number(&ratio["target"], "target");
        let met = ratio["met"].as_bool().unwrap();
        let latency = ratio["name"].as_str().unwrap().contains("p99");
        assert_eq!(
            met,
            if latency {
                value <= target
            } else {
                value >= target
            }
        );
    }
}

#[test]
fn impossible_parameters_are_refused_before_anything_runs() {
    let exe = env!("CARGO_BIN_EXE_projector-bench");
    for args in [
        ["--events", "0"],
        ["--subjects", "0"],
        ["--scales", "10,0"],
        ["--latency-seconds", "0"],
        ["--latency-seconds", "NaN"],
        ["--only", "everything"],
    ] {
        let output = Command::new(exe).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
    }
}

#[test]
fn a_part_left_without_its_measured_input_is_refused_not_made_up() {
    let exe = env!("CARGO_BIN_EXE_projector-bench");
    for (args, flag) in [
        (&["--only", "store"][..], "--store-row-bytes"),
        (&["--only", "latency"][..], "--latency-base-rate"),
    ] {
        let output = Command::new(exe).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
