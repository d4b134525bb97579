//! Host bindings for the `projector:projection@0.1.0` world, generated in
//! this one place, and the conversions between the SDK's event model and the
//! generated WIT records.

wasmtime::component::bindgen!({
    world: "projection",
    path: "../sdk/wit",
    additional_derives: [PartialEq, Eq],
});

pub use self::projector::projection::log::Level as WitLevel;
pub use self::projector::projection::types::{
    Error as WitError, Event as WitEvent, KafkaOrigin as WitKafkaOrigin, Update as WitUpdate,
};

impl From<&projector_sdk::Event> for WitEvent {
    fn from(event: &projector_sdk::Event) -> Self {
        WitEvent {
            id: event.id.clone(),
            source: event.source.clone(),
            specversion: event.specversion.clone(),
            type_: event.ty.clone(),
            subject: event.subject.clone(),
            time: event.time.clone(),
            datacontenttype: event.datacontenttype.clone(),
            dataschema: event.dataschema.clone(),
            extensions: event.extensions.clone(),
            data: event.data.clone(),
            origin: WitKafkaOrigin {
                topic: event.origin.topic.clone(),
                partition: event.origin.partition,
                offset: event.origin.offset,
                key: event.origin.key.clone(),
                timestamp_ms: event.origin.timestamp_ms,
            },
        }
    }
}

impl From<&WitEvent> for projector_sdk::Event {
    fn from(event: &WitEvent) -> Self {
        projector_sdk::Event {
            id: event.id.clone(),
            source: event.source.clone(),
            specversion: event.specversion.clone(),
            ty: event.type_.clone(),
            subject: event.subject.clone(),
            time: event.time.clone(),
            datacontenttype: event.datacontenttype.clone(),
            dataschema: event.dataschema.clone(),
            extensions: event.extensions.clone(),
            data: event.data.clone(),
            origin: projector_sdk::KafkaOrigin {
                topic: event.origin.topic.clone(),
                partition: event.origin.partition,
                offset: event.origin.offset,
                key: event.origin.key.clone(),
                timestamp_ms: event.origin.timestamp_ms,
            },
        }
    }
}

impl From<WitLevel> for projector_sdk::Level {
    fn from(level: WitLevel) -> Self {
        match level {
            WitLevel::Trace => projector_sdk::Level::Trace,
            WitLevel::Debug => projector_sdk::Level::Debug,
            WitLevel::Info => projector_sdk::Level::Info,
            WitLevel::Warn => projector_sdk::Level::Warn,
            WitLevel::Error => projector_sdk::Level::Error,
        }
    }
}
