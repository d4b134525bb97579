// The SDK's own tests: the API, the mock host's bookkeeping (the same rules
// as the Rust SDK's MockHost and the runtime) and the determinism guard.
import assert from "node:assert/strict";
import test from "node:test";

import { Event, ProjectionError, Update, applyRaw, log, type Json, type Projection } from "../src/index.js";
import { EventBuilder, MockHost } from "../src/testing.js";
import { ScenarioError, run } from "../src/scenarios.js";

type Counter = { count: number; last?: string };

class Counting implements Projection<Counter> {
  apply(state: Counter | undefined, event: Event): Update<Counter> {
    if (event.type === "reset") {
      return Update.delete();
    }
    if (event.type === "noop") {
      return Update.ignore();
    }
    log.info(`counting ${event.id}`);
    return Update.set({ count: (state?.count ?? 0) + 1, last: event.id });
  }
}

/** Returns whatever the event's data says, unchecked. */
class Raw implements Projection<Json> {
  apply(_state: Json | undefined, event: Event): Update<Json> {
    return event.dataJson<{ update: Update<Json> }>().update;
  }
}

test("a redelivery at or below the checkpoint is a duplicate, not applied again", () => {
  const host = new MockHost(new Counting());
  host.publish(new EventBuilder("tick").subject("s"));
  host.publish(new EventBuilder("tick").subject("s"));
  assert.equal(host.redeliver("events", 0, 0).outcome, "duplicate");
  const again = host.redeliver("events", 0, 1);
  assert.deepEqual(again.outcome === "duplicate" && again.nextOffset, 2);
  assert.equal(host.expectRow("s").count, 2);
  assert.equal(host.checkpoint("events", 0), 2);
  assert.throws(() => host.redeliver("events", 0, 7), /nothing was published at events\/0@7/);
});

test("offsets are per topic and partition; an explicit offset below the checkpoint is a duplicate", () => {
  const host = new MockHost(new Counting());
  host.publish(new EventBuilder("tick").subject("a").topic("t1"));
  host.publish(new EventBuilder("tick").subject("a").topic("t2").partition(3));
  host.publish(new EventBuilder("tick").subject("a").topic("t2").partition(3).offset(10));
  assert.equal(host.publish(new EventBuilder("tick").subject("a").topic("t2").partition(3).offset(4)).outcome, "duplicate");
  assert.equal(host.checkpoint("t1", 0), 1);
  assert.equal(host.checkpoint("t2", 3), 11);
  assert.equal(host.expectRow("a").count, 3);
});

test("an event with no subject is refused unless the key stands in for it", () => {
  const strict = new MockHost(new Counting());
  const refused = strict.publish(new EventBuilder("tick").key("k-1"));
  assert.equal(refused.outcome === "failed" && refused.code, "no-subject");
  assert.equal(strict.failures.length, 1);
  assert.equal(strict.checkpoint("events", 0), 1, "a failure moves the checkpoint past its event");

  const lenient = new MockHost(new Counting(), { subjectFromKey: true });
  const applied = lenient.publish(new EventBuilder("tick").key("k-1"));
  assert.equal(applied.outcome === "applied" && applied.subject, "k-1");
  assert.equal(lenient.publish(new EventBuilder("tick").key(null)).outcome, "failed");
});

test("set, delete and ignore change the row as they say; logs are kept", () => {
  const host = new MockHost<Counter>(new Counting());
  const set = host.publish(new EventBuilder("tick").subject("s").id("e-1"));
  // The update as the author's type says, and as the component returns it.
  assert.ok(set.outcome === "applied");
  assert.equal(set.update.kind === "set" && set.update.row.count, 1);
  assert.deepEqual(set.rawUpdate, { tag: "set", val: JSON.stringify({ count: 1, last: "e-1" }) });
  const noop = host.publish(new EventBuilder("noop").subject("s"));
  assert.deepEqual(noop.outcome === "applied" && noop.update, { kind: "ignore" });
  assert.deepEqual(host.expectRow("s"), { count: 1, last: "e-1" });
  const reset = host.publish(new EventBuilder("reset").subject("s"));
  assert.deepEqual(reset.outcome === "applied" && reset.update, { kind: "delete" });
  host.expectNoRow("s");
  assert.throws(() => host.expectRow("s"), /no row for "s"/);
  assert.deepEqual(host.logs, [{ level: "info", message: "counting e-1" }]);
});

