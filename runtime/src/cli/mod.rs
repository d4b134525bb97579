//! The `projector` command line: argument parsing and one module per
//! subcommand. Each subcommand returns `anyhow::Result`; `main` prints the
//! error chain and exits non-zero.

pub mod broker;
pub mod client;
pub mod compile;
pub mod demo;
pub mod deploy;
pub mod inspect;
pub mod mock_broker;
pub mod new;
pub mod query;
pub mod run;
pub mod secret;
pub mod status;
pub mod test;
pub mod view;

use clap::{Parser, Subcommand, ValueEnum};

/// Projector: WebAssembly view projections fed from Kafka.
#[derive(Debug, Parser)]
#[command(name = "projector", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the views of a projector.toml until SIGINT or SIGTERM.
    Run(run::RunArgs),
    /// See the whole flow with nothing installed: an in-process broker, the
    /// customer-view example, sample events, and the resulting rows.
    Demo(demo::DemoArgs),
    /// Show how each view and partition of a running runtime stands.
    Status(status::StatusArgs),
    /// Manage a view: rebuild its stored state or restore it from its
    /// changelog (the runtime stopped), list, release and discard its
    /// quarantine (the runtime running).
    View(view::ViewArgs),
    /// Check a projection component against the WIT world and describe it.
    Inspect(inspect::InspectArgs),
    /// Scaffold a projection project (Rust, TypeScript, JavaScript or
    /// Python) in a new directory,
    /// ready to test and build.
    New(new::NewArgs),
    /// Test a built component through the real engine: over CloudEvents
    /// from a file (checked against expected rows), or over scenario files.
    Test(test::TestArgs),
    /// Read rows of a running runtime's view: one by subject, a page, or by
    /// index value.
    Query(query::QueryArgs),
    /// Follow one row of a running runtime's view: the row, then every
    /// change, until interrupted.
    Watch(query::WatchArgs),
    /// Manage named secrets (values never printed).
    Secret(secret::SecretArgs),
    /// Store, show and check settings: the broker.
    Config(broker::ConfigArgs),
    /// Create and list topics.
    Topic(broker::TopicArgs),
    /// Publish one CloudEvent; prints `topic:partition:offset`, the
    /// read-your-writes token for the query API.
    Publish(broker::PublishArgs),
    /// Serve an in-memory Kafka-protocol broker (librdkafka's mock cluster)
    /// until stopped, for trying things and for tests; prints its address.
    MockBroker(mock_broker::MockBrokerArgs),
}

/// `err` and its causes on one line, each cause once: a cause whose text
/// its error already ends with (many errors show their source in their own
/// message) is not repeated.
pub fn describe_error(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// A command that did part of what it was asked and says what is left:
/// the binary exits with status 2 (1 is a failure that did nothing, such
/// as an unreachable runtime).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

/// The exit status for `err`: 2 when the command was [`Incomplete`], else 1.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<Incomplete>().is_some() {
        2
    } else {
        1
    }
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable by people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Status(args) => status::run(&args),
        Command::View(args) => view::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Test(args) => test::run(&args),
        Command::New(args) => new::run(&args),
        Command::Query(args) => query::query(&args),
        Command::Watch(args) => query::watch(&args),
        Command::Secret(args) => secret::run(&args),
        Command::Config(args) => broker::config(&args),
        Command::Topic(args) => broker::topic(&args),
        Command::Publish(args) => broker::publish(&args),
        Command::MockBroker(args) => mock_broker::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        // Catches clashing option names and bad defaults in every subcommand.
        super::Cli::command().debug_assert();
    }

    /// `-c/--config FILE` is the projector.toml in every command that
    /// takes one.
    #[test]
    fn config_means_the_config_file_everywhere() {
        use clap::Parser;
        let file = |args: &[&str]| -> Option<std::path::PathBuf> {
            let cli = super::Cli::try_parse_from(args).expect("parses");
            match cli.command {
                super::Command::Run(run) => Some(run.config),
                super::Command::Publish(publish) => publish.broker.config,
                super::Command::Topic(topic) => match topic.command {
                    super::broker::TopicCommand::Create {
                        broker, settings, ..
                    } => {
                        assert_eq!(settings, ["retention.ms=1"]);
                        broker.config
                    }
                    super::broker::TopicCommand::List { broker, .. } => broker.config,
                },
                super::Command::Status(status) => status.api.config,
                other => panic!("not a command with a config: {other:?}"),
            }
        };
        let publish = [
            "projector",
            "publish",
            "--topic",
            "t",
            "--type",
            "T",
            "--source",
            "s",
        ];
        for flag in ["-c", "--config", "--config-file"] {
            for args in [
                &["projector", "run"][..],
                &publish,
                &["projector", "topic", "list"],
                &[
                    "projector",
                    "topic",
                    "create",
                    "t",
                    "--setting",
                    "retention.ms=1",
                ],
                &["projector", "status"],
            ] {
                // The broker commands' former long form, kept as an alias.
                if flag == "--config-file" && matches!(args[1], "run" | "status") {
                    continue;
                }
                let with = [args, &[flag, "p.toml"]].concat();
                assert_eq!(file(&with), Some("p.toml".into()), "{with:?}");
            }
        }
    }

    #[test]
    fn a_cause_is_told_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let read = crate::engine::LoadError::Read {
            path: "/tmp/x.wasm".into(),
            source: io,
        };
        let err = anyhow::Error::new(read).context("view customers");
        assert_eq!(
            super::describe_error(&err),
            "view customers: cannot read module /tmp/x.wasm: No such file or directory"
        );
    }
}
