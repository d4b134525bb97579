//! The web console in a real browser: Debian's Chromium, headless, driven
//! over WebDriver (chromedriver, with the `fantoccini` client) against
//! `projector run` with the demo's view (`customer-view`, its `by_city`
//! index, dead letters) on librdkafka's mock cluster, with a bearer token.
//!
//! The page must ask for the token and refuse a wrong one, list the view,
//! show its partitions and rows, show a dead-lettered record, and follow a
//! row's change made by publishing an event; keyboard-only use and a narrow
//! window are checked too. With its data directory lost, the view restores
//! from its changelog, and the page shows how far the restore is. Markup fed through an error message, a subject
//! and a row's fields must show as text and never run. Screenshots of each step are saved under
//! `target/console-screenshots/`. The JSON the page reads is checked
//! against the OpenAPI document's schemas.
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/install-test-tools.sh`; without
//! them the test fails, naming the script.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key};
use projector::config::OnError;
use projector::engine::EngineConfig;
use rdkafka::message::OwnedHeaders;
use serde_json::{Value, json};

use crate::kit::{Api, Broker, TempDir, free_port, sigterm, start, view};

const TOPIC: &str = "customers";
const DLQ: &str = "customers-dlq";
/// The customers view's changelog (made here: the mock cluster has no
/// CreateTopics).
const CHANGELOG: &str = "customers-changelog";
const PARTITIONS: i32 = 4;
const CUSTOMERS: usize = 30;
const TOKEN: &str = "console-test-token-5f1c";

/// How long the page may take to show something: it polls every 2 s.
const PAGE_WAIT: Duration = Duration::from_secs(20);

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: scripts/install-test-tools.sh installs Debian's chromium and chromium-driver \
         (or set {env})",
        path.display()
    );
    path
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(program("PROJECTOR_CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = ureq::get(&format!("{url}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not get ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `projector run`, stopped on drop.
struct Runtime(Child);

impl Drop for Runtime {
    fn drop(&mut self) {
        sigterm(&self.0);
        self.0.wait().ok();
    }
}

/// Start `projector run` over `broker` with the customers view and the
/// same projection as `strict` (`on_error = "stop"`), its API on `port`
/// guarded by [`TOKEN`].
fn run_customers(dir: &TempDir, broker: &Broker, port: u16, failpoint: Option<&str>) -> Runtime {
    let home = dir.0.join("home");
    if !home.exists() {
        crate::cli::store_secret(&home, "api", "token", TOKEN);
    }
    let config = dir.0.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n\
             [http]\nbind = \"127.0.0.1:{port}\"\ntoken_secret = \"api/token\"\n\
             [broker]\nbootstrap_servers = \"{}\"\n\n\
             [[views]]\nname = \"customers\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             on_error = \"dead-letter\"\ndead_letter_topic = \"{DLQ}\"\n\
             indexes = [{{ name = \"by_city\", pointer = \"/address/city\" }}]\n\
             changelog = {{ topic = \"{CHANGELOG}\", replication = 1 }}\n\n\
             [[views]]\nname = \"strict\"\nmodule = \"{}\"\ntopics = [\"{TOPIC}\"]\non_error = \"stop\"\n",
            broker.bootstrap(),
            projector_examples::CUSTOMER_VIEW.path,
            projector_examples::CUSTOMER_VIEW.path
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.0.join("run.log"))
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
    command
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PROJECTOR_HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if let Some(failpoint) = failpoint {
        command.env("PROJECTOR_FAILPOINT", failpoint);
    }
    Runtime(command.spawn().unwrap())
}

fn customer(n: usize) -> String {
    format!("customer-{n:02}")
}

fn publish_created(broker: &Broker, n: usize, city: &str) {
    let subject = customer(n);
    let data = json!({
        "email": format!("{subject}@example.com"),
        "name": format!("Customer {n}"),
        "address": {"street": "1 Main Street", "city": city},
    });
    broker.publish(
        TOPIC,
        i32::try_from(n).unwrap() % PARTITIONS,
        "com.example.CustomerCreated",
        &format!("created-{n}"),
        Some(&subject),
        data.to_string().as_bytes(),
    );
}

fn publish_moved(broker: &Broker, n: usize, city: &str) {
    let data = json!({"newAddress": {"street": "2 High Street", "city": city}});
    broker.publish(
        TOPIC,
        i32::try_from(n).unwrap() % PARTITIONS,
        "com.example.CustomerAddressChanged",
        &format!("moved-{n}-{city}"),
        Some(&customer(n)),
        data.to_string().as_bytes(),
    );
}

/// `GET path` on the API with the token: the body as JSON.
fn api_json(base: &str, path: &str) -> Value {
    ureq::get(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap_or_else(|err| panic!("GET {path}: {err}"))
        .body_mut()
        .read_json()
        .unwrap()
}

/// The runtime's `/v1/views`; `None` while it does not answer.
fn views_if_up(base: &str) -> Option<Value> {
    ureq::get(&format!("{base}/v1/views"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The element at `css` once it exists and is displayed.
async fn shown(client: &Client, css: &str) -> Element {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            return element;
        }
        assert!(
            started.elapsed() < PAGE_WAIT,
            "the console did not show {css} within {PAGE_WAIT:?}; the page says: {}",
            page_text(client).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the text at `css` contains `wanted`.
async fn shows_text(client: &Client, css: &str, wanted: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(wanted)
        {
            return text;
        }
        assert!(
            started.elapsed() < PAGE_WAIT,
            "{css} did not show {wanted:?} within {PAGE_WAIT:?}; the page says: {}",
            page_text(client).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scroll the page so that `css` is at the top, for a screenshot.
async fn scroll_to(client: &Client, css: &str) {
    let element = shown(client, css).await;
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'start'}); return true",
            vec![serde_json::to_value(&element).unwrap()],
        )
        .await
        .unwrap();
}

async fn page_text(client: &Client) -> String {
    match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(err) => format!("(no body: {err})"),
    }
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |found| found.len())
}

async fn sign_in(client: &Client, token: &str) {
    let input = shown(client, "#token").await;
    input.clear().await.unwrap();
    input.send_keys(token).await.unwrap();
    shown(client, "#sign-in-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// Check `value` against the schema `name` of the OpenAPI document.
fn conforms(document: &Value, name: &str, value: &Value) {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": document["components"],
    });
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|err| panic!("schema {name} does not compile: {err}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the page's {name} does not conform to docs/openapi.json: {errors:?}"
    );
}

#[test]
fn the_console_signs_in_lists_the_view_and_follows_rows_failures_and_changes_in_a_browser() {
    let broker = Broker::new(&[(TOPIC, PARTITIONS), (DLQ, 1), (CHANGELOG, PARTITIONS)]);
    for n in 0..CUSTOMERS {
        publish_created(&broker, n, if n % 2 == 0 { "Oslo" } else { "Lima" });
    }
    broker.flush();
    let dir = TempDir::new("console");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let process = run_customers(&dir, &broker, port, None);
    crate::kit::wait_until("the rows", Duration::from_secs(60), || {
        views_if_up(&base).is_some_and(|report| {
            report["views"]
                .as_array()
                .is_some_and(|views| views.iter().all(|v| v["rows"] == CUSTOMERS))
        })
    });
    let driver = Driver::start();
    let chromium = program("PROJECTOR_CHROMIUM", "/usr/bin/chromium");
    let profile = TempDir::new("console-chromium");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1100",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a WebDriver session in chromium");

        // The token is asked for, and a wrong one refused.
        client.goto(&format!("{base}/console")).await.unwrap();
        shows_text(&client, "#sign-in-reason", "asks for a bearer token").await;
        screenshot(&client, "01-sign-in").await;
        sign_in(&client, "not-the-token").await;
        shows_text(&client, "#sign-in-reason", "refused that token").await;
        assert_eq!(count(&client, "article[data-view]").await, 0);
        screenshot(&client, "02-token-refused").await;
        sign_in(&client, TOKEN).await;

        // The view is listed with its rows.
        shown(&client, "article[data-view='customers']").await;
        shows_text(
            &client,
            "article[data-view='customers'] [data-figure='rows']",
            &CUSTOMERS.to_string(),
        )
        .await;
        shows_text(&client, "article[data-view='customers'] .badges", "running").await;
        screenshot(&client, "03-views").await;

        // The view: its partitions and its rows, opened from the keyboard.
        let link = shown(&client, "article[data-view='customers'] h3 a").await;
        link.send_keys(&Key::Enter.to_string()).await.unwrap();
        shown(&client, "#partitions").await;
        let started = Instant::now();
        while count(&client, "#partitions tbody tr").await != usize::try_from(PARTITIONS).unwrap() {
            assert!(
                started.elapsed() < PAGE_WAIT,
                "{}",
                page_text(&client).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shown(&client, "#row-table tr[data-subject='customer-00']").await;
        assert_eq!(count(&client, "#row-table tbody tr").await, 20, "one page");
        shown(&client, "#next-page").await.click().await.unwrap();
        shown(&client, "#row-table tr[data-subject='customer-29']").await;
        assert_eq!(count(&client, "#row-table tbody tr").await, 10, "the rest");
        scroll_to(&client, "#detail").await;
        screenshot(&client, "04-view").await;

        // A malformed record is shown as dead-lettered.
        broker.publish_raw(
            TOPIC,
            1,
            Some(b"garbage"),
            Some(b"not a cloud event"),
            OwnedHeaders::new(),
        );
        broker.flush();
        let failure = shows_text(
            &client,
            "#failures tr[data-outcome='dead-lettered']",
            "invalid-event",
        )
        .await;
        assert!(failure.contains(TOPIC), "{failure}");
        shows_text(&client, "[data-figure='counter-dead_lettered']", "1").await;
        scroll_to(&client, "#failures").await;
        screenshot(&client, "05-failure").await;

        // Markup from the data is shown as text, never run: in an error
        // message (a specversion the decoder quotes), a subject and a row.
        let markup_version = "<img src=x onerror=\"window.__xss=1\">";
        let headers = OwnedHeaders::new()
            .insert(rdkafka::message::Header {
                key: "ce_specversion",
                value: Some(markup_version),
            })
            .insert(rdkafka::message::Header {
                key: "ce_id",
                value: Some("markup-1"),
            });
        broker.publish_raw(TOPIC, 2, Some(b"markup"), Some(b"{}"), headers);
        let markup_subject = "<img src=y onerror=window.__xss=2>";
        let data = json!({
            "email": "markup@example.com",
            "name": "<script>window.__xss=3</script>",
            "address": {"street": "<b>bold</b>", "city": "Lima"},
        });
        broker.publish(
            TOPIC,
            0,
            "com.example.CustomerCreated",
            "created-markup",
            Some(markup_subject),
            data.to_string().as_bytes(),
        );
        broker.flush();
        shows_text(&client, "#failures", "<img src=x onerror=").await;

        // An index lookup, then a row and its live change.
        let index = shown(&client, "#row-index").await;
        index.select_by_value("by_city").await.unwrap();
        let value = shown(&client, "#row-prefix").await;
        value.send_keys("Lima").await.unwrap();
        value.send_keys(&Key::Enter.to_string()).await.unwrap();
        shown(&client, "#row-table tr[data-subject='customer-03']").await;
        assert_eq!(
            count(&client, "#row-table tr[data-subject='customer-02']").await,
            0
        );
        shows_text(&client, "#row-table", markup_subject).await;
        let ran = client
            .execute("return window.__xss === undefined", vec![])
            .await
            .unwrap();
        assert_eq!(
            ran,
            Value::Bool(true),
            "markup from the data ran in the page"
        );
        assert_eq!(
            count(&client, "#row-table img, #failures img, #row-table script").await,
            0,
            "markup from the data became elements"
        );
        let row = shown(&client, "#row-table tr[data-subject='customer-03'] button").await;
        row.send_keys(&Key::Enter.to_string()).await.unwrap();
        shows_text(&client, "#row-json", "Lima").await;
        shows_text(&client, "[data-figure='row-version']", "1").await;
        let etag = shown(&client, "[data-figure='row-etag']")
            .await
            .text()
            .await
            .unwrap();
        assert!(etag.starts_with("\"1-"), "{etag}");
        shown(&client, "#row-changes li[data-change='current']").await;
        publish_moved(&broker, 3, "Bergen");
        broker.flush();
        shows_text(&client, "#row-changes li[data-change='set']", "Bergen").await;
        shows_text(&client, "#row-json", "Bergen").await;
        shows_text(&client, "[data-figure='row-version']", "2").await;
        shows_text(&client, "[data-figure='row-etag']", "\"2-").await;
        scroll_to(&client, "#rows").await;
        screenshot(&client, "06-row-change").await;

        // Readable in a narrow window: nothing wider than it.
        client.set_window_size(400, 1000).await.unwrap();
        client.goto(&format!("{base}/console#/")).await.unwrap();
        shown(&client, "article[data-view='customers']").await;
        let fits = client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fits,
            Value::Bool(true),
            "the overview scrolls sideways at 400 px"
        );
        screenshot(&client, "07-narrow").await;

        // The JSON the page reads, against the document it is described by.
        let document: Value = serde_json::from_str(projector::http::OPENAPI).unwrap();
        conforms(&document, "ViewsReport", &api_json(&base, "/v1/views"));
        conforms(
            &document,
            "SamplesReport",
            &api_json(&base, "/v1/views/customers/samples"),
        );
        let failures = api_json(&base, "/v1/views/customers/failures");
        assert_eq!(failures["failures"][0]["outcome"], "dead-lettered");
        conforms(&document, "FailuresReport", &failures);
        conforms(
            &document,
            "RowsPage",
            &api_json(&base, "/v1/views/customers/rows?limit=20"),
        );

        // The data directory lost: the next start restores the view from
        // its changelog, paused by a failpoint at its first record so the
        // page can be looked at meanwhile.
        client.set_window_size(1280, 1100).await.unwrap();
        drop(process);
        std::fs::remove_dir_all(dir.0.join("data")).unwrap();
        let mut restoring = run_customers(&dir, &broker, port, Some("restore-record:1:60000"));
        crate::kit::wait_until("the restore under way", Duration::from_secs(60), || {
            views_if_up(&base)
                .is_some_and(|report| report["views"][0]["restoring"]["total"].as_u64() > Some(0))
        });
        let views = api_json(&base, "/v1/views");
        conforms(&document, "ViewsReport", &views);
        // As the page writes numbers: with thousands separators.
        let total = views["views"][0]["restoring"]["total"]
            .as_u64()
            .expect("a total")
            .to_string();
        let total = total
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|digits| String::from_utf8_lossy(digits).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        client.refresh().await.unwrap();
        // The page shows the restore and how far it is, as the API says.
        shows_text(
            &client,
            "article[data-view='customers'] .badges",
            &format!("restoring from its changelog 0% (0 of {total} records)"),
        )
        .await;
        shows_text(&client, "article[data-view='strict'] .badges", "running").await;
        screenshot(&client, "08-restoring").await;
        client.close().await.unwrap();
        // Paused for a minute: killed rather than waited for.
        restoring.0.kill().unwrap();
    });
}

#[test]
fn the_console_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("console-off");
    let service = start(
        &broker,
        &dir,
        vec![view(
            "customers",
            projector_examples::CUSTOMER_VIEW.path,
            &[TOPIC],
            OnError::Skip,
        )],
        EngineConfig::default(),
    );
    let on = Api::serve(
        projector::http::ApiState::for_service(&service)
            .with_token(&projector::secrets::SecretValue::new(TOKEN)),
    );
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        // Open without the token: the page holds no data.
        let (code, headers, body) = on.get_with(path, &[]);
        assert_eq!(code, 200, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(!body.is_empty());
    }
    // Its data is not open.
    assert_eq!(on.get("/v1/views/customers/failures").0, 401);
    drop(on);
    let off = Api::serve(projector::http::ApiState::for_service(&service).with_console(false));
    let (code, body) = off.get("/console");
    assert_eq!(code, 404);
    assert_eq!(body["code"], "no_route");
    assert_eq!(off.get("/v1/views").0, 200, "the API is still served");
    drop(off);
    service.stop();
}
