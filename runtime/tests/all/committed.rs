//! The group's committed offset never passes a record the view still holds
//! (a quarantined record, a dead letter the topic has not acknowledged), on
//! every path that commits: the batch commit, the assignment after a start
//! in the same data directory, a revocation when another member joins, the
//! clean stop, and after a SIGKILL. Read by an independent consumer of the
//! group (`committed()`), not from the runtime's own counters; the real
//! binary against librdkafka's mock cluster.
//!
//! `static_membership = false`: the mock cluster keeps a static member's
//! ghost until its session expires even after a clean stop (see `restart`),
//! and what is tested here is the commits, not the group's wait.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::crash::spawn;
use crate::kit::{Broker, KillOnDrop, TempDir, free_port, wait_until};

const TOPIC: &str = "held";
const PARTITIONS: i32 = 2;
/// Where the poison sits on partition 0.
const POISON: i64 = 200;
/// Records on each partition.
const RECORDS: i64 = 401;
const SMALL_LIMIT: usize = 2048;

/// The group's committed offsets, per partition, as a plain consumer of the
/// group reads them (`None`: nothing committed).
fn group_committed(broker: &Broker, group: &str) -> BTreeMap<i32, Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        tpl.add_partition(TOPIC, partition);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("the group's offsets can be read");
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Publish `RECORDS` ticks on each partition over a few subjects; on
/// partition 0 the record at `POISON` is for subject `p` and is refused
/// (`malformed` says how: no CloudEvent at all for the dead-letter view, a
/// row too large for the quarantine view), and `p` gets more records
/// before and after it (on partition 0 only, so that what is held behind
/// it does not depend on how the partitions' deliveries interleave).
fn publish(broker: &Broker, malformed: bool) {
    for partition in 0..PARTITIONS {
        for offset in 0..RECORDS {
            let id = format!("e-{partition}-{offset}");
            if partition == 0 && offset == POISON {
                if malformed {
                    broker.publish_raw(
                        TOPIC,
                        0,
                        Some(b"p"),
                        Some(b"not a cloud event"),
                        rdkafka::message::OwnedHeaders::new(),
                    );
                } else {
                    broker.publish(TOPIC, 0, "misbehave.huge-row", &id, Some("p"), b"5000");
                }
                continue;
            }
            let subject = if partition == 0 && offset % 7 == 0 {
                "p".to_owned()
            } else {
                format!("s-{}", offset % 5)
            };
            broker.publish(TOPIC, partition, "tick", &id, Some(&subject), b"{}");
        }
    }
    broker.flush();
}

fn config(dir: &TempDir, broker: &Broker, port: u16, policy: &str) -> std::path::PathBuf {
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nstatic_membership = false\n[http]\nbind = \"127.0.0.1:{port}\"\n\
             [engine]\nmax_row_bytes = {SMALL_LIMIT}\n\
             [broker]\nbootstrap_servers = \"{}\"\n\
             settings = {{ \"session.timeout.ms\" = \"6000\", \"heartbeat.interval.ms\" = \"500\", \"fetch.wait.max.ms\" = \"10\", \"message.timeout.ms\" = \"5000\" }}\n\n\
             [[views]]\nname = \"held\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             shards = 1\nmax_backoff_ms = 200\n{policy}",
            broker.bootstrap(),
            projector_examples::MISBEHAVING.path
        ),
    )
    .unwrap();
    config
}

fn view_report(api: &str) -> Option<serde_json::Value> {
    let mut response = ureq::get(&format!("{api}/v1/views")).call().ok()?;
    let report: serde_json::Value = response.body_mut().read_json().ok()?;
    Some(report["views"][0].clone())
}

