// The component's entry point: `projector-componentize src/app.ts` builds it.
import { component } from "projector-sdk/component";

import { CustomerView } from "./customer-view.js";

export const apply = component(new CustomerView());
