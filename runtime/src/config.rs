//! `projector.toml`: the runtime's one typed configuration.
//!
//! Parsed with serde and validated on load. Every option documents its
//! default and unit; an unknown key, a wrong type or a value out of range is
//! a [`ConfigError`] that names the key (`views[1].dead_letter_topic`) and
//! what was expected. Kafka client settings pass through to librdkafka as a
//! string map, except credentials, which are never accepted inline.
//!
//! ```toml
//! data_dir = "/var/lib/projector"      # default: ./projector-data
//!
//! [broker]
//! bootstrap_servers = "localhost:9092"
//! settings = { "fetch.wait.max.ms" = "50" }
//!
//! [engine]                             # see EngineConfig
//! call_deadline_ms = 500
//!
//! [[views]]
//! name = "customers"
//! module = "customer_view.wasm"
//! topics = ["customers"]
//! on_error = "dead-letter"             # stop | skip | dead-letter | quarantine
//! dead_letter_topic = "customers-dlq"
//! subject_from_key = false
//! indexes = [{ name = "by_email", pointer = "/email" }]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse, or a key has the wrong type or is unknown.
    #[error("invalid config{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// The parser's message, with the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config `{key}` must be {expected}, found {found}")]
    Invalid {
        /// The key, with its position (`views[0].name`).
        key: String,
        /// What it accepts.
        expected: String,
        /// What it was.
        found: String,
    },
}

fn invalid(
    key: impl Into<String>,
    expected: impl Into<String>,
    found: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the view store lives. Default `./projector-data`. One runtime
    /// per directory: a second one is refused.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The Kafka cluster. Required unless a broker is configured with
    /// `projector config set broker`.
    #[serde(default)]
    pub broker: Option<BrokerConfig>,
    /// Limits of the wasm engine.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The HTTP endpoints (health, readiness, metrics, status).
    #[serde(default)]
    pub http: HttpConfig,
    /// The views to run; at least one.
    #[serde(default)]
    pub views: Vec<ViewConfig>,
    /// Static membership in each view's consumer group (Kafka's
    /// `group.instance.id`): a runtime restarted with the same data
    /// directory gets its partitions back at once, without a rebalance and
    /// without waiting for its old session to expire. Default true. The
    /// price: a runtime that stops for good keeps its partitions until
    /// `session.timeout.ms` (45 s by default) has passed; set false where
    /// runtimes come and go.
    #[serde(default = "default_static_membership")]
    pub static_membership: bool,
    /// This runtime's instance id, the stem of each view's
    /// `group.instance.id` (`<instance_id>-<view>`). Default: an id made
    /// once for the data directory and kept in its store, so it survives
    /// restarts and differs between data directories. 1 to 200 of
    /// `a-z A-Z 0-9 . _ -`.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// How `projector view deploy` builds a new module's shadow and swaps
    /// it in.
    #[serde(default)]
    pub deploy: DeployConfig,
}

/// `[deploy]`: live redeploy. A shadow view built by a new module replays
/// the view's topics beside the live view, then is swapped in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// Applier threads a shadow may use: the share of the machine a build
    /// takes from the live views. Default 1, 1 to 64.
    #[serde(default = "default_shadow_threads")]
    pub shadow_threads: usize,
    /// Records a second a shadow takes at most, so that its reads and
    /// writes leave the CPU, the broker and the store to the live views (0:
    /// no bound). Lifted when the shadow is swapped in. Default 10000.
    #[serde(default = "default_shadow_max_rate")]
    pub shadow_max_rate: u64,
    /// The lag (records, over every partition) under which a shadow counts
    /// as caught up and the swap begins. The swap itself then waits until
    /// the shadow has applied everything the live view had applied, so no
    /// read sees the view go back. Default 1000.
    #[serde(default = "default_swap_max_lag")]
    pub swap_max_lag: u64,
    /// Records a shadow's module may fail on (handed to the view's error
    /// policy) before the deploy stops itself; the live view is untouched.
    /// Default 100.
    #[serde(default = "default_max_shadow_failures")]
    pub max_shadow_failures: u64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            shadow_threads: default_shadow_threads(),
            shadow_max_rate: default_shadow_max_rate(),
            swap_max_lag: default_swap_max_lag(),
            max_shadow_failures: default_max_shadow_failures(),
        }
    }
}

