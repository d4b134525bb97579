"""A mock host for pytest: it keeps rows and checkpoints exactly as the
runtime and the Rust SDK's ``MockHost`` do, with no Kafka and no runtime.

- An event at or below a partition's checkpoint is a redelivery: a
  duplicate, not applied again.
- A ``Set`` row must be JSON (the SDK serialises it; a row that does not
  serialise fails with ``invalid-row``).
- An event with no subject fails with ``no-subject``, unless the host uses
  the Kafka key as the subject (``subject_from_key``).
- ``time.time()`` and ``random`` functions raise ``nondeterministic`` inside
  ``apply``, as in the component.
- A failed event moves the checkpoint past it (the runtime hands it to the
  view's policy and goes on) and is kept in ``failures``.
- With ``dedup=Dedup(keep_ms=...)``, a copy of an event the subject applied
  (same ``source`` and ``id``) within the window is a ``DuplicateId``, not
  applied: the runtime's rule for a view with ``dedup = { keep, time }``
  (the Rust SDK's ``projector_sdk::dedup``). An event's time is its record
  timestamp (``time="record"``) or its CloudEvents ``time``, else the
  record's (``time="event"``), else 0; a copy is a duplicate while its time
  is less than ``keep_ms`` after the first copy's (the mock host never
  forgets; a runtime forgets what its watermark is past).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from . import Event, KafkaOrigin, Projection, ProjectionError, apply_raw, log
from ._determinism import frozen


@dataclass
class Applied:
    """The event was applied: ``update`` is ``("set", row)``, ``("delete",
    None)`` or ``("ignore", None)``."""

    subject: str
    origin: KafkaOrigin
    update: Tuple[str, Optional[str]]


@dataclass
class Duplicate:
    """A redelivery at or below the partition's checkpoint."""

    origin: KafkaOrigin
    next_offset: int


@dataclass
class DuplicateId:
    """A copy of an event its subject applied (same ``source`` and ``id``)
    within the dedup window: not applied."""

    subject: str
    origin: KafkaOrigin
    first_ms: int


_KEEP = re.compile(r"^\s*([0-9]+)(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RFC3339 = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def parse_keep(text: str) -> int:
    """Milliseconds of a window such as ``"7d"``, ``"12h"``, ``"30m"``,
    ``"90s"`` or ``"500ms"``; raises ``ValueError`` for anything else or zero."""
    match = _KEEP.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"a duration above zero: a whole number and a unit (ms, s, m, h, d), found {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def rfc3339_ms(text: str) -> Optional[int]:
    """Milliseconds since the epoch of an RFC 3339 date-time, or ``None``."""
    match = _RFC3339.match(text)
    if match is None:
        return None
    date, clock, fraction, offset = match.groups()
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}{'+00:00' if offset in 'Zz' else offset}")
    except ValueError:
        return None
    return int(parsed.timestamp()) * 1000 + (int((fraction + "00")[:3]) if fraction else 0)


@dataclass
class Dedup:
    """Deduplication by CloudEvents identity: ``keep_ms`` of stream time,
    measured by ``time`` (``"record"`` or ``"event"``)."""

    keep_ms: int = 86_400_000
    time: str = "record"

    def __post_init__(self) -> None:
        if self.time not in ("record", "event"):
            raise ValueError(f'time must be "record" or "event", found {self.time!r}')
        if self.keep_ms <= 0:
            raise ValueError(f"keep_ms must be above zero, found {self.keep_ms}")


@dataclass
class Failed:
    """The event failed; ``code`` is the projection's error code, or
    ``no-subject``, ``invalid-row``, ``panic`` (any other exception)."""

    code: str
    message: str
    event: Event


Outcome = Applied | Duplicate | DuplicateId | Failed


class EventBuilder:
    """An event to publish: ``EventBuilder("OrderPlaced").subject("c-1").data_json({...})``."""

    def __init__(self, event_type: str) -> None:
        self._event = Event(id="", type=event_type, source="/tests")
        self._id_set = False
        self._key_set = False
        self._offset: Optional[int] = None

    def id(self, value: str) -> "EventBuilder":
        self._event.id = value
        self._id_set = True
        return self

    def source(self, value: str) -> "EventBuilder":
        self._event.source = value
        return self

    def subject(self, value: str) -> "EventBuilder":
        self._event.subject = value
        return self

    def time(self, value: str) -> "EventBuilder":
        self._event.time = value
        return self

    def dataschema(self, value: str) -> "EventBuilder":
        self._event.dataschema = value
        return self

    def extension(self, name: str, value: str) -> "EventBuilder":
        self._event.extensions.append((name, value))
        return self

    def data_json(self, value: Any) -> "EventBuilder":
        self._event.datacontenttype = "application/json"
        self._event.data = json.dumps(value).encode()
        return self

    def data(self, content_type: str, data: bytes) -> "EventBuilder":
        self._event.datacontenttype = content_type
        self._event.data = data
        return self

    def topic(self, value: str) -> "EventBuilder":
        self._event.origin.topic = value
        return self

    def partition(self, value: int) -> "EventBuilder":
        self._event.origin.partition = value
        return self

    def offset(self, value: int) -> "EventBuilder":
        self._offset = value
        return self

    def key(self, value: Optional[bytes]) -> "EventBuilder":
        self._event.origin.key = value
        self._key_set = True
        return self

    def timestamp_ms(self, value: int) -> "EventBuilder":
        self._event.origin.timestamp_ms = value
        return self


