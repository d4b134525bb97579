//! The test kit of the pipeline tests: an in-process Kafka-protocol broker
//! (librdkafka's mock cluster), a producer of CloudEvents, and a runtime
//! started on a fresh data directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::config::{BrokerConfig, Config, OnError, ViewConfig};
use projector::engine::{Engine, EngineConfig};
use projector::pipeline::{BatchLimits, ViewStatus};
use projector::service::Service;
use projector::store::SledStore;
use rdkafka::ClientConfig;
use rdkafka::message::OwnedHeaders;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A broker, in-process (librdkafka's mock cluster) or a real tansu
/// process, with topics and a producer.
pub struct Broker {
    bootstrap: String,
    pub producer: ThreadedProducer<DefaultProducerContext>,
    cluster: Option<MockCluster<'static, DefaultProducerContext>>,
    /// With the TLS + SASL front: the login and the CA to trust.
    pub secure: Option<SecureAccess>,
    pub front: Option<crate::front::SaslFront>,
    _tansu: Option<projector_tansu::Tansu>,
}

/// How to reach a broker behind the TLS + SASL front.
#[derive(Debug, Clone)]
pub struct SecureAccess {
    pub user: String,
    pub password: String,
    pub ca_file: PathBuf,
}

impl Broker {
    pub fn new(topics: &[(&str, i32)]) -> Self {
        Self::with_brokers(1, topics)
    }

    /// A mock cluster of `brokers` brokers.
    pub fn with_brokers(brokers: i32, topics: &[(&str, i32)]) -> Self {
        let cluster = MockCluster::new(brokers).expect("mock cluster starts");
        for (topic, partitions) in topics {
            cluster
                .create_topic(topic, *partitions, 1)
                .expect("topic created");
        }
        Self::connect(cluster.bootstrap_servers(), Some(cluster), None)
    }

    /// A broker some other process serves at `bootstrap` (such as
    /// `projector mock-broker`).
    pub fn at(bootstrap: String) -> Self {
        Self::connect(bootstrap, None, None)
    }

    /// A real tansu broker process.
    pub fn tansu(topics: &[(&str, i32)]) -> Self {
        let tansu = projector_tansu::Tansu::start().expect("tansu starts");
        for (topic, partitions) in topics {
            tansu
                .create_topic(topic, *partitions)
                .expect("topic created");
        }
        Self::connect(tansu.bootstrap(), None, Some(tansu))
    }

    /// A real tansu process behind the test-only TLS + SASL PLAIN front,
    /// which accepts `user` with `password`; its CA goes to `dir`.
    pub fn tansu_sasl(topics: &[(&str, i32)], user: &str, password: &str, dir: &TempDir) -> Self {
        let listener = crate::front::SaslFront::bind();
        let advertised = format!(
            "localhost:{}",
            listener.local_addr().expect("address").port()
        );
        let tansu =
            projector_tansu::Tansu::start_advertising(Some(&advertised)).expect("tansu starts");
        for (topic, partitions) in topics {
            tansu
                .create_topic(topic, *partitions)
                .expect("topic created");
        }
        let front =
            crate::front::SaslFront::serve(listener, tansu.address(), user, password, &dir.0);
        let mut broker = Self {
            bootstrap: front.bootstrap(),
            producer: ClientConfig::new().create().expect("placeholder producer"),
            cluster: None,
            secure: Some(SecureAccess {
                user: user.to_owned(),
                password: password.to_owned(),
                ca_file: front.ca_file.clone(),
            }),
            front: Some(front),
            _tansu: Some(tansu),
        };
        broker.producer = projector::kafka::client_config(&broker.config())
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        broker
    }

    /// The same broker, with the producer of an application: idempotent,
    /// acknowledged by all replicas, batching for `linger.ms = 5`, so that
    /// records land in batches of many (the layout that makes tansu 0.6
    /// skip the rest of a batch a read begins inside).
    pub fn application_producer(mut self) -> Self {
        self.producer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        self
    }

    fn connect(
        bootstrap: String,
        cluster: Option<MockCluster<'static, DefaultProducerContext>>,
        tansu: Option<projector_tansu::Tansu>,
    ) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "5")
            // Large records are part of the malformed-input tests.
            .set("message.max.bytes", "104857600")
            .create()
            .expect("producer");
        Self {
            bootstrap,
            producer,
            cluster,
            secure: None,
            front: None,
            _tansu: tansu,
        }
    }

    /// False for tansu 0.6: with `group.instance.id` set, it assigns a
    /// member its partitions and revokes them half a second later, again
    /// at every session timeout, so the member never consumes (measured
    /// with one `projector run` alone in a fresh group). The runtimes of
    /// the tests on tansu run with `static_membership = false`
    /// ([`TANSU_GROUP_SETTINGS`]); the product's default stays on. The mock
    /// cluster runs static members like any other (it does not let one
    /// replace its ghost, though; see `restart`).
    pub fn honours_static_membership(&self) -> bool {
        self._tansu.is_none()
    }

    /// The mock cluster, for fault injection.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        self.cluster
            .as_ref()
            .expect("fault injection needs the mock cluster")
    }

    /// `host:port` of the broker.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    pub fn config(&self) -> BrokerConfig {
        let mut config = BrokerConfig {
            bootstrap_servers: self.bootstrap.clone(),
            settings: [
                ("fetch.wait.max.ms".to_owned(), "10".to_owned()),
                ("session.timeout.ms".to_owned(), "6000".to_owned()),
            ]
            .into(),
            ..BrokerConfig::default()
        };
        if let Some(secure) = &self.secure {
            config.auth = projector::config::BrokerAuth::Plain;
            config.user = Some(secure.user.clone());
            config.password_secret = Some("kafka/password".parse().expect("a reference"));
            config.password = Some(projector::secrets::SecretValue::new(&secure.password));
            config.ca_file = Some(secure.ca_file.clone());
        }
        config
    }

    /// Produce a binary-mode CloudEvent of type `ty` for `subject` to
    /// `topic`/`partition`.
    pub fn publish(
        &self,
        topic: &str,
        partition: i32,
        ty: &str,
        id: &str,
        subject: Option<&str>,
        data: &[u8],
    ) {
        let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
            id,
            source: "/tests",
            ty,
            subject,
            datacontenttype: Some("application/json"),
        });
        self.publish_raw(
            topic,
            partition,
            subject.map(str::as_bytes),
            Some(data),
            headers,
        );
    }

    pub fn publish_raw(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) {
        self.publish_raw_at(topic, partition, key, value, headers, None);
    }

    /// [`Broker::publish_raw`], with the record's timestamp when given
    /// (else the producer's clock).
    pub fn publish_raw_at(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        timestamp_ms: Option<i64>,
    ) {
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).partition(partition).headers(headers);
        if let Some(timestamp) = timestamp_ms {
            record = record.timestamp(timestamp);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((err, returned)) => {
                    assert!(
                        matches!(
                            err,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "produce failed: {err}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                    record = returned;
                }
            }
        }
    }

    pub fn flush(&self) {
        self.producer
            .flush(Duration::from_secs(30))
            .expect("produced");
    }

    /// Produce `count` records that are no CloudEvent (no headers, a
    /// plain-text value) to `topic`, record `i` to partition `i %
    /// partitions`, every other one keyed (`k-<i>`), and flush: what a
    /// view's error policy must handle and hold under the empty subject.
    pub fn publish_not_events(&self, topic: &str, count: i32, partitions: i32) {
        for i in 0..count {
            let key = format!("k-{i}");
            self.publish_raw(
                topic,
                i % partitions,
                (i % 2 == 0).then_some(key.as_bytes()),
                Some(b"not an event"),
                OwnedHeaders::new(),
            );
        }
        self.flush();
    }
}

