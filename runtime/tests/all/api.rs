//! The query API, black-box over HTTP, against a runtime fed through the
//! mock cluster: every endpoint and error status, stable paging under
//! concurrent inserts, index lookups through updates and deletes, watch
//! streams, read-your-writes and the bearer token.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use projector::config::{IndexConfig, OnError};
use projector::engine::EngineConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::kit::{Api, Broker, TempDir, encode, start, view, wait_committed, wait_for};

const TOPIC: &str = "customers";

fn customers_view() -> projector::config::ViewConfig {
    let mut config = view(
        "customers",
        projector_examples::CUSTOMER_VIEW.path,
        &[TOPIC],
        OnError::Skip,
    );
    config.indexes = vec![
        IndexConfig {
            name: "by_email".into(),
            pointer: "/email".into(),
        },
        IndexConfig {
            name: "by_city".into(),
            pointer: "/address/city".into(),
        },
    ];
    config
}

fn created(broker: &Broker, partition: i32, id: &str, subject: &str, email: &str, city: &str) {
    let data = json!({
        "email": email,
        "name": format!("name of {subject}"),
        "address": {"street": "1 Main Street", "city": city},
    });
    broker.publish(
        TOPIC,
        partition,
        "com.example.CustomerCreated",
        id,
        Some(subject),
        data.to_string().as_bytes(),
    );
}

fn moved(broker: &Broker, partition: i32, id: &str, subject: &str, city: &str) {
    let data = json!({"newAddress": {"street": "2 High Street", "city": city}});
    broker.publish(
        TOPIC,
        partition,
        "com.example.CustomerAddressChanged",
        id,
        Some(subject),
        data.to_string().as_bytes(),
    );
}

fn subjects(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["subject"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.1
    );
}

