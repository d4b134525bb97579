"""{name}: a projector projection.

One handler: ``ItemAdded`` events ({"quantity": n}) add up per subject; other
event types leave the row as it is.
"""

from projector_sdk import Event, Ignore, ProjectionError, Set


class Projection:
    def apply(self, state, event: Event):
        if event.short_type == "ItemAdded":
            data = event.data_json()
            quantity = data.get("quantity") if isinstance(data, dict) else None
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise ProjectionError.invalid_data(
                    f"event {event.id}: quantity must be a non-negative integer"
                )
            row = state or {"items": 0, "events": 0}
            row["items"] += quantity
            row["events"] += 1
            return Set(row)
        return Ignore()
