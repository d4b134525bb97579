// The component's entry point: `npm run build` makes {name}.wasm from it.
import { component } from "projector-sdk/component";

import { {class} } from "./projection.js";

export const apply = component(new {class}());
