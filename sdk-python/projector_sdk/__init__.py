"""Write a projector projection in Python.

A projection is a pure function of ``(current row, CloudEvent)`` that
returns what to do with the row::

    from projector_sdk import Event, Ignore, ProjectionError, Set

    class Counter:
        def apply(self, state, event: Event):
            row = state or {"count": 0}
            row["count"] += 1
            return Set(row)

``state`` is the subject's row as JSON (``dict``, ``list``, ...) or ``None``;
the returned row is serialised to JSON. Raise :class:`ProjectionError` for an
event the projection cannot apply; the runtime hands it to the view's error
policy. The same object runs in the component (``projector_sdk.component``)
and in the mock host (``projector_sdk.testing``), through
:func:`apply_raw`, the one place rows are parsed and serialised.

Determinism: the component gets no clock, randomness, filesystem or network
(``componentize-py --stub-wasi`` removes every WASI import). In the
component, ``time.time()`` and its siblings and the ``random`` module's
functions raise :class:`ProjectionError` with code ``nondeterministic`` (the
event goes to the view's error policy); lower-level reads such as
``datetime.now()`` or ``os.urandom()`` trap (``guest-trap``). Another
exception is a bug: the host reports it as a guest ``panic`` with its type,
message and frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Protocol, Tuple, Union

__all__ = [
    "Delete",
    "Event",
    "Ignore",
    "KafkaOrigin",
    "Projection",
    "ProjectionError",
    "Set",
    "Update",
    "apply_raw",
    "log",
]


class ProjectionError(Exception):
    """An event the projection cannot apply, with a stable machine-readable
    ``code`` (``invalid-data``, ``rejected``, or one of your own)."""

    INVALID_DATA = "invalid-data"
    INVALID_STATE = "invalid-state"
    REJECTED = "rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def invalid_data(cls, message: str) -> "ProjectionError":
        """The event's data is malformed or has the wrong shape."""
        return cls(cls.INVALID_DATA, message)

    @classmethod
    def rejected(cls, message: str) -> "ProjectionError":
        """The event is well formed but breaks a rule of the projection."""
        return cls(cls.REJECTED, message)


@dataclass
class KafkaOrigin:
    """Where in Kafka the event was read from."""

    topic: str = "events"
    partition: int = 0
    offset: int = 0
    key: Optional[bytes] = None
    timestamp_ms: Optional[int] = None


@dataclass
class Event:
    """A CloudEvents 1.0 event, with every context attribute."""

    id: str
    type: str
    source: str = "/"
    specversion: str = "1.0"
    subject: Optional[str] = None
    time: Optional[str] = None
    datacontenttype: Optional[str] = None
    dataschema: Optional[str] = None
    extensions: List[Tuple[str, str]] = field(default_factory=list)
    data: Optional[bytes] = None
    origin: KafkaOrigin = field(default_factory=KafkaOrigin)

    def data_json(self) -> Any:
        """The payload parsed as JSON; ``invalid-data`` when there is none or
        it is not JSON."""
        if self.data is None:
            raise ProjectionError.invalid_data(f"event {self.id} of type {self.type} has no data")
        try:
            return json.loads(self.data)
        except (ValueError, UnicodeDecodeError) as err:
            raise ProjectionError.invalid_data(
                f"data of event {self.id} (type {self.type}) is not JSON: {err}"
            ) from None

    def data_str(self) -> Optional[str]:
        """The payload as UTF-8 text, if there is one; ``invalid-data`` when
        it is not UTF-8."""
        if self.data is None:
            return None
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ProjectionError.invalid_data(f"data of event {self.id} is not UTF-8: {err}") from None

    def extension(self, name: str) -> Optional[str]:
        """The value of the extension attribute ``name``, if present."""
        for key, value in self.extensions:
            if key == name:
                return value
        return None

    def require_subject(self) -> str:
        """The subject, or ``invalid-data`` when the event has none."""
        if self.subject is None:
            raise ProjectionError.invalid_data(f"event {self.id} has no subject")
        return self.subject

    @property
    def short_type(self) -> str:
        """The last dot-separated part of the type: ``OrderPlaced`` for
        ``com.example.OrderPlaced``."""
        return self.type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Set:
    """Store ``row`` (any JSON value), replacing the previous one."""

    row: Any


@dataclass(frozen=True)
class Delete:
    """Remove the row."""


@dataclass(frozen=True)
class Ignore:
    """Leave the row as it is."""


Update = Union[Set, Delete, Ignore]


class Projection(Protocol):
    """What a projection is: an object with ``apply``."""

    def apply(self, state: Optional[Any], event: Event) -> Update: ...


#: A raw update: ``("set", json_text)``, ``("delete", None)`` or
#: ``("ignore", None)``.
RawUpdate = Tuple[str, Optional[str]]


def apply_raw(projection: Projection, state: Optional[str], event: Event) -> RawUpdate:
    """Apply ``event`` to the stored row text ``state``: parse the row, call
    the projection, serialise the new row. Raises :class:`ProjectionError`."""
    if state is None:
        row = None
    else:
        try:
            row = json.loads(state)
        except ValueError as err:
            raise ProjectionError(
                ProjectionError.INVALID_STATE, f"the stored row is not JSON: {err}"
            ) from None
    update = projection.apply(row, event)
    if isinstance(update, Set):
        try:
            text = json.dumps(update.row, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ProjectionError("invalid-row", f"the row does not serialise to JSON: {err}") from None
        return ("set", text)
    if isinstance(update, Delete):
        return ("delete", None)
    if isinstance(update, Ignore):
        return ("ignore", None)
    raise ProjectionError(
        "invalid-update",
        f"apply returned {update!r}; return Set(row), Delete() or Ignore()",
    )


class _Log:
    """Log records, attributed by the host to the view, the event and its
    origin. The host bounds how many one call may emit."""

    def __init__(self) -> None:
        self._sink: Callable[[str, str], None] = lambda level, message: None

    def _route(self, sink: Callable[[str, str], None]) -> None:
        self._sink = sink

    def log(self, level: str, message: str) -> None:
        self._sink(level, str(message))

    def trace(self, message: str) -> None:
        self.log("trace", message)

    def debug(self, message: str) -> None:
        self.log("debug", message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warn(self, message: str) -> None:
        self.log("warn", message)

    def error(self, message: str) -> None:
        self.log("error", message)


#: ``log.info("...")`` and its siblings.
log = _Log()

# The clock and randomness guards, installed as soon as the SDK is imported
# (they refuse only inside a projection call; see `_determinism`).
from . import _determinism  # noqa: E402,F401
