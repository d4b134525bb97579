//! Hostile guests at scale, in the running runtime: 10,000 poisoned events
//! (traps, panics, memory bombs, stack overflows, invalid and oversized
//! rows, guest errors, and some endless loops) go through one view while
//! another view keeps applying its own events. Every poisoned event is
//! handled by the policy, the other view loses nothing, the process's
//! resident memory stays bounded, and no call outlives twice its deadline.

use std::time::{Duration, Instant};

use crate::crash::spawn;
use crate::kit::{Broker, TempDir, free_port, sigterm};

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn counters(api: &str) -> Option<serde_json::Value> {
    let mut response = ureq::get(&format!("{api}/v1/views")).call().ok()?;
    response.body_mut().read_json().ok()
}

fn counter_of(report: &serde_json::Value, view: &str, counter: &str) -> u64 {
    report["views"]
        .as_array()
        .and_then(|views| views.iter().find(|v| v["name"] == view))
        .and_then(|v| v["counters"][counter].as_u64())
        .unwrap_or(0)
}

const POISONS: [(&str, &[u8]); 7] = [
    ("misbehave.trap", b"{}"),
    ("misbehave.panic", b"{}"),
    ("misbehave.memory-bomb", b"{}"),
    ("misbehave.stack-overflow", b"{}"),
    ("misbehave.invalid-json", b"{}"),
    ("misbehave.huge-row", b"2000000"),
    ("misbehave.error", b"{}"),
];