test("a row that is not JSON, or something that is not an update, fails with its class", () => {
  const host = new MockHost(new Raw());
  const codes = [
    { update: { kind: "set", row: { ok: true } } },
    { update: { kind: "unset" } },
    { update: null },
  ].map((data) => {
    const outcome = host.publish(new EventBuilder("raw").subject("s").dataJson(data));
    return outcome.outcome === "failed" ? outcome.code : outcome.outcome;
  });
  assert.deepEqual(codes, ["applied", "invalid-update", "invalid-update"]);
  const bigint = applyRawCode({ apply: () => Update.set({ n: 1n }) });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.deepEqual([bigint, applyRawCode({ apply: () => Update.set(cycle) }), applyRawCode({ apply: () => Update.set(undefined) })], [
    "invalid-row",
    "invalid-row",
    "invalid-row",
  ]);
});

function applyRawCode(projection: Projection<unknown>): string {
  try {
    applyRaw(projection, undefined, new Event({ id: "e", type: "t" }));
    return "applied";
  } catch (err) {
    return err instanceof ProjectionError ? err.code : `not a ProjectionError: ${String(err)}`;
  }
}

test("a stored row that is not JSON is invalid-state; null is a row, undefined is none", () => {
  const seen: unknown[] = [];
  const spy: Projection<unknown> = {
    apply(state) {
      seen.push(state);
      return Update.ignore();
    },
  };
  const event = new Event({ id: "e", type: "t" });
  applyRaw(spy, "null", event);
  applyRaw(spy, undefined, event);
  assert.deepEqual(seen, [null, undefined]);
  assert.throws(() => applyRaw(spy, "{oops", event), (err: unknown) => err instanceof ProjectionError && err.code === "invalid-state");
});

test("data: JSON, text, none and bytes that are not UTF-8 each say what they are", () => {
  const withData = (data?: Uint8Array) => new Event({ id: "e-1", type: "T", data });
  assert.deepEqual(withData(new TextEncoder().encode('{"a":[1]}')).dataJson(), { a: [1] });
  assert.equal(withData(new TextEncoder().encode("plain")).dataText(), "plain");
  assert.equal(withData().dataText(), undefined);
  for (const [event, pattern] of [
    [withData(), /has no data/],
    [withData(new TextEncoder().encode("{")), /is not JSON/],
    [withData(new Uint8Array([0xff, 0xfe])), /is not UTF-8/],
  ] as const) {
    assert.throws(() => event.dataJson(), (err: unknown) => err instanceof ProjectionError && err.code === "invalid-data" && pattern.test(err.message));
  }
  const event = new Event({ id: "e", type: "com.example.OrderPlaced", extensions: [["tenant", "acme"]] });
  assert.equal(event.shortType, "OrderPlaced");
  assert.equal(event.extension("tenant"), "acme");
  assert.equal(event.extension("other"), undefined);
  assert.throws(() => event.requireSubject(), /has no subject/);
});

test("clock and random reads inside apply are nondeterministic errors, and are restored after", () => {
  const reads: Array<[string, () => unknown]> = [
    ["Date.now()", () => Date.now()],
    ["new Date() (the current time)", () => new Date()],
    ["Date() (the current time)", () => (Date as unknown as () => string)()],
    ["Math.random()", () => Math.random()],
    ["performance.now()", () => performance.now()],
    ["crypto.getRandomValues()", () => crypto.getRandomValues(new Uint8Array(1))],
    ["crypto.randomUUID()", () => crypto.randomUUID()],
  ];
  for (const [what, read] of reads) {
    const host = new MockHost<Json>({ apply: () => Update.set({ v: String(read()) }) });
    const outcome = host.publish(new EventBuilder("read").subject("s"));
    assert.equal(outcome.outcome === "failed" && outcome.code, "nondeterministic", what);
    assert.ok(outcome.outcome === "failed" && outcome.message.startsWith(`${what} is not available`), `${what}: ${JSON.stringify(outcome)}`);
  }
  assert.ok(Date.now() > 0 && new Date().getTime() > 0 && typeof Math.random() === "number");
  assert.equal(typeof crypto.randomUUID(), "string");
  // What does not read the clock still works inside apply.
  const host = new MockHost<Json>({
    apply: (_state, event) => Update.set({ at: new Date(Date.parse(event.time ?? "")).toISOString(), utc: Date.UTC(2026, 0, 1) }),
  });
  host.publish(new EventBuilder("at").subject("s").time("2026-12-02T10:00:00Z"));
  assert.deepEqual(host.expectRow("s"), { at: "2026-12-02T10:00:00.000Z", utc: Date.UTC(2026, 0, 1) });
});

