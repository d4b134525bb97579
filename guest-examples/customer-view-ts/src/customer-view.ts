/**
 * Customer registry: one row per customer, keyed by the event subject (the
 * customer id). The TypeScript port of `../customer-view`.
 *
 * | event type               | data                           | effect          |
 * |--------------------------|--------------------------------|-----------------|
 * | `CustomerCreated`        | `{email, name, address?}`      | sets the row    |
 * | `CustomerNameChanged`    | `{newName}`                    | changes `name`  |
 * | `CustomerAddressChanged` | `{newAddress: {street, city}}` | changes `address` |
 * | `CustomerDeleted`        | none                           | deletes the row |
 *
 * A type may carry a reverse-DNS prefix (`com.example.CustomerCreated`).
 * Changes to a customer that does not exist are ignored with a warning;
 * other event types are ignored. Data of the wrong shape is an
 * `invalid-data` error.
 */

import { Event, Projection, ProjectionError, Update, log } from "projector-sdk";

/** A postal address. */
export interface Address {
  street: string;
  city: string;
}

/** The view row of one customer. */
export interface Customer {
  customerId: string;
  email: string;
  name: string;
  address?: Address;
}

/** The member `name` of `value`, which must be a string. */
function text(value: unknown, name: string, event: Event): string {
  const member = (value as Record<string, unknown> | null)?.[name];
  if (typeof member !== "string") {
    throw ProjectionError.invalidData(`${event.type} ${event.id}: "${name}" must be a string`);
  }
  return member;
}

function address(value: unknown, event: Event): Address {
  if (typeof value !== "object" || value === null) {
    throw ProjectionError.invalidData(`${event.type} ${event.id}: an address must be an object`);
  }
  return { street: text(value, "street", event), city: text(value, "city", event) };
}

export class CustomerView implements Projection<Customer> {
  apply(state: Customer | undefined, event: Event): Update<Customer> {
    const type = event.shortType;
    if (type === "CustomerCreated") {
      const data = event.dataJson<Record<string, unknown>>();
      const customer: Customer = {
        customerId: event.requireSubject(),
        email: text(data, "email", event),
        name: text(data, "name", event),
      };
      if (data?.address !== undefined && data.address !== null) {
        customer.address = address(data.address, event);
      }
      return Update.set(customer);
    }
    if (!["CustomerNameChanged", "CustomerAddressChanged", "CustomerDeleted"].includes(type)) {
      return Update.ignore();
    }
    if (state === undefined) {
      log.warn(`${event.type} for unknown customer ${JSON.stringify(event.subject)} ignored (event ${event.id})`);
      return Update.ignore();
    }
    switch (type) {
      case "CustomerNameChanged":
        return Update.set({ ...state, name: text(event.dataJson(), "newName", event) });
      case "CustomerAddressChanged": {
        const data = event.dataJson<Record<string, unknown>>();
        return Update.set({ ...state, address: address(data?.newAddress, event) });
      }
      default:
        return Update.delete();
    }
  }
}
