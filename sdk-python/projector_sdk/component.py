"""The glue between a projection and the component world
``projector:projection``: build a component with ``componentize-py --stub-wasi``
from an app module that says::

    from projector_sdk.component import world
    WitWorld = world(MyProjection())

Only importable inside ``componentize-py`` (it imports the generated
``wit_world`` bindings).
"""

from __future__ import annotations

import wit_world
from componentize_py_types import Err
from wit_world.imports import log as wit_log
from wit_world.imports import types

from . import Event, KafkaOrigin, Projection, ProjectionError, apply_raw, log
from ._determinism import freeze

# Refused from the moment the glue is imported, before the projection's own
# module (which ``app.py`` imports after it), so that a function it takes at
# import (``from random import random``) is the guarded one.
freeze()

_LEVELS = {
    "trace": wit_log.Level.TRACE,
    "debug": wit_log.Level.DEBUG,
    "info": wit_log.Level.INFO,
    "warn": wit_log.Level.WARN,
    "error": wit_log.Level.ERROR,
}


def _event(event: types.Event) -> Event:
    origin = event.origin
    return Event(
        id=event.id,
        type=event.type,
        source=event.source,
        specversion=event.specversion,
        subject=event.subject,
        time=event.time,
        datacontenttype=event.datacontenttype,
        dataschema=event.dataschema,
        extensions=list(event.extensions),
        data=event.data,
        origin=KafkaOrigin(
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            key=origin.key,
            timestamp_ms=origin.timestamp_ms,
        ),
    )


def _frames(err: BaseException) -> str:
    """Where ``err`` was raised, without reading source files (a
    projection has no filesystem: ``traceback`` would trap reading them)."""
    lines = []
    tb = err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f"  {code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return "\n".join(lines)


def world(projection: Projection) -> type:
    """The ``WitWorld`` class componentize-py exports, applying with
    ``projection``."""
    log._route(lambda level, message: wit_log.log(_LEVELS.get(level, wit_log.Level.INFO), message))

    class WitWorld(wit_world.WitWorld):
        def apply(self, state, event):
            try:
                kind, row = apply_raw(projection, state, _event(event))
            except ProjectionError as err:
                raise Err(types.Error(code=err.code, message=err.message))
            except BaseException as err:
                # Any other exception is a bug: the host reports the trap
                # that follows as a guest panic with this message.
                wit_log.report_panic(f"{type(err).__name__}: {err}\n{_frames(err)}")
                raise
            if kind == "set":
                return types.Update_Set(row)
            if kind == "delete":
                return types.Update_Delete()
            return types.Update_Ignore()

    return WitWorld
