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
