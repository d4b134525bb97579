//! Order totals: per customer (the event subject), the number of open
//! orders, their total amount and the last order id.
//!
//! | event type       | data                          | effect                            |
//! |------------------|-------------------------------|-----------------------------------|
//! | `OrderPlaced`    | `{orderId, amountCents}`      | count + 1, total + amount         |
//! | `OrderCancelled` | `{orderId, amountCents}`      | count - 1, total - amount         |
//!
//! Amounts are integer cents, so totals are exact. A negative amount is an
//! `invalid-data` error; a cancellation that would take the count or the
//! total below zero is `rejected`. Other event types are ignored.
//!
//! # Layout
//! - this file: the row type and the projection;
//! - `scenarios`: test scenarios run natively and against the `.wasm`.

use projector_sdk::{Error, Event, Projection, Update};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;

/// The view row of one customer's orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OrderTotals {
    /// Orders placed and not cancelled.
    pub order_count: u64,
    /// Their total amount, in cents.
    pub total_cents: i64,
    /// The id of the last order placed.
    pub last_order_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderData {
    order_id: String,
    amount_cents: i64,
}

fn order(event: &Event) -> Result<OrderData, Error> {
    let order: OrderData = event.data_json()?;
    if order.amount_cents < 0 {
        return Err(Error::invalid_data(format!(
            "order {} has a negative amount ({} cents)",
            order.order_id, order.amount_cents
        )));
    }
    Ok(order)
}

/// The order-totals projection.
#[derive(Debug)]
pub struct OrderTotalsView;

impl Projection for OrderTotalsView {
    type Row = OrderTotals;

    fn apply(state: Option<OrderTotals>, event: &Event) -> Result<Update<OrderTotals>, Error> {
        let mut totals = state.unwrap_or_default();
        match event.ty.rsplit('.').next().unwrap_or_default() {
            "OrderPlaced" => {
                let order = order(event)?;
                totals.order_count += 1;
                totals.total_cents = totals
                    .total_cents
                    .checked_add(order.amount_cents)
                    .ok_or_else(|| Error::rejected("the total overflows"))?;
                totals.last_order_id = Some(order.order_id);
                Ok(Update::Set(totals))
            }
            "OrderCancelled" => {
                let order = order(event)?;
                if totals.order_count == 0 || totals.total_cents < order.amount_cents {
                    return Err(Error::rejected(format!(
                        "cancelling order {} ({} cents) exceeds the open orders ({} orders, {} cents)",
                        order.order_id, order.amount_cents, totals.order_count, totals.total_cents
                    )));
                }
                totals.order_count -= 1;
                totals.total_cents -= order.amount_cents;
                Ok(Update::Set(totals))
            }
            _ => Ok(Update::Ignore),
        }
    }
}

projector_sdk::export_projection!(OrderTotalsView);

#[cfg(test)]
mod tests {
    use projector_sdk::testing;

    use super::*;

    #[test]
    fn totals_follow_placed_and_cancelled_orders() {
        scenarios::totals_follow_placed_and_cancelled_orders(
            &mut testing::native::<OrderTotalsView>(),
        );
    }

    #[test]
    fn invalid_orders_fail_alone() {
        scenarios::invalid_orders_fail_alone(&mut testing::native::<OrderTotalsView>());
    }

    #[test]
    fn redelivered_order_counts_once() {
        scenarios::redelivered_order_counts_once(&mut testing::native::<OrderTotalsView>());
    }
}
