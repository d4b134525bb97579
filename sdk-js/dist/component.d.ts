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
import type { Event as WitEvent, Update as WitUpdate } from "projector:projection/types@0.1.0";
import { type Projection } from "./index.js";
/**
 * The `apply` export of the world, applying with `projection`. A
 * {@link ProjectionError} becomes the export's `error` result; any other
 * exception is a bug: it is reported to the host with `report-panic` and the
 * call traps, so the host reports a guest `panic` with its message.
 */
export declare function component<Row>(projection: Projection<Row>): (state: string | undefined, event: WitEvent) => WitUpdate;