/// The view's checkpoints, summed, once it reports them.
fn checkpoints(api: &str) -> Option<i64> {
    let view = view_report(api)?;
    Some(
        view["partitions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["checkpoint"].as_i64())
            .sum(),
    )
}

fn assigned(api: &str) -> Option<usize> {
    let view = view_report(api)?;
    Some(
        view["partitions"]
            .as_array()?
            .iter()
            .filter(|p| p["assigned"] == true)
            .count(),
    )
}

/// Start the runtime and wait until it took every record and owns every
/// partition.
fn run_to_the_end(config: &std::path::Path, log: &std::path::Path, api: &str) -> KillOnDrop {
    run_until(config, log, api, RECORDS * 2)
}

/// Start the runtime and wait until it took `total` records and owns every
/// partition.
fn run_until(config: &std::path::Path, log: &std::path::Path, api: &str, total: i64) -> KillOnDrop {
    let child = KillOnDrop(spawn(config, log));
    wait_until(
        "the view took every record and owns its partitions",
        Duration::from_secs(60),
        || checkpoints(api) == Some(total) && assigned(api) == Some(2),
    );
    child
}

/// Point the view at consumer group `group`, a new one: it has no offsets,
/// so what the next start commits on assignment is seen for itself.
fn use_group(config: &std::path::Path, group: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text: String = text
        .lines()
        .filter(|line| !line.starts_with("group = "))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(config, format!("{text}group = \"{group}\"\n")).unwrap();
}

/// Start the runtime in the new consumer group `group` and wait until its
/// assignment's commit arrived (partition 1 at `p1`: that commit alone
/// sets it, nothing is consumed); the group's offsets then.
fn start_in_new_group(
    broker: &Broker,
    group: &str,
    (config, log, api): (&std::path::Path, &std::path::Path, &str),
    (total, p1): (i64, i64),
) -> (KillOnDrop, BTreeMap<i32, Option<i64>>) {
    use_group(config, group);
    assert_eq!(
        group_committed(broker, group),
        BTreeMap::from([(0, None), (1, None)]),
        "a new group"
    );
    let child = run_until(config, log, api, total);
    wait_until("the assignment's commit", Duration::from_secs(30), || {
        group_committed(broker, group).get(&1) == Some(&Some(p1))
    });
    (child, group_committed(broker, group))
}

/// The same data directory in the new consumer group `group`: its
/// assignment commits the store's checkpoints, never past what is held;
/// then another member joins, so the revocation commits (synchronously,
/// before the newcomer gets its partition) and the assignment back. The
/// group's offsets are checked after each; the runtime is left running.
fn restart_and_rebalance(
    broker: &Broker,
    group: &str,
    files: (&std::path::Path, &std::path::Path, &str),
) -> KillOnDrop {
    let api = files.2;
    let (child, committed) = start_in_new_group(broker, group, files, (RECORDS * 2, RECORDS));
    assert_eq!(committed, expected(), "after the assignment of a restart");
    let during = rebalance(broker, group, api);
    assert_eq!(during, expected(), "after the revocation");
    assert_eq!(
        group_committed(broker, group),
        expected(),
        "after the assignment back"
    );
    child
}

/// What the tests expect of the group after each step: partition 0 held at
/// the poison, partition 1 at its end.
fn expected() -> BTreeMap<i32, Option<i64>> {
    BTreeMap::from([(0, Some(POISON)), (1, Some(RECORDS))])
}

/// A plain member joins the group: the runtime's partitions are revoked
/// (one goes to the newcomer) and, once it leaves, assigned back.
fn rebalance(broker: &Broker, group: &str, api: &str) -> BTreeMap<i32, Option<i64>> {
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    member.subscribe(&[TOPIC]).unwrap();
    wait_until(
        "the newcomer got a partition",
        Duration::from_secs(60),
        || {
            member.poll(Duration::from_millis(100));
            member.assignment().is_ok_and(|a| a.count() > 0)
        },
    );
    let during = group_committed(broker, group);
    // The newcomer leaves; the runtime gets its partitions back.
    drop(member);
    wait_until(
        "the runtime owns every partition again",
        Duration::from_secs(60),
        || assigned(api) == Some(2),
    );
    during
}

#[test]
fn the_committed_offset_never_passes_a_quarantined_record() {
    const MORE: i64 = 20_000;
    let broker = Broker::new(&[(TOPIC, PARTITIONS)]);
    publish(&broker, false);
    let dir = TempDir::new("committed-quarantine");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let config = config(&dir, &broker, port, "on_error = \"quarantine\"\n");
    let group = "projector-held";

    // The first run holds `p` from the poison on; the group stops there.
    let child = run_to_the_end(&config, &log, &api);
    let held = view_report(&api).unwrap()["quarantined_records"]
        .as_u64()
        .unwrap();
    assert!(
        held > 1,
        "the poison and the records of p behind it are held: {held}"
    );
    assert!(child.stop());
    assert_eq!(
        group_committed(&broker, group),
        expected(),
        "after the first clean stop"
    );

    let group = "projector-held-again";
    let child = restart_and_rebalance(&broker, group, (&config, &log, &api));
    assert!(child.stop());
    assert_eq!(
        group_committed(&broker, group),
        expected(),
        "after the second clean stop"
    );

    // A SIGKILL while records are being applied (confirmed from the API):
    // the group keeps what was committed, never past the held record.
    for offset in 0..MORE {
        let subject = format!("s-{}", offset % 5);
        broker.publish(
            TOPIC,
            1,
            "tick",
            &format!("more-{offset}"),
            Some(&subject),
            b"{}",
        );
    }
    broker.flush();
    let total = RECORDS * 2 + MORE;
    let child = KillOnDrop(spawn(&config, &log));
    wait_until("mid-stream", Duration::from_secs(60), || {
        checkpoints(&api).is_some_and(|taken| taken > RECORDS * 2 + 100 && taken < total)
    });
    child.kill();
    let after_kill = group_committed(&broker, group);
    assert_eq!(after_kill[&0], Some(POISON), "after a SIGKILL mid-stream");
    assert!(
        after_kill[&1].is_some_and(|p1| (RECORDS..=RECORDS + MORE).contains(&p1)),
        "{after_kill:?}"
    );
    let child = run_until(&config, &log, &api, total);
    wait_until("the last batch's commit", Duration::from_secs(30), || {
        group_committed(&broker, group).get(&1) == Some(&Some(RECORDS + MORE))
    });
    assert_eq!(
        group_committed(&broker, group)[&0],
        Some(POISON),
        "after the start that followed the SIGKILL"
    );
    assert_eq!(
        view_report(&api).unwrap()["quarantined_records"].as_u64(),
        Some(held),
        "still held, none lost, none held twice"
    );

    // Discarded (the view has no dead-letter topic: dropped, logged by
    // origin), the held records no longer hold the group back.
    let discard = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["view", "discard", "held", "p", "--api", &api])
        .output()
        .unwrap();
    assert!(discard.status.success(), "{discard:?}");
    assert!(
        String::from_utf8_lossy(&discard.stdout)
            .contains(&format!("{held} records discarded (dropped")),
        "{discard:?}"
    );
    wait_until(
        "the offset past the discarded records",
        Duration::from_secs(30),
        || group_committed(&broker, group).get(&0) == Some(&Some(RECORDS)),
    );
    assert_eq!(view_report(&api).unwrap()["quarantined_records"], 0);
    assert!(child.stop());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("quarantined record discarded")
            && logged.contains(&format!("{TOPIC}/0@{POISON}")),
        "each dropped record is logged by origin"
    );
}