fn default_shadow_threads() -> usize {
    1
}

fn default_shadow_max_rate() -> u64 {
    10_000
}

fn default_swap_max_lag() -> u64 {
    1000
}

fn default_max_shadow_failures() -> u64 {
    100
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("projector-data")
}

fn default_static_membership() -> bool {
    true
}

/// The HTTP endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080`: loopback
    /// only; set `0.0.0.0:8080` to serve other machines.
    #[serde(default = "default_bind")]
    pub bind: std::net::SocketAddr,
    /// A stored secret (`NAME/KEY`) holding the bearer token that every
    /// request except `/healthz` and `/readyz` must carry. Default none:
    /// no token is asked for.
    #[serde(default)]
    pub token_secret: Option<crate::secrets::SecretRef>,
    /// Serve the web console at `/console`. Default true. The console's
    /// page holds no data; what it shows needs the token like any client.
    #[serde(default = "default_console")]
    pub console: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            token_secret: None,
            console: true,
        }
    }
}

fn default_console() -> bool {
    true
}

fn default_bind() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// The Kafka cluster to consume from and produce to.
///
/// With `auth` other than `none`, the client logs in with SASL as `user`,
/// with the password held by the stored secret `password_secret`
/// (`NAME/KEY`), over TLS unless `tls = false`. The password itself is
/// resolved when a client starts ([`BrokerConfig::resolve_password`]) and
/// never written anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `host:port[,host:port...]`. Required.
    pub bootstrap_servers: String,
    /// How the client authenticates. Default `none`.
    #[serde(default, skip_serializing_if = "BrokerAuth::is_none")]
    pub auth: BrokerAuth,
    /// The SASL user (for Confluent Cloud, the API key). Required with
    /// `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The stored secret holding the SASL password (for Confluent Cloud,
    /// the API secret), as `NAME/KEY`. Required with `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<crate::secrets::SecretRef>,
    /// Encrypt with TLS. Default: on when `auth` is set, off otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// A PEM file of CA certificates to trust instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// librdkafka settings passed through as they are, such as
    /// `"fetch.wait.max.ms" = "50"`. Credentials (any key naming a password
    /// or secret) are refused: reference a stored secret instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    /// The password, once resolved from `password_secret`. Never read from
    /// or written to a file; prints as `<redacted>`.
    #[serde(skip)]
    pub password: Option<crate::secrets::SecretValue>,
}

/// How a Kafka client authenticates.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerAuth {
    /// No authentication.
    #[default]
    None,
    /// SASL PLAIN (Confluent Cloud's API keys).
    Plain,
    /// SASL SCRAM-SHA-256.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SASL SCRAM-SHA-512.
    #[value(name = "scram-sha-512")]
    ScramSha512,
}

impl BrokerAuth {
    fn is_none(&self) -> bool {
        *self == Self::None
    }

    /// The SASL mechanism's name, as librdkafka and the broker call it.
    pub fn mechanism(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Plain => Some("PLAIN"),
            Self::ScramSha256 => Some("SCRAM-SHA-256"),
            Self::ScramSha512 => Some("SCRAM-SHA-512"),
        }
    }
}

impl BrokerConfig {
    /// A broker at `bootstrap_servers` without authentication.
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// True when the connection uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.unwrap_or(self.auth != BrokerAuth::None)
    }

    /// Fetch the password from `secrets`, when `auth` needs one. A missing
    /// secret or key is an error naming it.
    pub fn resolve_password(
        &mut self,
        secrets: &crate::secrets::SecretStore,
    ) -> Result<(), crate::secrets::SecretError> {
        if self.auth == BrokerAuth::None {
            return Ok(());
        }
        if let Some(reference) = &self.password_secret {
            self.password = Some(secrets.resolve(reference)?);
        }
        Ok(())
    }
}