/// Every record of `topic`'s partition `partition`, read from its start
/// with a plain consumer: offset, key and value. tansu reports an end inside
/// its last record batch, so the read goes on past the end reported until a
/// poll brings nothing.
pub fn read_partition(
    broker: &Broker,
    topic: &str,
    partition: i32,
) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "test-partition-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut records: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: read short of its end {high}"
        );
        let past_end = records
            .last()
            .map_or(high == 0, |(offset, _, _)| offset + 1 >= high);
        match consumer.poll(Duration::from_millis(300)) {
            Some(message) => {
                let message = message.unwrap();
                records.push((
                    message.offset(),
                    message.key().unwrap_or_default().to_vec(),
                    message.payload().map(<[u8]>::to_vec),
                ));
            }
            None if past_end => return records,
            None => {}
        }
    }
}

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("projector-{name}-{}-{n}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A view of `module` over `topics`.
pub fn view(name: &str, module: &str, topics: &[&str], on_error: OnError) -> ViewConfig {
    ViewConfig {
        name: name.to_owned(),
        module: PathBuf::from(module),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        group: None,
        on_error,
        dead_letter_topic: (on_error == OnError::DeadLetter).then(|| format!("{name}-dlq")),
        max_attempts: 2,
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        subject_from_key: false,
        indexes: Vec::new(),
        group_instance_id: None,
        max_unassigned_ms: 30_000,
        shards: None,
        dedup: None,
        changelog: None,
        role: projector::config::Role::Owner,
    }
}

/// The top-level settings a `projector.toml` of a test on tansu starts
/// with: no static membership (see [`Broker::honours_static_membership`]).
pub const TANSU_GROUP_SETTINGS: &str = "static_membership = false\n";

/// A runtime running `views` against `broker`, storing in `dir`.
pub fn start(
    broker: &Broker,
    dir: &TempDir,
    views: Vec<ViewConfig>,
    engine: EngineConfig,
) -> Service {
    try_start(broker, dir, views, engine).expect("service starts")
}

/// [`start`], returning why it could not.
pub fn try_start(
    broker: &Broker,
    dir: &TempDir,
    views: Vec<ViewConfig>,
    engine: EngineConfig,
) -> anyhow::Result<Service> {
    try_start_on(broker, &broker.config(), dir, views, engine)
}

/// [`try_start`] with the broker settings `settings` (of `broker`).
pub fn try_start_on(
    broker: &Broker,
    settings: &projector::config::BrokerConfig,
    dir: &TempDir,
    views: Vec<ViewConfig>,
    engine: EngineConfig,
) -> anyhow::Result<Service> {
    try_start_deploying(
        broker,
        settings,
        dir,
        views,
        engine,
        projector::config::DeployConfig::default(),
    )
}

/// [`try_start_on`], with `deploy` as its `[deploy]` settings.
pub fn try_start_deploying(
    broker: &Broker,
    settings: &projector::config::BrokerConfig,
    dir: &TempDir,
    views: Vec<ViewConfig>,
    engine: EngineConfig,
    deploy: projector::config::DeployConfig,
) -> anyhow::Result<Service> {
    let config = Config {
        data_dir: dir.0.clone(),
        broker: Some(settings.clone()),
        engine: engine.clone(),
        http: projector::config::HttpConfig::default(),
        views,
        static_membership: broker.honours_static_membership(),
        instance_id: None,
        deploy,
    };
    let engine = Arc::new(Engine::new(engine).expect("engine"));
    let store = Arc::new(SledStore::open(&dir.0.join("store")).expect("store opens"));
    let limits = BatchLimits {
        max_records: 200,
        linger: Duration::from_millis(5),
    };
    let _ = broker;
    Service::start(&config, settings, &engine, store, limits)
}

/// Wait until `done` holds, failing after `timeout` with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `done` holds for `status`, failing after `timeout`.
pub fn wait_for(
    status: &ViewStatus,
    timeout: Duration,
    what: &str,
    done: impl Fn(&ViewStatus) -> bool,
) {
    let started = Instant::now();
    while !done(status) {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; counters {:?}, partitions {:?}, fatal {:?}",
            status.counters(),
            status.partitions(),
            status.fatal_error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `status` counts exactly `applied` applied records.
pub fn wait_applied(status: &ViewStatus, applied: u64) {
    wait_for(
        status,
        Duration::from_secs(60),
        &format!("{applied} applied"),
        |s| s.counters().applied == applied,
    );
}

/// The module hash the runtime records for `example`.
pub fn hash_of(example: &projector_examples::Example) -> String {
    module_hash(example.wasm)
}

/// The module hash the runtime records for the component `wasm`.
pub fn module_hash(wasm: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(wasm))
}

/// The HTTP API of a running [`Service`], served on a free loopback port
/// from its own thread; stopped on drop.
pub struct Api {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    pub fn start(service: &Service, token: Option<&str>) -> Self {
        let mut state = projector::http::ApiState::for_service(service);
        if let Some(token) = token {
            state = state.with_token(&projector::secrets::SecretValue::new(token));
        }
        Self::serve(state)
    }

    /// Serve `state` on a free loopback port.
    pub fn serve(state: projector::http::ApiState) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                projector::http::serve(listener, state, async {
                    let _ = stopped.await;
                })
                .await
                .expect("the API serves");
            });
        });
        Self {
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `GET path` with optional headers: the status, the headers and the body.
    pub fn get_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, ureq::http::HeaderMap, String) {
        let mut request = ureq::get(&format!("{}{path}", self.base))
            .config()
            .http_status_as_error(false)
            .build();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.call().expect("the API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.body_mut().read_to_string().expect("a text body");
        (status, headers, body)
    }

    /// `GET path`: the status and the body as JSON (or a JSON string of
    /// the text when it is not JSON).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.get_with(path, &[]);
        let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        (status, json)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A path segment, percent-encoded.
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Wait until `status` has committed `records` records to the store: its
/// partitions' checkpoints (next offsets, from 0) add up to at least that.
/// The sum of the view's durable checkpoints over its partitions.
pub fn checkpoint_sum(status: &ViewStatus) -> i64 {
    status
        .partitions()
        .values()
        .filter_map(|p| p.checkpoint)
        .sum()
}

/// Applied is not committed: a batch commits up to its linger later.
pub fn wait_committed(status: &ViewStatus, records: i64) {
    wait_for(
        status,
        Duration::from_secs(60),
        &format!("{records} records committed"),
        |s| checkpoint_sum(s) >= records,
    );
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    projector_tansu::free_port().expect("a free loopback port")
}

/// Send SIGTERM to `child`, as an operator stopping it does.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

/// A record source that does what it is told and nothing else (the records
/// come from the test), and keeps the offsets a worker gives Kafka.
pub struct Recorder(std::sync::Mutex<std::collections::BTreeMap<i32, i64>>);

/// A [`Recorder`] whose offsets nobody reads.
pub static QUIET: Recorder = Recorder::new();

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub const fn new() -> Self {
        Self(std::sync::Mutex::new(std::collections::BTreeMap::new()))
    }

    /// The last offset given for each partition.
    pub fn committed(&self) -> std::collections::BTreeMap<i32, i64> {
        self.0.lock().unwrap().clone()
    }

    fn record(&self, offsets: &rdkafka::TopicPartitionList) {
        let mut committed = self.0.lock().unwrap();
        for element in offsets.elements() {
            if let rdkafka::Offset::Offset(offset) = element.offset() {
                committed.insert(element.partition(), offset);
            }
        }
    }
}

