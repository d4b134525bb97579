"""The component's entry point: componentize-py exports ``WitWorld``."""

from projector_sdk.component import world

from order_totals import OrderTotals

WitWorld = world(OrderTotals())
