//! {name}: a projector projection.
//!
//! One handler: `ItemAdded` events (`{"quantity": n}`) add up per subject;
//! other event types leave the row as it is.

use projector_sdk::{Error, Event, Projection, Update};
use serde::{Deserialize, Serialize};

/// The row of one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Items added.
    pub items: u64,
    /// Events counted.
    pub events: u64,
}

#[derive(Deserialize)]
struct ItemAdded {
    quantity: u64,
}

/// The projection.
#[derive(Debug)]
pub struct View;

impl Projection for View {
    type Row = Totals;

    fn apply(state: Option<Totals>, event: &Event) -> Result<Update<Totals>, Error> {
        match event.ty.rsplit('.').next().unwrap_or_default() {
            "ItemAdded" => {
                let added: ItemAdded = event.data_json()?;
                let mut totals = state.unwrap_or_default();
                totals.items += added.quantity;
                totals.events += 1;
                Ok(Update::Set(totals))
            }
            _ => Ok(Update::Ignore),
        }
    }
}

projector_sdk::export_projection!(View);

#[cfg(test)]
mod tests {
    use projector_sdk::testing::{self, EventBuilder};
    use serde_json::json;

    use super::*;

    fn added(subject: &str, quantity: i64) -> EventBuilder {
        EventBuilder::new("com.example.ItemAdded")
            .subject(subject)
            .data_json(&json!({"quantity": quantity}))
    }

    #[test]
    fn items_add_up_per_subject() {
        let mut host = testing::native::<View>();
        assert!(host.publish(added("cart-1", 2)).is_applied());
        host.publish(added("cart-1", 3));
        host.publish(added("cart-2", 1));
        assert_eq!(host.expect_row::<Totals>("cart-1"), Totals { items: 5, events: 2 });
        assert_eq!(host.expect_row::<Totals>("cart-2").items, 1);
    }

    #[test]
    fn a_redelivery_counts_once_and_bad_data_fails_alone() {
        let mut host = testing::native::<View>();
        host.publish(added("cart-1", 2));
        // Offsets count from 0 per partition; the default topic is `events`.
        assert!(host.redeliver("events", 0, 0).is_duplicate());
        assert!(host.publish(added("cart-1", -1)).failure().is_some());
        assert_eq!(host.expect_row::<Totals>("cart-1"), Totals { items: 2, events: 1 });
    }
}
