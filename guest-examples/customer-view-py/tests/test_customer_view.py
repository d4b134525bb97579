"""The customer view's language-neutral scenarios (``../customer-view/scenarios``,
which the Rust, TypeScript and Python components all pass under ``projector
test``), on the Python mock host."""

from pathlib import Path

from projector_sdk.scenarios import run_files
from projector_sdk.testing import Applied, EventBuilder, MockHost

from customer_view import CustomerView

SCENARIOS = Path(__file__).resolve().parents[2] / "customer-view" / "scenarios"


def test_the_shared_scenarios():
    assert run_files([SCENARIOS], CustomerView) == 5


def test_a_change_to_an_unknown_customer_is_ignored_with_a_warning():
    host = MockHost(CustomerView())
    outcome = host.publish(EventBuilder("CustomerNameChanged").subject("c-9").data_json({"newName": "x"}))
    assert isinstance(outcome, Applied) and outcome.update == ("ignore", None)
    assert any(r.level == "warn" and "unknown customer" in r.message for r in host.logs)
