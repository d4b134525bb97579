"""Order totals: per customer (the event subject), the number of open
orders, their total amount and the last order id. The Python port of
``guest-examples/order-totals``.

| event type       | data                       | effect                     |
|------------------|----------------------------|----------------------------|
| ``OrderPlaced``    | ``{orderId, amountCents}`` | count + 1, total + amount  |
| ``OrderCancelled`` | ``{orderId, amountCents}`` | count - 1, total - amount  |

Amounts are integer cents, so totals are exact. A negative amount is an
``invalid-data`` error; a cancellation that would take the count or the
total below zero is ``rejected``. Other event types are ignored.
"""

from projector_sdk import Event, Ignore, ProjectionError, Set


def _order(event: Event):
    data = event.data_json()
    if not isinstance(data, dict):
        raise ProjectionError.invalid_data(f"data of event {event.id} is not an object")
    order_id, cents = data.get("orderId"), data.get("amountCents")
    if not isinstance(order_id, str) or not isinstance(cents, int) or isinstance(cents, bool):
        raise ProjectionError.invalid_data(
            f"data of event {event.id} (type {event.type}) does not fit {{orderId: string, amountCents: integer}}"
        )
    if cents < 0:
        raise ProjectionError.invalid_data(f"order {order_id} has a negative amount ({cents} cents)")
    return order_id, cents


class OrderTotals:
    def apply(self, state, event: Event):
        totals = state or {"orderCount": 0, "totalCents": 0, "lastOrderId": None}
        kind = event.short_type
        if kind == "OrderPlaced":
            order_id, cents = _order(event)
            totals["orderCount"] += 1
            totals["totalCents"] += cents
            totals["lastOrderId"] = order_id
            return Set(totals)
        if kind == "OrderCancelled":
            order_id, cents = _order(event)
            if totals["orderCount"] == 0 or totals["totalCents"] < cents:
                raise ProjectionError.rejected(
                    f"cancelling order {order_id} ({cents} cents) exceeds the open orders "
                    f"({totals['orderCount']} orders, {totals['totalCents']} cents)"
                )
            totals["orderCount"] -= 1
            totals["totalCents"] -= cents
            return Set(totals)
        return Ignore()