@dataclass
class LogRecord:
    level: str
    message: str


@dataclass
class MockHost:
    """Applies events with ``projection`` and keeps the view."""

    projection: Projection
    subject_from_key: bool = False
    dedup: Optional[Dedup] = None
    rows: Dict[str, str] = field(default_factory=dict)
    checkpoints: Dict[Tuple[str, int], int] = field(default_factory=dict)
    logs: List[LogRecord] = field(default_factory=list)
    failures: List[Failed] = field(default_factory=list)
    _log: Dict[Tuple[str, int, int], Event] = field(default_factory=dict)
    _next_id: int = 0
    _applied_ids: Dict[Tuple[str, str, str], int] = field(default_factory=dict)

    def publish(self, builder: EventBuilder) -> Outcome:
        """Append the event to its partition, as a producer would, and
        deliver it. It gets the partition's next offset unless the builder
        set one, an id unless it set one, and its subject as key."""
        # A copy: the builder may be published again.
        event = copy.deepcopy(builder._event)
        if not builder._id_set:
            self._next_id += 1
            event.id = f"evt-{self._next_id}"
        if not builder._key_set:
            event.origin.key = event.subject.encode() if event.subject is not None else None
        topic, partition = event.origin.topic, event.origin.partition
        if builder._offset is not None:
            event.origin.offset = builder._offset
        else:
            offsets = [o for (t, p, o) in self._log if (t, p) == (topic, partition)]
            event.origin.offset = max(offsets) + 1 if offsets else 0
        self._log[(topic, partition, event.origin.offset)] = event
        return self.deliver(event)

    def redeliver(self, topic: str, partition: int, offset: int) -> Outcome:
        """Deliver the event published at ``(topic, partition, offset)``
        again, as Kafka does after a rebalance or a crash."""
        try:
            event = self._log[(topic, partition, offset)]
        except KeyError:
            raise AssertionError(f"nothing was published at {topic}/{partition}@{offset}") from None
        return self.deliver(event)

    def deliver(self, event: Event) -> Outcome:
        """Deliver ``event`` exactly as given, with its own origin."""
        origin = event.origin
        place = (origin.topic, origin.partition)
        next_offset = self.checkpoints.get(place)
        if next_offset is not None and origin.offset < next_offset:
            return Duplicate(origin=origin, next_offset=next_offset)
        self.checkpoints[place] = origin.offset + 1
        subject = event.subject
        if subject is None and self.subject_from_key and origin.key is not None:
            subject = origin.key.decode("utf-8", errors="replace")
        if subject is None:
            return self._fail("no-subject", "the event has no subject", event)
        identity = (subject, event.source, event.id)
        remember: Optional[int] = None
        if self.dedup is not None:
            time = origin.timestamp_ms
            if self.dedup.time == "event" and event.time is not None:
                event_ms = rfc3339_ms(event.time)
                time = event_ms if event_ms is not None else time
            if time is None:
                time = 0
            first = self._applied_ids.get(identity)
            if first is not None and time - first < self.dedup.keep_ms:
                return DuplicateId(subject=subject, origin=origin, first_ms=first)
            remember = time
        log._route(lambda level, message: self.logs.append(LogRecord(level, message)))
        try:
            with frozen():
                kind, row = apply_raw(self.projection, self.rows.get(subject), event)
        except ProjectionError as err:
            return self._fail(err.code, err.message, event)
        except Exception as err:  # noqa: BLE001 - a bug in the projection, as the runtime sees it
            return self._fail("panic", f"{type(err).__name__}: {err}", event)
        finally:
            log._route(lambda level, message: None)
        if kind == "set":
            assert row is not None
            self.rows[subject] = row
        elif kind == "delete":
            self.rows.pop(subject, None)
        if remember is not None:
            self._applied_ids[identity] = remember
        return Applied(subject=subject, origin=origin, update=(kind, row))

    def _fail(self, code: str, message: str, event: Event) -> Failed:
        failed = Failed(code=code, message=message, event=event)
        self.failures.append(failed)
        return failed

    def row(self, subject: str) -> Any:
        """The row of ``subject`` as JSON, or ``None``."""
        text = self.rows.get(subject)
        return None if text is None else json.loads(text)

    def expect_row(self, subject: str) -> Any:
        """The row of ``subject``; fails the test when there is none."""
        assert subject in self.rows, f"no row for {subject!r}; rows: {sorted(self.rows)}"
        return self.row(subject)

    def expect_no_row(self, subject: str) -> None:
        assert subject not in self.rows, f"{subject!r} has a row: {self.rows[subject]}"

    def checkpoint(self, topic: str, partition: int) -> Optional[int]:
        """The next offset of ``(topic, partition)``, if it saw any."""
        return self.checkpoints.get((topic, partition))
