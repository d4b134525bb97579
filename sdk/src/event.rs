//! The CloudEvent a projection receives.
//!
//! [`Event`] mirrors the WIT `event` record one to one: every CloudEvents 1.0
//! context attribute, the extensions, the payload and the [`KafkaOrigin`] of
//! the record it was decoded from. Helpers read the payload as JSON or text
//! and return an [`Error`] with code `invalid-data` when it does not fit.

use serde::de::DeserializeOwned;

use crate::Error;

/// Where in Kafka an event was read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaOrigin {
    /// The topic the record was consumed from.
    pub topic: String,
    /// The partition within `topic`.
    pub partition: i32,
    /// The record's offset within the partition.
    pub offset: i64,
    /// The record's key, if it had one.
    pub key: Option<Vec<u8>>,
    /// The record's timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// A CloudEvents 1.0 event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `id`: unique within the scope of `source`.
    pub id: String,
    /// `source`: the context the event came from.
    pub source: String,
    /// `specversion`: always `1.0`.
    pub specversion: String,
    /// `type`: the kind of event.
    pub ty: String,
    /// `subject`: names the view row this event updates.
    pub subject: Option<String>,
    /// `time`: when the occurrence happened, RFC 3339 text as received.
    pub time: Option<String>,
    /// `datacontenttype`: the media type of `data`.
    pub datacontenttype: Option<String>,
    /// `dataschema`: a URI naming the schema `data` adheres to.
    pub dataschema: Option<String>,
    /// Extension attributes as name/value pairs, in the order received.
    pub extensions: Vec<(String, String)>,
    /// The payload, as bytes. For a structured-mode record (the whole event
    /// as one JSON document) it is the JSON text of the document's `data`
    /// member, or the decoded bytes of its `data_base64`; for a binary-mode
    /// record (attributes in `ce_` headers) it is the record's value.
    /// [`Event::data_json`] parses it.
    pub data: Option<Vec<u8>>,
    /// The Kafka record the event was decoded from.
    pub origin: KafkaOrigin,
}

impl Event {
    /// The payload parsed as JSON into `T`.
    ///
    /// Fails with code `invalid-data` when there is no payload or it does not
    /// parse as `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let data = self.data.as_deref().ok_or_else(|| {
            Error::invalid_data(format!("event {} of type {} has no data", self.id, self.ty))
        })?;
        serde_json::from_slice(data).map_err(|err| {
            Error::invalid_data(format!(
                "data of event {} (type {}) does not fit the expected shape: {err}",
                self.id, self.ty
            ))
        })
    }

    /// The payload as UTF-8 text, if there is one.
    ///
    /// Fails with code `invalid-data` when the payload is not UTF-8.
    pub fn data_str(&self) -> Result<Option<&str>, Error> {
        self.data
            .as_deref()
            .map(|data| {
                std::str::from_utf8(data).map_err(|err| {
                    Error::invalid_data(format!("data of event {} is not UTF-8: {err}", self.id))
                })
            })
            .transpose()
    }

    /// The value of the extension attribute `name`, if present.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The subject, or an `invalid-data` error when the event has none.
    pub fn require_subject(&self) -> Result<&str, Error> {
        self.subject
            .as_deref()
            .ok_or_else(|| Error::invalid_data(format!("event {} has no subject", self.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Option<&[u8]>) -> Event {
        Event {
            id: "e-1".into(),
            ty: "T".into(),
            data: data.map(<[u8]>::to_vec),
            ..Event::default()
        }
    }

    #[test]
    fn data_json_parses_payload() {
        let value: serde_json::Value = event(Some(br#"{"a":1}"#)).data_json().unwrap();
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn data_json_without_data_is_invalid_data() {
        let err = event(None).data_json::<u32>().unwrap_err();
        assert_eq!(err.code, "invalid-data");
        assert!(err.message.contains("has no data"), "{}", err.message);
    }

    #[test]
    fn data_json_of_wrong_shape_names_the_event() {
        let err = event(Some(b"\"text\"")).data_json::<u32>().unwrap_err();
        assert_eq!(err.code, "invalid-data");
        assert!(err.message.contains("e-1"), "{}", err.message);
    }

    #[test]
    fn data_str_rejects_non_utf8() {
        assert!(event(Some(&[0xff, 0xfe])).data_str().is_err());
        assert_eq!(event(Some(b"hi")).data_str().unwrap(), Some("hi"));
        assert_eq!(event(None).data_str().unwrap(), None);
    }

    #[test]
    fn extension_finds_by_name() {
        let mut e = event(None);
        e.extensions.push(("traceparent".into(), "00-abc".into()));
        assert_eq!(e.extension("traceparent"), Some("00-abc"));
        assert_eq!(e.extension("missing"), None);
    }
}
