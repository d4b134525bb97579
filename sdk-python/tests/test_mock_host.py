"""The SDK's mock host keeps rows and checkpoints as the runtime does."""

import random
import time

from projector_sdk import Delete, Ignore, ProjectionError, Set
from projector_sdk.testing import Applied, Duplicate, EventBuilder, Failed, MockHost


class Rows:
    """Sets, deletes or ignores by event type; misbehaves on request."""

    def apply(self, state, event):
        kind = event.short_type
        if kind == "set":
            return Set(event.data_json())
        if kind == "delete":
            return Delete()
        if kind == "bad-row":
            return Set({"not json": float("nan")})
        if kind == "clock":
            return Set({"now": time.time()})
        if kind == "random":
            return Set({"r": random.random()})
        if kind == "bug":
            raise KeyError("missing")
        if kind == "refuse":
            raise ProjectionError.rejected("no")
        return Ignore()


def test_set_delete_ignore_and_checkpoints():
    host = MockHost(Rows())
    assert isinstance(host.publish(EventBuilder("set").subject("a").data_json({"x": 1})), Applied)
    assert host.expect_row("a") == {"x": 1}
    assert isinstance(host.publish(EventBuilder("other").subject("a")), Applied)
    assert host.expect_row("a") == {"x": 1}
    assert isinstance(host.publish(EventBuilder("delete").subject("a")), Applied)
    host.expect_no_row("a")
    assert host.checkpoint("events", 0) == 3


def test_a_redelivery_is_a_duplicate_and_an_offset_can_be_given():
    host = MockHost(Rows())
    host.publish(EventBuilder("set").subject("a").data_json(1).offset(5))
    outcome = host.redeliver("events", 0, 5)
    assert isinstance(outcome, Duplicate) and outcome.next_offset == 6
    assert isinstance(host.publish(EventBuilder("set").subject("a").data_json(2).offset(3)), Duplicate)


def test_failures_carry_their_code_and_move_the_checkpoint():
    host = MockHost(Rows())
    for kind, code in [("bad-row", "invalid-row"), ("bug", "panic"), ("refuse", "rejected"),
                       ("clock", "nondeterministic"), ("random", "nondeterministic")]:
        outcome = host.publish(EventBuilder(kind).subject("a"))
        assert isinstance(outcome, Failed) and outcome.code == code, (kind, outcome)
    assert isinstance(host.publish(EventBuilder("set").data_json(1)), Failed)
    assert host.failures[-1].code == "no-subject"
    assert host.checkpoint("events", 0) == 6
    # The clock and randomness work again outside apply.
    assert time.time() > 0 and 0 <= random.random() < 1


def test_the_key_stands_in_for_the_subject_when_asked():
    event = EventBuilder("set").key(b"k").data_json(1)
    assert MockHost(Rows(), subject_from_key=True).publish(event).subject == "k"


def test_with_dedup_a_copy_within_the_window_is_not_applied_and_a_failed_one_is_tried_again():
    from projector_sdk.testing import Dedup, DuplicateId, rfc3339_ms

    host = MockHost(Rows(), dedup=Dedup(keep_ms=60_000))
    first = EventBuilder("set").id("e1").subject("a").data_json({"n": 1}).timestamp_ms(1_000)
    assert isinstance(host.publish(first), Applied)
    copy = EventBuilder("set").id("e1").subject("a").data_json({"n": 2}).timestamp_ms(60_999).partition(1)
    outcome = host.publish(copy)
    assert isinstance(outcome, DuplicateId) and outcome.first_ms == 1_000, outcome
    assert host.expect_row("a") == {"n": 1}
    # The offset is passed all the same.
    assert host.checkpoint("events", 1) == 1
    # Another subject, or another source, is another event.
    assert isinstance(host.publish(EventBuilder("set").id("e1").subject("b").data_json(1).timestamp_ms(2_000)), Applied)
    assert isinstance(host.publish(EventBuilder("set").id("e1").source("/x").subject("a").data_json(3).timestamp_ms(2_000)), Applied)
    # A failed event is not remembered: its copy is tried again.
    assert isinstance(host.publish(EventBuilder("refuse").id("e9").subject("a").timestamp_ms(3_000)), Failed)
    assert isinstance(host.publish(EventBuilder("refuse").id("e9").subject("a").timestamp_ms(3_001)), Failed)
    # Past the window (its own time 60 s after the first copy's), a copy
    # is applied.
    assert isinstance(host.publish(EventBuilder("set").id("e1").subject("a").data_json(4).timestamp_ms(61_000)), Applied)
    # Without dedup, a copy is applied.
    plain = MockHost(Rows())
    assert isinstance(plain.publish(first), Applied) and isinstance(plain.publish(copy), Applied)
    # By event time, the copies' record times do not matter.
    by_event = MockHost(Rows(), dedup=Dedup(keep_ms=60_000, time="event"))
    at = "2026-12-06T10:00:00Z"
    assert rfc3339_ms("2026-12-06T11:00:00.123+01:00") == rfc3339_ms(at) + 123
    assert isinstance(by_event.publish(EventBuilder("set").id("e1").subject("a").data_json(1).time(at).timestamp_ms(0)), Applied)
    assert isinstance(by_event.publish(EventBuilder("set").id("e1").subject("a").data_json(1).time(at).timestamp_ms(10**12)), DuplicateId)
