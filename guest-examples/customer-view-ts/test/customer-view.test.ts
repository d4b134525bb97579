import assert from "node:assert/strict";
import test from "node:test";

import { EventBuilder, MockHost } from "projector-sdk/testing";
import { scenarioTests } from "projector-sdk/scenarios";

import { CustomerView, type Customer } from "../src/customer-view.js";

// The customer view's language-neutral scenarios, on the mock host;
// `projector test` runs the same files on the Rust, TypeScript and Python
// components.
scenarioTests(test, ["../customer-view/scenarios"], () => new CustomerView());

test("a change to an unknown customer is ignored with a warning", () => {
  const host = new MockHost<Customer>(new CustomerView());
  const outcome = host.publish(new EventBuilder("CustomerNameChanged").subject("c-9").dataJson({ newName: "x" }));
  assert.equal(outcome.outcome, "applied");
  assert.deepEqual(outcome.outcome === "applied" && outcome.update, { kind: "ignore" });
  assert.ok(host.logs.some((r) => r.level === "warn" && r.message.includes("unknown customer")), JSON.stringify(host.logs));
});

test("checkpoints move per partition, and a failure moves past its event", () => {
  const host = new MockHost<Customer>(new CustomerView());
  host.publish(new EventBuilder("CustomerCreated").subject("c-1").partition(1).dataJson({ email: "a@x", name: "a" }));
  const failed = host.publish(new EventBuilder("CustomerCreated").subject("c-2").partition(1).dataJson({ email: 7, name: "b" }));
  assert.equal(failed.outcome, "failed");
  assert.match(host.failures[0]?.message ?? "", /"email" must be a string/);
  assert.equal(host.checkpoint("events", 1), 2);
  assert.equal(host.checkpoint("events", 0), undefined);
  assert.equal(host.expectRow("c-1").name, "a");
});
