/**
 * {name}: a projector projection.
 *
 * One handler: `ItemAdded` events (`{"quantity": n}`) add up per subject;
 * other event types leave the row as it is.
 */

import { Event, Projection, ProjectionError, Update } from "projector-sdk";

/** The row of one subject. */
export interface Row {
  items: number;
  events: number;
}

export class {class} implements Projection<Row> {
  apply(state: Row | undefined, event: Event): Update<Row> {
    if (event.shortType === "ItemAdded") {
      const quantity = event.dataJson<{ quantity?: unknown }>()?.quantity;
      if (typeof quantity !== "number" || !Number.isInteger(quantity) || quantity < 0) {
        throw ProjectionError.invalidData(`event ${event.id}: quantity must be a non-negative integer`);
      }
      const row = state ?? { items: 0, events: 0 };
      return Update.set({ items: row.items + quantity, events: row.events + 1 });
    }
    return Update.ignore();
  }
}
