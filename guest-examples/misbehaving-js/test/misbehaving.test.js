// What the mock host shows of the misbehaviours it can run natively (a loop
// or a memory bomb would never end here: `component-scenarios/` runs those on
// the compiled component, under the engine's deadline and memory cap).
import assert from "node:assert/strict";
import test from "node:test";

import { EventBuilder, MockHost } from "projector-sdk/testing";

import { Misbehaving } from "../misbehaving.js";

test("failures have their codes and the rest counts", () => {
  const host = new MockHost(new Misbehaving());
  const kinds = [
    "tick", "misbehave.throw", "misbehave.clock", "misbehave.random",
    "misbehave.captured-random", "misbehave.captured-clock", "misbehave.error", "tick",
  ];
  const codes = kinds.map((type) => {
    const outcome = host.publish(new EventBuilder(type).subject("s"));
    return outcome.outcome === "failed" ? outcome.code : outcome.outcome;
  });
  assert.deepEqual(codes, [
    "applied", "panic", "nondeterministic", "nondeterministic",
    "nondeterministic", "nondeterministic", "rejected", "applied",
  ]);
  assert.deepEqual(host.expectRow("s"), { count: 2 });
  assert.match(host.failures[0].message, /TypeError: misbehaving on purpose/);
});

test("the clock and randomness are back once apply returns", () => {
  const host = new MockHost(new Misbehaving());
  host.publish(new EventBuilder("misbehave.clock").subject("s"));
  assert.ok(Date.now() > 0);
  assert.ok(new Date() instanceof Date);
  assert.equal(typeof Math.random(), "number");
  assert.equal(crypto.getRandomValues(new Uint8Array(4)).length, 4);
  // Dates from a value still work inside apply.
  assert.equal(new Date(0).toISOString(), "1970-01-01T00:00:00.000Z");
});
