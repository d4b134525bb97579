/**
 * Scenario files: a projection's test scenarios as JSON, run by the mock
 * host here (`runFiles`, or `node --test` through `scenarioTests`) and by
 * `projector test COMPONENT.wasm --scenarios FILES` on the compiled
 * component, so the same steps check the source and the shipped `.wasm`.
 * The format is in the repository's `docs/scenarios.md`; an unknown step or
 * field is an error, never passed over.
 *
 * @module
 */

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

import type { Json, Projection } from "./index.js";
import { EventBuilder, MockHost, parseKeep, type MockHostOptions, type Outcome } from "./testing.js";

/** A step did not go as the scenario says. */
export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScenarioError";
  }
}

/** One scenario, as a file holds it. */
export interface Scenario {
  scenario?: string;
  subject_from_key?: boolean;
  /** Deduplicate by CloudEvents identity, as a view's `dedup` does. */
  dedup?: { keep?: string | null; time?: "record" | "event" | null } | null;
  steps: Array<Record<string, unknown>>;
}

const SCENARIO_FIELDS = new Set(["scenario", "subject_from_key", "dedup", "steps"]);

/** A fresh mock host with the settings `scenario` asks for. */
export function hostFor<Row>(scenario: Scenario, projection: Projection<Row>): MockHost<Row> {
  const name = scenario.scenario ?? "scenario";
  const unknown = Object.keys(scenario).filter((field) => !SCENARIO_FIELDS.has(field));
  if (unknown.length > 0) {
    throw new ScenarioError(`${name}: unknown scenario fields ${JSON.stringify(unknown)}`);
  }
  const settings = scenario.dedup ?? undefined;
  const extra = Object.keys(settings ?? {}).filter((field) => field !== "keep" && field !== "time");
  if (extra.length > 0) {
    throw new ScenarioError(`${name}: unknown dedup fields ${JSON.stringify(extra)}; known: keep, time`);
  }
  try {
    const dedup: MockHostOptions["dedup"] =
      settings === undefined
        ? undefined
        : { keepMs: parseKeep(settings.keep ?? "24h"), time: settings.time ?? "record" };
    return new MockHost(projection, { subjectFromKey: scenario.subject_from_key ?? false, dedup });
  } catch (err) {
    throw new ScenarioError(`${name}: dedup: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const PUBLISH_FIELDS = new Set([
  "type", "id", "source", "subject", "time", "dataschema", "extensions", "data",
  "data_text", "topic", "partition", "offset", "key", "timestamp_ms",
]);
const STEP_FIELDS = new Set(["publish", "redeliver", "expect_row", "expect_no_row", "expect"]);

function builder(fields: Record<string, unknown>, where: string): EventBuilder {
  const unknown = Object.keys(fields).filter((name) => !PUBLISH_FIELDS.has(name));
  if (unknown.length > 0) {
    throw new ScenarioError(`${where}: unknown publish fields ${JSON.stringify(unknown.sort())}; known: ${JSON.stringify([...PUBLISH_FIELDS].sort())}`);
  }
  if (typeof fields.type !== "string") {
    throw new ScenarioError(`${where}: publish needs a "type"`);
  }
  const b = new EventBuilder(fields.type);
  if (typeof fields.id === "string") b.id(fields.id);
  if (typeof fields.source === "string") b.source(fields.source);
  if (typeof fields.subject === "string") b.subject(fields.subject);
  if (typeof fields.time === "string") b.time(fields.time);
  if (typeof fields.dataschema === "string") b.dataschema(fields.dataschema);
  if (typeof fields.topic === "string") b.topic(fields.topic);
  if (typeof fields.partition === "number") b.partition(fields.partition);
  if (typeof fields.offset === "number") b.offset(fields.offset);
  if (typeof fields.timestamp_ms === "number") b.timestampMs(fields.timestamp_ms);
  for (const [name, value] of Object.entries((fields.extensions as Record<string, string>) ?? {})) {
    b.extension(name, value);
  }
  if ("data" in fields) b.dataJson(fields.data as Json);
  if (typeof fields.data_text === "string") b.data("text/plain", fields.data_text);
  if ("key" in fields) b.key(fields.key as string | null);
  return b;
}

function check<Row>(outcome: Outcome<Row>, expect: unknown, where: string): void {
  if (expect === undefined) {
    return;
  }
  let ok: boolean;
  if (expect === "applied" || expect === "duplicate" || expect === "duplicate-id") {
    ok = outcome.outcome === expect;
  } else if (typeof expect === "object" && expect !== null && Object.keys(expect).join() === "failed") {
    ok = outcome.outcome === "failed" && outcome.code === (expect as { failed: unknown }).failed;
  } else {
    throw new ScenarioError(`${where}: unknown expect ${JSON.stringify(expect)}`);
  }
  if (!ok) {
    const got = outcome.outcome === "failed" ? `failed ${outcome.code}: ${outcome.message}` : outcome.outcome;
    throw new ScenarioError(`${where}: expected ${JSON.stringify(expect)}, got ${got}`);
  }
}

/** Deep equality of JSON values (object member order does not matter). */
function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length
      && keys.every((key) => key in b && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
  }
  return a === b;
}

/** Run one scenario's steps on `host`; throws a {@link ScenarioError}. */
export function run<Row>(scenario: Scenario, host: MockHost<Row>): void {
  const name = scenario.scenario ?? "scenario";
  scenario.steps.forEach((step, index) => {
    const where = `${name}, step ${index + 1}`;
    const unknown = Object.keys(step).filter((field) => !STEP_FIELDS.has(field));
    if (unknown.length > 0) {
      throw new ScenarioError(`${where}: unknown step ${JSON.stringify(Object.keys(step).sort())}`);
    }
    if (step.publish !== undefined) {
      check(host.publish(builder(step.publish as Record<string, unknown>, where)), step.expect, where);
    } else if (step.redeliver !== undefined) {
      const at = step.redeliver as { topic?: string; partition?: number; offset: number };
      check(host.redeliver(at.topic ?? "events", at.partition ?? 0, at.offset), step.expect, where);
    } else if (step.expect_row !== undefined) {
      const { subject, row } = step.expect_row as { subject: string; row: unknown };
      const actual = host.row(subject);
      if (!sameJson(actual, row)) {
        throw new ScenarioError(`${where}: row of ${JSON.stringify(subject)} is ${JSON.stringify(actual)}, expected ${JSON.stringify(row)}`);
      }
    } else if (step.expect_no_row !== undefined) {
      const { subject } = step.expect_no_row as { subject: string };
      const actual = host.row(subject);
      if (actual !== undefined) {
        throw new ScenarioError(`${where}: ${JSON.stringify(subject)} has a row ${JSON.stringify(actual)}`);
      }
    } else {
      throw new ScenarioError(`${where}: unknown step ${JSON.stringify(Object.keys(step).sort())}`);
    }
  });
}

/** The scenarios of a file: one scenario object, or a list of them. */
export function load(path: string): Scenario[] {
  const document = JSON.parse(readFileSync(path, "utf8")) as Scenario | Scenario[];
  return Array.isArray(document) ? document : [document];
}

/** Every `*.json` under `paths` (files or directories), sorted. */
export function files(paths: string[]): string[] {
  const found: string[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      const inside = readdirSync(path, { recursive: true, encoding: "utf8" })
        .filter((name) => name.endsWith(".json"))
        .map((name) => join(path, name))
        .sort();
      found.push(...inside);
    } else {
      found.push(path);
    }
  }
  return found;
}

/**
 * Run every scenario under `paths`, each on a fresh mock host with a fresh
 * `projection()`; returns how many ran.
 */
export function runFiles<Row>(paths: string[], projection: () => Projection<Row>): number {
  let count = 0;
  for (const path of files(paths)) {
    for (const scenario of load(path)) {
      run(scenario, hostFor(scenario, projection()));
      count += 1;
    }
  }
  return count;
}

/**
 * One `node:test` test per scenario under `paths`:
 *
 * ```ts
 * import test from "node:test";
 * scenarioTests(test, ["scenarios"], () => new CustomerView());
 * ```
 */
export function scenarioTests<Row>(
  test: (name: string, body: () => void) => unknown,
  paths: string[],
  projection: () => Projection<Row>,
): void {
  for (const path of files(paths)) {
    for (const scenario of load(path)) {
      test(`${path}: ${scenario.scenario ?? "scenario"}`, () => {
        run(scenario, hostFor(scenario, projection()));
      });
    }
  }
}
