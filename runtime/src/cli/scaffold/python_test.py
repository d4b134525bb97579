"""{name} under the SDK's mock host: no Kafka, no runtime."""

from pathlib import Path

from projector_sdk.scenarios import run_files
from projector_sdk.testing import Applied, Duplicate, EventBuilder, Failed, MockHost

from projection import Projection


def added(subject, quantity):
    return EventBuilder("com.example.ItemAdded").subject(subject).data_json({"quantity": quantity})


def test_items_add_up_per_subject():
    host = MockHost(Projection())
    assert isinstance(host.publish(added("cart-1", 2)), Applied)
    host.publish(added("cart-1", 3))
    host.publish(added("cart-2", 1))
    assert host.expect_row("cart-1") == {"items": 5, "events": 2}
    assert host.expect_row("cart-2") == {"items": 1, "events": 1}


def test_a_redelivery_counts_once_and_bad_data_fails_alone():
    host = MockHost(Projection())
    host.publish(added("cart-1", 2))
    assert isinstance(host.redeliver("events", 0, 0), Duplicate)
    outcome = host.publish(added("cart-1", -1))
    assert isinstance(outcome, Failed) and outcome.code == "invalid-data"
    assert host.expect_row("cart-1") == {"items": 2, "events": 1}


def test_the_scenario_files():
    assert run_files([Path(__file__).resolve().parent.parent / "scenarios"], Projection) == 1
