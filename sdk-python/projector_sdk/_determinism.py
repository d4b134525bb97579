"""Clock and randomness reads fail with a clear error in a projection, in
the component and in the mock host alike, instead of returning values that
differ between replays (``random``'s state is frozen when the component is
built and advances per call, so its values would depend on the instance's
history).

The guards replace the module attributes a projection reads
(``random.random``, ``time.time``, ``datetime.datetime.now``,
``os.urandom``, ``uuid.uuid4``...) when this SDK is first imported, so a
projection module that imports the SDK's component glue or mock host first,
as the scaffolds do (``app.py`` and ``tests/conftest.py``), gets the guards
even when it captures a function at import (``from random import random``).
Outside a projection call the guards call through to the originals: the
mock host refuses them only while it applies (:func:`frozen`), the
component always (:func:`freeze`).
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import os
import random
import threading
import time
import uuid
from typing import Callable, Iterator

from . import ProjectionError

_CLOCKS = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
           "process_time", "process_time_ns")
_RANDOM = ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
           "gauss", "getrandbits", "randbytes", "seed")
_USE_TIME = "use the event's `time` or its Kafka timestamp"
_USE_ID = "derive what you need from the event (its id)"


class _State(threading.local):
    def __init__(self) -> None:
        self.depth = 0


_calls = _State()
_always = False
_installed = False


def _refusing() -> bool:
    return _always or _calls.depth > 0


def _refusal(what: str, instead: str) -> ProjectionError:
    return ProjectionError(
        "nondeterministic",
        f"{what} is not available in a projection: apply must be a pure function of "
        f"(row, event); {instead}",
    )


def _guarded(original: Callable, what: str, instead: str) -> Callable:
    def guarded(*args, **kwargs):
        if _refusing():
            raise _refusal(what, instead)
        return original(*args, **kwargs)

    guarded.__name__ = getattr(original, "__name__", "guarded")
    guarded.__doc__ = getattr(original, "__doc__", None)
    guarded._projector_guard = True  # noqa: SLF001 - marks what is installed
    return guarded


def _install() -> None:
    """Replace the reads with guards, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in _CLOCKS:
        if hasattr(time, name):
            setattr(time, name, _guarded(getattr(time, name), f"time.{name}()", _USE_TIME))
    for name in _RANDOM:
        setattr(random, name, _guarded(getattr(random, name), f"random.{name}()", _USE_ID))
    os.urandom = _guarded(os.urandom, "os.urandom()", _USE_ID)
    for name in ("uuid1", "uuid4"):
        setattr(uuid, name, _guarded(getattr(uuid, name), f"uuid.{name}()", _USE_ID))
    # datetime's types are built in and take no new attributes: the module
    # gets subclasses whose clock reads are guarded. Values made from them
    # are still instances of the originals.
    base_datetime = _datetime.datetime
    base_date = _datetime.date

    class datetime(base_datetime):  # noqa: N801 - stands in for datetime.datetime
        __slots__ = ()

        @classmethod
        def now(cls, tz=None):
            if _refusing():
                raise _refusal("datetime.now()", _USE_TIME)
            return base_datetime.now(tz)

        @classmethod
        def utcnow(cls):
            if _refusing():
                raise _refusal("datetime.utcnow()", _USE_TIME)
            return base_datetime.utcnow()

        @classmethod
        def today(cls):
            if _refusing():
                raise _refusal("datetime.today()", _USE_TIME)
            return base_datetime.today()

    class date(base_date):  # noqa: N801 - stands in for datetime.date
        __slots__ = ()

        @classmethod
        def today(cls):
            if _refusing():
                raise _refusal("date.today()", _USE_TIME)
            return base_date.today()

    datetime.__name__ = "datetime"
    date.__name__ = "date"
    _datetime.datetime = datetime
    _datetime.date = date


def freeze() -> None:
    """Refuse the reads for good (the component)."""
    global _always
    _install()
    _always = True


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """Refuse them for the duration of one call (the mock host)."""
    _install()
    _calls.depth += 1
    try:
        yield
    finally:
        _calls.depth -= 1


_install()