#[test]
fn rows_pages_index_lookups_and_errors() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("api-rows");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    for i in 0..30 {
        let city = if i % 3 == 0 { "Oslo" } else { "Kyoto" };
        created(
            &broker,
            i % 2,
            &format!("e{i}"),
            &format!("c-{i:02}"),
            &format!("c{i}@x.org"),
            city,
        );
    }
    // Subjects with a slash, a space, a percent sign and non-ASCII.
    let odd = ["team/ä-1", "50% off", "日本/東京?x=1#y"];
    for (n, subject) in odd.iter().enumerate() {
        created(
            &broker,
            0,
            &format!("odd{n}"),
            subject,
            &format!("odd{n}@x.org"),
            "Lisbon",
        );
    }
    broker.flush();
    let status = service.statuses()["customers"].clone();
    wait_committed(&status, 33);

    // A point read, its ETag and a conditional read.
    let (code, headers, body) = api.get_with("/v1/views/customers/rows/c-04", &[]);
    assert_eq!(code, 200, "{body}");
    let row: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(row["email"], "c4@x.org");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("\"1-"), "{etag}");
    assert_eq!(headers["projector-row-version"], "1");
    let (code, _, body) =
        api.get_with("/v1/views/customers/rows/c-04", &[("if-none-match", &etag)]);
    assert_eq!((code, body.as_str()), (304, ""));
    let (code, _, _) = api.get_with("/v1/views/customers/rows/c-05", &[("if-none-match", &etag)]);
    assert_eq!(code, 200, "another row's tag must not match");

    // Percent-encoded subjects round-trip.
    for subject in odd {
        let (code, row) = api.get(&format!("/v1/views/customers/rows/{}", encode(subject)));
        assert_eq!(code, 200, "{subject}: {row}");
        assert_eq!(row["customerId"], subject, "{row}");
    }

    // Absent rows, unknown views, unknown routes and methods.
    assert_error(
        &api.get("/v1/views/customers/rows/nobody"),
        404,
        "not_found",
    );
    assert_error(&api.get("/v1/views/nope/rows/c-01"), 404, "unknown_view");
    assert_error(&api.get("/v1/views/nope/rows"), 404, "unknown_view");
    assert_error(&api.get("/v2/anything"), 404, "no_route");
    let mut response = ureq::post(&format!("{}/v1/views", api.base))
        .config()
        .http_status_as_error(false)
        .build()
        .send("{}")
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: Value = response.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    let long = "x".repeat(projector::http::MAX_URI_BYTES);
    assert_error(
        &api.get(&format!("/v1/views/customers/rows/{long}")),
        414,
        "uri_too_long",
    );

    // Pages: the whole view, walked 7 at a time, in subject order.
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/views/customers/rows?limit=7&after={}", encode(after)),
            None => "/v1/views/customers/rows?limit=7".to_owned(),
        };
        let (code, page) = api.get(&path);
        assert_eq!(code, 200, "{page}");
        let got = subjects(&page);
        assert!(got.len() <= 7);
        walked.extend(got);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..30).map(|i| format!("c-{i:02}")).collect();
    expected.extend(odd.iter().map(|s| (*s).to_owned()));
    expected.sort();
    assert_eq!(walked, expected);
    let (_, page) = api.get("/v1/views/customers/rows?prefix=c-1");
    assert_eq!(
        subjects(&page),
        (10..20).map(|i| format!("c-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(page["next"], Value::Null);
    let (_, page) = api.get("/v1/views/customers/rows");
    assert_eq!(
        subjects(&page).len(),
        33,
        "the default limit (100) covers the view"
    );
    let c00 = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["subject"] == "c-00")
        .unwrap();
    assert_eq!(c00["version"], 1);
    assert_eq!(c00["row"]["email"], "c0@x.org");

    // Bounds and malformed queries: refused, not cut.
    for query in [
        "limit=1001",
        "limit=0",
        "limit=ten",
        "limt=10",
        "index=by_email",
        "index=by_phone&eq=1",
        "index=by_city&eq=Oslo&prefix=c",
    ] {
        assert_error(
            &api.get(&format!("/v1/views/customers/rows?{query}")),
            400,
            "bad_request",
        );
    }
    assert_eq!(api.get("/v1/views/customers/rows?limit=1000").0, 200);

    // Index lookups, paged.
    let (code, page) = api.get("/v1/views/customers/rows?index=by_email&eq=c7%40x.org");
    assert_eq!(code, 200, "{page}");
    assert_eq!(subjects(&page), ["c-07"]);
    let oslo: Vec<String> = (0..30)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("c-{i:02}"))
        .collect();
    let (_, first) = api.get("/v1/views/customers/rows?index=by_city&eq=Oslo&limit=4");
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, rest) = api.get(&format!(
        "/v1/views/customers/rows?index=by_city&eq=Oslo&limit=100&after={next}"
    ));
    assert_eq!([subjects(&first), subjects(&rest)].concat(), oslo);

    // Updates and deletes leave no stale index entries.
    moved(&broker, 0, "m1", "c-00", "Kyoto");
    broker.publish(
        TOPIC,
        1,
        "com.example.CustomerDeleted",
        "d1",
        Some("c-03"),
        b"",
    );
    broker.flush();
    wait_committed(&status, 35);
    let (_, page) = api.get("/v1/views/customers/rows?index=by_city&eq=Oslo");
    let now_oslo = subjects(&page);
    assert!(!now_oslo.contains(&"c-00".to_owned()) && !now_oslo.contains(&"c-03".to_owned()));
    assert_eq!(now_oslo.len(), oslo.len() - 2);
    let (_, page) = api.get("/v1/views/customers/rows?index=by_city&eq=Kyoto");
    assert!(subjects(&page).contains(&"c-00".to_owned()));
    let (_, page) = api.get("/v1/views/customers/rows?index=by_email&eq=c3%40x.org");
    assert!(subjects(&page).is_empty(), "{page}");
    let (_, headers, _) = api.get_with("/v1/views/customers/rows/c-00", &[]);
    assert_eq!(headers["projector-row-version"], "2");
    assert_ne!(headers["etag"].to_str().unwrap(), "\"1-\"");

    // The view report counts rows and lists indexes.
    let (code, report) = api.get("/v1/views");
    assert_eq!(code, 200);
    let view = &report["views"][0];
    assert_eq!(view["rows"], 32, "{view}");
    assert_eq!(view["indexes"], json!(["by_email", "by_city"]));
    assert_eq!(api.get("/healthz").0, 200);
    drop(api);
    service.stop();
}

