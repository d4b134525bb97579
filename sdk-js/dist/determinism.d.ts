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
/** Replace the clock and randomness reads for good (the component). */
export declare function freeze(): void;
/** Replace them for the duration of `call` (the mock host), then restore them. */
export declare function frozen<T>(call: () => T): T;
