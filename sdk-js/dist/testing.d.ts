/**
 * A mock host for `node --test`: it keeps rows and checkpoints exactly as
 * the runtime and the Rust SDK's `MockHost` do, with no Kafka and no runtime.
 *
 * - An event at or below a partition's checkpoint is a redelivery: a
 *   duplicate, not applied again.
 * - A `set` row must serialise to JSON (`invalid-row` otherwise).
 * - An event with no subject fails with `no-subject`, unless the host uses
 *   the Kafka key as the subject (`subjectFromKey`).
 * - Clock and random reads throw `nondeterministic` inside `apply`, as in
 *   the component.
 * - A failed event moves the checkpoint past it (the runtime hands it to the
 *   view's policy and goes on) and is kept in `failures`.
 * - With `dedup: { keepMs, time }`, a copy of an event the subject applied
 *   (same `source` and `id`) within the window is a `duplicate-id`, not
 *   applied: the runtime's rule for a view with `dedup = { keep, time }`
 *   (the Rust SDK's `projector_sdk::dedup`). An event's time is its record
 *   timestamp (`time: "record"`) or its CloudEvents `time`, else the
 *   record's (`time: "event"`), else 0; a copy is a duplicate while its time
 *   is less than `keepMs` after the first copy's (the mock host never
 *   forgets; a runtime forgets what its watermark is past).
 *
 * @module
 */
import { Event, type Json, type KafkaOrigin, type LogLevel, type Projection, type RawUpdate, type Update } from "./index.js";
/** The event was applied. */
export interface Applied<Row = Json> {
    outcome: "applied";
    subject: string;
    origin: KafkaOrigin;
    /** What the projection returned, as an author's `Update` (the row parsed back from the JSON the runtime would store). */
    update: Update<Row>;
    /** The same, as the component returns it: the row as JSON text. */
    rawUpdate: RawUpdate;
}
/** A redelivery at or below the partition's checkpoint. */
export interface Duplicate {
    outcome: "duplicate";
    origin: KafkaOrigin;
    nextOffset: number;
}
/**
 * A copy of an event its subject applied (same `source` and `id`) within
 * the dedup window: not applied.
 */
export interface DuplicateId {
    outcome: "duplicate-id";
    subject: string;
    origin: KafkaOrigin;
    firstMs: number;
}
/**
 * The event failed; `code` is the projection's error code, or `no-subject`,
 * `invalid-row`, `panic` (any other exception).
 */
export interface Failed {
    outcome: "failed";
    code: string;
    message: string;
    event: Event;
}
/** What delivering one event did. */
export type Outcome<Row = Json> = Applied<Row> | Duplicate | DuplicateId | Failed;
/** One record the projection logged. */
export interface LogRecord {
    level: LogLevel;
    message: string;
}
/** An event to publish: `new EventBuilder("OrderPlaced").subject("c-1").dataJson({...})`. */
export declare class EventBuilder {
    /** @internal */ readonly fields: {
        id?: string;
        type: string;
        source: string;
        subject?: string;
        time?: string;
        datacontenttype?: string;
        dataschema?: string;
        extensions: Array<[string, string]>;
        data?: Uint8Array;
        topic: string;
        partition: number;
        offset?: number;
        key?: Uint8Array | null;
        timestampMs?: number;
    };
    constructor(type: string);
    id(value: string): this;
    source(value: string): this;
    subject(value: string): this;
    time(value: string): this;
    dataschema(value: string): this;
    extension(name: string, value: string): this;
    /** JSON data, sent as `application/json`. */
    dataJson(value: Json | object): this;
    /** Raw data with its media type. */
    data(contentType: string, data: Uint8Array | string): this;
    topic(value: string): this;
    partition(value: number): this;
    /** The offset; by default the partition's next one. */
    offset(value: number): this;
    /** The Kafka key; by default the subject. `null` for none. */
    key(value: Uint8Array | string | null): this;
    timestampMs(value: number): this;
}
/** Deduplication by CloudEvents identity, as a view's `dedup` does. */
export interface DedupOptions {
    /** How long an identity is remembered, in milliseconds of stream time. */
    keepMs: number;
    /** The time events are measured by: `record` (default) or `event`. */
    time?: "record" | "event";
}
/** Options of a {@link MockHost}. */
export interface MockHostOptions {
    /** Use the Kafka key as the subject of an event that has none. */
    subjectFromKey?: boolean;
    /** Deduplicate by CloudEvents identity. */
    dedup?: DedupOptions;
}
/** Milliseconds of a window such as `"7d"`, `"12h"`, `"30m"`, `"90s"` or `"500ms"`. */
export declare function parseKeep(text: string): number;
/** Milliseconds since the epoch of an RFC 3339 date-time, or `undefined`. */
export declare function rfc3339Ms(text: string): number | undefined;
/** Applies events with a projection and keeps the view. */
export declare class MockHost<Row = Json> {
    private readonly projection;
    /** The rows, as the JSON text the runtime would store. */
    readonly rows: Map<string, string>;
    /** Everything the projection logged. */
    readonly logs: LogRecord[];
    /** Every failed event, in order. */
    readonly failures: Failed[];
    private readonly checkpoints;
    private readonly published;
    private nextId;
    private readonly subjectFromKey;
    private readonly dedup;
    private readonly appliedIds;
    constructor(projection: Projection<Row>, options?: MockHostOptions);
    /**
     * Append the event to its partition, as a producer would, and deliver it.
     * It gets the partition's next offset unless the builder set one, an id
     * unless it set one, and its subject as key unless it set one.
     */
    publish(builder: EventBuilder): Outcome<Row>;
    /**
     * Deliver the event published at `(topic, partition, offset)` again, as
     * Kafka does after a rebalance or a crash.
     */
    redeliver(topic: string, partition: number, offset: number): Outcome<Row>;
    /** Deliver `event` exactly as given, with its own origin. */
    deliver(event: Event): Outcome<Row>;
    private fail;
    /** The row of `subject` parsed from JSON, or `undefined`. */
    row(subject: string): Row | undefined;
    /** The row of `subject`; throws when there is none. */
    expectRow(subject: string): Row;
    /** Throws when `subject` has a row. */
    expectNoRow(subject: string): void;
    /** The next offset of `(topic, partition)`, if it saw any. */
    checkpoint(topic: string, partition: number): number | undefined;
}
