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

import { Event, ProjectionError, applyRaw, routeLog, type Json, type KafkaOrigin, type LogLevel, type Projection, type RawUpdate, type Update } from "./index.js";
import { frozen } from "./determinism.js";

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

const encoder = new TextEncoder();

/** An event to publish: `new EventBuilder("OrderPlaced").subject("c-1").dataJson({...})`. */
export class EventBuilder {
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

  constructor(type: string) {
    this.fields = { type, source: "/tests", extensions: [], topic: "events", partition: 0 };
  }

  id(value: string): this {
    this.fields.id = value;
    return this;
  }

  source(value: string): this {
    this.fields.source = value;
    return this;
  }

  subject(value: string): this {
    this.fields.subject = value;
    return this;
  }

  time(value: string): this {
    this.fields.time = value;
    return this;
  }

  dataschema(value: string): this {
    this.fields.dataschema = value;
    return this;
  }

  extension(name: string, value: string): this {
    this.fields.extensions.push([name, value]);
    return this;
  }

  /** JSON data, sent as `application/json`. */
  dataJson(value: Json | object): this {
    this.fields.datacontenttype = "application/json";
    this.fields.data = encoder.encode(JSON.stringify(value));
    return this;
  }

  /** Raw data with its media type. */
  data(contentType: string, data: Uint8Array | string): this {
    this.fields.datacontenttype = contentType;
    this.fields.data = typeof data === "string" ? encoder.encode(data) : data;
    return this;
  }

  topic(value: string): this {
    this.fields.topic = value;
    return this;
  }

  partition(value: number): this {
    this.fields.partition = value;
    return this;
  }

  /** The offset; by default the partition's next one. */
  offset(value: number): this {
    this.fields.offset = value;
    return this;
  }

  /** The Kafka key; by default the subject. `null` for none. */
  key(value: Uint8Array | string | null): this {
    this.fields.key = typeof value === "string" ? encoder.encode(value) : value;
    return this;
  }

  timestampMs(value: number): this {
    this.fields.timestampMs = value;
    return this;
  }
}

const place = (topic: string, partition: number) => `${partition}\u0000${topic}`;

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

