//! What the `apply` and `languages` benchmarks share: customer-view's
//! input (a ~200-byte event and a ~200-byte row) and a calls-per-second
//! timer.

// A benchmark fails by panicking.
#![allow(clippy::cast_precision_loss, dead_code)]

use std::time::{Duration, Instant};

use projector_sdk::{Event, KafkaOrigin};

/// A customer-view row.
pub fn row() -> String {
    serde_json::json!({
        "customerId": "customer-000042",
        "email": "ada.lovelace@analytical-engines.example.com",
        "name": "Ada Lovelace",
        "address": {"street": "12 St James's Square, Westminster", "city": "London SW1Y 4JH"}
    })
    .to_string()
}

/// A `CustomerAddressChanged` event for [`row`].
pub fn event() -> Event {
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
pub fn rate(window: Duration, mut f: impl FnMut()) -> f64 {
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