#[test]
fn the_committed_offset_never_passes_a_dead_letter_not_yet_acknowledged() {
    let broker = Broker::new(&[(TOPIC, PARTITIONS), ("held-dlq", 1)]);
    publish(&broker, true);
    // From now on the broker refuses every produce request: the dead letter
    // stays held.
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 100_000],
    );
    let dir = TempDir::new("committed-dead-letter");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let config = config(
        &dir,
        &broker,
        port,
        "on_error = \"dead-letter\"\ndead_letter_topic = \"held-dlq\"\nmax_attempts = 100\n",
    );
    let group = "projector-held";

    let child = run_to_the_end(&config, &log, &api);
    // The fault took effect: the dead letter is held, refused.
    wait_until("the dead letter refused", Duration::from_secs(30), || {
        view_report(&api)
            .is_some_and(|v| v["dead_letters_held"] == 1 && v["counters"]["dead_lettered"] == 0)
    });
    assert!(child.stop());
    assert_eq!(
        group_committed(&broker, group),
        expected(),
        "after the first clean stop"
    );

    let group = "projector-held-again";
    let child = restart_and_rebalance(&broker, group, (&config, &log, &api));
    child.kill();
    assert_eq!(
        group_committed(&broker, group),
        expected(),
        "after a SIGKILL"
    );

    // The topic takes records again: the dead letter is delivered, and
    // only then does the group's offset move past it.
    broker
        .cluster()
        .clear_request_errors(RDKafkaApiKey::Produce);
    let child = run_to_the_end(&config, &log, &api);
    wait_until(
        "the dead letter acknowledged",
        Duration::from_secs(60),
        || {
            view_report(&api).is_some_and(|v| v["dead_letters_held"] == 0)
                && group_committed(&broker, group)
                    == BTreeMap::from([(0, Some(RECORDS)), (1, Some(RECORDS))])
        },
    );
    assert!(child.stop());
}
