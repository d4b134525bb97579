"""Customer registry: one row per customer, keyed by the event subject (the
customer id). The Python port of ``../customer-view``.

| event type               | data                           | effect            |
|--------------------------|--------------------------------|-------------------|
| ``CustomerCreated``        | ``{email, name, address?}``      | sets the row      |
| ``CustomerNameChanged``    | ``{newName}``                    | changes ``name``    |
| ``CustomerAddressChanged`` | ``{newAddress: {street, city}}`` | changes ``address`` |
| ``CustomerDeleted``        | none                           | deletes the row   |

A type may carry a reverse-DNS prefix (``com.example.CustomerCreated``).
Changes to a customer that does not exist are ignored with a warning; other
event types are ignored. Data of the wrong shape is an ``invalid-data`` error.
"""

from projector_sdk import Delete, Event, Ignore, ProjectionError, Set, log

CHANGES = ("CustomerNameChanged", "CustomerAddressChanged", "CustomerDeleted")


def _text(value, name: str, event: Event) -> str:
    member = value.get(name) if isinstance(value, dict) else None
    if not isinstance(member, str):
        raise ProjectionError.invalid_data(f'{event.type} {event.id}: "{name}" must be a string')
    return member


def _address(value, event: Event) -> dict:
    if not isinstance(value, dict):
        raise ProjectionError.invalid_data(f"{event.type} {event.id}: an address must be an object")
    return {"street": _text(value, "street", event), "city": _text(value, "city", event)}


class CustomerView:
    def apply(self, state, event: Event):
        kind = event.short_type
        if kind == "CustomerCreated":
            data = event.data_json()
            row = {
                "customerId": event.require_subject(),
                "email": _text(data, "email", event),
                "name": _text(data, "name", event),
            }
            if isinstance(data, dict) and data.get("address") is not None:
                row["address"] = _address(data["address"], event)
            return Set(row)
        if kind not in CHANGES:
            return Ignore()
        if state is None:
            log.warn(f"{event.type} for unknown customer {event.subject!r} ignored (event {event.id})")
            return Ignore()
        if kind == "CustomerNameChanged":
            return Set({**state, "name": _text(event.data_json(), "newName", event)})
        if kind == "CustomerAddressChanged":
            data = event.data_json()
            return Set({**state, "address": _address(data.get("newAddress") if isinstance(data, dict) else None, event)})
        return Delete()
