// {name}: a projector projection.
//
// One handler: `ItemAdded` events (`{"quantity": n}`) add up per subject;
// other event types leave the row as it is.
import { ProjectionError, Update } from "projector-sdk";

/** @typedef {{items: number, events: number}} Row */

/** @implements {import("projector-sdk").Projection<Row>} */
export class {class} {
  /**
   * @param {Row | undefined} state the subject's row, if it has one
   * @param {import("projector-sdk").Event} event
   * @returns {import("projector-sdk").Update<Row>}
   */
  apply(state, event) {
    if (event.shortType === "ItemAdded") {
      const quantity = event.dataJson()?.quantity;
      if (typeof quantity !== "number" || !Number.isInteger(quantity) || quantity < 0) {
        throw ProjectionError.invalidData(`event ${event.id}: quantity must be a non-negative integer`);
      }
      const row = state ?? { items: 0, events: 0 };
      return Update.set({ items: row.items + quantity, events: row.events + 1 });
    }
    return Update.ignore();
  }
}