#[test]
fn paging_is_stable_while_rows_are_inserted() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("api-paging");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    // Even numbers first; odd numbers arrive while a client pages.
    for i in (0..400).step_by(2) {
        created(
            &broker,
            i % 2,
            &format!("e{i}"),
            &format!("s-{i:04}"),
            "a@x",
            "Oslo",
        );
    }
    broker.flush();
    let status = service.statuses()["customers"].clone();
    wait_committed(&status, 200);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut inserted = 1;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/views/customers/rows?limit=10&after={after}"),
            None => "/v1/views/customers/rows?limit=10".to_owned(),
        };
        let (code, page) = api.get(&path);
        assert_eq!(code, 200, "{page}");
        seen.extend(subjects(&page));
        // Twenty more rows, spread over the whole key range, per page.
        for _ in 0..20 {
            if inserted < 400 {
                created(
                    &broker,
                    1,
                    &format!("e{inserted}"),
                    &format!("s-{inserted:04}"),
                    "a@x",
                    "Oslo",
                );
                inserted += 2;
            }
        }
        broker.flush();
        std::thread::sleep(Duration::from_millis(5));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row was returned twice");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "pages left subject order"
    );
    for i in (0..400).step_by(2) {
        assert!(
            seen.contains(&format!("s-{i:04}")),
            "s-{i:04} existed throughout but was skipped"
        );
    }
    assert!(
        seen.len() > 200,
        "no concurrent insert was visible at all: the test did not interleave"
    );
    drop(api);
    service.stop();
}

#[test]
fn a_read_with_the_publish_token_always_sees_the_event() {
    let broker = Broker::new(&[(TOPIC, 3)]);
    let dir = TempDir::new("api-ryw");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let publish = |ty: &str, id: &str, subject: &str, data: Value| -> String {
        let headers = projector::kafka::binary_headers(&projector::kafka::OutgoingEvent {
            id,
            source: "/tests",
            ty,
            subject: Some(subject),
            datacontenttype: Some("application/json"),
        });
        let payload = data.to_string();
        let record = FutureRecord::to(TOPIC)
            .key(subject)
            .payload(&payload)
            .headers(headers);
        let delivery = runtime
            .block_on(producer.send(record, Duration::from_secs(10)))
            .map_err(|(err, _)| err)
            .unwrap();
        format!("{TOPIC}:{}:{}", delivery.partition, delivery.offset)
    };
    let token = publish(
        "com.example.CustomerCreated",
        "c0",
        "ryw",
        json!({"email": "r@x", "name": "v0"}),
    );
    let (code, row) = api.get(&format!("/v1/views/customers/rows/ryw?min_offsets={token}"));
    assert_eq!((code, &row["name"]), (200, &json!("v0")), "{row}");
    for n in 1..=40 {
        let name = format!("v{n}");
        let token = publish(
            "com.example.CustomerNameChanged",
            &format!("n{n}"),
            "ryw",
            json!({"newName": name}),
        );
        let (code, headers, body) = api.get_with(
            &format!("/v1/views/customers/rows/ryw?min_offsets={token}&timeout_ms=10000"),
            &[],
        );
        assert_eq!(code, 200, "{body}");
        let row: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(row["name"], name, "read {n} did not see its own write");
        assert_eq!(
            headers["projector-row-version"],
            (n + 1).to_string().as_str()
        );
        // Pages and index lookups take the token too.
        let (code, page) = api.get(&format!(
            "/v1/views/customers/rows?index=by_email&eq=r%40x&min_offsets={token}"
        ));
        assert_eq!(code, 200);
        assert_eq!(page["rows"][0]["row"]["name"], name);
    }

    // An offset not published yet: 504 with the view's position.
    let answer = api.get(&format!(
        "/v1/views/customers/rows/ryw?min_offsets={TOPIC}:0:1000000&timeout_ms=200"
    ));
    assert_error(&answer, 504, "not_applied_yet");
    let positions = answer.1["positions"].as_array().unwrap();
    assert!(!positions.is_empty(), "{}", answer.1);
    assert!(
        positions
            .iter()
            .all(|p| p["topic"] == TOPIC && p["next_offset"].as_i64().is_some())
    );

    for bad in [
        "min_offsets=customers",
        "min_offsets=customers:zero:1",
        "min_offsets=customers:0:-1",
        "min_offsets=orders:0:1",
        "min_offsets=customers:0:1&timeout_ms=999999",
        "timeout_ms=soon",
    ] {
        assert_error(
            &api.get(&format!("/v1/views/customers/rows/ryw?{bad}")),
            400,
            "bad_request",
        );
    }
    assert_eq!(api.get("/healthz").0, 200, "the server stays up");
    drop(api);
    service.stop();
}

