//! The broker commands: `config set|get|test broker`, `topic create|list`
//! and `publish`, and the one place the CLI decides which broker a command
//! talks to (`--config FILE`'s `[broker]`, else the stored broker) and
//! resolves its password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::BaseRecord;

use super::Output;
use crate::config::{BrokerAuth, BrokerConfig, Config};
use crate::kafka::admin::{TopicSpec, create_topic};
use crate::kafka::{self, AckedProducer, OutgoingEvent, binary_headers};
use crate::secrets::{SecretRef, SecretStore};
use crate::stored_broker::{self, BrokerService, StoredBroker};

/// How long a broker command waits for the cluster.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The broker a command talks to: `config`'s `[broker]` when given, else
/// the stored broker; with its password resolved from the secret store.
pub fn broker_for(config: Option<&Path>) -> anyhow::Result<BrokerConfig> {
    let mut broker = match config {
        Some(path) => Config::load(path)?
            .broker
            .with_context(|| format!("{} has no [broker] table", path.display()))?,
        None => stored_broker::load(&crate::secrets::home()?)?.broker,
    };
    resolve(&mut broker)?;
    Ok(broker)
}

/// Resolve `broker`'s password from the secret store, when it needs one.
pub fn resolve(broker: &mut BrokerConfig) -> anyhow::Result<()> {
    if broker.auth == BrokerAuth::None {
        return Ok(());
    }
    let secrets = SecretStore::from_env()?;
    broker
        .resolve_password(&secrets)
        .context("the broker's password_secret")
}

/// Which broker: `--config FILE` or the stored one.
#[derive(Debug, Args)]
pub struct BrokerChoice {
    /// Use the `[broker]` of this projector.toml instead of the stored
    /// broker (`projector config set broker`).
    #[arg(
        short = 'c',
        long = "config",
        visible_alias = "config-file",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// Arguments of `projector config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `projector config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Store a setting.
    Set {
        /// What to set.
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Show a stored setting (secrets by reference only).
    Get {
        /// What to show.
        #[command(subcommand)]
        what: GetWhat,
    },
    /// Check a setting against the real thing.
    Test {
        /// What to check.
        #[command(subcommand)]
        what: TestWhat,
    },
}

/// What `config set` stores.
#[derive(Debug, Subcommand)]
pub enum SetWhat {
    /// The Kafka cluster `projector run`, `publish` and `topic` use.
    Broker(SetBrokerArgs),
}

/// What `config get` shows.
#[derive(Debug, Subcommand)]
pub enum GetWhat {
    /// The stored broker.
    Broker {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// What `config test` checks.
#[derive(Debug, Subcommand)]
pub enum TestWhat {
    /// Connect, authenticate and list metadata.
    Broker(BrokerChoice),
}

/// Arguments of `projector config set broker`.
#[derive(Debug, Args)]
pub struct SetBrokerArgs {
    /// The kind of service.
    #[arg(long, value_enum, default_value_t)]
    pub broker_service: BrokerService,
    /// How to authenticate.
    #[arg(long, value_enum, default_value = "none")]
    pub broker_auth: BrokerAuth,
    /// The SASL user (for Confluent Cloud, the API key).
    #[arg(long, value_name = "USER")]
    pub broker_user: Option<String>,
    /// The stored secret holding the password (for Confluent Cloud, the API
    /// secret), as NAME/KEY.
    #[arg(long, value_name = "NAME/KEY")]
    pub broker_password_secret: Option<SecretRef>,
    /// `host:port[,host:port...]`.
    #[arg(long, value_name = "HOST:PORT[,...]")]
    pub broker_bootstrap_servers: String,
    /// A PEM file of CA certificates to trust instead of the system's.
    #[arg(long, value_name = "PEM")]
    pub broker_ca_file: Option<PathBuf>,
    /// Use TLS. Default: on with authentication, off without.
    #[arg(long, value_name = "true|false")]
    pub broker_tls: Option<bool>,
    /// Free text for people.
    #[arg(long)]
    pub description: Option<String>,
}

/// Arguments of `projector topic`.
#[derive(Debug, Args)]
pub struct TopicArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// `projector topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Its name.
        name: String,
        /// Partitions.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Replicas per partition.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication: i32,
        /// A topic setting, KEY=VALUE (repeatable), such as
        /// retention.ms=604800000 (Kafka's own tools call it `--config`;
        /// here `-c/--config` is the projector.toml, as in every command).
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Which broker.
        #[command(flatten)]
        broker: BrokerChoice,
    },
    /// List topics and their partition counts.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        /// Which broker.
        #[command(flatten)]
        broker: BrokerChoice,
    },
}

/// Arguments of `projector publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// The event's `type`.
    #[arg(long = "type", value_name = "TYPE")]
    pub ty: String,
    /// The event's `source`.
    #[arg(long)]
    pub source: String,
    /// The event's `subject`; also the record key, so that one subject
    /// always lands on one partition.
    #[arg(long)]
    pub subject: Option<String>,
    /// The event's `id`. Default: a new random UUID-like id.
    #[arg(long)]
    pub id: Option<String>,
    /// The event's data, as JSON text.
    #[arg(long, conflicts_with = "data_file")]
    pub data: Option<String>,
    /// A file holding the event's data, as JSON.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
    /// Produce a structured-mode event (`application/cloudevents+json`)
    /// instead of binary mode.
    #[arg(long)]
    pub structured: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    /// Which broker.
    #[command(flatten)]
    pub broker: BrokerChoice,
}