const KEEP = /^\s*(\d+)(ms|s|m|h|d)\s*$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Milliseconds of a window such as `"7d"`, `"12h"`, `"30m"`, `"90s"` or `"500ms"`. */
export function parseKeep(text: string): number {
  const match = KEEP.exec(text);
  if (match === null || Number(match[1]) === 0) {
    throw new Error(`a duration above zero: a whole number and a unit (ms, s, m, h, d), found ${JSON.stringify(text)}`);
  }
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/** Milliseconds since the epoch of an RFC 3339 date-time, or `undefined`. */
export function rfc3339Ms(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (match === null) {
    return undefined;
  }
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  const ms = Date.parse(text.replace(/^(.{10})[t ]/, "$1T").replace(/z$/, "Z"));
  return Number.isNaN(ms) ? undefined : ms;
}

/** Applies events with a projection and keeps the view. */
export class MockHost<Row = Json> {
  /** The rows, as the JSON text the runtime would store. */
  readonly rows = new Map<string, string>();
  /** Everything the projection logged. */
  readonly logs: LogRecord[] = [];
  /** Every failed event, in order. */
  readonly failures: Failed[] = [];
  private readonly checkpoints = new Map<string, number>();
  private readonly published = new Map<string, Event[]>();
  private nextId = 0;
  private readonly subjectFromKey: boolean;
  private readonly dedup: DedupOptions | undefined;
  private readonly appliedIds = new Map<string, number>();

  constructor(
    private readonly projection: Projection<Row>,
    options: MockHostOptions = {},
  ) {
    this.subjectFromKey = options.subjectFromKey ?? false;
    if (options.dedup !== undefined) {
      const { keepMs, time = "record" } = options.dedup;
      if (!(keepMs > 0)) {
        throw new Error(`dedup.keepMs must be above zero, found ${keepMs}`);
      }
      if (time !== "record" && time !== "event") {
        throw new Error(`dedup.time must be "record" or "event", found ${JSON.stringify(time)}`);
      }
      this.dedup = { keepMs, time };
    }
  }

  /**
   * Append the event to its partition, as a producer would, and deliver it.
   * It gets the partition's next offset unless the builder set one, an id
   * unless it set one, and its subject as key unless it set one.
   */
  publish(builder: EventBuilder): Outcome<Row> {
    const f = builder.fields;
    const log = this.published.get(place(f.topic, f.partition)) ?? [];
    this.published.set(place(f.topic, f.partition), log);
    const offset = f.offset ?? (log.length === 0 ? 0 : Math.max(...log.map((e) => e.origin.offset)) + 1);
    const key = f.key === undefined ? (f.subject === undefined ? undefined : encoder.encode(f.subject)) : (f.key ?? undefined);
    const event = new Event({
      id: f.id ?? `evt-${++this.nextId}`,
      type: f.type,
      source: f.source,
      subject: f.subject,
      time: f.time,
      datacontenttype: f.datacontenttype,
      dataschema: f.dataschema,
      extensions: f.extensions.map(([name, value]) => [name, value]),
      data: f.data?.slice(),
      origin: { topic: f.topic, partition: f.partition, offset, key, timestampMs: f.timestampMs },
    });
    log.push(event);
    return this.deliver(event);
  }

  /**
   * Deliver the event published at `(topic, partition, offset)` again, as
   * Kafka does after a rebalance or a crash.
   */
  redeliver(topic: string, partition: number, offset: number): Outcome<Row> {
    const event = this.published.get(place(topic, partition))?.findLast((e) => e.origin.offset === offset);
    if (event === undefined) {
      throw new Error(`nothing was published at ${topic}/${partition}@${offset}`);
    }
    return this.deliver(event);
  }

  /** Deliver `event` exactly as given, with its own origin. */
  deliver(event: Event): Outcome<Row> {
    const origin = event.origin;
    const at = place(origin.topic, origin.partition);
    const nextOffset = this.checkpoints.get(at);
    if (nextOffset !== undefined && origin.offset < nextOffset) {
      return { outcome: "duplicate", origin, nextOffset };
    }
    this.checkpoints.set(at, origin.offset + 1);
    let subject = event.subject;
    if (subject === undefined && this.subjectFromKey && origin.key !== undefined) {
      subject = new TextDecoder().decode(origin.key);
    }
    if (subject === undefined) {
      return this.fail("no-subject", "the event has no subject", event);
    }
    const identity = JSON.stringify([subject, event.source, event.id]);
    let remember: number | undefined;
    if (this.dedup !== undefined) {
      let time = origin.timestampMs;
      if (this.dedup.time === "event" && event.time !== undefined) {
        time = rfc3339Ms(event.time) ?? time;
      }
      time ??= 0;
      const first = this.appliedIds.get(identity);
      if (first !== undefined && time - first < this.dedup.keepMs) {
        return { outcome: "duplicate-id", subject, origin, firstMs: first };
      }
      remember = time;
    }
    routeLog((level, message) => this.logs.push({ level, message }));
    let update: RawUpdate;
    try {
      update = frozen(() => applyRaw(this.projection, this.rows.get(subject), event));
    } catch (thrown) {
      if (thrown instanceof ProjectionError) {
        return this.fail(thrown.code, thrown.message, event);
      }
      const message = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : `thrown value: ${String(thrown)}`;
      return this.fail("panic", message, event);
    } finally {
      routeLog(() => {});
    }
    if (update.tag === "set") {
      this.rows.set(subject, update.val);
    } else if (update.tag === "delete") {
      this.rows.delete(subject);
    }
    if (remember !== undefined) {
      this.appliedIds.set(identity, remember);
    }
    const typed: Update<Row> =
      update.tag === "set" ? { kind: "set", row: JSON.parse(update.val) as Row } : { kind: update.tag };
    return { outcome: "applied", subject, origin, update: typed, rawUpdate: update };
  }

  private fail(code: string, message: string, event: Event): Failed {
    const failed: Failed = { outcome: "failed", code, message, event };
    this.failures.push(failed);
    return failed;
  }

  /** The row of `subject` parsed from JSON, or `undefined`. */
  row(subject: string): Row | undefined {
    const text = this.rows.get(subject);
    return text === undefined ? undefined : (JSON.parse(text) as Row);
  }

  /** The row of `subject`; throws when there is none. */
  expectRow(subject: string): Row {
    const text = this.rows.get(subject);
    if (text === undefined) {
      throw new Error(`no row for ${JSON.stringify(subject)}; rows: ${JSON.stringify([...this.rows.keys()].sort())}`);
    }
    return JSON.parse(text) as Row;
  }

  /** Throws when `subject` has a row. */
  expectNoRow(subject: string): void {
    const text = this.rows.get(subject);
    if (text !== undefined) {
      throw new Error(`${JSON.stringify(subject)} has a row: ${text}`);
    }
  }

  /** The next offset of `(topic, partition)`, if it saw any. */
  checkpoint(topic: string, partition: number): number | undefined {
    return this.checkpoints.get(place(topic, partition));
  }
}
