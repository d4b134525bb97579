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
// The clock and randomness guards, installed as soon as the SDK is evaluated
// (they refuse only inside a projection call; see `determinism`).
import "./determinism.js";
/**
 * An event the projection cannot apply, with a stable machine-readable
 * `code` (`invalid-data`, `rejected`, or one of your own).
 */
export class ProjectionError extends Error {
    /** The event's data is malformed or has the wrong shape. */
    static INVALID_DATA = "invalid-data";
    /** The stored row is not what the projection expects. */
    static INVALID_STATE = "invalid-state";
    /** The event is well formed but breaks a rule of the projection. */
    static REJECTED = "rejected";
    /** A clock or random read inside `apply`. */
    static NONDETERMINISTIC = "nondeterministic";
    /** The class of the error. */
    code;
    constructor(code, message) {
        super(message);
        this.name = "ProjectionError";
        this.code = code;
    }
    /** The event's data is malformed or has the wrong shape. */
    static invalidData(message) {
        return new ProjectionError(ProjectionError.INVALID_DATA, message);
    }
    /** The event is well formed but breaks a rule of the projection. */
    static rejected(message) {
        return new ProjectionError(ProjectionError.REJECTED, message);
    }
}
const utf8 = new TextDecoder("utf-8", { fatal: true });
/**
 * A CloudEvents 1.0 event, with every context attribute and its Kafka origin.
 *
 * `data` holds the payload as bytes: for a structured-mode event (the
 * whole event as one JSON document) it is the JSON text of its `data`
 * member, or the bytes of `data_base64`; for a binary-mode event, the
 * record's value. {@link Event.dataJson} parses it.
 */
export class Event {
    /** `id`: unique within the scope of `source`. */
    id;
    /** `type`: the kind of event, such as `com.example.CustomerCreated`. */
    type;
    /** `source`: the context the event came from. */
    source;
    /** `specversion`: always `1.0`. */
    specversion;
    /** `subject`: names the view row this event updates. */
    subject;
    /** `time`: RFC 3339 text as received. */
    time;
    /** `datacontenttype`: the media type of `data`. */
    datacontenttype;
    /** `dataschema`: a URI naming the schema `data` adheres to. */
    dataschema;
    /** Extension attributes as name/value pairs, in the order received. */
    extensions;
    /** The payload, as bytes. */
    data;
    /** The Kafka record the event was decoded from. */
    origin;
    constructor(fields) {
        this.id = fields.id;
        this.type = fields.type;
        this.source = fields.source ?? "/";
        this.specversion = fields.specversion ?? "1.0";
        this.subject = fields.subject;
        this.time = fields.time;
        this.datacontenttype = fields.datacontenttype;
        this.dataschema = fields.dataschema;
        this.extensions = fields.extensions ?? [];
        this.data = fields.data;
        this.origin = {
            topic: fields.origin?.topic ?? "events",
            partition: fields.origin?.partition ?? 0,
            offset: fields.origin?.offset ?? 0,
            key: fields.origin?.key,
            timestampMs: fields.origin?.timestampMs,
        };
    }
    /**
     * The payload parsed as JSON; an `invalid-data` error when there is none
     * or it is not JSON. The type parameter is not checked at run time:
     * check the fields you rely on.
     */
    dataJson() {
        const text = this.dataText();
        if (text === undefined) {
            throw ProjectionError.invalidData(`event ${this.id} of type ${this.type} has no data`);
        }
        try {
            return JSON.parse(text);
        }
        catch (err) {
            throw ProjectionError.invalidData(`data of event ${this.id} (type ${this.type}) is not JSON: ${err.message}`);
        }
    }
    /** The payload as UTF-8 text, if there is one; `invalid-data` when it is not UTF-8. */
    dataText() {
        if (this.data === undefined) {
            return undefined;
        }
        try {
            return utf8.decode(this.data);
        }
        catch {
            throw ProjectionError.invalidData(`data of event ${this.id} is not UTF-8`);
        }
    }
    /** The value of the extension attribute `name`, if present. */
    extension(name) {
        return this.extensions.find(([key]) => key === name)?.[1];
    }
    /** The subject, or an `invalid-data` error when the event has none. */
    requireSubject() {
        if (this.subject === undefined) {
            throw ProjectionError.invalidData(`event ${this.id} has no subject`);
        }
        return this.subject;
    }
    /** The last dot-separated part of the type: `OrderPlaced` for `com.example.OrderPlaced`. */
    get shortType() {
        return this.type.slice(this.type.lastIndexOf(".") + 1);
    }
}
/** Make an {@link Update}: `Update.set(row)`, `Update.delete()`, `Update.ignore()`. */
export const Update = {
    /** Store `row` (any JSON value), replacing the previous one. */
    set(row) {
        return { kind: "set", row };
    },
    /** Remove the row. */
    delete() {
        return { kind: "delete" };
    },
    /** Leave the row as it is. */
    ignore() {
        return { kind: "ignore" };
    },
};
/**
 * Apply `event` to the stored row text `state`: parse the row, call the
 * projection, serialise the new row. Throws a {@link ProjectionError} for
 * a stored row that is not JSON (`invalid-state`), a row that does not
 * serialise (`invalid-row`) or something that is not an update
 * (`invalid-update`), and passes on what `apply` throws.
 */
export function applyRaw(projection, state, event) {
    let row;
    if (state !== undefined) {
        try {
            row = JSON.parse(state);
        }
        catch (err) {
            throw new ProjectionError(ProjectionError.INVALID_STATE, `the stored row is not JSON: ${err.message}`);
        }
    }
    const update = projection.apply(row, event);
    switch (update?.kind) {
        case "set": {
            let text;
            try {
                text = JSON.stringify(update.row);
            }
            catch (err) {
                throw new ProjectionError("invalid-row", `the row does not serialise to JSON: ${err.message}`);
            }
            if (text === undefined) {
                throw new ProjectionError("invalid-row", "the row does not serialise to JSON (it is undefined or a function)");
            }
            return { tag: "set", val: text };
        }
        case "delete":
            return { tag: "delete" };
        case "ignore":
            return { tag: "ignore" };
        default:
            throw new ProjectionError("invalid-update", `apply returned ${describe(update)}; return Update.set(row), Update.delete() or Update.ignore()`);
    }
}
function describe(value) {
    try {
        return JSON.stringify(value) ?? String(value);
    }
    catch {
        return String(value);
    }
}
let logSink = () => { };
/**
 * Log records, attributed by the host to the view, the event and its
 * origin. The host bounds how many one call may emit.
 */
export const log = {
    log(level, message) {
        logSink(level, String(message));
    },
    trace(message) {
        logSink("trace", String(message));
    },
    debug(message) {
        logSink("debug", String(message));
    },
    info(message) {
        logSink("info", String(message));
    },
    warn(message) {
        logSink("warn", String(message));
    },
    error(message) {
        logSink("error", String(message));
    },
};
/**
 * Where log records go: the component's host import, or a mock host's
 * list. Hosts call this; projections do not.
 */
export function routeLog(sink) {
    logSink = sink;
}
