//! Standby copies on tansu: a second runtime with `role = "standby"` keeps
//! a copy of a view by following its changelog, equal to its owner's once
//! its lag is 0; it applies only whole batches, counts what it lacks as
//! lag, answers reads marked with that lag, and refuses writes.

use std::collections::BTreeMap;
use std::time::Duration;

use projector::config::{OnError, Role, ViewConfig};
use projector::engine::EngineConfig;
use projector::pipeline::status::StandbyState;
use projector::service::Service;
use projector::store::{POSITIONS_KEY, ViewStore};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::changelog::{CHANGELOG, counter_view};
use crate::kit::{
    Api, Broker, TempDir, checkpoint_sum, read_partition, start, wait_for, wait_until,
};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

/// The counter view with a changelog, quarantining what it cannot apply,
/// expecting one standby.
fn owned_view() -> ViewConfig {
    let mut view = counter_view();
    view.on_error = OnError::Quarantine;
    if let Some(changelog) = view.changelog.as_mut() {
        changelog.standby_replicas = 1;
    }
    view
}

/// The same view, as a standby copy.
fn standby_view() -> ViewConfig {
    let mut view = owned_view();
    view.role = Role::Standby;
    view
}

/// A standby of the view started on `dir`, once its lag is 0, with how it
/// stands then.
fn start_standby(broker: &Broker, dir: &TempDir, what: &str) -> (Service, StandbyState) {
    let standby = start(broker, dir, vec![standby_view()], EngineConfig::default());
    wait_until(what, Duration::from_secs(60), || {
        lag_of(&standby) == Some(0)
    });
    let state = standby.views().live()[0].status.standby_state().unwrap();
    (standby, state)
}

/// Every row of the view `service` runs: subject, JSON, version and last
/// event id.
fn rows_of(service: &Service) -> Vec<(String, String, u64, String)> {
    let view = service.views().live()[0].clone();
    view.rows
        .scan("", None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(subject, row)| (subject, row.json, row.version, row.last_event_id))
        .collect()
}

fn checkpoints_of(service: &Service) -> Vec<(String, i32, i64)> {
    service.views().live()[0].rows.checkpoints().unwrap()
}

/// The standby's lag, once it has looked.
fn lag_of(service: &Service) -> Option<i64> {
    let view = service.views().live()[0].clone();
    let state = view.status.standby_state()?;
    state.followed_at.map(|_| state.lag())
}

