//! Scenarios for the customer view, generic over the [`Applier`], so they run
//! natively (in this crate's tests) and against the compiled `.wasm` (in the
//! workspace's `tests` crate).

// Test scenarios: failing an assertion by panicking is their job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use projector_sdk::Level;
use projector_sdk::testing::{Applier, EventBuilder, MockHost};
use serde_json::json;

use crate::{Address, Customer};

fn created(subject: &str, name: &str) -> EventBuilder {
    EventBuilder::new("CustomerCreated")
        .subject(subject)
        .data_json(&json!({"email": format!("{name}@example.com"), "name": name}))
}

fn renamed(subject: &str, name: &str) -> EventBuilder {
    EventBuilder::new("CustomerNameChanged")
        .subject(subject)
        .data_json(&json!({ "newName": name }))
}

/// Create, rename, move and delete one customer; changes to an unknown
/// customer are ignored with a warning.
pub fn lifecycle<A: Applier>(host: &mut MockHost<A>) {
    host.publish(created("c-1", "alice"));
    host.publish(renamed("c-1", "Alice"));
    host.publish(
        EventBuilder::new("com.example.CustomerAddressChanged")
            .subject("c-1")
            .data_json(&json!({"newAddress": {"street": "1 Main St", "city": "Springfield"}})),
    );
    assert_eq!(
        host.expect_row::<Customer>("c-1"),
        Customer {
            customer_id: "c-1".into(),
            email: "alice@example.com".into(),
            name: "Alice".into(),
            address: Some(Address {
                street: "1 Main St".into(),
                city: "Springfield".into()
            }),
        }
    );

    host.publish(EventBuilder::new("CustomerDeleted").subject("c-1"));
    host.expect_no_row("c-1");

    let outcome = host.publish(renamed("c-1", "Ghost"));
    assert_eq!(outcome.expect_applied().kind(), "ignore");
    host.expect_no_row("c-1");
    assert!(
        host.logs()
            .iter()
            .any(|r| r.level == Level::Warn && r.message.contains("unknown customer")),
        "expected a warning, got {:?}",
        host.logs()
    );

    let outcome = host.publish(EventBuilder::new("SomethingElse").subject("c-2"));
    assert_eq!(outcome.expect_applied().kind(), "ignore");
    host.expect_no_row("c-2");
}

/// A redelivered offset is not applied again, even after later events.
pub fn redelivery_is_not_applied_twice<A: Applier>(host: &mut MockHost<A>) {
    host.publish(created("c-1", "alice"));
    host.publish(renamed("c-1", "Alice"));
    host.publish(renamed("c-1", "Alicia"));
    // Offset 1 renamed her "Alice"; applying it again would undo offset 2.
    assert!(host.redeliver("events", 0, 1).is_duplicate());
    assert!(host.redeliver("events", 0, 0).is_duplicate());
    assert_eq!(host.expect_row::<Customer>("c-1").name, "Alicia");
    assert_eq!(host.checkpoint("events", 0), Some(3));
}

/// Events for different subjects arrive on different partitions, each with
/// its own offsets and checkpoint.
pub fn subjects_from_several_partitions<A: Applier>(host: &mut MockHost<A>) {
    for (i, partition) in [0, 1, 2, 1, 0].into_iter().enumerate() {
        host.publish(created(&format!("c-{i}"), &format!("user{i}")).partition(partition));
    }
    for i in 0..5 {
        assert_eq!(
            host.expect_row::<Customer>(&format!("c-{i}")).name,
            format!("user{i}")
        );
    }
    assert_eq!(host.checkpoint("events", 0), Some(2));
    assert_eq!(host.checkpoint("events", 1), Some(2));
    assert_eq!(host.checkpoint("events", 2), Some(1));
    // Offset 0 of partition 1 was c-1; offset 0 of partition 2 was c-2.
    assert!(host.redeliver("events", 1, 0).is_duplicate());
    assert!(host.redeliver("events", 2, 0).is_duplicate());
}

/// Data of the wrong shape fails that event only, with the SDK's
/// `invalid-data` code, natively and in the component alike.
pub fn bad_data_is_rejected<A: Applier>(host: &mut MockHost<A>) {
    let outcome = host.publish(
        EventBuilder::new("CustomerCreated")
            .subject("c-1")
            .data_json(&json!({"name": 42})),
    );
    assert_eq!(
        outcome.failure_code(),
        Some(projector_sdk::Error::INVALID_DATA),
        "{outcome:?}"
    );
    host.expect_no_row("c-1");
    // The next event is served normally.
    host.publish(created("c-1", "bob"));
    assert_eq!(host.expect_row::<Customer>("c-1").name, "bob");
    assert_eq!(host.failures().len(), 1);
}
