//! `projector demo`: the whole flow in one command, with nothing to install.
//!
//! It starts an in-process Kafka-protocol broker (librdkafka's mock
//! cluster), creates a partitioned topic and a dead-letter topic, runs the
//! built-in `customer-view` projection as a view with
//! `on_error = "dead-letter"`, produces a realistic stream of customer events
//! (creates, renames, address changes, some deletes) with a few malformed
//! records among them, waits until every record is applied or
//! dead-lettered, and prints the counters and some rows. With `--serve` it
//! then keeps serving the HTTP API (query, watch, status, metrics) over the
//! view until interrupted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::ClientConfig;
use rdkafka::message::OwnedHeaders;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use super::run::open;
use crate::config::{BrokerConfig, Config, IndexConfig, OnError, ViewConfig};
use crate::http::{self, ApiState};
use crate::kafka::{OutgoingEvent, binary_headers};
use crate::pipeline::BatchLimits;
use crate::service::Service;
use crate::store::ViewStore;

const TOPIC: &str = "customers";
const DEAD_LETTER_TOPIC: &str = "customers-dlq";
const PARTITIONS: i32 = 4;

/// Arguments of `projector demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many customers the sample stream creates.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub customers: u32,
    /// Rows to print at the end.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
    /// Keep the data directory (default: a fresh one, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// After the run, keep serving the HTTP API (query, watch, status,
    /// metrics) until interrupted.
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_name = "ADDR",
        requires = "serve"
    )]
    pub bind: std::net::SocketAddr,
}

/// One sample record.
struct Sample {
    subject: String,
    ty: &'static str,
    data: Vec<u8>,
    malformed: bool,
}

/// A deterministic stream: every customer is created; every third is
/// renamed, every second moves, every tenth is deleted; two creations carry
/// data of the wrong shape and three records are not CloudEvents at all.
fn samples(customers: u32) -> Vec<Sample> {
    const FIRST: [&str; 8] = [
        "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John",
    ];
    const LAST: [&str; 6] = [
        "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth",
    ];
    const CITIES: [&str; 5] = ["London", "Zurich", "Oslo", "Lisbon", "Kyoto"];
    let json = |value: serde_json::Value| value.to_string().into_bytes();
    let mut samples = Vec::new();
    for i in 0..customers as usize {
        let subject = format!("customer-{i:05}");
        let name = format!("{} {}", FIRST[i % FIRST.len()], LAST[i % LAST.len()]);
        let event = |ty, data| Sample {
            subject: subject.clone(),
            ty,
            data,
            malformed: false,
        };
        samples.push(event(
            "com.example.CustomerCreated",
            json(serde_json::json!({
                "email": format!("{}.{i}@example.com", FIRST[i % FIRST.len()].to_lowercase()),
                "name": name,
            })),
        ));
        if i % 3 == 0 {
            samples.push(event(
                "com.example.CustomerNameChanged",
                json(serde_json::json!({"newName": format!("{name} (verified)")})),
            ));
        }
        if i % 2 == 0 {
            samples.push(event(
                "com.example.CustomerAddressChanged",
                json(serde_json::json!({"newAddress": {
                    "street": format!("{} Main Street", i + 1),
                    "city": CITIES[i % CITIES.len()],
                }})),
            ));
        }
        if i % 10 == 9 {
            samples.push(event("com.example.CustomerDeleted", Vec::new()));
        }
    }
    for bad in 0..2 {
        samples.push(Sample {
            subject: format!("broken-{bad}"),
            ty: "com.example.CustomerCreated",
            data: json(serde_json::json!({"name": 42})),
            malformed: false,
        });
    }
    for junk in 0..3 {
        samples.push(Sample {
            subject: format!("legacy-{junk}"),
            ty: "",
            data: format!("legacy record {junk}, not a CloudEvent").into_bytes(),
            malformed: true,
        });
    }
    samples
}

fn produce(
    producer: &ThreadedProducer<DefaultProducerContext>,
    samples: &[Sample],
) -> anyhow::Result<()> {
    for (n, sample) in samples.iter().enumerate() {
        let id = format!("demo-{n}");
        let headers = if sample.malformed {
            OwnedHeaders::new()
        } else {
            binary_headers(&OutgoingEvent {
                id: &id,
                source: "/projector/demo",
                ty: sample.ty,
                subject: Some(&sample.subject),
                datacontenttype: (!sample.data.is_empty()).then_some("application/json"),
            })
        };
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(TOPIC)
            .key(sample.subject.as_str())
            .headers(headers);
        if !sample.data.is_empty() {
            record = record.payload(&sample.data);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err).context("cannot produce a sample record"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("the broker did not acknowledge the sample records")
}

/// Serve the API over `service` until SIGINT or SIGTERM.
fn serve(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    service: &Service,
    bind: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let state = ApiState::for_service(service);
    let base = format!("http://{bind}");
    println!("\nserving the API at {base} until Ctrl-C");
    println!(
        "  open {base}/console in a browser: the view, its partitions, failures and rows, live"
    );
    println!("or try:");
    for example in [
        "/v1/views".to_owned(),
        "/v1/views/customers/rows/customer-00001".to_owned(),
        "/v1/views/customers/rows?prefix=customer-0001&limit=3".to_owned(),
        "/v1/views/customers/rows?index=by_city&eq=Oslo&limit=3".to_owned(),
        "/v1/views/customers/rows/customer-00001/watch".to_owned(),
    ] {
        println!("  curl -s '{base}{example}'");
    }
    println!("  projector query customers customer-00001 --api {base}");
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        };
        http::serve(listener, state, stop)
            .await
            .context("the HTTP server failed")
    })?;
    println!("stopped serving");
    Ok(())
}

