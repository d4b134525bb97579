// The component's entry point: `projector-componentize app.js` builds it.
import { component } from "projector-sdk/component";

import { Misbehaving } from "./misbehaving.js";

export const apply = component(new Misbehaving());
