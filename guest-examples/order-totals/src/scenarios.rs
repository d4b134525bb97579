//! Scenarios for order totals, generic over the [`Applier`], so they run
//! natively and against the compiled `.wasm`.

// Test scenarios: failing an assertion by panicking is their job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use projector_sdk::testing::{Applier, EventBuilder, MockHost};
use serde_json::json;

use crate::OrderTotals;

fn placed(customer: &str, order: &str, cents: i64) -> EventBuilder {
    EventBuilder::new("OrderPlaced")
        .subject(customer)
        .data_json(&json!({"orderId": order, "amountCents": cents}))
}

fn cancelled(customer: &str, order: &str, cents: i64) -> EventBuilder {
    EventBuilder::new("OrderCancelled")
        .subject(customer)
        .data_json(&json!({"orderId": order, "amountCents": cents}))
}

/// Placed orders add up per customer; a cancellation takes its order back.
pub fn totals_follow_placed_and_cancelled_orders<A: Applier>(host: &mut MockHost<A>) {
    host.publish(placed("alice", "o-1", 1250));
    host.publish(placed("bob", "o-2", 99));
    host.publish(placed("alice", "o-3", 750));
    host.publish(cancelled("alice", "o-1", 1250));
    assert_eq!(
        host.expect_row::<OrderTotals>("alice"),
        OrderTotals {
            order_count: 1,
            total_cents: 750,
            last_order_id: Some("o-3".into())
        }
    );
    assert_eq!(host.expect_row::<OrderTotals>("bob").total_cents, 99);
    assert_eq!(host.failures().len(), 0);
}

/// A negative amount or an over-cancellation fails alone; the row is kept.
pub fn invalid_orders_fail_alone<A: Applier>(host: &mut MockHost<A>) {
    host.publish(placed("alice", "o-1", 500));
    assert!(host.publish(placed("alice", "o-2", -5)).failure().is_some());
    assert!(
        host.publish(cancelled("alice", "o-9", 10_000))
            .failure()
            .is_some()
    );
    assert!(
        host.publish(cancelled("nobody", "o-9", 1))
            .failure()
            .is_some()
    );
    host.expect_no_row("nobody");
    assert_eq!(host.expect_row::<OrderTotals>("alice").total_cents, 500);
    assert_eq!(host.failures().len(), 3);
    host.publish(placed("alice", "o-3", 1));
    assert_eq!(host.expect_row::<OrderTotals>("alice").order_count, 2);
}

/// An order redelivered after a crash counts once.
pub fn redelivered_order_counts_once<A: Applier>(host: &mut MockHost<A>) {
    host.publish(placed("alice", "o-1", 100).partition(3));
    host.publish(placed("alice", "o-2", 200).partition(3));
    assert!(host.redeliver("events", 3, 0).is_duplicate());
    assert!(host.redeliver("events", 3, 1).is_duplicate());
    let totals = host.expect_row::<OrderTotals>("alice");
    assert_eq!((totals.order_count, totals.total_cents), (2, 300));
}
