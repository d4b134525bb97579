/**
 * Write a projector projection in TypeScript or JavaScript.
 *
 * A projection is a pure function of `(current row, CloudEvent)` that says
 * what to do with the row:
 *
 * ```ts
 * import { Event, Projection, Update } from "projector-sdk";
 *
 * type Counter = { count: number };
 *
 * export class Counting implements Projection<Counter> {
 *   apply(state: Counter | undefined, event: Event): Update<Counter> {
 *     return Update.set({ count: (state?.count ?? 0) + 1 });
 *   }
 * }
 * ```
 *
 * `state` is the subject's row parsed from JSON, or `undefined` when the
 * subject has none (a row may itself be JSON `null`). The row returned in
 * `Update.set` is serialised with `JSON.stringify`. Throw a
 * {@link ProjectionError} for an event the projection cannot apply: the
 * runtime hands it to the view's error policy. Any other exception is a bug
 * in the projection, reported as a guest `panic`.
 *
 * The same object runs in the component (`projector-sdk/component`) and in
 * the mock host (`projector-sdk/testing`), through {@link applyRaw}, the one
 * place rows are parsed and serialised.
 *
 * Determinism: inside `apply`, `Date.now()`, `new Date()` with no argument,
 * `performance.now()`, `Math.random()` and `crypto.getRandomValues()` throw
 * a `nondeterministic` ProjectionError, in the component and in the mock host
 * alike, also when the projection took the function at import
 * (`const random = Math.random`) after importing this SDK. The component has no clock, randomness, filesystem or network:
 * componentize-js is run with every WASI feature disabled.
 *
 * @module
 */
import "./determinism.js";
/** A JSON value: what a row is, and what `Event.dataJson` returns. */
export type Json = null | boolean | number | string | Json[] | {
    [key: string]: Json;
};
/**
 * An event the projection cannot apply, with a stable machine-readable
 * `code` (`invalid-data`, `rejected`, or one of your own).
 */
export declare class ProjectionError extends Error {
    /** The event's data is malformed or has the wrong shape. */
    static readonly INVALID_DATA = "invalid-data";
    /** The stored row is not what the projection expects. */
    static readonly INVALID_STATE = "invalid-state";
    /** The event is well formed but breaks a rule of the projection. */
    static readonly REJECTED = "rejected";
    /** A clock or random read inside `apply`. */
    static readonly NONDETERMINISTIC = "nondeterministic";
    /** The class of the error. */
    readonly code: string;
    constructor(code: string, message: string);
    /** The event's data is malformed or has the wrong shape. */
    static invalidData(message: string): ProjectionError;
    /** The event is well formed but breaks a rule of the projection. */
    static rejected(message: string): ProjectionError;
}
/**
 * Where in Kafka the event was read from. Offsets and timestamps are plain
 * numbers: both stay far below 2^53.
 */
export interface KafkaOrigin {
    /** The topic the record was consumed from. */
    topic: string;
    /** The partition within `topic`. */
    partition: number;
    /** The record's offset within the partition. */
    offset: number;
    /** The record's key, if it had one. */
    key?: Uint8Array;
    /** The record's timestamp in milliseconds since the Unix epoch. */
    timestampMs?: number;
}
/** The attributes of an {@link Event}. */
export interface EventFields {
    id: string;
    type: string;
    source?: string;
    specversion?: string;
    subject?: string;
    time?: string;
    datacontenttype?: string;
    dataschema?: string;
    extensions?: Array<[string, string]>;
    data?: Uint8Array;
    origin?: Partial<KafkaOrigin>;
}
/**
 * A CloudEvents 1.0 event, with every context attribute and its Kafka origin.
 *
 * `data` holds the payload as bytes: for a structured-mode event (the
 * whole event as one JSON document) it is the JSON text of its `data`
 * member, or the bytes of `data_base64`; for a binary-mode event, the
 * record's value. {@link Event.dataJson} parses it.
 */
export declare class Event {
    /** `id`: unique within the scope of `source`. */
    id: string;
    /** `type`: the kind of event, such as `com.example.CustomerCreated`. */
    type: string;
    /** `source`: the context the event came from. */
    source: string;
    /** `specversion`: always `1.0`. */
    specversion: string;
    /** `subject`: names the view row this event updates. */
    subject?: string;
    /** `time`: RFC 3339 text as received. */
    time?: string;
    /** `datacontenttype`: the media type of `data`. */
    datacontenttype?: string;
    /** `dataschema`: a URI naming the schema `data` adheres to. */
    dataschema?: string;
    /** Extension attributes as name/value pairs, in the order received. */
    extensions: Array<[string, string]>;
    /** The payload, as bytes. */
    data?: Uint8Array;
    /** The Kafka record the event was decoded from. */
    origin: KafkaOrigin;
    constructor(fields: EventFields);
    /**
     * The payload parsed as JSON; an `invalid-data` error when there is none
     * or it is not JSON. The type parameter is not checked at run time:
     * check the fields you rely on.
     */
    dataJson<T = Json>(): T;
    /** The payload as UTF-8 text, if there is one; `invalid-data` when it is not UTF-8. */
    dataText(): string | undefined;
    /** The value of the extension attribute `name`, if present. */
    extension(name: string): string | undefined;
    /** The subject, or an `invalid-data` error when the event has none. */
    requireSubject(): string;
    /** The last dot-separated part of the type: `OrderPlaced` for `com.example.OrderPlaced`. */
    get shortType(): string;
}
/** What to do with the subject's row. */
export type Update<Row = Json> = {
    kind: "set";
    row: Row;
} | {
    kind: "delete";
} | {
    kind: "ignore";
};
/** Make an {@link Update}: `Update.set(row)`, `Update.delete()`, `Update.ignore()`. */
export declare const Update: {
    /** Store `row` (any JSON value), replacing the previous one. */
    set<Row>(row: Row): Update<Row>;
    /** Remove the row. */
    delete(): Update<never>;
    /** Leave the row as it is. */
    ignore(): Update<never>;
};
/** What a projection is: an object with `apply`. */
export interface Projection<Row = Json> {
    /** Apply `event` to the subject's row (`undefined` when it has none). */
    apply(state: Row | undefined, event: Event): Update<Row>;
}
/** An update as the runtime takes it: the row as JSON text. */
export type RawUpdate = {
    tag: "set";
    val: string;
} | {
    tag: "delete";
} | {
    tag: "ignore";
};
/**
 * Apply `event` to the stored row text `state`: parse the row, call the
 * projection, serialise the new row. Throws a {@link ProjectionError} for
 * a stored row that is not JSON (`invalid-state`), a row that does not
 * serialise (`invalid-row`) or something that is not an update
 * (`invalid-update`), and passes on what `apply` throws.
 */
export declare function applyRaw<Row>(projection: Projection<Row>, state: string | undefined, event: Event): RawUpdate;
/** Severity of a log record. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
type LogSink = (level: LogLevel, message: string) => void;
/**
 * Log records, attributed by the host to the view, the event and its
 * origin. The host bounds how many one call may emit.
 */
export declare const log: {
    log(level: LogLevel, message: string): void;
    trace(message: string): void;
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
};
/**
 * Where log records go: the component's host import, or a mock host's
 * list. Hosts call this; projections do not.
 */
export declare function routeLog(sink: LogSink): void;
export {};
