//! `projector mock-broker`: librdkafka's mock cluster (the broker `projector
//! demo` embeds) as a process of its own, so that several `projector run`
//! processes, and other Kafka clients, can share it while it lives. It
//! prints `bootstrap HOST:PORT` on standard output, then serves until
//! SIGINT, SIGTERM or the end of its standard input.
//!
//! It keeps everything in memory, has no TLS or SASL, and is slow for large
//! volumes (about 15k records/s): a broker to try things with, and to test
//! against, never one to keep data in.

use std::io::{BufRead, Write};

use anyhow::Context;
use clap::Args;
use rdkafka::mocking::MockCluster;

/// Arguments of `projector mock-broker`.
#[derive(Debug, Args)]
pub struct MockBrokerArgs {
    /// A topic to create, as NAME:PARTITIONS; repeat for more.
    #[arg(long = "topic", value_name = "NAME:PARTITIONS", value_parser = parse_topic)]
    pub topics: Vec<(String, i32)>,
    /// Brokers in the cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub brokers: i32,
}

fn parse_topic(text: &str) -> Result<(String, i32), String> {
    let (name, partitions) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not NAME:PARTITIONS"))?;
    if !crate::config::is_topic_name(name) {
        return Err(format!("{name:?} is not a topic name"));
    }
    let partitions: i32 = partitions
        .parse()
        .ok()
        .filter(|p| (1..=1000).contains(p))
        .ok_or_else(|| format!("{partitions:?} is not a partition count from 1 to 1000"))?;
    Ok((name.to_owned(), partitions))
}

/// Run `projector mock-broker`.
pub fn run(args: &MockBrokerArgs) -> anyhow::Result<()> {
    let cluster = MockCluster::new(args.brokers).context("cannot start the mock cluster")?;
    for (topic, partitions) in &args.topics {
        cluster
            .create_topic(topic, *partitions, 1)
            .with_context(|| format!("cannot create topic {topic}"))?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "bootstrap {}", cluster.bootstrap_servers())?;
    stdout.flush()?;
    drop(stdout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let mut stdin = std::io::stdin().lock();
            while stdin.read_line(&mut line).is_ok_and(|read| read > 0) {
                line.clear();
            }
        });
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
            _ = terminate.recv() => {}
            _ = stdin_closed => {}
        }
        anyhow::Ok(())
    })?;
    drop(cluster);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_topic;

    #[test]
    fn topics_are_name_and_partitions() {
        assert_eq!(parse_topic("events:4"), Ok(("events".to_owned(), 4)));
        for bad in ["events", "events:0", "events:x", "bad topic:1", ":2"] {
            assert!(parse_topic(bad).is_err(), "{bad}");
        }
    }
}
