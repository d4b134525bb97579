"""Order totals under the SDK's mock host: the scenario files (which
`projector test` also runs on the compiled component) and a few checks
written in Python."""

from pathlib import Path

from projector_sdk.scenarios import run_files
from projector_sdk.testing import Applied, Duplicate, EventBuilder, Failed, MockHost

from order_totals import OrderTotals

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def placed(customer, order, cents):
    return EventBuilder("com.example.OrderPlaced").subject(customer).data_json(
        {"orderId": order, "amountCents": cents}
    )


def test_every_scenario_file_passes():
    assert run_files([SCENARIOS], OrderTotals) == 4


def test_totals_and_checkpoints():
    host = MockHost(OrderTotals())
    assert isinstance(host.publish(placed("alice", "o-1", 1250)), Applied)
    assert isinstance(host.publish(placed("alice", "o-2", 50).partition(2)), Applied)
    assert host.expect_row("alice") == {"orderCount": 2, "totalCents": 1300, "lastOrderId": "o-2"}
    assert host.checkpoint("events", 0) == 1
    assert host.checkpoint("events", 2) == 1
    assert isinstance(host.redeliver("events", 2, 0), Duplicate)
    assert host.expect_row("alice")["totalCents"] == 1300


def test_a_failure_is_kept_with_its_code():
    host = MockHost(OrderTotals())
    outcome = host.publish(placed("alice", "o-1", -1))
    assert isinstance(outcome, Failed) and outcome.code == "invalid-data"
    assert "negative amount" in outcome.message
    assert host.failures == [outcome]
    host.expect_no_row("alice")


def test_the_key_is_the_subject_only_when_asked():
    event = EventBuilder("OrderPlaced").key(b"carol").data_json({"orderId": "o", "amountCents": 1})
    assert isinstance(MockHost(OrderTotals()).publish(event), Failed)
    host = MockHost(OrderTotals(), subject_from_key=True)
    assert isinstance(host.publish(event), Applied)
    assert host.expect_row("carol")["orderCount"] == 1
