//! Write a projector projection in Rust.
//!
//! A projection maintains one view: a table of JSON rows, one per CloudEvents
//! `subject`. It is a pure function from the subject's current row and one
//! event to an [`Update`]: set the row, delete it, or leave it alone.
//!
//! ```
//! use projector_sdk::{Error, Event, Projection, Update};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greeting { name: String, greeted: u32 }
//!
//! struct Greeter;
//!
//! impl Projection for Greeter {
//!     type Row = Greeting;
//!
//!     fn apply(state: Option<Greeting>, event: &Event) -> Result<Update<Greeting>, Error> {
//!         match event.ty.as_str() {
//!             "Greeted" => {
//!                 let name: String = event.data_json()?;
//!                 let greeted = state.map_or(0, |row| row.greeted) + 1;
//!                 Ok(Update::Set(Greeting { name, greeted }))
//!             }
//!             _ => Ok(Update::Ignore),
//!         }
//!     }
//! }
//!
//! // Exports `Greeter` as the component's `apply` when compiled to wasm;
//! // natively it only checks that `Greeter` is a projection.
//! projector_sdk::export_projection!(Greeter);
//!
//! // Test it natively with the mock host: no Kafka, no wasm.
//! let mut host = projector_sdk::testing::native::<Greeter>();
//! host.publish(projector_sdk::testing::EventBuilder::new("Greeted").subject("g-1").data_json(&"Ada"));
//! host.publish(projector_sdk::testing::EventBuilder::new("Greeted").subject("g-1").data_json(&"Ada"));
//! let row: Greeting = host.expect_row("g-1");
//! assert_eq!(row.greeted, 2);
//! ```
//!
//! Build the component with `cargo build --release --target wasm32-wasip2`
//! on a crate with `crate-type = ["cdylib", "rlib"]`.
//!
//! # Layout
//!
//! - [`event`]: the CloudEvent a projection receives, with its Kafka origin.
//! - [`update`]: what a projection returns ([`Update`]) and its JSON form
//!   ([`RawUpdate`]).
//! - [`error`]: the error a projection returns ([`Error`]).
//! - [`projection`]: the [`Projection`] trait (typed rows) and
//!   [`RawProjection`] (JSON text rows), and the one function that turns a
//!   typed projection into a raw one, used by both the component and the
//!   mock host.
//! - [`log`]: logging, the only host service.
//! - [`testing`]: the mock host, an event builder and assertions.
//! - `abi` (wasm only): the component bindings and [`export_projection!`].
#![deny(missing_docs)]

// Lets the generated bindings name this crate the same way from inside it and
// from the component crates that expand `export_projection!`.
#[cfg(target_family = "wasm")]
extern crate self as projector_sdk;

pub mod dedup;
pub mod error;
pub mod event;
pub mod log;
#[cfg(not(target_family = "wasm"))]
pub mod native;
pub mod projection;
#[cfg(not(target_family = "wasm"))]
pub mod testing;
pub mod update;

#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub mod abi;

pub use error::Error;
pub use event::{Event, KafkaOrigin};
pub use log::{Level, LogRecord};
pub use projection::{Projection, RawProjection};
pub use update::{RawUpdate, Update};

/// The version of the WIT package this SDK implements.
pub const WIT_PACKAGE: &str = "projector:projection@0.1.0";

/// Export a projection as the component's `apply` function.
///
/// `export_projection!(MyProjection)` exports a [`Projection`] (typed rows);
/// `export_projection!(raw MyProjection)` exports a [`RawProjection`] (rows as
/// JSON text). Use it once per component crate, at the crate root.
///
/// When compiling to WebAssembly this expands to the component glue. Natively
/// it only checks that the type implements the trait, so the crate still
/// builds, documents and tests as ordinary Rust.
#[macro_export]
macro_rules! export_projection {
    (raw $ty:ty) => {
        const _: fn() = || {
            fn assert_raw<P: $crate::RawProjection>() {}
            assert_raw::<$ty>();
        };
        $crate::__export_component!($ty);
    };
    ($ty:ty) => {
        $crate::export_projection!(raw $crate::projection::Typed<$ty>);
    };
}

/// Component glue behind [`export_projection!`]; wasm only.
#[cfg(target_family = "wasm")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($ty:ty) => {
        const _: () = {
            struct __ProjectorComponent;
            impl $crate::abi::bindings::Guest for __ProjectorComponent {
                fn apply(
                    state: ::core::option::Option<$crate::abi::bindings::Row>,
                    event: $crate::abi::bindings::projector::projection::types::Event,
                ) -> ::core::result::Result<
                    $crate::abi::bindings::projector::projection::types::Update,
                    $crate::abi::bindings::projector::projection::types::Error,
                > {
                    $crate::abi::apply::<$ty>(state, event)
                }
            }
            $crate::abi::bindings::__export_projection_world!(__ProjectorComponent with_types_in $crate::abi::bindings);
        };
    };
}

/// Natively there is no component to export.
#[cfg(not(target_family = "wasm"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($ty:ty) => {};
}
