//! The projector runtime: runs WebAssembly projections over CloudEvents and
//! keeps the views they build.
//!
//! # Layout
//!
//! - [`engine`]: compiles projection components, checks them against the
//!   WIT world, and calls `apply` under a deadline, a memory cap and a stack
//!   limit, with typed errors for every guest failure.
//! - [`config`]: `projector.toml`, typed and validated, errors naming the key.
//! - [`decode`]: CloudEvents from Kafka records, binary and structured
//!   mode, with a typed reason for every invalid record.
//! - [`files`]: small files in the projector home, written atomically with
//!   a mode, and the file error that names the step and the path.
//! - [`http`]: the HTTP API: health, readiness, Prometheus metrics, view
//!   status, and the query API (rows, pages, index lookups, watch streams,
//!   read-your-writes).
//! - [`kafka`]: client settings (TLS, SASL), record access, CloudEvent
//!   headers, the acknowledged producer (publish, dead letters), topics,
//!   and connection checks that tell TLS, login and DNS failures apart.
//! - [`pipeline`]: one view's worker: consume, decode, apply, batch,
//!   commit, flush, commit offsets; where each delivery guarantee holds.
//! - [`secrets`]: named secrets on the local machine (mode 0600), the
//!   `NAME/KEY` references configs use, and a value type that never prints.
//! - [`service`]: every configured view on its own worker thread, started
//!   and stopped together.
//! - [`stored_broker`]: the broker config `projector config set broker`
//!   keeps in the projector home (the password only as a reference).
//! - [`store`]: view rows, index entries and checkpoints behind a trait;
//!   the sled backend commits each batch atomically.
//! - [`cli`]: the `projector` command line, one module per subcommand
//!   (`main.rs` only parses and reports errors).

pub mod apply;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decode;
pub mod deploy;
pub mod engine;
pub mod event;
pub mod failpoint;
pub mod files;
pub mod http;
pub mod kafka;
pub mod pipeline;
pub mod scenario;
pub mod secrets;
pub mod service;
pub mod shard;
pub mod shutdown;
pub mod store;
pub mod stored_broker;