/// What a view does with an event it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Halt the failing partition and report the record, offset and reason.
    Stop,
    /// Count and log the event, and go on.
    Skip,
    /// Produce the original record, with `projector-error-*` headers, to
    /// `dead_letter_topic`, and go on.
    DeadLetter,
    /// Hold the failing event's subject: that event and every later event
    /// of the subject are kept in the store, in order, until
    /// `projector view release`; every other subject goes on.
    Quarantine,
}

/// A secondary index: rows are also found by the value at a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// The index name used in queries, such as `by_email`.
    pub name: String,
    /// An RFC 6901 JSON pointer into the row, such as `/email`.
    pub pointer: String,
}

/// One view: a table of rows maintained by one projection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// The view's name: lower-case letters, digits, `-` and `_`, at most 64.
    pub name: String,
    /// The projection component (`.wasm`). A relative path is relative to
    /// the config file.
    pub module: PathBuf,
    /// The topics to consume; at least one.
    pub topics: Vec<String>,
    /// The Kafka consumer group. Default `projector-<name>`.
    #[serde(default)]
    pub group: Option<String>,
    /// What to do with an event that cannot be applied. Default `stop`.
    #[serde(default = "default_on_error")]
    pub on_error: OnError,
    /// Where `dead-letter` sends failed records. Required with
    /// `on_error = "dead-letter"`; optional with `quarantine`, where it
    /// receives the records `projector view discard` takes out (without
    /// it they are dropped); refused otherwise.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Attempts for a transient failure (such as a deadline exceeded) before
    /// the error policy applies. Default 3, at least 1, at most 100.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff before the first retry, in milliseconds; it doubles per
    /// retry. Default 100.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest backoff, in milliseconds. Default 5000; at least
    /// `initial_backoff_ms`.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Use the Kafka key as the subject of events that have none. Default
    /// false: such events go to the error policy.
    #[serde(default)]
    pub subject_from_key: bool,
    /// Secondary indexes. Default none.
    #[serde(default)]
    pub indexes: Vec<IndexConfig>,
    /// The consumer's `group.instance.id`. Default `<instance_id>-<name>`
    /// when `static_membership` is on (see [`Config::instance_id`]), none
    /// otherwise. Two running consumers must never share one.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// How long the view may own no partition of its topics before it is
    /// reported (status, log) and the runtime is not ready, in
    /// milliseconds. Default 30000, at least 1000.
    #[serde(default = "default_max_unassigned_ms")]
    pub max_unassigned_ms: u64,
    /// How many shards the view's subjects are split into (a subject's
    /// shard is Kafka's murmur2 of it, modulo the count), 1 to 4096.
    /// Default: the partition count of the view's first topic when the view
    /// is created; a view keeps its count until it is rebuilt.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Deduplication by CloudEvents identity (`source` and `id`, per
    /// subject). Default off.
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    /// The view's changelog topic: its state logged to Kafka, from which
    /// a runtime with an empty (or lost) data directory restores it
    /// without replaying the source topics. Default off.
    #[serde(default)]
    pub changelog: Option<ChangelogConfig>,
    /// What this runtime does with the view: `owner` (the default) builds
    /// it from its topics; `standby` keeps a read-only copy of it by
    /// tailing its changelog, and consumes none of its topics.
    #[serde(default)]
    pub role: Role,
}

/// What a runtime does with a view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// It consumes the view's topics and applies their events.
    #[default]
    Owner,
    /// It keeps a copy of the view's rows, held records and checkpoints by
    /// tailing the view's changelog, serves reads from it marked with its
    /// lag, and applies nothing.
    Standby,
}

/// `changelog = { replication = 3 }` (or `changelog = {}`): the view's
/// changes are logged to a compacted topic with one partition per shard.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangelogConfig {
    /// The topic. Default `<group>-changelog`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Replicas per partition when the runtime creates the topic. Default
    /// 3, as a managed cluster has (set 1 for a one-broker cluster).
    #[serde(default = "default_changelog_replication")]
    pub replication: i32,
    /// How many standby copies of the view (runtimes with `role =
    /// "standby"`) the owner expects. Default 0. The owner lists the
    /// standbys it hears from in `/v1/views`, with their lag, and logs when
    /// fewer than this are heard.
    #[serde(default)]
    pub standby_replicas: u32,
}

/// The most standby copies a view may expect.
const MAX_STANDBY_REPLICAS: u32 = 16;