#[test]
fn on_tansu_a_standby_copy_equals_its_owner_once_its_lag_is_zero_and_applies_only_whole_batches() {
    let broker = Broker::tansu(&[(TOPIC, 4)]).application_producer();
    let mut stream = Stream::default();
    stream.publish(&broker, 3000, 200, 4, Partitioning::HalfMisplaced);
    // The changelog topic made by hand, compacted, with tombstones kept
    // 10 s: a standby that last followed longer ago copies it afresh.
    crate::changelog::admin(&broker, async |client, options| {
        let topic =
            rdkafka::admin::NewTopic::new(CHANGELOG, 4, rdkafka::admin::TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("delete.retention.ms", "10000");
        for result in client.create_topics([&topic], options).await.unwrap() {
            result.unwrap();
        }
    });
    let owner_dir = TempDir::new("standby-owner");
    let standby_dir = TempDir::new("standby-copy");
    let owner = start(
        &broker,
        &owner_dir,
        vec![owned_view()],
        EngineConfig::default(),
    );
    let owner_status = owner.statuses()["counter"].clone();
    wait_for(
        &owner_status,
        Duration::from_secs(60),
        "the first events applied",
        |s| checkpoint_sum(s) == 3000,
    );
    // The owner started with 3,000 events waiting: full batches were sent
    // to the changelog and committed at the next commit, their
    // acknowledgement waited for while the next one applied. The copies
    // below equal the oracle all the same.
    assert!(
        owner_status.counters().batches_overlapped > 0,
        "{:?}",
        owner_status.counters()
    );

    // The standby starts while the owner runs, and follows it live.
    let standby = start(
        &broker,
        &standby_dir,
        vec![standby_view()],
        EngineConfig::default(),
    );
    let standby_api = Api::start(&standby, None);
    let owner_api = Api::start(&owner, None);
    stream.publish(&broker, 3000, 200, 4, Partitioning::HalfMisplaced);
    // Records that are no CloudEvent (after the stream's, whose offsets the
    // oracle knows): held in quarantine by the owner, and held records are
    // part of what a standby copies.
    broker.publish_not_events(TOPIC, 6, 4);
    wait_for(
        &owner_status,
        Duration::from_secs(60),
        "every event applied",
        |s| checkpoint_sum(s) == 6006,
    );
    let caught_up = |owner: &Service, standby: &Service| {
        wait_until("the standby's lag is 0", Duration::from_secs(60), || {
            lag_of(standby) == Some(0) && checkpoints_of(standby) == checkpoints_of(owner)
        });
    };
    caught_up(&owner, &standby);
    // The owner hears its standby through the standby directory, caught
    // up too.
    wait_until(
        "the owner hears its standby",
        Duration::from_secs(30),
        || {
            let (_, views) = owner_api.get("/v1/views");
            let standbys = &views["views"][0]["standbys"];
            standbys["expected"] == 1
                && standbys["heard"]
                    .as_array()
                    .is_some_and(|heard| heard.len() == 1 && heard[0]["lag"] == 0)
        },
    );

    // Equal to its owner, row by row (version and last event id too), to
    // the oracle, and in what it holds.
    let owner_rows = rows_of(&owner);
    assert_eq!(owner_rows.len(), 200);
    assert_eq!(rows_of(&standby), owner_rows);
    let standby_view = standby.views().live()[0].clone();
    let discrepancies = oracle_discrepancies(&standby_view.rows, &stream);
    assert!(discrepancies.is_empty(), "{discrepancies:?}");
    let (status, owner_held) = owner_api.get("/v1/views/counter/quarantine");
    assert_eq!(status, 200);
    assert_eq!(owner_held["records"], 6, "{owner_held}");
    let (status, standby_held) = standby_api.get("/v1/views/counter/quarantine");
    assert_eq!(status, 200);
    assert_eq!(standby_held, owner_held);
    // It applied nothing itself.
    assert_eq!(standby_view.status.counters().applied, 0);

    // What it reports, and how it answers.
    let (status, views) = standby_api.get("/v1/views");
    assert_eq!(status, 200);
    let reported = &views["views"][0];
    assert_eq!(reported["role"], "standby", "{reported}");
    assert_eq!(reported["standby"]["lag"], 0, "{reported}");
    assert_eq!(reported["rows"], 200, "{reported}");
    let (status, views) = owner_api.get("/v1/views");
    assert_eq!(status, 200);
    assert_eq!(views["views"][0]["role"], "owner");
    assert!(views["views"][0]["standby"].is_null());
    // `projector status` says so on both runtimes.
    let status_of = |api: &Api| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["status", "--api", &api.base])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let said = status_of(&standby_api);
    assert!(
        said.contains("standby copy (follows its changelog, applies nothing): lag 0 records"),
        "{said}"
    );
    let said = status_of(&owner_api);
    assert!(said.contains("standbys: 1 of 1 expected heard: "), "{said}");
    let (status, _) = standby_api.get("/readyz");
    assert_eq!(status, 200, "a caught-up standby is ready");
    let subject = &owner_rows[0].0;
    let (status, headers, body) =
        standby_api.get_with(&format!("/v1/views/counter/rows/{subject}"), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers
            .get("projector-standby-lag")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    let (_, owner_headers, _) =
        owner_api.get_with(&format!("/v1/views/counter/rows/{subject}"), &[]);
    assert!(owner_headers.get("projector-standby-lag").is_none());
    let refused = ureq::post(&format!(
        "{}/v1/views/counter/quarantine/release?subject=",
        standby_api.base
    ))
    .config()
    .http_status_as_error(false)
    .build()
    .header("content-type", "application/json")
    .send("{}")
    .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let (status, _, body) =
        standby_api.get_with(&format!("/v1/views/counter/rows/{subject}/watch"), &[]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("standby"), "{body}");

    // Whole batches only. With the owner stopped, a record is logged to
    // partition 0 that no positions record follows (a batch being logged,
    // or one a crash cut short): a row's key with another row's value.
    owner.stop();
    let logged = read_partition(&broker, CHANGELOG, 0);
    let mut latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (_, key, value) in &logged {
        latest.insert(key.clone(), value.clone());
    }
    let mut rows = latest
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value.clone()?)))
        .filter(|(key, _)| key.starts_with(b"r/"));
    let (target, _) = rows.next().unwrap();
    let (other, other_value) = rows.next().unwrap();
    let subject = String::from_utf8(target[2..].to_vec()).unwrap();
    let other_subject = String::from_utf8(other[2..].to_vec()).unwrap();
    let last_positions = logged
        .iter()
        .rev()
        .find(|(_, key, _)| key == POSITIONS_KEY)
        .unwrap()
        .2
        .clone()
        .unwrap();
    let before = standby_view.rows.row(&subject).unwrap().unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let produce = |key: &[u8], value: &[u8]| {
        producer
            .send(
                BaseRecord::to(CHANGELOG)
                    .partition(0)
                    .key(key)
                    .payload(value),
            )
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    produce(&target, &other_value);
    // The standby sees the record (its lag counts it) and applies nothing.
    wait_until(
        "the standby counts the cut batch",
        Duration::from_secs(30),
        || lag_of(&standby) == Some(1),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lag_of(&standby), Some(1));
    assert_eq!(standby_view.rows.row(&subject).unwrap().unwrap(), before);
    // Its positions record ends the batch: now it is applied.
    produce(POSITIONS_KEY, &last_positions);
    wait_until(
        "the standby applies the whole batch",
        Duration::from_secs(30),
        || lag_of(&standby) == Some(0),
    );
    let after = standby_view.rows.row(&subject).unwrap().unwrap();
    assert_ne!(after, before);
    // The value logged is the other row's, byte for byte.
    assert_eq!(
        after,
        standby_view.rows.row(&other_subject).unwrap().unwrap()
    );
    let copied = rows_of(&standby);
    // Whatever holds the store is let go, so that it opens again.
    drop((standby_api, owner_api, standby_view));
    assert_eq!(standby.stop()["counter"], Ok(()));

    // Started again at once, it resumes where its copy ends: it reads
    // nothing (the changelog has not moved), and keeps its rows.
    let total: i64 = (0..4)
        .map(|partition| {
            read_partition(&broker, CHANGELOG, partition)
                .last()
                .map_or(0, |(offset, _, _)| offset + 1)
        })
        .sum();
    let (again, state) = start_standby(&broker, &standby_dir, "the standby restarted");
    assert_eq!(state.afresh, None);
    assert_eq!(
        state.records, 0,
        "a restart within the retention reads nothing again"
    );
    assert_eq!(rows_of(&again), copied);
    assert_eq!(again.stop()["counter"], Ok(()));
    // Started again after longer than the changelog keeps a tombstone, it
    // drops its copy and reads every record again: deletes it missed
    // cannot stay in it.
    std::thread::sleep(Duration::from_secs(11));
    let (afresh, state) = start_standby(&broker, &standby_dir, "the standby copied afresh");
    assert!(
        state
            .afresh
            .as_deref()
            .is_some_and(|why| why.contains("longer than the changelog keeps a tombstone")),
        "{state:?}"
    );
    assert_eq!(i64::try_from(state.records).unwrap(), total);
    assert_eq!(rows_of(&afresh), copied);
    let standby = afresh;
    assert_eq!(standby.stop()["counter"], Ok(()));
    // A standby that stops takes itself out of the directory: its last
    // record there, read with a plain consumer, is a tombstone.
    let directory = read_partition(&broker, &format!("{CHANGELOG}-standbys"), 0);
    let mut latest: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
    for (_, key, value) in &directory {
        latest.insert(key.clone(), value.is_some());
    }
    assert_eq!(latest.len(), 1, "one standby spoke");
    assert_eq!(
        latest.values().next(),
        Some(&false),
        "its last word is a tombstone"
    );
}
