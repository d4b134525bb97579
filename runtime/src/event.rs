//! The runtime's event: a CloudEvent decoded from one Kafka record, with the
//! record's origin. The decoder makes it, the pipeline routes and applies
//! it, the engine hands it to a projection.
//!
//! It holds the WIT record of the `projector:projection@0.1.0` world, which
//! the engine passes to a component as it is, so the hand-over costs
//! nothing. Only the decoder and the engine see that record
//! ([`Event::wit`]); everything else reads the event through the accessors
//! here, so a new version of the world changes those two modules and this
//! one, not the pipeline.

use crate::engine::WitEvent;

/// A decoded CloudEvent and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    wit: WitEvent,
}

impl Event {
    /// The event as the world's record.
    pub(crate) fn from_wit(wit: WitEvent) -> Self {
        Self { wit }
    }

    /// The world's record, for the engine to hand over.
    pub(crate) fn wit(&self) -> &WitEvent {
        &self.wit
    }

    /// The world's record, taken out.
    #[cfg(test)]
    pub(crate) fn into_wit(self) -> WitEvent {
        self.wit
    }

    /// The CloudEvents `id`.
    pub fn id(&self) -> &str {
        &self.wit.id
    }

    /// The CloudEvents `source`.
    pub fn source(&self) -> &str {
        &self.wit.source
    }

    /// The CloudEvents `type`.
    pub fn ty(&self) -> &str {
        &self.wit.type_
    }

    /// The CloudEvents `subject`, if it has one.
    pub fn subject(&self) -> Option<&str> {
        self.wit.subject.as_deref()
    }

    /// The CloudEvents `time`, as received, if it has one.
    pub fn time(&self) -> Option<&str> {
        self.wit.time.as_deref()
    }

    /// The Kafka record's timestamp (milliseconds since the epoch), if the
    /// broker supplied one.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.wit.origin.timestamp_ms
    }

    /// The Kafka record's key, if it had one.
    pub fn key(&self) -> Option<&[u8]> {
        self.wit.origin.key.as_deref()
    }

    /// The topic of the record it came in.
    pub fn topic(&self) -> &str {
        &self.wit.origin.topic
    }

    /// The partition of the record it came in.
    pub fn partition(&self) -> i32 {
        self.wit.origin.partition
    }

    /// The offset of the record it came in.
    pub fn offset(&self) -> i64 {
        self.wit.origin.offset
    }
}

impl From<&projector_sdk::Event> for Event {
    fn from(event: &projector_sdk::Event) -> Self {
        Self::from_wit(WitEvent::from(event))
    }
}

impl From<&Event> for projector_sdk::Event {
    fn from(event: &Event) -> Self {
        Self::from(&event.wit)
    }
}
