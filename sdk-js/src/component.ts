/**
 * The glue between a projection and the component world
 * `projector:projection`. The app module a component is built from says:
 *
 * ```ts
 * import { component } from "projector-sdk/component";
 * import { CustomerView } from "./customer-view.js";
 *
 * export const apply = component(new CustomerView());
 * ```
 *
 * and `projector-componentize app.js -o projection.wasm` builds it. Only
 * importable inside componentize-js: it imports the host's `log`
 * interface.
 *
 * @module
 */

/// <reference path="../wit-types/projection.d.ts" preserve="true" />

import { log as hostLog, reportPanic } from "projector:projection/log@0.1.0";
import type {
  Event as WitEvent,
  Update as WitUpdate,
} from "projector:projection/types@0.1.0";

import { Event, ProjectionError, applyRaw, routeLog, type Projection } from "./index.js";
import { freeze } from "./determinism.js";

// Refused from the moment the glue is evaluated, before the projection's own
// module (which the entry imports after it), so that a function it takes at
// import (`const random = Math.random`) is refused too.
freeze();

/** The event as the SDK shows it: offsets as numbers, the rest as given. */
function fromWit(event: WitEvent): Event {
  const origin = event.origin;
  return new Event({
    id: event.id,
    type: event.type,
    source: event.source,
    specversion: event.specversion,
    subject: event.subject,
    time: event.time,
    datacontenttype: event.datacontenttype,
    dataschema: event.dataschema,
    extensions: event.extensions,
    data: event.data,
    origin: {
      topic: origin.topic,
      partition: origin.partition,
      offset: Number(origin.offset),
      key: origin.key,
      timestampMs: origin.timestampMs === undefined ? undefined : Number(origin.timestampMs),
    },
  });
}

/** What a thrown value says, with its stack when it has one. */
function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) {
    return thrown.stack && thrown.stack.length > 0
      ? `${thrown.name}: ${thrown.message}\n${thrown.stack}`
      : `${thrown.name}: ${thrown.message}`;
  }
  try {
    return `thrown value: ${JSON.stringify(thrown)}`;
  } catch {
    return `thrown value: ${String(thrown)}`;
  }
}

/**
 * The `apply` export of the world, applying with `projection`. A
 * {@link ProjectionError} becomes the export's `error` result; any other
 * exception is a bug: it is reported to the host with `report-panic` and the
 * call traps, so the host reports a guest `panic` with its message.
 */
export function component<Row>(
  projection: Projection<Row>,
): (state: string | undefined, event: WitEvent) => WitUpdate {
  routeLog((level, message) => hostLog(level, message));
  return (state, event) => {
    try {
      return applyRaw(projection, state, fromWit(event));
    } catch (thrown) {
      if (thrown instanceof ProjectionError) {
        // componentize-js turns a thrown object's `payload` into the `err`
        // case of the export's result.
        throw { payload: { code: thrown.code, message: thrown.message } };
      }
      reportPanic(describeThrown(thrown));
      throw thrown;
    }
  };
}
