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
/** Refuse the clock and randomness reads for good (the component). */
export declare function freeze(): void;
/** Refuse them for the duration of `call` (the mock host). */
export declare function frozen<T>(call: () => T): T;