/// Run `projector demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1).context("cannot start the in-process broker")?;
    cluster
        .create_topic(TOPIC, PARTITIONS, 1)
        .context("cannot create the demo topic")?;
    cluster
        .create_topic(DEAD_LETTER_TOPIC, 1, 1)
        .context("cannot create the dead-letter topic")?;
    let bootstrap = cluster.bootstrap_servers();
    println!("projector demo");
    println!(
        "  broker   in-process Kafka-protocol broker (librdkafka mock cluster) at {bootstrap}"
    );
    println!("  topics   {TOPIC} ({PARTITIONS} partitions), dead letters to {DEAD_LETTER_TOPIC}");

    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("projector-demo-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let example = &projector_examples::CUSTOMER_VIEW;
    let module = data_dir.join("customer_view.wasm");
    std::fs::write(&module, example.wasm)
        .with_context(|| format!("cannot write {}", module.display()))?;

    let broker = BrokerConfig {
        bootstrap_servers: bootstrap.clone(),
        settings: [("fetch.wait.max.ms".to_owned(), "10".to_owned())].into(),
        ..BrokerConfig::default()
    };
    let config = Config {
        data_dir: data_dir.clone(),
        broker: Some(broker.clone()),
        engine: crate::engine::EngineConfig::default(),
        http: crate::config::HttpConfig::default(),
        views: vec![ViewConfig {
            name: "customers".to_owned(),
            module,
            topics: vec![TOPIC.to_owned()],
            group: None,
            on_error: OnError::DeadLetter,
            dead_letter_topic: Some(DEAD_LETTER_TOPIC.to_owned()),
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 5000,
            subject_from_key: false,
            indexes: vec![
                IndexConfig {
                    name: "by_email".to_owned(),
                    pointer: "/email".to_owned(),
                },
                IndexConfig {
                    name: "by_city".to_owned(),
                    pointer: "/address/city".to_owned(),
                },
            ],
            group_instance_id: None,
            max_unassigned_ms: 30_000,
            shards: None,
            dedup: None,
            changelog: None,
            role: crate::config::Role::Owner,
        }],
        static_membership: true,
        instance_id: None,
        deploy: crate::config::DeployConfig::default(),
    };
    config.validate()?;
    // Bind first: a port in use fails the demo before anything runs.
    let server = if args.serve {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let listener = runtime.block_on(http::bind(args.bind))?;
        Some((runtime, listener))
    } else {
        None
    };
    let (engine, store) = open(&config)?;
    let service = Service::start(&config, &broker, &engine, store, BatchLimits::default())?;
    println!("  view     customers: the customer-view example, on_error = dead-letter");

    let samples = samples(args.customers);
    let malformed = samples
        .iter()
        .filter(|s| s.malformed || s.subject.starts_with("broken"))
        .count();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .create()
        .context("cannot create the sample producer")?;
    println!(
        "\nproducing {} records for {} customers ({malformed} of them malformed)...",
        samples.len(),
        args.customers
    );
    let started = Instant::now();
    produce(&producer, &samples)?;

    let status = std::sync::Arc::clone(&service.statuses()["customers"]);
    let total = u64::try_from(samples.len()).unwrap_or(u64::MAX);
    let mut last_report = Instant::now();
    loop {
        let counters = status.counters();
        let handled = counters.applied + counters.dead_lettered + counters.skipped;
        // Handled is not yet durable: wait until the checkpoints (the next
        // offsets, from 0 on every partition) cover every record, so the
        // rows below are the committed ones.
        let durable: i64 = status
            .partitions()
            .values()
            .filter_map(|p| p.checkpoint)
            .sum();
        if handled >= total && u64::try_from(durable).unwrap_or(0) >= total {
            break;
        }
        if let Some(error) = status.fatal_error() {
            anyhow::bail!("the view stopped: {error}");
        }
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("timed out: {handled} of {total} records handled after two minutes");
        }
        if last_report.elapsed() > Duration::from_millis(500) {
            println!("  ... {handled} / {total} records handled");
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let counters = status.counters();
    println!(
        "done in {:.2} s: {} applied, {} dead-lettered, {} batches committed",
        elapsed.as_secs_f64(),
        counters.applied,
        counters.dead_lettered,
        counters.batches
    );
    for ((topic, partition), state) in status.partitions() {
        println!(
            "  {topic}/{partition}: checkpoint {} {}",
            state.checkpoint.unwrap_or(0),
            state
                .last_error
                .map(|e| format!("(last error: {e})"))
                .unwrap_or_default()
        );
    }

    let view = &service.views().live()[0].rows;
    let rows = view.scan("", None, usize::MAX)?;
    println!(
        "\n{} customer rows (deleted customers have none); the first {}:",
        rows.len(),
        args.show.min(rows.len())
    );
    for (subject, row) in rows.iter().take(args.show) {
        let pretty: serde_json::Value = serde_json::from_str(&row.json)?;
        println!("  {subject} (version {}): {pretty}", row.version);
    }

    if let Some((runtime, listener)) = server {
        serve(&runtime, listener, &service, args.bind)?;
    }
    let ended = service.stop();
    if temporary {
        std::fs::remove_dir_all(&data_dir).ok();
    } else {
        println!("\nthe store is kept in {}", data_dir.display());
    }
    if let Some(Err(err)) = ended.get("customers") {
        anyhow::bail!("the view ended with an error: {err}");
    }
    Ok(())
}
