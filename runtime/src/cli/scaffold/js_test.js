// {name} under the SDK's mock host: no Kafka, no runtime.
import assert from "node:assert/strict";
import test from "node:test";

import { EventBuilder, MockHost } from "projector-sdk/testing";
import { scenarioTests } from "projector-sdk/scenarios";

import { {class} } from "../projection.js";

const added = (subject, quantity) =>
  new EventBuilder("com.example.ItemAdded").subject(subject).dataJson({ quantity });

test("items add up per subject", () => {
  const host = new MockHost(new {class}());
  assert.equal(host.publish(added("cart-1", 2)).outcome, "applied");
  host.publish(added("cart-1", 3));
  host.publish(added("cart-2", 1));
  assert.deepEqual(host.expectRow("cart-1"), { items: 5, events: 2 });
  assert.deepEqual(host.expectRow("cart-2"), { items: 1, events: 1 });
});

test("a redelivery counts once and bad data fails alone", () => {
  const host = new MockHost(new {class}());
  host.publish(added("cart-1", 2));
  assert.equal(host.redeliver("events", 0, 0).outcome, "duplicate");
  const outcome = host.publish(added("cart-1", -1));
  assert.equal(outcome.outcome === "failed" && outcome.code, "invalid-data");
  assert.deepEqual(host.expectRow("cart-1"), { items: 2, events: 1 });
});

// The scenario files; `projector test` runs the same files on the component.
scenarioTests(test, ["scenarios"], () => new {class}());
