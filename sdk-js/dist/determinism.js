/**
 * Clock and randomness reads fail with a clear error in a projection, in the
 * component and in the mock host alike, instead of returning values that
 * differ between replays. (With its `random` feature disabled,
 * componentize-js still answers `Math.random()`, from a generator whose
 * state advances per call, so its values would depend on the instance's
 * history; with `clocks` disabled, the clock reads would be meaningless.)
 *
 * The guards replace `Date`, `Math.random`, `performance.now` and
 * `crypto.getRandomValues`/`randomUUID` when this SDK is first evaluated,
 * so a projection module that imports the SDK (its imports are evaluated
 * before its own code) gets the guards even when it keeps a function at
 * import (`const random = Math.random`). Outside a projection call they call
 * through to the originals: the mock host refuses them only while it applies
 * ({@link frozen}), the component always ({@link freeze}).
 *
 * @module
 */
import { ProjectionError } from "./index.js";
const useEventTime = "use the event's `time` or its Kafka timestamp";
const useEventId = "derive what you need from the event (its id)";
/** Calls of the mock host in progress. */
let depth = 0;
/** True in the component: refused for good. */
let always = false;
function refusing() {
    return always || depth > 0;
}
function refusal(what, instead) {
    return new ProjectionError(ProjectionError.NONDETERMINISTIC, `${what} is not available in a projection: apply must be a pure function of (row, event); ${instead}`);
}
function install(target, name, value) {
    Object.defineProperty(target, name, {
        value,
        writable: true,
        configurable: true,
        enumerable: false,
    });
}
/** Replace `target[name]`, a function, with one that refuses while refusing. */
function guard(target, name, what, instead) {
    const original = target[name];
    if (typeof original !== "function") {
        return;
    }
    install(target, name, function guarded(...args) {
        if (refusing()) {
            throw refusal(what, instead);
        }
        return original.apply(this, args);
    });
}
/** Installed once per global scope, however many copies of the SDK load. */
const INSTALLED = Symbol.for("projector-sdk.determinism-guards");
function installGuards() {
    const global = globalThis;
    if (global[INSTALLED]) {
        return;
    }
    global[INSTALLED] = true;
    const OriginalDate = globalThis.Date;
    const GuardedDate = new Proxy(OriginalDate, {
        construct(target, args, newTarget) {
            if (args.length === 0 && refusing()) {
                throw refusal("new Date() (the current time)", useEventTime);
            }
            return Reflect.construct(target, args, newTarget);
        },
        apply(target, self, args) {
            if (refusing()) {
                throw refusal("Date() (the current time)", useEventTime);
            }
            return Reflect.apply(target, self, args);
        },
        get(target, property, receiver) {
            if (property === "now") {
                return function now() {
                    if (refusing()) {
                        throw refusal("Date.now()", useEventTime);
                    }
                    return target.now();
                };
            }
            return Reflect.get(target, property, receiver);
        },
    });
    install(globalThis, "Date", GuardedDate);
    guard(Math, "random", "Math.random()", useEventId);
    if (global.performance !== undefined) {
        guard(global.performance, "now", "performance.now()", useEventTime);
    }
    if (global.crypto !== undefined) {
        guard(global.crypto, "getRandomValues", "crypto.getRandomValues()", useEventId);
        guard(global.crypto, "randomUUID", "crypto.randomUUID()", useEventId);
    }
}
/** Refuse the clock and randomness reads for good (the component). */
export function freeze() {
    installGuards();
    always = true;
}
/** Refuse them for the duration of `call` (the mock host). */
export function frozen(call) {
    installGuards();
    depth += 1;
    try {
        return call();
    }
    finally {
        depth -= 1;
    }
}
installGuards();
