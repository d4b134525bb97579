//! Point lookups through the HTTP query API: requests per second and
//! latency percentiles, from an in-repo loopback load generator.
//!
//! A store is filled with 100,000 customer rows (~190 bytes each), the API
//! is served over it exactly as `projector run` serves it (axum on a
//! two-worker tokio runtime), and client threads with keep-alive
//! connections each send `GET /v1/views/customers/rows/{subject}` for random
//! subjects, one request at a time, for a fixed time. Every answer is
//! checked (status 200 and the subject in the body).
//!
//! Run: `cargo bench -p projector --bench query`. Options (after `--`):
//! `--rows N`, `--seconds S`, `--clients C` (repeatable as a list:
//! `--clients 1,4,16`). It prints one table row per client count.

// A benchmark fails by panicking.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::config::OnError;
use projector::http::ApiState;
use projector::pipeline::ViewStatus;
use projector::pipeline::feed::{Positions, ViewFeed};
use projector::service::{RunningView, ViewInfo};
use projector::store::{SledStore, Store, StoredRow, ViewBatch, ViewStore};

struct Options {
    rows: usize,
    seconds: u64,
    clients: Vec<usize>,
}

fn options() -> Options {
    let mut options = Options {
        rows: 100_000,
        seconds: 5,
        clients: vec![1, 4, 16],
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--rows" => options.rows = value.parse().expect("--rows N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds S"),
            "--clients" => {
                options.clients = value
                    .split(',')
                    .map(|c| c.parse().expect("--clients C[,C...]"))
                    .collect();
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

fn subject(n: usize) -> String {
    format!("customer-{n:07}")
}

fn fill(view: &impl ViewStore, store: &SledStore, rows: usize) {
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let mut batch = ViewBatch::new();
        for &n in chunk {
            let json = serde_json::json!({
                "customerId": subject(n),
                "email": format!("customer.{n}@analytical-engines.example.com"),
                "name": "Ada Lovelace",
                "address": {"street": "12 St James's Square, Westminster", "city": "London"}
            })
            .to_string();
            let row = StoredRow {
                json,
                version: 1,
                last_event_id: format!("event-{n}"),
            };
            batch.change(&subject(n), None, Some(row));
        }
        view.commit(&batch).unwrap();
    }
    store.flush().unwrap();
}

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let options = options();
    let dir = std::env::temp_dir().join(format!("projector-bench-query-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let store = SledStore::open(&dir).unwrap();
    let rows = store.open_view("customers", "bench", &[], None).unwrap();
    let filling = Instant::now();
    fill(&rows, &store, options.rows);
    println!(
        "filled {} rows in {:.1} s",
        options.rows,
        filling.elapsed().as_secs_f64()
    );
    let view = RunningView {
        info: ViewInfo {
            version: 1,
            name: "customers".to_owned(),
            module_hash: "bench".to_owned(),
            role: projector::config::Role::Owner,
            topics: vec!["customers".to_owned()],
            group: "bench".to_owned(),
            on_error: OnError::Stop,
            indexes: Vec::new(),
            max_unassigned: std::time::Duration::from_secs(30),
        },
        status: Arc::new(ViewStatus::default()),
        rows,
        feed: Arc::new(ViewFeed::new(Positions::new(), ViewFeed::DEFAULT_CAPACITY)),
        controls: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(projector::http::serve(
        listener,
        ApiState::new(&[view]),
        async {
            let _ = stopped.await;
        },
    ));

    println!(
        "\n{:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "clients", "requests", "requests/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for &clients in &options.clients {
        let deadline = Instant::now() + Duration::from_secs(options.seconds);
        let threads: Vec<_> = (0..clients)
            .map(|client| {
                let base = base.clone();
                let rows = options.rows;
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .max_idle_connections_per_host(1)
                        .build()
                        .into();
                    let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1));
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let wanted = subject(random.below(rows));
                        let started = Instant::now();
                        let mut response = agent
                            .get(&format!("{base}/v1/views/customers/rows/{wanted}"))
                            .call()
                            .unwrap();
                        let body = response.body_mut().read_to_string().unwrap();
                        latencies.push(started.elapsed());
                        assert!(body.contains(&wanted), "wrong row for {wanted}: {body}");
                    }
                    latencies
                })
            })
            .collect();
        let started = Instant::now();
        let mut latencies: Vec<Duration> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let micros = |d: Duration| d.as_micros();
        println!(
            "{:>8} {:>10} {:>12.0} {:>10} {:>10} {:>10} {:>10}",
            clients,
            latencies.len(),
            latencies.len() as f64 / elapsed,
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.99)),
            micros(percentile(&latencies, 0.999)),
            micros(*latencies.last().unwrap()),
        );
    }
    let _ = stop.send(());
    runtime.block_on(server).unwrap().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