/// Read Server-Sent Events from `url` on a thread, sending `(event, data)`.
pub(crate) fn watch(url: String) -> std::sync::mpsc::Receiver<(String, Value)> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let response = ureq::get(&url).call().unwrap();
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let reader = BufReader::new(response.into_body().into_reader());
        let mut event = String::new();
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(data).unwrap();
                if sender.send((std::mem::take(&mut event), data)).is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

#[test]
fn a_watcher_sees_every_change_of_its_subject_in_order() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("api-watch");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    let subject = "watched/ü";
    created(&broker, 0, "before", subject, "w@x", "Oslo");
    broker.flush();
    // Applied is not yet committed: wait for the row itself.
    let (code, _) = api.get(&format!(
        "/v1/views/customers/rows/{}?min_offsets={TOPIC}:0:0",
        encode(subject)
    ));
    assert_eq!(code, 200);

    let events = watch(format!(
        "{}/v1/views/customers/rows/{}/watch",
        api.base,
        encode(subject)
    ));
    let next = || {
        events
            .recv_timeout(Duration::from_secs(30))
            .expect("a watch event")
    };
    let (kind, current) = next();
    assert_eq!(
        (kind.as_str(), &current["version"]),
        ("current", &json!(1)),
        "{current}"
    );
    assert_eq!(current["row"]["address"]["city"], "Oslo");

    // Changes of the subject (on one partition, so that the publish order
    // is the apply order), interleaved with other subjects' changes on both
    // partitions, then a delete and a new creation.
    let cities: Vec<String> = (0..25).map(|n| format!("city-{n}")).collect();
    for (n, city) in cities.iter().enumerate() {
        moved(&broker, 0, &format!("m{n}"), subject, city);
        created(
            &broker,
            i32::try_from(n % 2).unwrap(),
            &format!("o{n}"),
            &format!("other-{n}"),
            "o@x",
            "Oslo",
        );
        if n % 5 == 0 {
            broker.flush();
        }
    }
    broker.publish(
        TOPIC,
        0,
        "com.example.CustomerDeleted",
        "del",
        Some(subject),
        b"",
    );
    created(&broker, 0, "again", subject, "w2@x", "Rome");
    broker.flush();

    for (n, city) in cities.iter().enumerate() {
        let (kind, data) = next();
        assert_eq!(kind, "set", "{data}");
        assert_eq!(data["subject"], subject);
        assert_eq!(data["version"], json!(n + 2), "{data}");
        assert_eq!(&data["row"]["address"]["city"], city, "{data}");
    }
    let (kind, data) = next();
    assert_eq!(
        (kind.as_str(), &data["row"]),
        ("delete", &Value::Null),
        "{data}"
    );
    let (kind, data) = next();
    assert_eq!(
        (kind.as_str(), &data["version"]),
        ("set", &json!(1)),
        "{data}"
    );
    assert_eq!(data["row"]["email"], "w2@x");

    // A watch of a subject with no row starts with a null current row.
    let events = watch(format!("{}/v1/views/customers/rows/ghost/watch", api.base));
    let (kind, data) = events.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((kind.as_str(), &data["row"]), ("current", &Value::Null));
    assert_error(&api.get("/v1/views/nope/rows/x/watch"), 404, "unknown_view");
    // Stopping the server ends open streams (it would hang otherwise).
    drop(api);
    service.stop();
}

