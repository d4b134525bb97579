//! Changelog topics against librdkafka's mock cluster: a view restored from
//! its changelog with an empty data directory equals the oracle and reads
//! no source record below its restored checkpoints; a changelog topic unfit
//! to be one is refused at start, named.

use std::collections::BTreeMap;
use std::time::Duration;

use projector::config::{ChangelogConfig, OnError};
use projector::engine::EngineConfig;
use projector::store::{POSITIONS_KEY, Store, ViewStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kit::{
    Broker, TempDir, checkpoint_sum, start, try_start, view, wait_applied, wait_for, wait_until,
};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

pub(crate) const CHANGELOG: &str = "projector-counter-changelog";

pub(crate) fn counter_view() -> projector::config::ViewConfig {
    let mut view = view(
        "counter",
        projector_examples::EVENT_COUNTER.path,
        &[TOPIC],
        OnError::Stop,
    );
    view.changelog = Some(ChangelogConfig {
        topic: None,
        replication: 1,
        standby_replicas: 0,
    });
    view
}

/// Wait until the view is restored and has joined its group: the restore
/// runs on the view's thread, before it joins.
fn wait_restored(status: &projector::pipeline::ViewStatus) {
    wait_for(
        status,
        Duration::from_secs(60),
        "restored and joined",
        |s| s.has_joined(),
    );
}

/// A changelog record: its key and value.
type Record = (Vec<u8>, Option<Vec<u8>>);

/// Every record of the changelog, read with a plain consumer: per
/// partition, `(key, value)` in offset order.
fn changelog_records(broker: &Broker, partitions: i32) -> BTreeMap<i32, Vec<Record>> {
    (0..partitions)
        .map(|partition| {
            let records = crate::kit::read_partition(broker, CHANGELOG, partition)
                .into_iter()
                .map(|(_, key, value)| (key, value))
                .collect();
            (partition, records)
        })
        .collect()
}

/// Per partition, `(key, value present)` in offset order.
fn read_changelog(broker: &Broker, partitions: i32) -> BTreeMap<i32, Vec<(Vec<u8>, bool)>> {
    changelog_records(broker, partitions)
        .into_iter()
        .map(|(partition, records)| {
            let records = records
                .into_iter()
                .map(|(key, value)| (key, value.is_some()))
                .collect();
            (partition, records)
        })
        .collect()
}

#[test]
fn a_view_restored_from_its_changelog_with_an_empty_data_directory_equals_the_oracle() {
    // The view has 2 shards (set in its config), its topic 4 partitions.
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 2)]);
    // With `dedup`: its identities are logged too, and must come back.
    let with_dedup = |mut view: projector::config::ViewConfig| {
        view.dedup = Some(projector::config::DedupConfig {
            by: "source-id".to_owned(),
            keep: "7d".to_owned(),
            time: "record".to_owned(),
        });
        view
    };
    let two_shards = || {
        let mut view = with_dedup(counter_view());
        view.shards = Some(2);
        view
    };
    let mut stream = Stream::default();
    // Half the subjects arrive on every partition, as an application with
    // one keyed and one unkeyed producer sends them.
    stream.publish(&broker, 3000, 60, 4, Partitioning::HalfMisplaced);
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let dir = TempDir::new("changelog");
    {
        // The first 3,000 events with the changelog off.
        let mut off = two_shards();
        off.changelog = None;
        let service = start(&broker, &dir, vec![off], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_applied(&status, 3000);
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    stream.publish(&broker, 1000, 60, 4, Partitioning::HalfMisplaced);
    {
        // Turned on: the whole view is logged first, then each batch.
        let service = start(&broker, &dir, vec![two_shards()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_applied(&status, 1000);
        wait_for(&status, Duration::from_secs(10), "checkpoints", |s| {
            checkpoint_sum(s) == 4000
        });
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    // The data directory is lost.
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    // What left the process: every shard's partition holds rows and ends
    // with its positions record.
    let logged = read_changelog(&broker, 2);
    let rows: usize = logged
        .values()
        .map(|records| records.iter().filter(|(k, _)| k.starts_with(b"r/")).count())
        .sum();
    assert!(
        rows >= 60,
        "the changelog holds {rows} row records for 60 subjects"
    );
    for (partition, records) in &logged {
        let last = records.last().map(|(key, _)| key.as_slice());
        assert_eq!(
            last,
            Some(POSITIONS_KEY),
            "partition {partition} ends with its positions record"
        );
    }

    // Restored with a config that names no shard count: a view new to the
    // store takes its changelog topic's, not its source topic's.
    let service = start(
        &broker,
        &dir,
        vec![with_dedup(counter_view())],
        EngineConfig::default(),
    );
    let status = service.statuses()["counter"].clone();
    wait_restored(&status);
    assert_eq!(
        service
            .store()
            .view_shards("counter")
            .unwrap()
            .map(|s| s.count()),
        Some(2)
    );
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
        let next: i64 = view.checkpoints().unwrap().iter().map(|(_, _, n)| n).sum();
        assert_eq!(next, 4000, "the checkpoints came back with the rows");
        assert_eq!(
            view.identities(i64::MIN).unwrap().len(),
            4000,
            "every event's identity came back"
        );
    }
    // A re-send of an event applied before the data directory was lost
    // is a duplicate: the restored identities are in use.
    stream.resend(&broker, 10, 60, 1);
    broker.flush();
    wait_for(&status, Duration::from_secs(10), "the re-send", |s| {
        s.counters().duplicates_by_id == 1
    });
    // New events continue the view, and nothing below the restored
    // checkpoints was read again.
    stream.publish(&broker, 400, 60, 4, Partitioning::HalfMisplaced);
    wait_applied(&status, 400);
    wait_for(&status, Duration::from_secs(10), "checkpoints", |s| {
        checkpoint_sum(s) == 4401
    });
    let counters = status.counters();
    assert_eq!(counters.applied, 400, "only the new events were applied");
    assert_eq!(counters.duplicates_by_id, 1);
    assert_eq!(
        counters.duplicates, 0,
        "no source record below a restored checkpoint was read"
    );
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    }
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn a_changelog_topic_with_another_partition_count_is_refused_at_start_naming_it() {
    // A view new to its store with no shard count in its config takes its
    // changelog topic's (a restore); one whose count is known, from its
    // store or its config, is refused.
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 3)]);
    let refused = |dir: &TempDir, view: projector::config::ViewConfig| {
        let Err(err) = try_start(&broker, dir, vec![view], EngineConfig::default()) else {
            panic!("a changelog topic of 3 partitions for 4 shards was taken");
        };
        let message = format!("{err:#}");
        assert!(
            message.contains(CHANGELOG)
                && message.contains("3 partitions")
                && message.contains("4 shards"),
            "{message}"
        );
    };
    // The store's: the view ran with the changelog off, 4 shards from its
    // topic, then it is turned on.
    let dir = TempDir::new("changelog-wrong");
    {
        let mut off = counter_view();
        off.changelog = None;
        let service = start(&broker, &dir, vec![off], EngineConfig::default());
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    refused(&dir, counter_view());
    // The config's: refused before the view's count is stored, so a
    // corrected config or changelog topic starts it.
    let dir = TempDir::new("changelog-wrong-config");
    let mut four = counter_view();
    four.shards = Some(4);
    refused(&dir, four);
    let store = projector::store::SledStore::open(&dir.0.join("store")).unwrap();
    assert_eq!(store.view_shards("counter").unwrap(), None);
}

/// What a plain consumer finds after each partition's last positions
/// record: the records of a batch a crash cut short.
fn records_after_the_last_positions(logged: &BTreeMap<i32, Vec<(Vec<u8>, bool)>>) -> usize {
    logged
        .values()
        .map(|records| {
            let last = records
                .iter()
                .rposition(|(key, _)| key == POSITIONS_KEY)
                .map_or(0, |at| at + 1);
            records.len() - last
        })
        .sum()
}

/// `projector run` with `config`, crashing at the failpoint `point` the
/// `at`th time it is reached; asserts that it did.
fn run_until_failpoint(
    config: &std::path::Path,
    log: &std::path::Path,
    point: &str,
    at: u32,
) -> String {
    let before = std::fs::read_to_string(log).unwrap_or_default().len();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PROJECTOR_FAILPOINT", format!("{point}:{at}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .unwrap();
    // A run that never reaches the point fails the test, never hangs it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the run did not reach {point} {at} times within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let written = std::fs::read_to_string(log).unwrap();
    assert!(
        !status.success() && written[before..].contains(&format!("failpoint {point}")),
        "the run did not crash at {point}: {status}; its log:\n{}",
        &written[before..]
    );
    written[before..].to_owned()
}

#[test]
fn crashes_between_the_changelog_and_the_store_lose_nothing_and_apply_nothing_twice() {
    use crate::crash::{committed, counter_view_of, spawn};
    use crate::kit::{free_port, sigterm, wait_until};
    let host = crate::restart::MockHost::start_with(&[(TOPIC, 4), (CHANGELOG, 4)]);
    let broker = Broker::at(host.bootstrap.clone()).application_producer();
    let mut stream = Stream::default();
    stream.publish(&broker, 3000, 60, 4, Partitioning::HalfMisplaced);
    let dir = TempDir::new("changelog-crash");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nstatic_membership = false\n\
             [http]\nbind = \"127.0.0.1:{port}\"\n\
             [broker]\nbootstrap_servers = \"{}\"\n\
             settings = {{ \"session.timeout.ms\" = \"6000\", \"heartbeat.interval.ms\" = \"500\", \"fetch.wait.max.ms\" = \"10\" }}\n\n\
             [[views]]\nname = \"counter\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             max_unassigned_ms = 3000\nchangelog = {{ replication = 1 }}\n",
            host.bootstrap,
            projector_examples::EVENT_COUNTER.path
        ),
    )
    .unwrap();
    let log = dir.0.join("runs.log");

    // A batch cut short: half its records in the changelog, then the crash.
    // A batch cut short: its records and the first shard's positions
    // record in the changelog, the other shards' positions not.
    // (3,000 events in batches of at most 1,000: a third batch comes.)
    run_until_failpoint(&config, &log, "changelog-partial", 3);
    let cut = records_after_the_last_positions(&read_changelog(&broker, 4));
    assert!(cut > 0, "the crash left no record after a positions record");
    stream.publish(&broker, 500, 60, 4, Partitioning::HalfMisplaced);
    // A batch in the changelog, not in the store.
    // The first batch of each run below: the 500 events published before
    // it may all go in one.
    let after_cut = run_until_failpoint(&config, &log, "changelog-logged", 1);
    assert!(
        after_cut.contains("logged again with the store's values"),
        "the start after the cut batch reverted nothing"
    );
    stream.publish(&broker, 500, 60, 4, Partitioning::HalfMisplaced);
    // A batch in both, its offsets not given to Kafka.
    let after_logged = run_until_failpoint(&config, &log, "store-flushed", 1);
    assert!(
        after_logged.contains("view restored from its changelog"),
        "the start after the batch logged but not stored restored nothing"
    );

    let mut child = spawn(&config, &log);
    wait_until("every event", Duration::from_secs(120), || {
        committed(&api) == Some(4000)
    });
    sigterm(&child);
    child.wait().unwrap();
    let discrepancies = oracle_discrepancies(&counter_view_of(&dir), &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    // Nothing after a positions record is left: the cut batch was reverted.
    assert_eq!(
        records_after_the_last_positions(&read_changelog(&broker, 4)),
        0
    );

    // The data directory lost: everything comes back from the changelog,
    // and no event is applied again.
    std::fs::remove_dir_all(dir.0.join("data")).unwrap();
    // The restore paused at its 100th record, to look at it from outside.
    let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PROJECTOR_FAILPOINT", "restore-record:100:4000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .unwrap();
    let views = || -> Option<serde_json::Value> {
        let mut response = ureq::get(&format!("{api}/v1/views")).call().ok()?;
        response.body_mut().read_json().ok()
    };
    wait_until(
        "the restore shows in /v1/views",
        Duration::from_secs(60),
        || {
            views().is_some_and(|report| {
                report["views"][0]["restoring"]["records"].as_u64() >= Some(1)
            })
        },
    );
    // Meanwhile: not ready, and a row that exists is a 503 with a
    // Retry-After, never a 404.
    let ready = ureq::get(&format!("{api}/readyz"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(ready.status(), 503);
    let mut ready = ready;
    let word = ready.body_mut().read_to_string().unwrap();
    assert!(word.contains("restoring"), "{word}");
    let mut row = ureq::get(&format!("{api}/v1/views/counter/rows/s-1"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(row.status(), 503);
    assert_eq!(
        row.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = row.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "restoring", "{body}");
    wait_until("the restored view", Duration::from_secs(120), || {
        committed(&api) == Some(4000)
    });
    assert!(views().is_some_and(|report| report["views"][0]["restoring"].is_null()));
    std::thread::sleep(Duration::from_secs(2));
    let mut response = ureq::get(&format!("{api}/v1/views")).call().unwrap();
    let report: serde_json::Value = response.body_mut().read_json().unwrap();
    assert_eq!(report["views"][0]["counters"]["applied"], 0, "{report}");
    sigterm(&child);
    child.wait().unwrap();
    let discrepancies = oracle_discrepancies(&counter_view_of(&dir), &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
}

/// Run an admin request against `broker`.
pub(crate) fn admin<T>(
    broker: &Broker,
    request: impl AsyncFnOnce(
        &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
        &rdkafka::admin::AdminOptions,
    ) -> T,
) -> T {
    let client: rdkafka::admin::AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let options =
        rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(request(&client, &options))
}

/// The cleanup policy the broker describes for `topic`.
fn cleanup_policy(broker: &Broker, topic: &str) -> Option<String> {
    admin(broker, async |client, options| {
        let described = client
            .describe_configs([&rdkafka::admin::ResourceSpecifier::Topic(topic)], options)
            .await
            .ok()?;
        described.into_iter().find_map(|resource| {
            resource
                .ok()?
                .get("cleanup.policy")?
                .value
                .clone()
                .map(|v| v.trim_matches('"').to_owned())
        })
    })
}

#[test]
fn on_tansu_a_view_comes_back_from_its_changelog_after_its_data_directory_and_source_topic_are_gone()
 {
    let broker = Broker::tansu(&[(TOPIC, 4)]).application_producer();
    let mut stream = Stream::default();
    stream.publish(&broker, 6000, 300, 4, Partitioning::HalfMisplaced);
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let dir = TempDir::new("changelog-tansu");
    {
        let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_applied(&status, 6000);
        wait_for(&status, Duration::from_secs(30), "checkpoints", |s| {
            checkpoint_sum(s) == 6000
        });
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    // The runtime made the changelog topic compacted, as the broker says.
    assert_eq!(
        cleanup_policy(&broker, CHANGELOG).as_deref(),
        Some("compact")
    );
    // The data directory is lost, and retention has emptied the source
    // topic: it is deleted and made again, empty.
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    admin(&broker, async |client, options| {
        for result in client.delete_topics(&[TOPIC], options).await.unwrap() {
            result.unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    admin(&broker, async |client, options| {
        let topic =
            rdkafka::admin::NewTopic::new(TOPIC, 4, rdkafka::admin::TopicReplication::Fixed(1));
        for result in client.create_topics([&topic], options).await.unwrap() {
            result.unwrap();
        }
    });

    // The fault took effect: the source topic holds nothing.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "watermarks")
        .create()
        .unwrap();
    for partition in 0..4 {
        let (_, high) = reader
            .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
            .unwrap();
        assert_eq!(high, 0, "{TOPIC}/{partition} still holds records");
    }

    // Restored on purpose, with the runtime stopped, by the CLI: the view
    // is new to the empty store, so it takes its shard count from its
    // changelog topic.
    let config_dir = TempDir::new("changelog-tansu-config");
    let config = config_dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[broker]\nbootstrap_servers = \"{}\"\n\n[[views]]\nname = \"counter\"\n\
             module = {:?}\ntopics = [\"{TOPIC}\"]\non_error = \"stop\"\nchangelog = {{ replication = 1 }}\n",
            dir.0.display().to_string(),
            broker.bootstrap(),
            projector_examples::EVENT_COUNTER.path,
        ),
    )
    .unwrap();
    // A changelog topic that does not exist is nothing to restore from:
    // refused, and not made.
    let mistyped = config_dir.0.join("mistyped.toml");
    std::fs::write(
        &mistyped,
        std::fs::read_to_string(&config).unwrap().replace(
            "changelog = { replication = 1 }",
            "changelog = { topic = \"no-such-changelog\", replication = 1 }",
        ),
    )
    .unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["view", "restore", "counter", "-c"])
        .arg(&mistyped)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("no-such-changelog does not exist on the broker"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let metadata_reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let metadata = metadata_reader
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(
        metadata
            .topics()
            .iter()
            .all(|t| t.name() != "no-such-changelog"),
        "the refused restore made the topic"
    );
    let restore = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["view", "restore", "counter", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&restore.stdout).into_owned()
        + &String::from_utf8_lossy(&restore.stderr);
    assert!(restore.status.success(), "{said}");
    assert!(
        said.contains("view counter restored from its changelog") && said.contains(", 300 rows"),
        "{said}"
    );
    // Each batch logged the rows it changed: many versions of each row,
    // of which the restore wrote the latest only.
    let figures = said
        .split("restored from its changelog: ")
        .nth(1)
        .unwrap_or_default();
    let number = |before: &str| -> u64 {
        figures
            .split(before)
            .next()
            .and_then(|head| head.split([' ', '(']).rfind(|word| !word.is_empty()))
            .and_then(|word| word.parse().ok())
            .unwrap_or_else(|| panic!("no figure before {before:?} in {said}"))
    };
    let (records, written) = (number(" records"), number(" entries written"));
    assert!(
        written >= 300 && written * 2 < records,
        "{records} records read, {written} written: {said}"
    );
    {
        let store = projector::store::SledStore::open(&dir.0.join("store")).unwrap();
        assert_eq!(
            store.view_shards("counter").unwrap().map(|s| s.count()),
            Some(4)
        );
        let view = store.open_view("counter", &hash, &[], None).unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
        assert_eq!(view.row_count(), 300);
    }
    // Again: nothing left to restore.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["view", "restore", "counter", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already up to its changelog; 300 rows"),
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );

    // A runtime started on the restored store serves it at once.
    let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_restored(&status);
    std::thread::sleep(Duration::from_secs(2));
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let discrepancies = oracle_discrepancies(&view, &stream);
        assert!(discrepancies.is_empty(), "{discrepancies:#?}");
        assert_eq!(view.row_count(), 300);
    }
    let counters = status.counters();
    assert_eq!(counters.applied, 0, "nothing was replayed");
    assert_eq!(counters.duplicates, 0, "no source record was read again");
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn on_tansu_a_changelog_topic_that_is_not_compacted_is_refused_at_start_naming_it() {
    let broker = Broker::tansu(&[(TOPIC, 4)]);
    admin(&broker, async |client, options| {
        let topic =
            rdkafka::admin::NewTopic::new(CHANGELOG, 4, rdkafka::admin::TopicReplication::Fixed(1))
                .set("cleanup.policy", "delete");
        for result in client.create_topics([&topic], options).await.unwrap() {
            result.unwrap();
        }
    });
    let dir = TempDir::new("changelog-delete");
    let Err(err) = try_start(&broker, &dir, vec![counter_view()], EngineConfig::default()) else {
        panic!("a changelog topic with cleanup.policy=delete was taken");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains(CHANGELOG) && message.contains("cleanup.policy=delete"),
        "{message}"
    );
}

/// The offsets group `group` committed on the source topic's 4 partitions,
/// read with a plain consumer.
fn group_committed(broker: &Broker, group: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..4 {
        list.add_partition(TOPIC, partition);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

#[test]
fn quarantined_records_come_back_from_the_changelog_with_their_order_and_failure() {
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 4)]);
    let mut stream = Stream::default();
    stream.publish(&broker, 1000, 40, 4, Partitioning::HalfMisplaced);
    // Records that are no CloudEvent, some with a key and some without:
    // held under the empty subject, each in its own shard's partition.
    broker.publish_not_events(TOPIC, 6, 4);
    let mut view_config = counter_view();
    view_config.on_error = OnError::Quarantine;
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let dir = TempDir::new("changelog-quarantine");
    let held = {
        let service = start(
            &broker,
            &dir,
            vec![view_config.clone()],
            EngineConfig::default(),
        );
        let status = service.statuses()["counter"].clone();
        wait_for(
            &status,
            Duration::from_secs(60),
            "every record taken",
            |s| checkpoint_sum(s) == 1006 && s.quarantined().1 == 6,
        );
        let held = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap()
            .quarantine_summaries()
            .unwrap();
        assert_eq!(service.stop()["counter"], Ok(()));
        held
    };
    assert_eq!(held.len(), 6);
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();

    let service = start(&broker, &dir, vec![view_config], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_restored(&status);
    let view = service
        .store()
        .open_view("counter", &hash, &[], None)
        .unwrap();
    assert_eq!(view.quarantine_summaries().unwrap(), held);
    assert_eq!(
        status.quarantined(),
        (1, 6),
        "the held subject and its records"
    );
    let discrepancies = oracle_discrepancies(&view, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    assert_eq!(service.stop()["counter"], Ok(()));
}

#[test]
fn no_offset_is_committed_past_a_batch_the_changelog_did_not_acknowledge() {
    use rdkafka::mocking::MockCoordinator;
    // The changelog's partitions on broker 2; the source topic and the
    // group on broker 1.
    let broker = Broker::with_brokers(2, &[(TOPIC, 4), (CHANGELOG, 4)]);
    for partition in 0..4 {
        broker
            .cluster()
            .partition_leader(TOPIC, partition, Some(1))
            .unwrap();
        broker
            .cluster()
            .partition_leader(CHANGELOG, partition, Some(2))
            .unwrap();
    }
    broker
        .cluster()
        .coordinator(MockCoordinator::Group("projector-counter".to_owned()), 1)
        .unwrap();
    let mut settings = broker.config();
    // A record the changelog does not take fails after 5 s, not 30.
    settings
        .settings
        .insert("message.timeout.ms".to_owned(), "5000".to_owned());
    let mut stream = Stream::default();
    stream.publish(&broker, 1000, 40, 4, Partitioning::HalfMisplaced);
    let hash = crate::kit::hash_of(&projector_examples::EVENT_COUNTER);
    let dir = TempDir::new("changelog-refused");
    let start = |dir: &TempDir| {
        crate::kit::try_start_on(
            &broker,
            &settings,
            dir,
            vec![counter_view()],
            EngineConfig::default(),
        )
        .expect("service starts")
    };
    let service = start(&dir);
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "the first events", |s| {
        checkpoint_sum(s) == 1000
    });
    wait_until("their offsets committed", Duration::from_secs(30), || {
        group_committed(&broker, "projector-counter")
            .values()
            .sum::<i64>()
            == 1000
    });
    // The changelog's broker goes down: it acknowledges nothing.
    broker.cluster().broker_down(2).unwrap();
    stream.publish(&broker, 500, 40, 4, Partitioning::HalfMisplaced);
    // The fault took effect: the view read the new events, could not log
    // them, and stopped, saying why.
    wait_for(&status, Duration::from_secs(90), "the view stopped", |s| {
        s.fatal_error().is_some()
    });
    let fatal = status.fatal_error().unwrap();
    assert!(fatal.contains("changelog"), "{fatal}");
    assert!(status.counters().applied > 1000, "the new events were read");
    // Nothing of the refused batches is in the store, nor in the group.
    {
        let view = service
            .store()
            .open_view("counter", &hash, &[], None)
            .unwrap();
        let stored: i64 = view.checkpoints().unwrap().iter().map(|(_, _, n)| n).sum();
        assert_eq!(stored, 1000, "the store took a batch the changelog refused");
    }
    assert_eq!(
        group_committed(&broker, "projector-counter")
            .values()
            .sum::<i64>(),
        1000,
        "an offset went past a batch the changelog refused"
    );
    assert!(service.stop()["counter"].is_err());

    // The broker is back: a restart applies the rest, once.
    broker.cluster().broker_up(2).unwrap();
    let service = start(&dir);
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "the rest", |s| {
        checkpoint_sum(s) == 1500
    });
    let view = service
        .store()
        .open_view("counter", &hash, &[], None)
        .unwrap();
    let discrepancies = oracle_discrepancies(&view, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
    assert_eq!(service.stop()["counter"], Ok(()));
}

/// The latest value of each key of the changelog, as compaction would
/// keep it, read with a plain consumer: per partition, key → value.
fn latest_per_key(broker: &Broker) -> BTreeMap<i32, BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
    changelog_records(broker, 4)
        .into_iter()
        .map(|(partition, records)| (partition, records.into_iter().collect()))
        .collect()
}

#[test]
fn a_changelog_another_module_built_is_refused_and_a_rebuild_resets_it() {
    let broker = Broker::new(&[(TOPIC, 4), (CHANGELOG, 4)]);
    let mut stream = Stream::default();
    stream.publish(&broker, 600, 40, 4, Partitioning::HalfMisplaced);
    let dir = TempDir::new("changelog-module");
    {
        let service = start(&broker, &dir, vec![counter_view()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_for(&status, Duration::from_secs(60), "every event", |s| {
            checkpoint_sum(s) == 600
        });
        assert_eq!(service.stop()["counter"], Ok(()));
    }
    // The data directory lost, and the view pointed at another module: the
    // restore refuses before it applies anything.
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut other = counter_view();
    other.module = projector_examples::ORDER_TOTALS.path.into();
    let other_hash = crate::kit::hash_of(&projector_examples::ORDER_TOTALS);
    {
        let service = start(&broker, &dir, vec![other.clone()], EngineConfig::default());
        let status = service.statuses()["counter"].clone();
        wait_for(&status, Duration::from_secs(60), "the refusal", |s| {
            s.fatal_error().is_some()
        });
        let fatal = status.fatal_error().unwrap();
        assert!(
            fatal.contains(CHANGELOG) && fatal.contains("built by module"),
            "{fatal}"
        );
        let view = service
            .store()
            .open_view("counter", &other_hash, &[], None)
            .unwrap();
        assert_eq!(view.row_count(), 0, "rows of the old module were restored");
        // Readers: the view failed, and its rows are never served from a
        // store restored in part or not at all.
        let api = crate::kit::Api::start(&service, None);
        let status_of = |path: &str| match ureq::get(&format!("{}{path}", api.base)).call() {
            Ok(response) => response.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(err) => panic!("{path}: {err}"),
        };
        assert_eq!(status_of("/v1/views/counter/rows/s-1"), 503);
        assert_eq!(status_of("/readyz"), 503);
        let mut views = ureq::get(&format!("{}/v1/views", api.base)).call().unwrap();
        let views: serde_json::Value = views.body_mut().read_json().unwrap();
        assert!(
            views["views"][0]["state"]
                .as_str()
                .is_some_and(|state| state.starts_with("failed")),
            "{views}"
        );
        drop(api);
        assert!(service.stop()["counter"].is_err());
    }

    // `projector view rebuild` with the new module resets the changelog:
    // what compaction keeps of it holds no row, and positions with no
    // checkpoint, of the new module.
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[broker]\nbootstrap_servers = \"{}\"\n\n\
             [[views]]\nname = \"counter\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             changelog = {{ replication = 1 }}\n",
            dir.0.display(),
            broker.bootstrap(),
            projector_examples::ORDER_TOTALS.path
        ),
    )
    .unwrap();
    let rebuild = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["view", "rebuild", "counter", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rebuild.status.success(), "{rebuild:?}");
    assert!(
        String::from_utf8_lossy(&rebuild.stdout).contains("40 entries removed"),
        "{rebuild:?}"
    );
    for (partition, keys) in latest_per_key(&broker) {
        for (key, value) in &keys {
            if key == POSITIONS_KEY {
                let positions =
                    projector::store::decode_positions(value.as_deref().unwrap()).unwrap();
                assert_eq!(positions.module, other_hash, "partition {partition}");
                assert!(positions.checkpoints.is_empty(), "partition {partition}");
            } else {
                assert_eq!(value, &None, "partition {partition} keeps {key:?}");
            }
        }
    }
    // The rebuilt view starts from nothing and replays its topic.
    let service = start(&broker, &dir, vec![other], EngineConfig::default());
    let status = service.statuses()["counter"].clone();
    wait_for(&status, Duration::from_secs(60), "the replay", |s| {
        checkpoint_sum(s) == 600
    });
    assert_eq!(
        status.counters().applied,
        600,
        "the rebuild replayed every event"
    );
    assert_eq!(service.stop()["counter"], Ok(()));
}
