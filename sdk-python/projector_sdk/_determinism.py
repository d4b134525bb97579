"""Clock and randomness reads fail with a clear error in a projection, in
the component and in the mock host alike, instead of returning values that
differ between replays (``random``'s state is frozen when the component is
built and advances per call, so its values would depend on the instance's
history). Lower-level reads (``datetime.now()``, ``os.urandom()``) trap in
the component's WASI stubs.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Callable, Dict, Iterator, Tuple

from . import ProjectionError

_CLOCKS = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
           "process_time", "process_time_ns")
_RANDOM = ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
           "gauss", "getrandbits", "randbytes", "seed")


def _refuse(what: str, instead: str) -> Callable[..., None]:
    def refuse(*_args, **_kwargs):
        raise ProjectionError(
            "nondeterministic",
            f"{what} is not available in a projection: apply must be a pure function of "
            f"(row, event); {instead}",
        )

    return refuse


def _replacements() -> Dict[Tuple[object, str], Callable[..., None]]:
    found = {}
    for name in _CLOCKS:
        found[(time, name)] = _refuse(f"time.{name}()", "use the event's `time` or its Kafka timestamp")
    for name in _RANDOM:
        found[(random, name)] = _refuse(f"random.{name}()", "derive what you need from the event (its id)")
    return found


def freeze() -> None:
    """Replace the clock and randomness functions for good (the component)."""
    for (module, name), replacement in _replacements().items():
        setattr(module, name, replacement)


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """Replace them for the duration of one call (the mock host)."""
    saved = {(module, name): getattr(module, name) for (module, name) in _replacements()}
    freeze()
    try:
        yield
    finally:
        for (module, name), original in saved.items():
            setattr(module, name, original)
