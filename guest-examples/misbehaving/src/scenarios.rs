//! Scenarios for the misbehaving projection, generic over the [`Applier`].

// Test scenarios: failing an assertion by panicking is their job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use projector_sdk::testing::{Applier, EventBuilder, MockHost};
use serde_json::Value;

/// An event that asks for the misbehaviour `kind` (`trap`, `panic`, ...),
/// for subject `victim`.
pub fn misbehave(kind: &str) -> EventBuilder {
    EventBuilder::new(format!("misbehave.{kind}")).subject("victim")
}

/// Benign events count per subject, before and after any failure.
pub fn benign_events_count<A: Applier>(host: &mut MockHost<A>) {
    let before = host
        .row::<Value>("benign")
        .and_then(|row| row["count"].as_u64())
        .unwrap_or(0);
    for _ in 0..3 {
        let outcome = host.publish(EventBuilder::new("count").subject("benign"));
        assert!(outcome.is_applied(), "{outcome:?}");
    }
    assert_eq!(host.expect_row::<Value>("benign")["count"], before + 3);
}
