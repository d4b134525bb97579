//! Customer registry: one row per customer, keyed by the event subject (the
//! customer id).
//!
//! | event type               | data                         | effect                   |
//! |--------------------------|------------------------------|--------------------------|
//! | `CustomerCreated`        | `{email, name, address?}`    | sets the row             |
//! | `CustomerNameChanged`    | `{newName}`                  | changes `name`           |
//! | `CustomerAddressChanged` | `{newAddress: {street, city}}` | changes `address`      |
//! | `CustomerDeleted`        | none                         | deletes the row          |
//!
//! A type may carry a reverse-DNS prefix (`com.example.CustomerCreated`).
//! Changes to a customer that does not exist are ignored with a warning;
//! other event types are ignored. Data of the wrong shape is an
//! `invalid-data` error.
//!
//! # Layout
//! - this file: the row type and the projection;
//! - `scenarios`: test scenarios run natively and against the `.wasm`.

use projector_sdk::{Error, Event, Projection, Update, log};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
}

/// The view row of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// The customer id: the event subject.
    pub customer_id: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Postal address, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

#[derive(Deserialize)]
struct Created {
    email: String,
    name: String,
    #[serde(default)]
    address: Option<Address>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameChanged {
    new_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddressChanged {
    new_address: Address,
}

/// The customer-view projection.
#[derive(Debug)]
pub struct CustomerView;

impl Projection for CustomerView {
    type Row = Customer;

    fn apply(state: Option<Customer>, event: &Event) -> Result<Update<Customer>, Error> {
        let ty = event.ty.rsplit('.').next().unwrap_or_default();
        match (ty, state) {
            ("CustomerCreated", _) => {
                let created: Created = event.data_json()?;
                Ok(Update::Set(Customer {
                    customer_id: event.require_subject()?.to_owned(),
                    email: created.email,
                    name: created.name,
                    address: created.address,
                }))
            }
            ("CustomerNameChanged", Some(mut customer)) => {
                customer.name = event.data_json::<NameChanged>()?.new_name;
                Ok(Update::Set(customer))
            }
            ("CustomerAddressChanged", Some(mut customer)) => {
                customer.address = Some(event.data_json::<AddressChanged>()?.new_address);
                Ok(Update::Set(customer))
            }
            ("CustomerDeleted", Some(_)) => Ok(Update::Delete),
            ("CustomerNameChanged" | "CustomerAddressChanged" | "CustomerDeleted", None) => {
                log::warn(&format!(
                    "{} for unknown customer {:?} ignored (event {})",
                    event.ty, event.subject, event.id
                ));
                Ok(Update::Ignore)
            }
            _ => Ok(Update::Ignore),
        }
    }
}

projector_sdk::export_projection!(CustomerView);

#[cfg(test)]
mod tests {
    use projector_sdk::testing;

    use super::*;

    #[test]
    fn lifecycle() {
        scenarios::lifecycle(&mut testing::native::<CustomerView>());
    }

    #[test]
    fn redelivery_is_not_applied_twice() {
        scenarios::redelivery_is_not_applied_twice(&mut testing::native::<CustomerView>());
    }

    #[test]
    fn subjects_from_several_partitions() {
        scenarios::subjects_from_several_partitions(&mut testing::native::<CustomerView>());
    }

    #[test]
    fn bad_data_is_an_invalid_data_error() {
        scenarios::bad_data_is_rejected(&mut testing::native::<CustomerView>());
    }
}
