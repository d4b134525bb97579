//! The crash oracle: `projector run` killed with SIGKILL at random moments
//! while it consumes from a real broker (tansu), restarted each time; at the
//! end every subject's row must equal the oracle fold of what was published:
//! no event missing, none applied twice, partition order kept; and every
//! malformed record must be in the dead-letter topic exactly once.
//!
//! The workload is an application's: an idempotent producer batching for
//! `linger.ms = 5` (so records sit in batches of many, and a restart resumes
//! inside one), half the subjects mis-partitioned (one subject on every
//! partition), and one record in 500 malformed (no CloudEvent), handled by
//! `on_error = "dead-letter"`.
//!
//! Each run joins a consumer group of its own (`crash-<n>`): tansu 0.6 does
//! not expire the members of a killed process (its session timeout never
//! fires), so a restarted member of the same group would wait for ghosts
//! holding the other partitions, and it breaks static membership (which
//! would let the restarted member take its place; see
//! `kit::Broker::honours_static_membership`). Nothing is lost by it: a view
//! resumes from the checkpoints in its store, never from the group's
//! committed offsets (G2), which is exactly what the test checks. The
//! restart in the same group, with static membership, is tested on the mock
//! cluster (`restart`).
//!
//! The moments come from a seed, printed at the start and in any failure;
//! `PROJECTOR_CRASH_SEED=<seed>` replays a run. `PROJECTOR_CRASH_EVENTS` and
//! `PROJECTOR_CRASH_KILLS` change the size (default 200,000 events, 20
//! kills).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use projector::store::{SledStore, SledView, Store, ViewStore};
use rdkafka::message::OwnedHeaders;

use crate::kit::{Broker, TempDir, free_port, hash_of, sigterm};
use crate::pipeline::{Partitioning, Stream, TOPIC, oracle_discrepancies};

const PARTITIONS: i32 = 4;
const SUBJECTS: usize = 200;
const DEAD_LETTERS: &str = "counter-dlq";
/// One record in this many is malformed.
const MALFORMED_EVERY: usize = 500;
/// With deduplication on, one event in this many is re-sent.
const RESEND_EVERY: usize = 100;

/// Publish events over the test's subjects, half of them mis-partitioned,
/// with a malformed record before every `MALFORMED_EVERY`th, until `total`
/// events were published. With `resends`, one event in `RESEND_EVERY` is
/// followed by a copy of an earlier one (same subject, source and id) on a
/// partition it picks: one of the last fifty (often in the batch of the
/// first copy), or of the last thousand, or any. Returns where the malformed records went.
fn publish_until(
    stream: &mut Stream,
    broker: &Broker,
    total: usize,
    mut resends: Option<&mut Random>,
) -> Vec<(i32, i64)> {
    let mut malformed = Vec::new();
    while stream.events() < total {
        if let Some(random) = resends.as_deref_mut()
            && stream.events() % RESEND_EVERY == RESEND_EVERY - 1
        {
            let last = stream.events() as u64 - 1;
            let index = match random.between(0, 2) {
                0 => last.saturating_sub(random.between(0, 50)),
                1 => last.saturating_sub(random.between(0, 1_000)),
                _ => random.between(0, last),
            };
            let partition = i32::try_from(random.between(0, PARTITIONS as u64 - 1)).unwrap();
            stream.resend(broker, usize::try_from(index).unwrap(), SUBJECTS, partition);
        }
        let partition = stream.next_partition(SUBJECTS, PARTITIONS, Partitioning::HalfMisplaced);
        if stream.events() % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
            let offset = stream.next_offset(partition);
            broker.publish_raw(
                TOPIC,
                partition,
                Some(b"garbage"),
                Some(b"not a cloud event"),
                OwnedHeaders::new(),
            );
            stream.leave_gap(partition, 1);
            malformed.push((partition, offset));
        }
        stream.send(broker, 1, SUBJECTS, PARTITIONS, Partitioning::HalfMisplaced);
    }
    broker.flush();
    malformed
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    spawn_with(config, log, None)
}

/// [`spawn`], with `PROJECTOR_FAILPOINT` set to `failpoint`.
fn spawn_with(config: &std::path::Path, log: &std::path::Path, failpoint: Option<String>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
    command
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if let Some(failpoint) = failpoint {
        command.env("PROJECTOR_FAILPOINT", failpoint);
    }
    command.spawn().unwrap()
}