/// Run `projector config`.
pub fn config(args: &ConfigArgs) -> anyhow::Result<()> {
    match &args.command {
        ConfigCommand::Set {
            what: SetWhat::Broker(set),
        } => {
            let stored = StoredBroker {
                service: set.broker_service,
                description: set.description.clone(),
                broker: BrokerConfig {
                    bootstrap_servers: set.broker_bootstrap_servers.clone(),
                    auth: set.broker_auth,
                    user: set.broker_user.clone(),
                    password_secret: set.broker_password_secret.clone(),
                    tls: set.broker_tls,
                    ca_file: set.broker_ca_file.clone(),
                    ..BrokerConfig::default()
                },
            };
            let path = stored_broker::save(&crate::secrets::home()?, &stored)?;
            println!("broker stored in {}", path.display());
            if let Some(reference) = &stored.broker.password_secret {
                // Say now, not at the first run, when the secret is missing.
                if let Err(err) = SecretStore::from_env().and_then(|s| s.resolve(reference)) {
                    eprintln!("warning: {err}");
                }
            }
        }
        ConfigCommand::Get {
            what: GetWhat::Broker { output },
        } => {
            let stored = stored_broker::load(&crate::secrets::home()?)?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&stored)?),
                Output::Text => print!("{}", toml::to_string_pretty(&stored)?),
            }
        }
        ConfigCommand::Test {
            what: TestWhat::Broker(choice),
        } => {
            let broker = broker_for(choice.config.as_deref())?;
            let info = kafka::connect::check(&broker, TIMEOUT)?;
            println!(
                "connected to {} ({}{}), {} broker(s), {} topic(s)",
                broker.bootstrap_servers,
                if broker.uses_tls() {
                    "TLS"
                } else {
                    "plaintext"
                },
                broker
                    .auth
                    .mechanism()
                    .map(|m| format!(", SASL {m} as {}", broker.user.as_deref().unwrap_or("")))
                    .unwrap_or_default(),
                info.brokers.len(),
                info.topics.len()
            );
            for broker in &info.brokers {
                println!("  broker {broker}");
            }
        }
    }
    Ok(())
}

fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Run `projector topic`.
pub fn topic(args: &TopicArgs) -> anyhow::Result<()> {
    match &args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication,
            settings,
            broker,
        } => {
            if !crate::config::is_topic_name(name) {
                anyhow::bail!(
                    "{name:?} is not a topic name (letters, digits, '.', '_', '-', at most 249)"
                );
            }
            let config = settings
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .with_context(|| format!("--config takes KEY=VALUE, got {pair:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let spec = TopicSpec {
                name: name.clone(),
                partitions: *partitions,
                replication: *replication,
                config,
            };
            let broker = broker_for(broker.config.as_deref())?;
            async_runtime()?.block_on(create_topic(&broker, &spec, TIMEOUT))?;
            println!("topic {name} created: {partitions} partition(s), replication {replication}");
        }
        TopicCommand::List { output, broker } => {
            let broker = broker_for(broker.config.as_deref())?;
            let info = kafka::connect::check(&broker, TIMEOUT)?;
            match output {
                Output::Json => {
                    let topics: Vec<_> = info
                        .topics
                        .iter()
                        .map(|(name, partitions)| {
                            serde_json::json!({ "name": name, "partitions": partitions })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(topics));
                }
                Output::Text => {
                    for (name, partitions) in &info.topics {
                        println!("{name}\t{partitions} partition(s)");
                    }
                }
            }
        }
    }
    Ok(())
}

/// A fresh event id: 128 random bits from the OS, as a UUID-shaped string.
fn new_id() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
        .context("cannot read /dev/urandom for an event id")?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Run `projector publish`: produce one CloudEvent and print where it
/// landed as a read-your-writes token, `topic:partition:offset`.
pub fn publish(args: &PublishArgs) -> anyhow::Result<()> {
    let data: Option<serde_json::Value> = match (&args.data, &args.data_file) {
        (Some(text), _) => Some(serde_json::from_str(text).context("--data is not JSON")?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
        (None, None) => None,
    };
    let id = match &args.id {
        Some(id) => id.clone(),
        None => new_id()?,
    };
    let broker = broker_for(args.broker.config.as_deref())?;
    let producer = AckedProducer::new(&broker).context("cannot create the producer")?;
    let (headers, payload) = if args.structured {
        let mut event = serde_json::json!({
            "specversion": "1.0",
            "id": id,
            "source": args.source,
            "type": args.ty,
        });
        if let Some(subject) = &args.subject {
            event["subject"] = subject.clone().into();
        }
        if let Some(data) = &data {
            event["datacontenttype"] = "application/json".into();
            event["data"] = data.clone();
        }
        let headers = OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "content-type",
            value: Some("application/cloudevents+json; charset=utf-8"),
        });
        (headers, Some(event.to_string().into_bytes()))
    } else {
        let headers = binary_headers(&OutgoingEvent {
            id: &id,
            source: &args.source,
            ty: &args.ty,
            subject: args.subject.as_deref(),
            datacontenttype: data.is_some().then_some("application/json"),
        });
        (headers, data.map(|data| data.to_string().into_bytes()))
    };
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&args.topic).headers(headers);
    if let Some(subject) = &args.subject {
        record = record.key(subject.as_bytes());
    }
    if let Some(payload) = &payload {
        record = record.payload(payload.as_slice());
    }
    let delivered = producer
        .send(record)
        .map_err(|err| producer.explain(&err))
        .with_context(|| format!("cannot publish to {}", args.topic))?;
    let token = format!(
        "{}:{}:{}",
        args.topic, delivered.partition, delivered.offset
    );
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "id": id,
                "topic": args.topic,
                "partition": delivered.partition,
                "offset": delivered.offset,
                "min_offsets": token,
            })
        ),
        Output::Text => println!("{token}"),
    }
    Ok(())
}
