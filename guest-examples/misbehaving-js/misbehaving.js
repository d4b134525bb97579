// A projection that misbehaves on request, to show what the host does with a
// hostile or buggy JavaScript guest. The JavaScript sibling of
// `../misbehaving` (Rust) and `../misbehaving-py`.
//
// | event type              | what it does                                      |
// |-------------------------|---------------------------------------------------|
// | `misbehave.loop`        | loops forever (the deadline stops it)             |
// | `misbehave.memory-bomb` | allocates without end (the memory cap stops it)   |
// | `misbehave.throw`       | throws an exception that is not a ProjectionError |
// | `misbehave.clock`       | reads the clock                                   |
// | `misbehave.random`      | reads a random number                             |
// | `misbehave.captured-random` | calls `Math.random` taken at import           |
// | `misbehave.captured-clock`  | calls `Date.now` taken at import              |
// | `misbehave.error`       | refuses the event (`rejected`)                    |
// | anything else           | counts: `{"count": n}`                            |
import { ProjectionError, Update } from "projector-sdk";

// Taken when the module is evaluated, after the SDK it imports: the guards
// still refuse them inside `apply`.
const capturedRandom = Math.random;
const capturedNow = Date.now;

/** @implements {import("projector-sdk").Projection<{count: number}>} */
export class Misbehaving {
  /**
   * @param {{count: number} | undefined} state
   * @param {import("projector-sdk").Event} event
   */
  apply(state, event) {
    switch (event.type) {
      case "misbehave.loop": {
        let spins = 0;
        for (;;) {
          spins += 1;
        }
      }
      case "misbehave.memory-bomb": {
        const hoard = [];
        for (;;) {
          hoard.push(new Uint8Array(1 << 20).fill(1));
        }
      }
      case "misbehave.throw":
        throw new TypeError(`misbehaving on purpose (event ${event.id})`);
      case "misbehave.clock":
        return Update.set({ now: Date.now() });
      case "misbehave.random":
        return Update.set({ r: Math.random() });
      case "misbehave.captured-random":
        return Update.set({ r: capturedRandom() });
      case "misbehave.captured-clock":
        return Update.set({ now: capturedNow() });
      case "misbehave.error":
        throw ProjectionError.rejected(`refusing event ${event.id} on purpose`);
      default:
        return Update.set({ count: (state?.count ?? 0) + 1 });
    }
  }
}
