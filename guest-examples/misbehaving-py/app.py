"""The component's entry point: componentize-py exports ``WitWorld``."""

from projector_sdk.component import world

from misbehaving import Misbehaving

WitWorld = world(Misbehaving())
