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
import type { Projection } from "./index.js";
import { MockHost } from "./testing.js";
/** A step did not go as the scenario says. */
export declare class ScenarioError extends Error {
    constructor(message: string);
}
/** One scenario, as a file holds it. */
export interface Scenario {
    scenario?: string;
    subject_from_key?: boolean;
    /** Deduplicate by CloudEvents identity, as a view's `dedup` does. */
    dedup?: {
        keep?: string | null;
        time?: "record" | "event" | null;
    } | null;
    steps: Array<Record<string, unknown>>;
}
/** A fresh mock host with the settings `scenario` asks for. */
export declare function hostFor<Row>(scenario: Scenario, projection: Projection<Row>): MockHost<Row>;
/** Run one scenario's steps on `host`; throws a {@link ScenarioError}. */
export declare function run<Row>(scenario: Scenario, host: MockHost<Row>): void;
/** The scenarios of a file: one scenario object, or a list of them. */
export declare function load(path: string): Scenario[];
/** Every `*.json` under `paths` (files or directories), sorted. */
export declare function files(paths: string[]): string[];
/**
 * Run every scenario under `paths`, each on a fresh mock host with a fresh
 * `projection()`; returns how many ran.
 */
export declare function runFiles<Row>(paths: string[], projection: () => Projection<Row>): number;
/**
 * One `node:test` test per scenario under `paths`:
 *
 * ```ts
 * import test from "node:test";
 * scenarioTests(test, ["scenarios"], () => new CustomerView());
 * ```
 */
export declare function scenarioTests<Row>(test: (name: string, body: () => void) => unknown, paths: string[], projection: () => Projection<Row>): void;
