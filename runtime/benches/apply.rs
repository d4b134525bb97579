//! The cost of one `apply` call for `customer-view`, with a ~200-byte event
//! and a ~200-byte row: through the wasm engine (the shipped component,
//! reused instance) against the same projection compiled natively and
//! called through the same JSON-in, JSON-out path as the component glue.
//!
//! Run: `cargo bench -p projector --bench apply`. Besides criterion's
//! report, it prints calls per second on one core for both and their ratio.

// A benchmark fails by panicking.
#![allow(clippy::panic, clippy::cast_precision_loss)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use customer_view::CustomerView;
use projector::engine::{Engine, EngineConfig, WitEvent};
use projector_sdk::projection::Typed;
use projector_sdk::{Event, KafkaOrigin, RawProjection};

fn row() -> String {
    serde_json::json!({
        "customerId": "customer-000042",
        "email": "ada.lovelace@analytical-engines.example.com",
        "name": "Ada Lovelace",
        "address": {"street": "12 St James's Square, Westminster", "city": "London SW1Y 4JH"}
    })
    .to_string()
}

fn event() -> Event {
    let data = serde_json::json!({
        "newAddress": {
            "street": "Ockham Park, Ripley Road, East Horsley near Guildford",
            "city": "Surrey KT24 6QT, England, United Kingdom of Great Britain"
        }
    });
    Event {
        id: "8d1c7e7e-4f8a-4a59-9d2c-1f0d8c2b7a11".into(),
        source: "/crm/customers".into(),
        specversion: "1.0".into(),
        ty: "CustomerAddressChanged".into(),
        subject: Some("customer-000042".into()),
        time: Some("2026-11-23T22:00:00Z".into()),
        datacontenttype: Some("application/json".into()),
        data: Some(serde_json::to_vec(&data).unwrap_or_default()),
        origin: KafkaOrigin {
            topic: "customers".into(),
            partition: 3,
            offset: 1_234_567,
            key: Some(b"customer-000042".to_vec()),
            timestamp_ms: Some(1_795_000_000_000),
        },
        ..Event::default()
    }
}

/// Calls per second of `f`, timed over at least `window`.
fn rate(window: Duration, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0_u64;
    while started.elapsed() < window {
        for _ in 0..1000 {
            f();
        }
        calls += 1000;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let module = engine
        .load(projector_examples::CUSTOMER_VIEW.wasm)
        .unwrap_or_else(|err| panic!("customer-view: {err}"));
    let mut instance = module.instance();
    let row = row();
    let sdk_event = event();
    let wit_event = WitEvent::from(&sdk_event);
    println!(
        "input: row {} bytes, event data {} bytes",
        row.len(),
        sdk_event.data.as_ref().map_or(0, Vec::len)
    );
    // Both paths must agree before we time them.
    let wasm_out = instance
        .apply(Some(&row), &wit_event)
        .unwrap_or_else(|err| panic!("wasm: {err}"));
    let native_out = Typed::<CustomerView>::apply(Some(&row), &sdk_event)
        .unwrap_or_else(|err| panic!("native: {err}"));
    assert_eq!(wasm_out, native_out, "wasm and native disagree");

    let mut group = c.benchmark_group("customer-view apply");
    group.bench_function("wasm", |b| {
        b.iter(|| instance.apply(Some(&row), &wit_event));
    });
    group.bench_function("native", |b| {
        b.iter(|| Typed::<CustomerView>::apply(Some(&row), &sdk_event));
    });
    group.finish();

    let window = Duration::from_secs(3);
    let wasm = rate(window, || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &wit_event));
    });
    let native = rate(window, || {
        let _ = std::hint::black_box(Typed::<CustomerView>::apply(Some(&row), &sdk_event));
    });
    // The same event with a type the projection ignores before parsing
    // anything: what remains is the cost of crossing the boundary (lowering
    // the event, lifting the update) and of the engine's bookkeeping.
    let mut ignored = wit_event.clone();
    ignored.type_ = "SomethingElse".into();
    let boundary = rate(window, || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &ignored));
    });
    println!("customer-view apply, one core:");
    println!("  wasm              {wasm:>12.0} calls/s");
    println!("  native            {native:>12.0} calls/s");
    println!("  wasm / native     {:>12.3}", wasm / native);
    println!("  wasm, ignored     {boundary:>12.0} calls/s (boundary and bookkeeping only)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
