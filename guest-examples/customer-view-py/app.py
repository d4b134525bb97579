"""The component's entry point: componentize-py exports ``WitWorld``."""

from projector_sdk.component import world

from customer_view import CustomerView

WitWorld = world(CustomerView())