impl projector::pipeline::Source for Recorder {
    fn take_partitions(
        &self,
        _: &[(projector::pipeline::TopicPartition, rdkafka::Offset)],
        _: bool,
    ) -> Result<(), rdkafka::error::KafkaError> {
        Ok(())
    }
    fn drop_partitions(
        &self,
        _: &[projector::pipeline::TopicPartition],
        _: bool,
    ) -> Result<(), rdkafka::error::KafkaError> {
        Ok(())
    }
    fn seek(&self, _: &str, _: i32, _: i64) -> Result<(), rdkafka::error::KafkaError> {
        Ok(())
    }
    fn pause(&self, _: &str, _: i32) -> Result<(), rdkafka::error::KafkaError> {
        Ok(())
    }
    fn resume(&self, _: &str, _: i32) -> Result<(), rdkafka::error::KafkaError> {
        Ok(())
    }
    fn low_watermark(&self, _: &str, _: i32) -> Result<i64, rdkafka::error::KafkaError> {
        Ok(0)
    }
    fn commit_offsets(
        &self,
        offsets: &rdkafka::TopicPartitionList,
    ) -> Result<(), rdkafka::error::KafkaError> {
        self.record(offsets);
        Ok(())
    }
    fn commit_offsets_now(
        &self,
        offsets: &rdkafka::TopicPartitionList,
    ) -> Result<(), rdkafka::error::KafkaError> {
        self.record(offsets);
        Ok(())
    }
}

