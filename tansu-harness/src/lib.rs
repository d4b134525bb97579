//! A real Kafka-API broker process for tests and benchmarks: tansu with
//! memory storage, on a free loopback port, stopped on drop.
//!
//! `scripts/install-test-tools.sh` (run by the README's test command)
//! installs it into `$PROJECTOR_TOOLS` (default `~/.cache/projector-tools`);
//! `$PROJECTOR_TANSU` may name the binary instead. A missing binary is an
//! error naming the script, never a skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Why a broker could not be started or set up.
#[derive(Debug, thiserror::Error)]
pub enum TansuError {
    /// The binary is not where the install script puts it.
    #[error(
        "tansu is not installed at {0}: run scripts/install-test-tools.sh (the README's test command does)"
    )]
    NotInstalled(PathBuf),
    /// The process could not be started, or a free port found.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The broker did not answer metadata requests in time.
    #[error("tansu did not answer metadata within 30 s; its log ({log}):\n{text}")]
    NotReady {
        /// Where its log is.
        log: PathBuf,
        /// The log.
        text: String,
    },
    /// `tansu topic create` failed.
    #[error("tansu topic create {topic} failed: {stderr}")]
    Topic {
        /// The topic.
        topic: String,
        /// What tansu said.
        stderr: String,
    },
}

/// A running tansu broker.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    binary: PathBuf,
    port: u16,
}

/// Where the tansu binary is: `$PROJECTOR_TANSU`, else
/// `$PROJECTOR_TOOLS/bin/tansu` (default `~/.cache/projector-tools`).
///
/// # Errors
/// When it is not there.
pub fn binary() -> Result<PathBuf, TansuError> {
    if let Some(path) = std::env::var_os("PROJECTOR_TANSU") {
        return Ok(PathBuf::from(path));
    }
    let tools = std::env::var_os("PROJECTOR_TOOLS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/projector-tools")
        },
        PathBuf::from,
    );
    let path = tools.join("bin/tansu");
    if path.exists() {
        Ok(path)
    } else {
        Err(TansuError::NotInstalled(path))
    }
}

/// A loopback port free at the time of the call.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
}

impl Tansu {
    /// Start a broker and wait until it answers metadata requests.
    ///
    /// # Errors
    /// When tansu is missing, does not start, or does not answer in 30 s.
    pub fn start() -> Result<Self, TansuError> {
        Self::start_advertising(None)
    }

    /// Start a broker that tells clients to connect to `advertised`
    /// (`host:port`; default its own address), as a broker behind a proxy
    /// does.
    ///
    /// # Errors
    /// As [`Tansu::start`].
    pub fn start_advertising(advertised: Option<&str>) -> Result<Self, TansuError> {
        let binary = binary()?;
        let spawn_error = |source| TansuError::Spawn {
            binary: binary.clone(),
            source,
        };
        let port = free_port().map_err(spawn_error)?;
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        // Its log, quoted when it fails to start.
        let log_path = std::env::temp_dir().join(format!("projector-tansu-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(spawn_error)?;
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
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(spawn_error)?;
        let tansu = Self {
            child,
            binary,
            port,
        };
        // A fresh client per attempt: once a client has seen metadata, it
        // talks to the advertised address, which behind a TLS front is not
        // plaintext; a late answer to an attempt that timed out would leave
        // a reused client stuck there.
        let answers = || {
            ClientConfig::new()
                .set("bootstrap.servers", tansu.bootstrap())
                .create::<BaseConsumer>()
                .is_ok_and(|client| {
                    client
                        .fetch_metadata(None, Duration::from_millis(1000))
                        .is_ok()
                })
        };
        let started = Instant::now();
        while !answers() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(TansuError::NotReady {
                    text: std::fs::read_to_string(&log_path).unwrap_or_default(),
                    log: log_path,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(tansu)
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
    ///
    /// # Errors
    /// When tansu refuses.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), TansuError> {
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
            .map_err(|source| TansuError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(TansuError::Topic {
                topic: topic.to_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
