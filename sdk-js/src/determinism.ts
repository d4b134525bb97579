/**
 * Clock and randomness reads fail with a clear error in a projection, in the
 * component and in the mock host alike, instead of returning values that
 * differ between replays. (With its `random` feature disabled,
 * componentize-js still answers `Math.random()`, from a generator whose
 * state advances per call, so its values would depend on the instance's
 * history; with `clocks` disabled, the clock reads would be meaningless.)
 *
 * @module
 */

import { ProjectionError } from "./index.js";

function refuse(what: string, instead: string): () => never {
  return () => {
    throw new ProjectionError(
      ProjectionError.NONDETERMINISTIC,
      `${what} is not available in a projection: apply must be a pure function of (row, event); ${instead}`,
    );
  };
}

const useEventTime = "use the event's `time` or its Kafka timestamp";
const useEventId = "derive what you need from the event (its id)";

type Patch = { target: object; name: string; value: unknown };

/** What freezing replaces: (object, property, replacement). */
function patches(): Patch[] {
  const found: Patch[] = [];
  const OriginalDate = globalThis.Date;
  const refuseNow = refuse("new Date() (the current time)", useEventTime);
  const FrozenDate = new Proxy(OriginalDate, {
    construct(target, args, newTarget) {
      if (args.length === 0) {
        refuseNow();
      }
      return Reflect.construct(target, args, newTarget);
    },
    apply() {
      return refuse("Date() (the current time)", useEventTime)();
    },
    get(target, property, receiver) {
      if (property === "now") {
        return refuse("Date.now()", useEventTime);
      }
      return Reflect.get(target, property, receiver);
    },
  });
  found.push({ target: globalThis, name: "Date", value: FrozenDate });
  found.push({ target: Math, name: "random", value: refuse("Math.random()", useEventId) });
  const performance = (globalThis as { performance?: object }).performance;
  if (performance !== undefined) {
    found.push({ target: performance, name: "now", value: refuse("performance.now()", useEventTime) });
  }
  const crypto = (globalThis as { crypto?: object }).crypto;
  if (crypto !== undefined) {
    found.push({ target: crypto, name: "getRandomValues", value: refuse("crypto.getRandomValues()", useEventId) });
    found.push({ target: crypto, name: "randomUUID", value: refuse("crypto.randomUUID()", useEventId) });
  }
  return found;
}

function install(patch: Patch): void {
  Object.defineProperty(patch.target, patch.name, {
    value: patch.value,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/** Replace the clock and randomness reads for good (the component). */
export function freeze(): void {
  patches().forEach(install);
}

/** Replace them for the duration of `call` (the mock host), then restore them. */
export function frozen<T>(call: () => T): T {
  const saved = patches().map((patch) => ({
    patch,
    own: Object.getOwnPropertyDescriptor(patch.target, patch.name),
  }));
  saved.forEach(({ patch }) => install(patch));
  try {
    return call();
  } finally {
    for (const { patch, own } of saved) {
      if (own === undefined) {
        delete (patch.target as Record<string, unknown>)[patch.name];
      } else {
        Object.defineProperty(patch.target, patch.name, own);
      }
    }
  }
}
