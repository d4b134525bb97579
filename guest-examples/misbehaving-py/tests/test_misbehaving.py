"""What the mock host shows of the misbehaviours it can run natively (a loop
or a memory bomb would never end here: `component-scenarios/` runs those on
the compiled component, under the engine's deadline and memory cap)."""

from projector_sdk.testing import Applied, EventBuilder, Failed, MockHost

from misbehaving import Misbehaving


def test_failures_have_their_codes_and_the_rest_counts():
    host = MockHost(Misbehaving())
    codes = []
    for kind in ["tick", "misbehave.throw", "misbehave.clock", "misbehave.random", "misbehave.error", "tick"]:
        outcome = host.publish(EventBuilder(kind).subject("s"))
        codes.append(outcome.code if isinstance(outcome, Failed) else "applied")
    assert codes == ["applied", "panic", "nondeterministic", "nondeterministic", "rejected", "applied"]
    assert host.expect_row("s") == {"count": 2}
    assert "misbehaving on purpose" in host.failures[0].message
