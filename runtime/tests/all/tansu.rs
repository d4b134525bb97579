//! A real Kafka-API broker process for end-to-end tests: tansu with memory
//! storage, on a free loopback port, stopped on drop.
//!
//! `scripts/install-test-tools.sh` (run by the README's test command)
//! installs it into `$PROJECTOR_TOOLS` (default `~/.cache/projector-tools`);
//! `$PROJECTOR_TANSU` may name the binary instead. A missing binary fails
//! the test that needs it, loudly: nothing is skipped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// A running tansu broker.
pub struct Tansu {
    child: Child,
    binary: PathBuf,
    port: u16,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PROJECTOR_TANSU") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("PROJECTOR_TOOLS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/projector-tools")
        },
        PathBuf::from,
    );
    let path = tools.join("bin/tansu");
    assert!(
        path.exists(),
        "tansu is not installed at {}: run scripts/install-test-tools.sh (the README's test command does)",
        path.display()
    );
    path
}

impl Tansu {
    /// Start a broker and wait until it answers metadata requests.
    pub fn start() -> Self {
        Self::start_advertising(None)
    }

    /// Start a broker that tells clients to connect to `advertised`
    /// (`host:port`; default its own address), as a broker behind a proxy
    /// does.
    pub fn start_advertising(advertised: Option<&str>) -> Self {
        let binary = binary();
        let port = crate::kit::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        // Its log, quoted when it fails to start.
        let log_path = std::env::temp_dir().join(format!("projector-tansu-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("tansu log file");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.try_clone().expect("log file")))
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let tansu = Self {
            child,
            binary,
            port,
        };
        // A fresh client per attempt: once a client has seen metadata, it
        // talks to the advertised address, which behind the TLS front is
        // not plaintext; a late answer to an attempt that timed out would
        // leave a reused client stuck there.
        let answers = || {
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", tansu.bootstrap())
                .create()
                .expect("metadata client");
            client
                .fetch_metadata(None, Duration::from_millis(1000))
                .is_ok()
        };
        let started = Instant::now();
        while !answers() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not answer metadata within 30 s; its log ({}):\n{}",
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        tansu
    }

    /// `host:port` for Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own address (not the advertised one).
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Create `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let output = Command::new(&self.binary)
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("tansu topic create runs");
        assert!(
            output.status.success(),
            "tansu topic create {topic} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
