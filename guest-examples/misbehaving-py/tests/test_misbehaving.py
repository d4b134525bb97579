"""What the mock host shows of the misbehaviours it can run natively (a loop
or a memory bomb would never end here: `component-scenarios/` runs those on
the compiled component, under the engine's deadline and memory cap)."""

from projector_sdk.testing import Applied, EventBuilder, Failed, MockHost

from misbehaving import Misbehaving


def test_failures_have_their_codes_and_the_rest_counts():
    host = MockHost(Misbehaving())
    codes = []
    kinds = ["tick", "misbehave.throw", "misbehave.clock", "misbehave.random",
             "misbehave.captured-random", "misbehave.captured-clock", "misbehave.datetime",
             "misbehave.urandom", "misbehave.uuid", "misbehave.error", "tick"]
    for kind in kinds:
        outcome = host.publish(EventBuilder(kind).subject("s"))
        codes.append(outcome.code if isinstance(outcome, Failed) else "applied")
    assert codes == ["applied", "panic"] + ["nondeterministic"] * 7 + ["rejected", "applied"]
    assert host.expect_row("s") == {"count": 2}
    assert "misbehaving on purpose" in host.failures[0].message


def test_the_guards_refuse_only_inside_a_projection_call():
    # Outside a call, the test itself may read the clock and randomness.
    import os
    import random
    import time
    import uuid
    from datetime import datetime

    assert time.time() > 0
    assert 0 <= random.random() < 1
    assert len(os.urandom(2)) == 2
    assert uuid.uuid4().version == 4
    assert datetime.now().year >= 2026