/// The machine's cores, shared between tests. The crash test takes them for
/// itself ([`cores_to_myself`]); the authors' tests, which build components
/// with componentize-js and componentize-py for minutes, share them with
/// each other ([`cores_shared`]) but not with it, so that unrelated
/// toolchain builds do not decide the crash test's timing.
static CORES: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn cores_to_myself() -> std::sync::RwLockWriteGuard<'static, ()> {
    CORES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn cores_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    CORES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process killed when dropped: a test that fails half way leaves
/// no `projector run` behind.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// SIGTERM, then wait: true when it stopped cleanly.
    pub fn stop(mut self) -> bool {
        sigterm(&self.0);
        self.0.wait().is_ok_and(|status| status.success())
    }

    /// SIGKILL, then wait.
    pub fn kill(mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Every origin named by a record of the dead-letter topic `topic` (its
/// `partitions`, each read from its start by a plain consumer until nothing
/// came for 5 s: never to the high watermark, which tansu 0.6 reports
/// inside the last batch), with how many records name it and the class of
/// the first.
pub fn dead_letters_in(
    broker: &Broker,
    topic: &str,
    partitions: i32,
) -> std::collections::BTreeMap<(String, i32, i64), (usize, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dead-letter-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut found = std::collections::BTreeMap::new();
    let mut idle = std::time::Instant::now();
    while idle.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            idle = std::time::Instant::now();
            let header = |name: &str| {
                message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == name))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            let origin = (
                header("projector-error-topic"),
                header("projector-error-partition").parse().unwrap_or(-1),
                header("projector-error-offset").parse().unwrap_or(-1),
            );
            found
                .entry(origin)
                .or_insert((0, header("projector-error-class")))
                .0 += 1;
        }
    }
    found
}