/// Events the view applied since its runtime started, from its
/// `/v1/views`.
fn applied_since_start(api: &str) -> Option<u64> {
    first_view(api)?["counters"]["applied"].as_u64()
}

/// The first view of the runtime's `/v1/views`; `None` when the API does
/// not answer.
fn first_view(api: &str) -> Option<serde_json::Value> {
    let mut response = ureq::get(&format!("{api}/v1/views")).call().ok()?;
    let mut report: serde_json::Value = response.body_mut().read_json().ok()?;
    Some(report["views"][0].take())
}

/// The `counter` view that a stopped runtime left in `dir`'s data
/// directory.
pub(crate) fn counter_view_of(dir: &TempDir) -> SledView {
    SledStore::open(&dir.0.join("data/store"))
        .unwrap()
        .open_view(
            "counter",
            &hash_of(&projector_examples::EVENT_COUNTER),
            &[],
            None,
        )
        .unwrap()
}

/// The sum of the view's durable checkpoints, from its `/v1/views`.
pub(crate) fn committed(api: &str) -> Option<i64> {
    Some(
        first_view(api)?["partitions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["checkpoint"].as_i64())
            .sum(),
    )
}

/// The view's failed records held for the dead-letter topic, from its
/// `/v1/views`.
fn dead_letters_held(api: &str) -> Option<u64> {
    first_view(api)?["dead_letters_held"].as_u64()
}

/// How many records a plain consumer reads from the start of every
/// partition: tells a broker's loss from the view's.
fn broker_holds(broker: &Broker) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "crash-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, partition, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read = 0;
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
            idle = Instant::now();
        }
    }
    read
}

/// The origin `(partition, offset)` of every record in the dead-letter
/// topic, with how many times each is there.
fn dead_lettered(broker: &Broker) -> BTreeMap<(i32, i64), usize> {
    by_place(crate::kit::dead_letters_in(broker, DEAD_LETTERS, 1))
}

/// Origins as `(partition, offset)`, with their counts.
fn by_place(found: BTreeMap<(String, i32, i64), (usize, String)>) -> BTreeMap<(i32, i64), usize> {
    found
        .into_iter()
        .map(|((_, partition, offset), (count, _))| ((partition, offset), count))
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice() {
    crash_oracle(Mode::Plain, 200_000, 20);
}

/// The crash oracle with `dedup` on and 1% of the events re-sent: the view
/// applies one copy of each event, across every kill.
#[test]
fn with_dedup_sigkill_at_random_moments_applies_each_re_sent_event_once() {
    crash_oracle(Mode::Dedup, 50_000, 8);
}

/// The crash oracle with the view's changelog on: every third kill lands
/// between the changelog's acknowledgement of a batch and its commit to
/// the store (a failpoint pauses there, the kill comes during the pause),
/// and any other kill that finds dead letters held is followed by the
/// loss of the data directory, so the next start restores the view, held
/// dead letters included, from the changelog. At the end the data
/// directory is lost once more and the view restored: rows equal the
/// oracle, nothing applied twice, every dead letter written once.
#[test]
fn with_the_changelog_sigkill_and_lost_data_directories_lose_nothing_and_apply_nothing_twice() {
    crash_oracle(Mode::Changelog, 50_000, 20);
}

/// What the crash oracle runs beside the plain view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    /// `dedup` on, 1% of the events re-sent.
    Dedup,
    /// The changelog on, data directories lost.
    Changelog,
}

/// The changelog topic of the oracle's view: named, since each run joins
/// a group of its own and the default name follows the group.
const CHANGELOG: &str = "counter-changelog";