test("an exception that is not a ProjectionError is a panic with its type and message", () => {
  const host = new MockHost<Json>({
    apply() {
      throw new RangeError("out of range");
    },
  });
  const outcome = host.publish(new EventBuilder("x").subject("s"));
  assert.equal(outcome.outcome === "failed" && outcome.code, "panic");
  assert.equal(outcome.outcome === "failed" && outcome.message, "RangeError: out of range");
});

test("a scenario step that does not go as written fails, naming the step; unknown fields are errors", () => {
  const host = () => new MockHost(new Counting());
  run({ scenario: "ok", steps: [{ publish: { type: "tick", subject: "s" }, expect: "applied" }, { expect_row: { subject: "s", row: { last: "evt-1", count: 1 } } }] }, host());
  assert.throws(() => run({ scenario: "wrong row", steps: [{ publish: { type: "tick", subject: "s" } }, { expect_row: { subject: "s", row: { count: 2 } } }] }, host()), (err: unknown) => err instanceof ScenarioError && /wrong row, step 2: row of "s"/.test(err.message));
  assert.throws(() => run({ steps: [{ publish: { type: "tick" }, expect: "applied" }] }, host()), /expected "applied", got failed no-subject/);
  assert.throws(() => run({ steps: [{ publish: { type: "tick", subjekt: "s" } }] }, host()), /unknown publish fields \["subjekt"\]/);
  assert.throws(() => run({ steps: [{ publsh: { type: "tick" } }] }, host()), /unknown step/);
  assert.throws(() => run({ steps: [{ publish: { type: "tick", subject: "s" }, expect: "done" }] }, host()), /unknown expect "done"/);
});

test("with dedup, a copy within the window is not applied, a failed one is tried again, past the window it applies", () => {
  const host = new MockHost(new Counting(), { dedup: { keepMs: 60_000 } });
  const first = new EventBuilder("count").id("e1").subject("a").timestampMs(1_000);
  assert.equal(host.publish(first).outcome, "applied");
  const copy = host.publish(new EventBuilder("count").id("e1").subject("a").partition(1).timestampMs(60_999));
  assert.deepEqual([copy.outcome, copy.outcome === "duplicate-id" && copy.firstMs], ["duplicate-id", 1_000]);
  assert.deepEqual(JSON.parse(host.rows.get("a")!), { count: 1, last: "e1" });
  // Another subject, or another source, is another event.
  assert.equal(host.publish(new EventBuilder("count").id("e1").subject("b").timestampMs(2_000)).outcome, "applied");
  assert.equal(host.publish(new EventBuilder("count").id("e1").source("/x").subject("a").timestampMs(2_000)).outcome, "applied");
  // Past the window (its own time 60 s after the first copy's), a copy applies.
  assert.equal(host.publish(new EventBuilder("count").id("e1").subject("a").timestampMs(61_000)).outcome, "applied");
  assert.equal(JSON.parse(host.rows.get("a")!).count, 3);
  // A failed event is not remembered: its copy is tried again.
  const raw = new MockHost(new Raw(), { dedup: { keepMs: 60_000 } });
  const bad = () => new EventBuilder("x").id("bad").subject("a").dataJson({ update: { kind: "nonsense" } });
  assert.equal(raw.publish(bad()).outcome, "failed");
  assert.equal(raw.publish(bad()).outcome, "failed");
  // By event time, the copies' record times do not matter.
  const byEvent = new MockHost(new Counting(), { dedup: { keepMs: 60_000, time: "event" } });
  const at = "2026-12-06T10:00:00Z";
  assert.equal(byEvent.publish(new EventBuilder("count").id("e1").subject("a").time(at).timestampMs(0)).outcome, "applied");
  assert.equal(byEvent.publish(new EventBuilder("count").id("e1").subject("a").time(at).timestampMs(1e12)).outcome, "duplicate-id");
  // Without dedup, a copy applies; a bad window is refused.
  const plain = new MockHost(new Counting());
  assert.equal(plain.publish(first).outcome, "applied");
  assert.equal(plain.publish(new EventBuilder("count").id("e1").subject("a")).outcome, "applied");
  assert.throws(() => new MockHost(new Counting(), { dedup: { keepMs: 0 } }), /above zero/);
});
