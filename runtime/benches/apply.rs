//! The cost of one `apply` call for `customer-view`, with a ~200-byte event
//! and a ~200-byte row: through the wasm engine (the shipped component,
//! reused instance) against the same projection compiled natively and
//! called through the same JSON-in, JSON-out path as the component glue.
//!
//! Run: `cargo bench -p projector --bench apply`. Besides criterion's
//! report, it prints calls per second on one core for both and their ratio.

// A benchmark fails by panicking.
#![allow(clippy::panic, clippy::cast_precision_loss)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use customer_view::CustomerView;
use projector::engine::{Engine, EngineConfig};
use projector::event::Event;
use projector_sdk::RawProjection;
use projector_sdk::projection::Typed;

mod common;
use common::{event, rate, row};

fn bench(c: &mut Criterion) {
    let engine = Engine::new(EngineConfig::default()).unwrap_or_else(|err| panic!("engine: {err}"));
    let module = engine
        .load(projector_examples::CUSTOMER_VIEW.wasm)
        .unwrap_or_else(|err| panic!("customer-view: {err}"));
    let mut instance = module.instance();
    let row = row();
    let sdk_event = event();
    let event = Event::from(&sdk_event);
    println!(
        "input: row {} bytes, event data {} bytes",
        row.len(),
        sdk_event.data.as_ref().map_or(0, Vec::len)
    );
    // Both paths must agree before we time them.
    let wasm_out = instance
        .apply(Some(&row), &event)
        .unwrap_or_else(|err| panic!("wasm: {err}"));
    let native_out = Typed::<CustomerView>::apply(Some(&row), &sdk_event)
        .unwrap_or_else(|err| panic!("native: {err}"));
    assert_eq!(wasm_out, native_out, "wasm and native disagree");

    let mut group = c.benchmark_group("customer-view apply");
    group.bench_function("wasm", |b| {
        b.iter(|| instance.apply(Some(&row), &event));
    });
    group.bench_function("native", |b| {
        b.iter(|| Typed::<CustomerView>::apply(Some(&row), &sdk_event));
    });
    group.finish();

    let window = Duration::from_secs(3);
    let wasm = rate(window, || {
        let _ = std::hint::black_box(instance.apply(Some(&row), &event));
    });
    let native = rate(window, || {
        let _ = std::hint::black_box(Typed::<CustomerView>::apply(Some(&row), &sdk_event));
    });
    // The same event with a type the projection ignores before parsing
    // anything: what remains is the cost of crossing the boundary (lowering
    // the event, lifting the update) and of the engine's bookkeeping.
    let mut ignored = sdk_event.clone();
    ignored.ty = "SomethingElse".into();
    let ignored = Event::from(&ignored);
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