/// How many times `projector run`'s log says `what`.
fn log_says(log: &std::path::Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

fn crash_oracle(mode: Mode, default_events: u64, default_kills: u64) {
    let dedup = mode == Mode::Dedup;
    let changelog = mode == Mode::Changelog;
    let _cores = crate::kit::cores_to_myself();
    let seed = env_or(
        "PROJECTOR_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| {
                u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1) | 1
            }),
    );
    let events = usize::try_from(env_or("PROJECTOR_CRASH_EVENTS", default_events)).unwrap();
    let kills = env_or("PROJECTOR_CRASH_KILLS", default_kills);
    println!(
        "crash oracle: seed {seed}, {events} events, {kills} kills, {mode:?} (replay with PROJECTOR_CRASH_SEED={seed})"
    );
    let mut random = Random(seed);
    // The re-sends have a generator of their own, so that the kills land
    // where they would without them.
    let mut resends = dedup.then(|| Random(seed.rotate_left(17) | 1));

    // An application's producer: batches of many records, which tansu 0.6
    // reads from the next batch when a read begins inside one.
    let broker = Broker::tansu(&[(TOPIC, PARTITIONS), (DEAD_LETTERS, 1)]).application_producer();
    // Kills that landed between a batch's changelog acknowledgement and
    // its store commit, and data directories lost.
    let (mut between, mut lost) = (0, 0);
    let dir = TempDir::new("crash");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.0.join("runs.log");
    let failure = |what: String| -> ! {
        std::fs::copy(
            &log,
            std::env::temp_dir().join(format!("projector-crash-{seed}.log")),
        )
        .ok();
        let tail: String = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "crash oracle failed (seed {seed}; replay with PROJECTOR_CRASH_SEED={seed}): {what}\nlast log lines:\n{tail}"
        );
    };

    // Publish in as many chunks as there are kills, so that some kills land
    // while events arrive and some while the view catches up.
    let mut published = Stream::default();
    let mut malformed = Vec::new();
    let chunk = events.div_ceil(usize::try_from(kills.max(1)).unwrap());
    let started = Instant::now();
    let mut progress = Vec::new();
    for kill in 0..kills {
        // Publish while nothing consumes, then start a run.
        let upto = (published.events() + chunk).min(events);
        malformed.extend(publish_until(
            &mut published,
            &broker,
            upto,
            resends.as_mut(),
        ));
        let config = counter_config(&dir.0, &broker, port, &format!("crash-{kill}"), mode);
        let pause_at = (changelog && kill % 3 == 2).then(|| random.between(1, 4));
        let mut child = spawn_with(
            &config,
            &log,
            pause_at.map(|at| format!("changelog-logged:{at}:3000")),
        );
        let started = Instant::now();
        let paused_before = log_says(&log, "failpoint changelog-logged: pausing");
        if pause_at.is_some() {
            // The run pauses after the changelog acknowledged its Nth
            // batch, before the store commits it: killed there.
            while started.elapsed() < Duration::from_secs(20)
                && log_says(&log, "failpoint changelog-logged: pausing") == paused_before
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(random.between(5, 500)));
            if log_says(&log, "failpoint changelog-logged: pausing") > paused_before {
                between += 1;
            }
        } else if kill % 2 == 1 {
            // Every other kill aims at dead letters in flight: it waits (up
            // to 3 s) until the view holds some, then lets the batch that
            // holds them commit (10 ms at most) and their sends begin, and
            // kills before the broker acknowledges them (tansu takes tens
            // to hundreds of milliseconds). Whether it landed there is read
            // from the next start's log below.
            while started.elapsed() < Duration::from_secs(3)
                && dead_letters_held(&api).is_none_or(|held| held == 0)
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(random.between(10, 40)));
        } else {
            // Kill it anywhere from inside the start (module load, group
            // join) to well into consuming the chunk.
            std::thread::sleep(Duration::from_millis(random.between(20, 1500)));
        }
        let before = committed(&api);
        let held = dead_letters_held(&api);
        child.kill().unwrap();
        child.wait().unwrap();
        progress.push((kill, started.elapsed().as_millis(), before, held, upto));
        if changelog && pause_at.is_none() && held.is_some_and(|held| held > 0) {
            // The disk is lost with the dead letters the run held: the next
            // start restores them from the changelog and sends them.
            std::fs::remove_dir_all(dir.0.join("data")).unwrap();
            lost += 1;
        }
    }
    malformed.extend(publish_until(
        &mut published,
        &broker,
        events,
        resends.as_mut(),
    ));

    // A last run to the end, stopped cleanly.
    let config = counter_config(&dir.0, &broker, port, &format!("crash-{kills}"), mode);
    let mut child = spawn(&config, &log);
    let total = i64::try_from(events + malformed.len() + published.resent()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // Everything applied, and no dead letter held: those of killed runs
        // that did not land settle for the producer's message.timeout.ms
        // before they are produced again.
        if committed(&api) == Some(total) && dead_letters_held(&api) == Some(0) {
            break;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            failure(format!(
                "not every event was committed within 10 minutes: {:?}, dead letters held {:?}",
                committed(&api),
                dead_letters_held(&api)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::copy(&log, std::env::temp_dir().join("projector-crash-last.log")).ok();
    sigterm(&child);
    let status = child.wait().unwrap();
    if !status.success() {
        failure(format!("the last run did not stop cleanly: {status}"));
    }
    if changelog {
        // The data directory is lost once more: the view comes back whole
        // from the changelog, and applies nothing (every record is below
        // its restored checkpoints).
        std::fs::remove_dir_all(dir.0.join("data")).unwrap();
        let restores = log_says(&log, "view restored from its changelog");
        let config = counter_config(&dir.0, &broker, port, "crash-restored", mode);
        let mut child = spawn(&config, &log);
        let deadline = Instant::now() + Duration::from_secs(300);
        while !(committed(&api) == Some(total) && dead_letters_held(&api) == Some(0)) {
            if Instant::now() > deadline {
                child.kill().ok();
                failure(format!(
                    "the restored view did not reach every event within 5 minutes: {:?}",
                    committed(&api)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let applied = applied_since_start(&api);
        sigterm(&child);
        let status = child.wait().unwrap();
        if !status.success() {
            failure(format!("the restored run did not stop cleanly: {status}"));
        }
        println!(
            "crash oracle: seed {seed}: {between} kills between the changelog and the store, {lost} data directories lost with dead letters held, {restores} restores from the changelog after them; the last restore applied {applied:?} events"
        );
        if log_says(&log, "view restored from its changelog") != restores + 1 || applied != Some(0)
        {
            failure(format!(
                "the last start did not restore the view from its changelog alone: {} restores logged, {applied:?} events applied",
                log_says(&log, "view restored from its changelog") - restores
            ));
        }
        // A start after a lost data directory restored the view from the
        // changelog (it did not replay the source topic).
        if between == 0 || lost == 0 || restores == 0 {
            failure(format!(
                "the kills did not land where they matter: {between} between the changelog and the store, {lost} data directories lost with dead letters held, {restores} restores from the changelog after them"
            ));
        }
    }

    // Every subject against the oracle.
    let view = counter_view_of(&dir);
    // The view ran split into as many shards as the topic has partitions,
    // applied by the runtime's default threads.
    assert_eq!(
        view.shards().count(),
        u32::try_from(PARTITIONS).unwrap(),
        "a new view has as many shards as its topic has partitions"
    );
    let discrepancies = oracle_discrepancies(&view, &published);
    let rows = view.row_count();
    if dedup {
        // The re-sends were published and read (the committed total above
        // counts them), and the store remembers each event's identity once:
        // no copy was applied, in no run.
        let remembered = view.identities(i64::MIN).unwrap().len();
        println!(
            "crash oracle: seed {seed}: {} re-sends, {remembered} identities remembered",
            published.resent()
        );
        if published.resent() == 0 || remembered != events {
            failure(format!(
                "{} re-sends published, {remembered} identities remembered for {events} events",
                published.resent()
            ));
        }
    }
    println!(
        "crash oracle: seed {seed}: {kills} kills survived, {events} events, {rows} rows, {} discrepancies, {:.1} s; kills (n, ms after start, committed before the kill, dead letters held, published): {progress:?}",
        discrepancies.len(),
        started.elapsed().as_secs_f64()
    );
    // The kills landed where they matter: some while records were being
    // applied (the view had committed part of what was published, and
    // more than before), some while dead letters were held, which the next
    // start found (its log says so).
    let mut last = 0;
    let mid_apply = progress
        .iter()
        .filter(|(_, _, before, _, upto)| {
            let mid = before.is_some_and(|c| c > last && c < i64::try_from(*upto).unwrap());
            last = before.unwrap_or(last).max(last);
            mid
        })
        .count();
    let held_at_kill = progress
        .iter()
        .filter(|(_, _, _, held, _)| held.is_some_and(|h| h > 0))
        .count();
    let recovered = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("dead letters held by the last run")
        .count();
    println!(
        "crash oracle: seed {seed}: {mid_apply} kills while applying, {held_at_kill} with dead letters held, {recovered} starts found dead letters held by the last run"
    );
    if kills >= 8 && (mid_apply == 0 || recovered == 0) {
        failure(format!(
            "the kills did not land where they matter: {mid_apply} while applying, {recovered} starts found dead letters held by the run before"
        ));
    }
    let letters = dead_lettered(&broker);
    let twice: Vec<_> = letters.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = malformed
        .iter()
        .filter(|o| !letters.contains_key(o))
        .collect();
    println!(
        "crash oracle: seed {seed}: {} malformed records, {} dead letters, {} written twice, {} missing",
        malformed.len(),
        letters.values().sum::<usize>(),
        twice.len(),
        missing.len()
    );
    if !twice.is_empty() || !missing.is_empty() || letters.len() != malformed.len() {
        failure(format!(
            "dead letters: {} malformed records, {} distinct dead letters; written twice: {twice:?}; missing: {missing:?}",
            malformed.len(),
            letters.len()
        ));
    }
    if !discrepancies.is_empty() {
        failure(format!(
            "{} discrepancies ({rows} rows for {SUBJECTS} subjects): {:?}; \
             a plain consumer reading the topic from the start finds {} of the {events} records",
            discrepancies.len(),
            &discrepancies[..discrepancies.len().min(10)],
            broker_holds(&broker)
        ));
    }
}

/// Write `dir/projector.toml` for a runtime applying the `counter` view on
/// `broker` in consumer group `group`, with its API on `port`.
fn counter_config(
    dir: &std::path::Path,
    broker: &Broker,
    port: u16,
    group: &str,
    mode: Mode,
) -> std::path::PathBuf {
    let config = dir.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "{}data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n\
             [broker]\nbootstrap_servers = \"{}\"\n\
             settings = {{ \"session.timeout.ms\" = \"6000\", \"heartbeat.interval.ms\" = \"500\", \"fetch.wait.max.ms\" = \"50\" }}\n\n\
             [[views]]\nname = \"counter\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\ngroup = \"{group}\"\n\
             on_error = \"dead-letter\"\ndead_letter_topic = \"{DEAD_LETTERS}\"\n{}",
            crate::kit::TANSU_GROUP_SETTINGS,
            broker.bootstrap(),
            projector_examples::EVENT_COUNTER.path,
            match mode {
                Mode::Plain => String::new(),
                Mode::Dedup => "dedup = { keep = \"7d\" }\n".to_owned(),
                Mode::Changelog => format!("changelog = {{ topic = \"{CHANGELOG}\", replication = 1 }}\n"),
            }
        ),
    )
    .unwrap();
    config
}

/// The partitions `/v1/views` reports as assigned now (it also lists
/// partitions only checkpointed, held before a rebalance); `None` when the
/// API does not answer, so that "none assigned" is never mistaken for "the
/// API is down".
pub(crate) fn partitions_of(api: &str) -> Option<usize> {
    first_view(api).and_then(|view| {
        view["partitions"]
            .as_array()
            .map(|partitions| partitions.iter().filter(|p| p["assigned"] == true).count())
    })
}

#[test]
fn a_survivor_takes_over_the_partitions_of_a_stopped_runtime() {
    let broker = Broker::tansu(&[(TOPIC, PARTITIONS), (DEAD_LETTERS, 1)]).application_producer();
    let mut published = Stream::default();
    let mut malformed = publish_until(&mut published, &broker, 20_000, None);
    let (dir_a, dir_b) = (TempDir::new("failover-a"), TempDir::new("failover-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let (api_a, api_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let log = dir_a.0.join("runs.log");
    let mut a = spawn(
        &counter_config(&dir_a.0, &broker, port_a, "failover", Mode::Plain),
        &log,
    );
    let mut b = spawn(
        &counter_config(&dir_b.0, &broker, port_b, "failover", Mode::Plain),
        &log,
    );
    // Both hold partitions and both have applied some.
    let started = Instant::now();
    while !(committed(&api_a).is_some_and(|c| c > 0) && committed(&api_b).is_some_and(|c| c > 0)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the group did not split the partitions: a {:?}, b {:?}",
            committed(&api_a),
            committed(&api_b)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let held_by_b = partitions_of(&api_b).expect("b's API answers");
    assert!(held_by_b < 4, "b held every partition before a stopped");
    // Stop a mid-stream; more events arrive meanwhile.
    sigterm(&a);
    assert!(a.wait().unwrap().success());
    malformed.extend(publish_until(&mut published, &broker, 25_000, None));
    let total = i64::try_from(published.events() + malformed.len()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed(&api_b) != Some(total) {
        assert!(
            Instant::now() < deadline,
            "the survivor did not take over: committed {:?} of {total}",
            committed(&api_b)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&b);
    assert!(b.wait().unwrap().success());

    // The survivor's view equals the oracle for every subject: partitions it
    // held resumed from its checkpoints, the others replayed from the start.
    let view = counter_view_of(&dir_b);
    let discrepancies = oracle_discrepancies(&view, &published);
    assert!(discrepancies.is_empty(), "{discrepancies:#?}");
}

/// A run with no crash, stopped with SIGTERM the moment its checkpoints
/// reach the end of the input, which ends in a tail of failing records (so
/// the last dead letters are still in flight at the stop): every record
/// that failed, malformed ones (handled on the worker's thread) and ones
/// the projection refused (on the applier threads), is in the dead-letter
/// topic exactly once, read back by a plain consumer. tansu, an
/// application's producer, 8 partitions with half the subjects spread over
/// them, a dead-letter topic of 3 partitions.
#[test]
fn a_run_without_a_crash_writes_every_dead_letter_once_up_to_the_last_record() {
    const LEDGER: &str = "ledger";
    const LETTERS: &str = "ledger-dlq";
    const EVENTS: usize = 20_000;
    let _cores = crate::kit::cores_to_myself();
    let broker = Broker::tansu(&[(LEDGER, 8), (LETTERS, 3)]).application_producer();
    let mut next = [0_i64; 8];
    let mut failing = Vec::new();
    for n in 0..EVENTS {
        let account = n * 7919 % 400;
        let subject = format!("acct-{account}");
        let partition = if account % 2 == 0 {
            i32::try_from(n % 8).unwrap()
        } else {
            i32::try_from(account % 8).unwrap()
        };
        let slot = usize::try_from(partition).unwrap();
        let tail = n >= EVENTS - 6;
        if n % 89 == 40 || (tail && n % 2 == 0) {
            broker.publish_raw(
                LEDGER,
                partition,
                Some(subject.as_bytes()),
                Some(b"not a cloud event"),
                OwnedHeaders::new(),
            );
            failing.push((partition, next[slot]));
            next[slot] += 1;
        }
        let refused = n % 97 == 50 || (tail && n % 2 == 1);
        let ty = if refused { "misbehave.error" } else { "tick" };
        broker.publish(
            LEDGER,
            partition,
            ty,
            &format!("e-{n}"),
            Some(&subject),
            b"{}",
        );
        if refused {
            failing.push((partition, next[slot]));
        }
        next[slot] += 1;
    }
    broker.flush();
    let total: i64 = next.iter().sum();
    let dir = TempDir::new("dead-letter-tail");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "{}data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n\
             [broker]\nbootstrap_servers = \"{}\"\n\
             settings = {{ \"fetch.wait.max.ms\" = \"50\" }}\n\n\
             [[views]]\nname = \"ledger\"\nmodule = \"{}\"\ntopics = [\"{LEDGER}\"]\n\
             on_error = \"dead-letter\"\ndead_letter_topic = \"{LETTERS}\"\n",
            crate::kit::TANSU_GROUP_SETTINGS,
            broker.bootstrap(),
            projector_examples::MISBEHAVING.path
        ),
    )
    .unwrap();
    let child = crate::kit::KillOnDrop(spawn(&config, &dir.0.join("run.log")));
    crate::kit::wait_until("every record taken", Duration::from_secs(300), || {
        committed(&api) == Some(total)
    });
    // At once: the tail's dead letters may still be in flight.
    let held_at_stop = dead_letters_held(&api);
    assert!(child.stop(), "a clean stop");
    let letters = by_place(crate::kit::dead_letters_in(&broker, LETTERS, 3));
    let expected: BTreeMap<(i32, i64), usize> = failing.iter().map(|o| (*o, 1)).collect();
    let missing: Vec<_> = failing
        .iter()
        .filter(|o| !letters.contains_key(o))
        .collect();
    let extra: Vec<_> = letters
        .iter()
        .filter(|(o, n)| **n != 1 || !expected.contains_key(o))
        .collect();
    println!(
        "dead-letter tail: {} failing records ({} at the end of the input), {} in the topic, held at the stop {held_at_stop:?}; missing {missing:?}, twice or unknown {extra:?}",
        failing.len(),
        6,
        letters.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}; twice or unknown {extra:?}"
    );
    for origin in failing.iter().rev().take(6) {
        assert!(letters.contains_key(origin), "the tail's {origin:?}");
    }
}