fn default_changelog_replication() -> i32 {
    3
}

/// `dedup = { keep = "24h", time = "record" }`: a view applies an event of
/// a subject once per `(source, id)` within the window (the rule is
/// [`projector_sdk::dedup`]'s).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// What identifies an event: `source-id` (the only one, and the
    /// default): its CloudEvents `source` and `id`.
    #[serde(default = "default_dedup_by")]
    pub by: String,
    /// How long an identity is remembered, in stream time: a whole number
    /// and a unit (`ms`, `s`, `m`, `h`, `d`). Default `24h`
    /// ([`projector_sdk::dedup::Window::DEFAULT_KEEP`] says why).
    #[serde(default = "default_dedup_keep")]
    pub keep: String,
    /// The time events are measured by: `record` (the record's timestamp,
    /// the default) or `event` (the CloudEvents `time`, else the record's).
    #[serde(default = "default_dedup_time")]
    pub time: String,
}

fn default_dedup_by() -> String {
    "source-id".to_owned()
}

fn default_dedup_keep() -> String {
    projector_sdk::dedup::Window::DEFAULT_KEEP.to_owned()
}

fn default_dedup_time() -> String {
    projector_sdk::dedup::TimeSource::default()
        .name()
        .to_owned()
}

impl DedupConfig {
    /// The window, checked.
    ///
    /// # Errors
    /// A `by`, `keep` or `time` out of range, naming the key under `at`.
    pub fn window(&self, at: &str) -> Result<projector_sdk::dedup::Window, ConfigError> {
        if self.by != "source-id" {
            return Err(invalid(
                format!("{at}.dedup.by"),
                "\"source-id\"",
                format!("{:?}", self.by),
            ));
        }
        let keep = projector_sdk::dedup::parse_keep(&self.keep).map_err(|_| {
            invalid(
                format!("{at}.dedup.keep"),
                "a duration above zero: a whole number and a unit (ms, s, m, h, d), such as \"7d\"",
                format!("{:?}", self.keep),
            )
        })?;
        let time = projector_sdk::dedup::TimeSource::parse(&self.time).map_err(|_| {
            invalid(
                format!("{at}.dedup.time"),
                "\"record\" or \"event\"",
                format!("{:?}", self.time),
            )
        })?;
        Ok(projector_sdk::dedup::Window::new(keep, time))
    }
}

fn default_max_unassigned_ms() -> u64 {
    30_000
}

fn default_on_error() -> OnError {
    OnError::Stop
}

// The retry defaults are the engine's (`Retry::default`), which `projector
// test` uses too.
fn default_max_attempts() -> u32 {
    crate::engine::Retry::default().max_attempts
}

fn default_initial_backoff_ms() -> u64 {
    millis(crate::engine::Retry::default().initial_backoff)
}

fn default_max_backoff_ms() -> u64 {
    millis(crate::engine::Retry::default().max_backoff)
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ViewConfig {
    /// View `name` over `topics`, built by `module`, every other setting
    /// its default.
    pub fn new(name: &str, module: PathBuf, topics: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            module,
            topics,
            group: None,
            on_error: default_on_error(),
            dead_letter_topic: None,
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            subject_from_key: false,
            indexes: Vec::new(),
            group_instance_id: None,
            max_unassigned_ms: default_max_unassigned_ms(),
            shards: None,
            dedup: None,
            changelog: None,
            role: Role::Owner,
        }
    }

    /// How the view retries what failed transiently: `max_attempts` calls
    /// in all, from `initial_backoff_ms` doubling to `max_backoff_ms`.
    pub fn retry(&self) -> crate::engine::Retry {
        crate::engine::Retry {
            max_attempts: self.max_attempts.max(1),
            initial_backoff: std::time::Duration::from_millis(self.initial_backoff_ms),
            max_backoff: std::time::Duration::from_millis(self.max_backoff_ms),
        }
    }

    /// The consumer group: the configured one or `projector-<name>`.
    pub fn group(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("projector-{}", self.name))
    }

    /// The changelog topic, when the view has one.
    pub fn changelog_topic(&self) -> Option<String> {
        self.changelog.as_ref().map(|changelog| {
            changelog
                .topic
                .clone()
                .unwrap_or_else(|| format!("{}-changelog", self.group()))
        })
    }
}