#[test]
fn a_bearer_token_guards_everything_but_health() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("api-token");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let status = service.statuses()["customers"].clone();
    wait_for(&status, Duration::from_secs(30), "the group joined", |s| {
        s.has_joined()
    });
    let api = Api::start(&service, Some("s3cret-token"));
    assert_eq!(api.get("/healthz").0, 200);
    assert_ne!(api.get("/readyz").0, 401);
    for path in [
        "/v1/views",
        "/metrics",
        "/v1/views/customers/rows",
        "/v1/openapi.json",
    ] {
        let (code, headers, body) = api.get_with(path, &[]);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert!(body.contains("\"unauthorized\""), "{body}");
        let (code, _, body) = api.get_with(path, &[("authorization", "Bearer wrong")]);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(!body.contains("s3cret"), "{body}");
        let (code, _, body) = api.get_with(path, &[("authorization", "Bearer s3cret-token")]);
        assert_eq!(code, 200, "{path}: {body}");
    }
    drop(api);
    service.stop();
}

/// Send `request` (a whole HTTP/1.1 request, as a browser would) to the
/// API at `base`; the status and the body.
fn raw(base: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    (status, body)
}

#[test]
fn a_web_page_the_operator_visits_cannot_drive_the_api() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("api-cross-site");
    let mut quarantined = view(
        "quarantined",
        projector_examples::MISBEHAVING.path,
        &[TOPIC],
        OnError::Quarantine,
    );
    quarantined.group = Some("api-cross-site".to_owned());
    let service = start(
        &broker,
        &dir,
        vec![customers_view(), quarantined],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    let host = api.base.trim_start_matches("http://").to_owned();
    let release = "/v1/views/quarantined/quarantine/release?subject=nobody";
    // A cross-site form or `text/plain` fetch: refused before the route
    // runs (the route would answer 404 not_quarantined).
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, body) = raw(
            &api.base,
            &format!(
                "POST {release} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
            ),
        );
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(body.contains("unsupported_media_type"), "{body}");
    }
    let (status, body) = raw(
        &api.base,
        &format!(
            "POST {release} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 415, "no content type: {body}");
    // The same request as JSON reaches the route: the refusal above was the
    // guard's, not the route's.
    let (status, body) = raw(
        &api.base,
        &format!(
            "POST {release} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_quarantined"), "{body}");
    // DNS rebinding: a page's own name resolved to this address. Without a
    // token, only an address or localhost is served.
    for (name, expected) in [
        ("evil.example", 403),
        ("127.0.0.1.nip.io", 403),
        ("localhost", 200),
        ("127.0.0.1", 200),
    ] {
        let port = host.rsplit_once(':').unwrap().1;
        let (status, body) = raw(
            &api.base,
            &format!("GET /v1/views HTTP/1.1\r\nHost: {name}:{port}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, expected, "{name}: {body}");
    }
    // Readiness is open to probes: one word, no view name or error text.
    let (status, body) = raw(
        &api.base,
        &format!("GET /readyz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    if status == 503 {
        assert!(
            !body.contains("customers") && !body.contains("quarantined"),
            "{body}"
        );
        let word = body.split("not ready: ").nth(1).unwrap_or_default();
        assert!(
            ["failed", "unassigned", "joining", "stopped", "catching-up"]
                .iter()
                .any(|w| word.starts_with(w)),
            "{body}"
        );
    } else {
        assert_eq!((status, body.as_str()), (200, "ready\n"));
    }
    drop(api);
    // With a token, a name is served (the page cannot know the token).
    let api = Api::start(&service, Some("s3cret-token"));
    let port = api.base.rsplit_once(':').unwrap().1.to_owned();
    let (status, body) = raw(
        &api.base,
        &format!(
            "GET /v1/views HTTP/1.1\r\nHost: projector.internal:{port}\r\nAuthorization: Bearer s3cret-token\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{body}");
    drop(api);
    service.stop();
}

#[test]
fn every_documented_route_is_served_and_the_document_is_the_checked_in_one() {
    let broker = Broker::new(&[(TOPIC, 1)]);
    let dir = TempDir::new("api-openapi");
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let api = Api::start(&service, None);
    let (code, _, served) = api.get_with("/v1/openapi.json", &[]);
    assert_eq!(code, 200);
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    assert_eq!(served, on_disk);
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(
        document["openapi"].as_str().unwrap().split('.').next(),
        Some("3")
    );
    let paths: BTreeSet<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // The router's own list: a route added to it and not to the document
    // fails here.
    let served_routes: BTreeSet<&str> = projector::http::route_paths().into_iter().collect();
    assert!(served_routes.len() >= 8, "{served_routes:?}");
    assert_eq!(
        paths, served_routes,
        "docs/openapi.json and the router disagree"
    );
    for path in paths {
        let concrete = path
            .replace("{view}", "customers")
            .replace("{subject}", "nobody");
        if concrete.ends_with("/watch") {
            continue; // A stream; served in the watch test.
        }
        let (_, body) = api.get(&concrete);
        assert_ne!(
            body["code"], "no_route",
            "{path} is documented but not served"
        );
        // Every route answers GET, or POST only (which a GET is refused
        // on, as `method_not_allowed`), or both (a deploy).
        let documented = &document["paths"][path];
        let operation = if documented["post"].is_object() && !documented["get"].is_object() {
            assert_eq!(body["code"], "method_not_allowed", "{path}: {body}");
            &documented["post"]
        } else {
            &documented["get"]
        };
        assert!(
            operation["responses"].is_object(),
            "{path} documents no responses"
        );
    }
    drop(api);
    service.stop();
}

#[test]
fn samples_show_the_views_recent_figures_once_a_second() {
    let broker = Broker::new(&[(TOPIC, 2)]);
    let dir = TempDir::new("api-samples");
    for n in 0..20 {
        created(
            &broker,
            n % 2,
            &format!("e{n}"),
            &format!("c-{n}"),
            "a@x",
            "Paris",
        );
    }
    broker.flush();
    let service = start(
        &broker,
        &dir,
        vec![customers_view()],
        EngineConfig::default(),
    );
    let status = service.statuses()["customers"].clone();
    wait_for(&status, Duration::from_secs(60), "20 applied", |s| {
        s.counters().applied == 20
    });
    let api = Api::start(&service, None);
    // Samples come once a second: wait for one taken after the 20.
    let started = std::time::Instant::now();
    let report = loop {
        let (code, report) = api.get("/v1/views/customers/samples");
        assert_eq!(code, 200, "{report}");
        let last = report["samples"].as_array().and_then(|s| s.last().cloned());
        if last.is_some_and(|s| s["applied"] == 20 && s["rows"] == 20) {
            break report;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{report}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(report["interval_ms"], 1000);
    assert_eq!(report["capacity"], 300);
    let samples = report["samples"].as_array().unwrap();
    let applied: Vec<u64> = samples
        .iter()
        .map(|s| s["applied"].as_u64().unwrap())
        .collect();
    assert!(applied.windows(2).all(|w| w[0] <= w[1]), "{applied:?}");
    let times: Vec<u64> = samples
        .iter()
        .map(|s| s["unix_ms"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[1] >= w[0] + 900),
        "a second apart: {times:?}"
    );
    let last = samples.last().unwrap();
    assert_eq!(last["partitions"].as_array().unwrap().len(), 2, "{last}");
    assert_eq!(last["lag"], 0, "{last}");
    assert_error(&api.get("/v1/views/nope/samples"), 404, "unknown_view");
    drop(api);
    service.stop();
}
