"""The component's entry point: componentize-py exports ``WitWorld``."""

from projector_sdk.component import world

from projection import Projection

WitWorld = world(Projection())
