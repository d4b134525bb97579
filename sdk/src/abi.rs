//! The component ABI: bindings for the `projection` world and the glue that
//! [`export_projection!`](crate::export_projection) expands to.
//!
//! Compiled only for WebAssembly. The glue converts the WIT records into the
//! SDK's types, installs a panic hook that reports the panic message to the
//! host before the guest aborts, and calls the projection through
//! [`RawProjection`].

use std::sync::Once;

use crate::{Event, KafkaOrigin, RawProjection, Update};

/// Generated bindings for `projector:projection@0.1.0`.
#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "projection",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_projection_world",
        default_bindings_module: "projector_sdk::abi::bindings",
        runtime_path: "projector_sdk::abi::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen;

use bindings::projector::projection::{log as host_log, types as wit};

static PANIC_HOOK: Once = Once::new();

fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            host_log::report_panic(&info.to_string());
        }));
    });
}

/// Apply one event through `P`, converting to and from the WIT types.
pub fn apply<P: RawProjection>(
    state: Option<String>,
    event: wit::Event,
) -> Result<wit::Update, wit::Error> {
    install_panic_hook();
    let event = from_wit(event);
    match P::apply(state.as_deref(), &event) {
        Ok(Update::Set(row)) => Ok(wit::Update::Set(row)),
        Ok(Update::Delete) => Ok(wit::Update::Delete),
        Ok(Update::Ignore) => Ok(wit::Update::Ignore),
        Err(err) => Err(wit::Error {
            code: err.code,
            message: err.message,
        }),
    }
}

fn from_wit(event: wit::Event) -> Event {
    Event {
        id: event.id,
        source: event.source,
        specversion: event.specversion,
        ty: event.type_,
        subject: event.subject,
        time: event.time,
        datacontenttype: event.datacontenttype,
        dataschema: event.dataschema,
        extensions: event.extensions,
        data: event.data,
        origin: KafkaOrigin {
            topic: event.origin.topic,
            partition: event.origin.partition,
            offset: event.origin.offset,
            key: event.origin.key,
            timestamp_ms: event.origin.timestamp_ms,
        },
    }
}
