//! Managed Kafka, end to end, as an operator runs it: a real tansu broker
//! behind the test-only TLS + SASL PLAIN front (`front.rs`), and only the
//! `projector` binary: secret, broker config, topics, publish, run, query.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{projector_at, stderr, stdout};
use crate::kit::{Broker, TempDir, free_port};

const USER: &str = "ABCDEFGH12345678";
const PASSWORD: &str = "cflt-s3cr3t/with+symbols=";

/// Set up a home with the password stored and the broker configured for
/// SASL PLAIN.
fn configure(home: &TempDir, broker: &Broker, password: &str, ca_file: &std::path::Path) {
    configure_with(home, broker, "plain", password, ca_file);
}

/// Set up a home with the password stored and the broker configured for
/// the SASL mechanism `auth`.
fn configure_with(
    home: &TempDir,
    broker: &Broker,
    auth: &str,
    password: &str,
    ca_file: &std::path::Path,
) {
    crate::cli::store_secret(&home.0, "confluent", "api-secret", password);
    let output = projector_at(
        &home.0,
        &[
            "config",
            "set",
            "broker",
            "--broker-service",
            "kafka",
            "--broker-auth",
            auth,
            "--broker-user",
            USER,
            "--broker-password-secret",
            "confluent/api-secret",
            "--broker-bootstrap-servers",
            &broker.bootstrap(),
            "--broker-ca-file",
            ca_file.to_str().unwrap(),
            "--description",
            "tansu behind TLS + SASL PLAIN",
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A `projector run` process, killed if the test fails before it stops it.
struct Running(Option<Child>);

/// `projector_at`, keeping what the command printed in `captured`.
fn captured_at(
    captured: &mut String,
    home: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    let output = projector_at(home, args, stdin);
    captured.push_str(&stdout(&output));
    captured.push_str(&stderr(&output));
    output
}

impl Running {
    /// Stop it with SIGTERM, as an operator does, and collect its output.
    fn terminate(mut self) -> std::process::Output {
        let child = self.0.take().unwrap();
        crate::kit::sigterm(&child);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

#[test]
fn the_seed_flow_runs_over_sasl_ssl() {
    let dir = TempDir::new("managed-flow");
    let home = TempDir::new("managed-flow-home");
    // Everything the flow prints, logs or serves, searched for the password
    // at the end.
    let mut captured = String::new();
    let broker = Broker::tansu_sasl(&[], USER, PASSWORD, &dir);
    let ca_file = broker.secure.as_ref().unwrap().ca_file.clone();
    configure(&home, &broker, PASSWORD, &ca_file);

    // The stored config shows the secret by reference only.
    let output = captured_at(&mut captured, &home.0, &["config", "get", "broker"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(
        shown.contains("password_secret = \"confluent/api-secret\""),
        "{shown}"
    );
    assert!(shown.contains("auth = \"plain\""), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");

    let output = captured_at(&mut captured, &home.0, &["config", "test", "broker"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("TLS, SASL PLAIN as ABCDEFGH12345678"),
        "{}",
        stdout(&output)
    );

    // Topics through the admin API, over SASL_SSL.
    let output = captured_at(
        &mut captured,
        &home.0,
        &[
            "topic",
            "create",
            "customers",
            "--partitions",
            "3",
            "--replication",
            "1",
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = captured_at(
        &mut captured,
        &home.0,
        &["topic", "create", "customers", "--partitions", "3"],
        "",
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("exists already"),
        "{}",
        stderr(&output)
    );
    let output = captured_at(
        &mut captured,
        &home.0,
        &["topic", "create", "wide", "--replication", "3"],
        "",
    );
    assert!(
        stderr(&output).contains("higher than the number of brokers (1)"),
        "{}",
        stderr(&output)
    );
    let output = captured_at(
        &mut captured,
        &home.0,
        &["topic", "list", "--output", "json"],
        "",
    );
    let topics: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        topics
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "customers", "partitions": 3})),
        "{topics}"
    );

    // Publish: the subject is the key, so one subject lands on one partition.
    let mut tokens = Vec::new();
    for (n, (subject, ty, data)) in [
        (
            "c-1",
            "com.example.CustomerCreated",
            r#"{"email":"ada@x","name":"Ada"}"#,
        ),
        (
            "c-2",
            "com.example.CustomerCreated",
            r#"{"email":"alan@x","name":"Alan"}"#,
        ),
        (
            "c-1",
            "com.example.CustomerNameChanged",
            r#"{"newName":"Ada Lovelace"}"#,
        ),
    ]
    .iter()
    .enumerate()
    {
        let mut args = vec![
            "publish",
            "--topic",
            "customers",
            "--type",
            ty,
            "--source",
            "/crm",
            "--subject",
            subject,
            "--data",
            data,
        ];
        if n == 1 {
            args.push("--structured");
        }
        let output = captured_at(&mut captured, &home.0, &args, "");
        assert!(output.status.success(), "{}", stderr(&output));
        let token = stdout(&output).trim().to_owned();
        let parts: Vec<&str> = token.split(':').collect();
        assert_eq!(parts.len(), 3, "{token}");
        tokens.push((subject.to_string(), token));
    }
    let partition_of = |token: &str| token.split(':').nth(1).unwrap().to_owned();
    assert_eq!(
        partition_of(&tokens[0].1),
        partition_of(&tokens[2].1),
        "one subject, one partition"
    );

    // projector run, with no [broker] in its file: it uses the stored one.
    let port = free_port();
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "{}data_dir = \"data\"\n[http]\nbind = \"127.0.0.1:{port}\"\n\n[[views]]\nname = \"customers\"\n\
             module = \"{}\"\ntopics = [\"customers\"]\n",
            crate::kit::TANSU_GROUP_SETTINGS,
            projector_examples::CUSTOMER_VIEW.path
        ),
    )
    .unwrap();
    let run = Running(Some(
        Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["run", "-c", config.to_str().unwrap()])
            .env("PROJECTOR_HOME", &home.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Read-your-writes with the token publish printed.
    let api = format!("http://127.0.0.1:{port}");
    let last = &tokens[2].1;
    let started = Instant::now();
    let output = loop {
        let output = captured_at(
            &mut captured,
            &home.0,
            &[
                "query",
                "customers",
                "c-1",
                "--min-offsets",
                last,
                "--timeout-ms",
                "20000",
                "--api",
                &api,
                "--output",
                "json",
            ],
            "",
        );
        if output.status.success() || started.elapsed() > Duration::from_secs(60) {
            break output;
        }
        // The API is not up yet; the runtime is still starting.
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(output.status.success(), "{}", stderr(&output));
    let row: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(row["name"], "Ada Lovelace");
    let output = captured_at(
        &mut captured,
        &home.0,
        &[
            "query",
            "customers",
            "c-2",
            "--min-offsets",
            &tokens[1].1,
            "--api",
            &api,
            "--output",
            "json",
        ],
        "",
    );
    let row: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        row["email"], "alan@x",
        "the structured event was applied too"
    );

    for path in ["/metrics", "/v1/views", "/v1/views/customers/rows"] {
        let mut response = ureq::get(&format!("{api}{path}")).call().unwrap();
        captured.push_str(&response.body_mut().read_to_string().unwrap());
    }
    let output = run.terminate();
    assert!(output.status.success(), "{}", stderr(&output));
    captured.push_str(&stdout(&output));
    captured.push_str(&stderr(&output));
    assert!(
        captured.contains("projector_events_total"),
        "the metrics were captured"
    );
    assert!(
        captured.contains("view started"),
        "the run's logs were captured"
    );
    assert!(
        !captured.contains(PASSWORD),
        "the password appears in what the flow printed, logged or served"
    );
    // Nor in any process's arguments: the secret went in on stdin.
    let stored = std::fs::read_to_string(home.0.join("broker.toml")).unwrap();
    assert!(!stored.contains(PASSWORD), "{stored}");
}

#[test]
fn tls_login_and_dns_failures_are_told_apart() {
    let dir = TempDir::new("managed-failures");
    let broker = Broker::tansu_sasl(&[("events", 1)], USER, PASSWORD, &dir);
    let ca_file = broker.secure.as_ref().unwrap().ca_file.clone();

    // A wrong password: an authentication error, without the password.
    let home = TempDir::new("managed-wrong-password");
    configure(&home, &broker, "not-the-password", &ca_file);
    let output = projector_at(&home.0, &["config", "test", "broker"], "");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    assert!(
        broker.front.as_ref().unwrap().refused() >= 1,
        "the front saw no refused login"
    );
    let output = projector_at(
        &home.0,
        &[
            "publish",
            "--topic",
            "events",
            "--type",
            "T",
            "--source",
            "/s",
            "--subject",
            "x",
        ],
        "",
    );
    assert!(
        stderr(&output).contains("authentication failed"),
        "{}",
        stderr(&output)
    );

    // A CA that did not sign the broker's certificate: a TLS error.
    let home = TempDir::new("managed-wrong-ca");
    let stranger = crate::front::stranger_ca(&home.0);
    configure(&home, &broker, PASSWORD, &stranger);
    let output = projector_at(&home.0, &["config", "test", "broker"], "");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("TLS"), "{}", stderr(&output));

    // A host that does not resolve: a DNS error.
    let home = TempDir::new("managed-dns");
    let output = projector_at(
        &home.0,
        &[
            "config",
            "set",
            "broker",
            "--broker-bootstrap-servers",
            "no-such-broker.invalid:9092",
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = projector_at(&home.0, &["config", "test", "broker"], "");
    assert!(stderr(&output).contains("DNS"), "{}", stderr(&output));

    // A secret that does not exist: named.
    let home = TempDir::new("managed-no-secret");
    let output = projector_at(
        &home.0,
        &[
            "config",
            "set",
            "broker",
            "--broker-auth",
            "plain",
            "--broker-user",
            USER,
            "--broker-password-secret",
            "nope/password",
            "--broker-bootstrap-servers",
            &broker.bootstrap(),
        ],
        "",
    );
    assert!(
        stderr(&output).contains("secret \"nope\" does not exist"),
        "warned at set: {}",
        stderr(&output)
    );
    let output = projector_at(&home.0, &["config", "test", "broker"], "");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("secret \"nope\" does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_view_consumes_over_sasl_ssl_in_process() {
    use crate::kit::{start, view, wait_committed};
    let dir = TempDir::new("managed-view");
    let broker = Broker::tansu_sasl(&[("events", 2)], USER, PASSWORD, &dir);
    let service = start(
        &broker,
        &dir,
        vec![view(
            "counter",
            projector_examples::EVENT_COUNTER.path,
            &["events"],
            projector::config::OnError::Stop,
        )],
        Default::default(),
    );
    for n in 0..200 {
        let subject = format!("s-{}", n % 7);
        broker.publish(
            "events",
            n % 2,
            "Counted",
            &format!("e{n}"),
            Some(&subject),
            b"{}",
        );
    }
    broker.flush();
    let status = service.statuses()["counter"].clone();
    wait_committed(&status, 200);
    assert_eq!(status.counters().applied, 200);
    assert_eq!(status.counters().duplicates, 0);
    service.stop();
}

#[test]
fn scram_logins_work_and_wrong_passwords_are_refused() {
    let dir = TempDir::new("managed-scram");
    let broker = Broker::tansu_sasl(&[("events", 1)], USER, PASSWORD, &dir);
    let ca_file = broker.secure.as_ref().unwrap().ca_file.clone();
    for (auth, mechanism) in [
        ("scram-sha-256", "SCRAM-SHA-256"),
        ("scram-sha-512", "SCRAM-SHA-512"),
    ] {
        let home = TempDir::new("managed-scram-home");
        configure_with(&home, &broker, auth, PASSWORD, &ca_file);
        let output = projector_at(&home.0, &["config", "test", "broker"], "");
        assert!(output.status.success(), "{auth}: {}", stderr(&output));
        assert!(
            stdout(&output).contains(&format!("SASL {mechanism} as {USER}")),
            "{}",
            stdout(&output)
        );
        let output = projector_at(
            &home.0,
            &[
                "publish",
                "--topic",
                "events",
                "--type",
                "T",
                "--source",
                "/s",
                "--subject",
                auth,
            ],
            "",
        );
        assert!(output.status.success(), "{auth}: {}", stderr(&output));
        assert!(
            stdout(&output).starts_with("events:0:"),
            "{}",
            stdout(&output)
        );

        let home = TempDir::new("managed-scram-wrong");
        configure_with(&home, &broker, auth, "wrong-password", &ca_file);
        let output = projector_at(&home.0, &["config", "test", "broker"], "");
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("authentication failed"),
            "{auth}: {}",
            stderr(&output)
        );
    }
}