#[test]
fn ten_thousand_poisoned_events_leave_the_runtime_and_its_other_view_intact() {
    const POISONED: usize = 10_000;
    const LOOPS: usize = 10;
    const BENIGN: usize = 2_000;
    let broker = Broker::tansu(&[("bad", 1), ("events", 2)]).application_producer();
    let dir = TempDir::new("hostile");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "{}data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n\
             [engine]\ncall_deadline_ms = 131\nmax_memory_bytes = 16777216\n\
             [broker]\nbootstrap_servers = \"{}\"\nsettings = {{ \"fetch.wait.max.ms\" = \"50\" }}\n\n\
             [[views]]\nname = \"misbehaving\"\nmodule = \"{}\"\ntopics = [\"bad\"]\non_error = \"skip\"\n\
             max_attempts = 2\ninitial_backoff_ms = 10\nmax_backoff_ms = 10\n\n\
             [[views]]\nname = \"counter\"\nmodule = \"{}\"\ntopics = [\"events\"]\n",
            crate::kit::TANSU_GROUP_SETTINGS,
            broker.bootstrap(),
            projector_examples::MISBEHAVING.path,
            projector_examples::EVENT_COUNTER.path
        ),
    )
    .unwrap();
    let log = dir.0.join("run.log");
    let mut child = spawn(&config, &log);

    // A first thousand, to measure the memory of a warm process.
    let publish_poison = |from: usize, to: usize| {
        for n in from..to {
            let (ty, data) = POISONS[n % POISONS.len()];
            broker.publish("bad", 0, ty, &format!("p{n}"), Some("victim"), data);
        }
        broker.flush();
    };
    let wait_skipped = |skipped: u64, within: Duration| {
        let started = Instant::now();
        loop {
            let report = counters(&api);
            let done = report
                .as_ref()
                .map_or(0, |r| counter_of(r, "misbehaving", "skipped"));
            if done >= skipped {
                return report.unwrap();
            }
            assert!(
                started.elapsed() < within,
                "{done} of {skipped} poisoned events handled after {within:?}: {report:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    publish_poison(0, 1_000);
    wait_skipped(1_000, Duration::from_secs(300));
    let warm = rss_kib(child.id());

    // The other nine thousand, some endless loops, and the other view's
    // events in between.
    let started = Instant::now();
    for chunk in 0..9 {
        publish_poison(1_000 + chunk * 1_000, 2_000 + chunk * 1_000);
        for n in chunk * (BENIGN / 9)..(chunk + 1) * (BENIGN / 9) {
            let partition = i32::try_from(n % 2).unwrap();
            broker.publish(
                "events",
                partition,
                "Tick",
                &format!("e{n}"),
                Some(&format!("s{}", n % 13)),
                b"{}",
            );
        }
    }
    for n in 0..LOOPS {
        broker.publish(
            "bad",
            0,
            "misbehave.loop",
            &format!("l{n}"),
            Some("victim"),
            b"{}",
        );
    }
    let benign_sent = (BENIGN / 9) * 9;
    broker.flush();
    let report = wait_skipped(
        u64::try_from(POISONED + LOOPS).unwrap(),
        Duration::from_secs(600),
    );
    let took = started.elapsed();
    let end = rss_kib(child.id());
    let started_counter = Instant::now();
    let mut report = report;
    while counter_of(&report, "counter", "applied") < benign_sent as u64 {
        assert!(
            started_counter.elapsed() < Duration::from_secs(60),
            "the other view stalled: {report}"
        );
        std::thread::sleep(Duration::from_millis(200));
        report = counters(&api).unwrap();
    }
    println!(
        "hostile guests: {} poisoned events (incl. {LOOPS} endless loops) handled in {:.1} s after the first 1,000; \
         RSS {} MiB warm, {} MiB at the end; the other view applied {}",
        POISONED + LOOPS,
        took.as_secs_f64(),
        warm / 1024,
        end / 1024,
        counter_of(&report, "counter", "applied")
    );
    let view = |name: &str| {
        report["views"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(view("misbehaving")["state"], "running");
    assert_eq!(view("counter")["state"], "running");
    assert_eq!(
        counter_of(&report, "counter", "applied"),
        benign_sent as u64
    );
    assert_eq!(counter_of(&report, "counter", "skipped"), 0);
    assert_eq!(counter_of(&report, "misbehaving", "applied"), 0);
    assert_eq!(
        counter_of(&report, "misbehaving", "retries"),
        u64::try_from(LOOPS).unwrap(),
        "each endless loop is retried once (max_attempts = 2), nothing else is"
    );
    // Nine thousand more failures, some of them 16 MiB memory bombs, may
    // not grow the process by more than one instance's worth of memory and
    // some allocator slack.
    assert!(
        end <= warm + 64 * 1024,
        "RSS grew from {} MiB to {} MiB over 9,000 poisoned events",
        warm / 1024,
        end / 1024
    );
    // The deadline is exceeded by at most 2x: every apply call of the
    // view, the endless loops included, took at most 262.144 ms, the
    // apply-time histogram's bucket at twice the 131 ms deadline; and the
    // loops did run up to the deadline (20 attempts above 65.5 ms).
    let buckets = apply_seconds_buckets(&api, "misbehaving");
    let within = |limit: f64| {
        buckets
            .iter()
            .find(|(le, _)| (le - limit).abs() < 1e-9)
            .map(|(_, count)| *count)
            .unwrap_or_else(|| panic!("no bucket at {limit}: {buckets:?}"))
    };
    let all = buckets.last().map(|(_, count)| *count).unwrap();
    println!(
        "apply calls: {all}; above 65.5 ms: {}; above 262.1 ms (2x the deadline): {}",
        all - within(0.065_536),
        all - within(0.262_144)
    );
    assert_eq!(
        within(0.262_144),
        all,
        "calls ran past twice the deadline: {buckets:?}"
    );
    assert!(
        all - within(0.065_536) >= u64::try_from(2 * LOOPS).unwrap(),
        "the endless loops did not run to the deadline: {buckets:?}"
    );
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// The cumulative buckets `(le, count)` of `view`'s apply-time histogram,
/// from `/metrics`, in order, `+Inf` last.
fn apply_seconds_buckets(api: &str, view: &str) -> Vec<(f64, u64)> {
    let text = ureq::get(&format!("{api}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let view_label = format!("view=\"{view}\"");
    let mut buckets: Vec<(f64, u64)> = text
        .lines()
        .filter(|line| {
            line.starts_with("projector_apply_seconds_bucket{") && line.contains(&view_label)
        })
        .map(|line| {
            let le = line
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let count = line.rsplit(' ').next().unwrap().parse().unwrap();
            (le, count)
        })
        .collect();
    assert!(
        !buckets.is_empty(),
        "no apply-time histogram for {view} in:\n{text}"
    );
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}