/// A TOML error as `line L, column C: message`, without the source line
/// the TOML crate would quote: that line may hold a credential pasted where
/// a reference belongs.
pub(crate) fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message();
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

impl Config {
    /// Read, parse and validate the file at `path`. Relative module paths
    /// become relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|err| match err {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for view in &mut config.views {
            if view.module.is_relative() {
                view.module = base.join(&view.module);
            }
        }
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        Ok(config)
    }

    /// Parse and validate TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: None,
            message: describe_toml_error(text, &err),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check every value, naming the first wrong one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.engine
            .validate()
            .map_err(|err| invalid(format!("engine.{}", err.key), err.expected, err.found))?;
        if let Some(broker) = &self.broker {
            validate_broker(broker)?;
        }
        if self.views.is_empty() {
            return Err(invalid("views", "at least one [[views]] table", "none"));
        }
        if let Some(id) = &self.instance_id
            && !is_instance_id(id)
        {
            return Err(invalid(
                "instance_id",
                "1 to 200 of a-z A-Z 0-9 . _ -",
                format!("{id:?}"),
            ));
        }
        if !(1..=64).contains(&self.deploy.shadow_threads) {
            return Err(invalid(
                "deploy.shadow_threads",
                "1 to 64",
                self.deploy.shadow_threads,
            ));
        }
        let mut names = BTreeSet::new();
        for (i, view) in self.views.iter().enumerate() {
            validate_view(view, &format!("views[{i}]"))?;
            if !names.insert(view.name.as_str()) {
                return Err(invalid(
                    format!("views[{i}].name"),
                    "unique across views",
                    &view.name,
                ));
            }
        }
        Ok(())
    }
}

/// Check a broker config, naming the first wrong key.
pub fn validate_broker(broker: &BrokerConfig) -> Result<(), ConfigError> {
    let servers: Vec<&str> = broker.bootstrap_servers.split(',').map(str::trim).collect();
    if servers.iter().any(|server| !is_host_port(server)) {
        return Err(invalid(
            "broker.bootstrap_servers",
            "a comma-separated list of host:port",
            format!("{:?}", broker.bootstrap_servers),
        ));
    }
    if broker.auth != BrokerAuth::None {
        if broker.user.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "broker.user",
                "the SASL user (for Confluent Cloud, the API key) when broker.auth is set",
                "none",
            ));
        }
        if broker.password_secret.is_none() {
            return Err(invalid(
                "broker.password_secret",
                "a stored secret holding the password, as NAME/KEY, when broker.auth is set",
                "none",
            ));
        }
    }
    for key in broker.settings.keys() {
        let lower = key.to_ascii_lowercase();
        if lower.contains("password")
            || lower.contains("secret")
            || lower.contains("sasl.oauthbearer.config")
        {
            // The value is not echoed: it is a credential.
            return Err(invalid(
                format!("broker.settings.\"{key}\""),
                "absent: credentials are never inlined; store them with `projector secret create` \
                 and reference them from the broker config",
                "an inline credential",
            ));
        }
        if matches!(
            lower.as_str(),
            "security.protocol" | "sasl.mechanism" | "sasl.mechanisms" | "sasl.username"
        ) {
            return Err(invalid(
                format!("broker.settings.\"{key}\""),
                "absent: set broker.auth, broker.user and broker.tls instead",
                "a value",
            ));
        }
        if matches!(
            lower.as_str(),
            "bootstrap.servers" | "group.id" | "group.instance.id" | "enable.auto.commit"
        ) {
            return Err(invalid(
                format!("broker.settings.\"{key}\""),
                "absent: projector sets it itself",
                "a value",
            ));
        }
    }
    Ok(())
}

fn is_host_port(server: &str) -> bool {
    match server.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A `group.instance.id` or its stem: 1 to 200 of `[a-zA-Z0-9._-]`.
pub fn is_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Kafka's own rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn is_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn validate_view(view: &ViewConfig, at: &str) -> Result<(), ConfigError> {
    if let Some(dedup) = &view.dedup {
        dedup.window(at)?;
    }
    if view.role == Role::Standby && view.changelog.is_none() {
        return Err(invalid(
            format!("{at}.role"),
            "\"owner\", or \"standby\" for a view with a changelog (a standby copies the \
             changelog)",
            "\"standby\"".to_owned(),
        ));
    }
    if let Some(changelog) = &view.changelog {
        if changelog.standby_replicas > MAX_STANDBY_REPLICAS {
            return Err(invalid(
                format!("{at}.changelog.standby_replicas"),
                "a whole number from 0 to 16",
                changelog.standby_replicas.to_string(),
            ));
        }
        if changelog.replication < 1 {
            return Err(invalid(
                format!("{at}.changelog.replication"),
                "a whole number of replicas, at least 1",
                changelog.replication.to_string(),
            ));
        }
        if let Some(topic) = &changelog.topic
            && (topic.is_empty() || view.topics.contains(topic))
        {
            return Err(invalid(
                format!("{at}.changelog.topic"),
                "a topic of its own, not one of the view's topics",
                format!("{topic:?}"),
            ));
        }
    }
    if !is_name(&view.name) {
        return Err(invalid(
            format!("{at}.name"),
            "1 to 64 lower-case letters, digits, '-' or '_'",
            format!("{:?}", view.name),
        ));
    }
    if view.topics.is_empty() {
        return Err(invalid(
            format!("{at}.topics"),
            "at least one topic",
            "none",
        ));
    }
    let mut topics = BTreeSet::new();
    for (i, topic) in view.topics.iter().enumerate() {
        if !is_topic_name(topic) {
            return Err(invalid(
                format!("{at}.topics[{i}]"),
                "a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)",
                format!("{topic:?}"),
            ));
        }
        if !topics.insert(topic) {
            return Err(invalid(
                format!("{at}.topics[{i}]"),
                "listed once",
                format!("{topic:?}"),
            ));
        }
    }
    if let Some(group) = &view.group
        && group.trim().is_empty()
    {
        return Err(invalid(
            format!("{at}.group"),
            "a non-empty consumer group",
            "\"\"",
        ));
    }
    match (view.on_error, &view.dead_letter_topic) {
        (OnError::DeadLetter, None) => {
            return Err(invalid(
                format!("{at}.dead_letter_topic"),
                "set when on_error = \"dead-letter\"",
                "nothing",
            ));
        }
        (OnError::DeadLetter | OnError::Quarantine, Some(topic)) => {
            if !is_topic_name(topic) {
                return Err(invalid(
                    format!("{at}.dead_letter_topic"),
                    "a Kafka topic name",
                    format!("{topic:?}"),
                ));
            }
            if view.topics.contains(topic) {
                return Err(invalid(
                    format!("{at}.dead_letter_topic"),
                    "a topic the view does not consume",
                    format!("{topic:?}"),
                ));
            }
        }
        (_, Some(topic)) => {
            return Err(invalid(
                format!("{at}.dead_letter_topic"),
                "absent unless on_error = \"dead-letter\" or \"quarantine\"",
                format!("{topic:?}"),
            ));
        }
        (_, None) => {}
    }
    if let Some(id) = &view.group_instance_id
        && !is_instance_id(id)
    {
        return Err(invalid(
            format!("{at}.group_instance_id"),
            "1 to 200 of a-z A-Z 0-9 . _ -",
            format!("{id:?}"),
        ));
    }
    if let Some(shards) = view.shards
        && crate::shard::Shards::new(shards).is_none()
    {
        return Err(invalid(
            format!("{at}.shards"),
            format!("between 1 and {}", crate::shard::Shards::MAX),
            shards,
        ));
    }
    if view.max_unassigned_ms < 1000 {
        return Err(invalid(
            format!("{at}.max_unassigned_ms"),
            "at least 1000",
            view.max_unassigned_ms,
        ));
    }
    if !(1..=100).contains(&view.max_attempts) {
        return Err(invalid(
            format!("{at}.max_attempts"),
            "between 1 and 100",
            view.max_attempts,
        ));
    }
    if view.initial_backoff_ms == 0 || view.initial_backoff_ms > 60_000 {
        return Err(invalid(
            format!("{at}.initial_backoff_ms"),
            "between 1 and 60000",
            view.initial_backoff_ms,
        ));
    }
    if view.max_backoff_ms < view.initial_backoff_ms || view.max_backoff_ms > 600_000 {
        return Err(invalid(
            format!("{at}.max_backoff_ms"),
            "at least initial_backoff_ms and at most 600000",
            view.max_backoff_ms,
        ));
    }
    let mut index_names = BTreeSet::new();
    for (i, index) in view.indexes.iter().enumerate() {
        if !is_name(&index.name) {
            return Err(invalid(
                format!("{at}.indexes[{i}].name"),
                "1 to 64 lower-case letters, digits, '-' or '_'",
                format!("{:?}", index.name),
            ));
        }
        if !index_names.insert(&index.name) {
            return Err(invalid(
                format!("{at}.indexes[{i}].name"),
                "unique within the view",
                &index.name,
            ));
        }
        if !index.pointer.starts_with('/') {
            return Err(invalid(
                format!("{at}.indexes[{i}].pointer"),
                "a JSON pointer starting with '/', such as \"/email\"",
                format!("{:?}", index.pointer),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [broker]
        bootstrap_servers = "localhost:9092"

        [[views]]
        name = "customers"
        module = "customer_view.wasm"
        topics = ["customers"]
    "#;

    fn error(text: &str) -> String {
        Config::parse(text)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = Config::parse(MINIMAL).unwrap();
        let view = &config.views[0];
        assert_eq!(config.data_dir, PathBuf::from("projector-data"));
        assert_eq!(view.group(), "projector-customers");
        assert_eq!(view.on_error, OnError::Stop);
        assert_eq!(
            (
                view.max_attempts,
                view.initial_backoff_ms,
                view.max_backoff_ms
            ),
            (3, 100, 5000)
        );
        assert!(!view.subject_from_key);
        assert_eq!(config.engine, EngineConfig::default());
        assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn full_config_parses() {
        let config = Config::parse(
            r#"
            data_dir = "/tmp/x"
            [broker]
            bootstrap_servers = "a:9092, b:9093"
            settings = { "fetch.wait.max.ms" = "50" }
            [engine]
            call_deadline_ms = 250
            [[views]]
            name = "customers"
            module = "c.wasm"
            topics = ["customers", "customers-eu"]
            group = "g1"
            on_error = "dead-letter"
            dead_letter_topic = "customers-dlq"
            subject_from_key = true
            indexes = [{ name = "by_email", pointer = "/email" }]
            "#,
        )
        .unwrap();
        assert_eq!(config.engine.call_deadline_ms, 250);
        let view = &config.views[0];
        assert_eq!(view.on_error, OnError::DeadLetter);
        assert_eq!(view.group(), "g1");
        assert_eq!(view.indexes[0].pointer, "/email");
    }

    #[test]
    fn a_quarantine_may_name_where_its_discards_go_and_no_other_topic() {
        let config = Config::parse(&format!(
            "{MINIMAL}on_error = \"quarantine\"\ndead_letter_topic = \"customers-dlq\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.views[0].dead_letter_topic.as_deref(),
            Some("customers-dlq")
        );
        let message = error(&format!(
            "{MINIMAL}on_error = \"quarantine\"\ndead_letter_topic = \"customers\"\n"
        ));
        assert!(message.contains("views[0].dead_letter_topic"), "{message}");
        let message = error(&format!(
            "{MINIMAL}on_error = \"skip\"\ndead_letter_topic = \"dlq\"\n"
        ));
        assert!(message.contains("views[0].dead_letter_topic"), "{message}");
    }

    #[test]
    fn a_standby_needs_a_changelog_and_defaults_to_owner() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.views[0].role, Role::Owner);
        let standby = Config::parse(&format!(
            "{MINIMAL}role = \"standby\"\nchangelog = {{ replication = 1, standby_replicas = 2 }}\n"
        ))
        .unwrap();
        assert_eq!(standby.views[0].role, Role::Standby);
        assert_eq!(
            standby.views[0]
                .changelog
                .as_ref()
                .map(|changelog| changelog.standby_replicas),
            Some(2)
        );
        let unknown = error(&format!("{MINIMAL}role = \"spare\"\n"));
        assert!(unknown.contains("unknown variant `spare`"), "{unknown}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                MINIMAL.replace("\"customers\"\n", "\"Customers!\"\n"),
                "views[0].name",
            ),
            (
                MINIMAL.replace("topics = [\"customers\"]", "topics = []"),
                "views[0].topics",
            ),
            (
                MINIMAL.replace("topics = [\"customers\"]", "topics = [\"a b\"]"),
                "views[0].topics[0]",
            ),
            (
                MINIMAL.replace("localhost:9092", "localhost"),
                "broker.bootstrap_servers",
            ),
            (format!("{MINIMAL}role = \"standby\"\n"), "views[0].role"),
            (
                format!("{MINIMAL}changelog = {{ standby_replicas = 17 }}\n"),
                "views[0].changelog.standby_replicas",
            ),
            (
                format!("{MINIMAL}on_error = \"dead-letter\"\n"),
                "views[0].dead_letter_topic",
            ),
            (
                format!("{MINIMAL}dead_letter_topic = \"dlq\"\n"),
                "views[0].dead_letter_topic",
            ),
            (
                format!("{MINIMAL}max_attempts = 0\n"),
                "views[0].max_attempts",
            ),
            (
                format!("{MINIMAL}max_backoff_ms = 10\n"),
                "views[0].max_backoff_ms",
            ),
            (
                format!("{MINIMAL}indexes = [{{ name = \"e\", pointer = \"email\" }}]\n"),
                "views[0].indexes[0].pointer",
            ),
            (
                format!("{MINIMAL}[engine]\ncall_deadline_ms = 0\n"),
                "engine.call_deadline_ms",
            ),
            (
                format!(
                    "{MINIMAL}[[views]]\nname = \"customers\"\nmodule = \"m\"\ntopics = [\"t\"]\n"
                ),
                "views[1].name",
            ),
        ];
        for (text, key) in cases {
            let message = error(&text);
            assert!(
                message.contains(&format!("`{key}`")),
                "expected {key} in: {message}"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_key() {
        let message = error(&MINIMAL.replace("topics", "topic"));
        assert!(message.contains("topic"), "{message}");
        let message = error(&format!("{MINIMAL}on_error = \"explode\"\n"));
        assert!(
            message.contains("on_error") || message.contains("explode"),
            "{message}"
        );
        assert!(message.contains("stop"), "lists the variants: {message}");
    }

    #[test]
    fn the_api_token_is_a_secret_reference() {
        let config =
            Config::parse(&format!("[http]\ntoken_secret = \"api/token\"\n{MINIMAL}")).unwrap();
        let reference = config.http.token_secret.unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("api", "token")
        );
        let message = error(&format!(
            "[http]\ntoken_secret = \"plain-token-text\"\n{MINIMAL}"
        ));
        assert!(message.contains("NAME/KEY"), "{message}");
        assert!(!message.contains("plain-token-text"), "echoed: {message}");
    }

    #[test]
    fn no_views_is_refused() {
        assert!(error("").contains("`views`"));
    }

    #[test]
    fn inline_credentials_are_refused_without_echoing_them() {
        let text = MINIMAL.replace(
            "bootstrap_servers = \"localhost:9092\"",
            "bootstrap_servers = \"localhost:9092\"\nsettings = { \"sasl.password\" = \"hunter2\" }",
        );
        let message = error(&text);
        assert!(message.contains("sasl.password"), "{message}");
        assert!(!message.contains("hunter2"), "the secret leaked: {message}");
    }

    #[test]
    fn load_resolves_paths_against_the_file() {
        let dir = std::env::temp_dir().join(format!("projector-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("projector.toml");
        std::fs::write(&file, MINIMAL).unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.views[0].module, dir.join("customer_view.wasm"));
        assert_eq!(config.data_dir, dir.join("projector-data"));
        std::fs::remove_dir_all(&dir).ok();

        let err = Config::load(Path::new("/nonexistent/projector.toml")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/projector.toml"),
            "{err}"
        );
    }
}
