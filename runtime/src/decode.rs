//! Decoding CloudEvents from Kafka records, per the CloudEvents Kafka
//! protocol binding, in both modes:
//!
//! - **binary**: `ce_*` headers hold the attributes, the `content-type`
//!   header holds `datacontenttype`, and the record value is `data`;
//! - **structured**: the `content-type` header is
//!   `application/cloudevents+json` (parameters allowed), and the value is the
//!   whole event as JSON, with `data` or `data_base64`.
//!
//! # What it promises
//!
//! A record decodes into the engine's event record, with attribute text kept
//! exactly as received (`time` is not re-formatted), or into a
//! [`DecodeError`] that says why: a missing or empty required attribute
//! (`id`, `source`, `specversion`, `type`), a specversion other than `1.0`, a
//! header that is not UTF-8, a duplicated attribute, a bad extension name, or
//! a structured body that is not a valid event. It never panics on input.
//!
//! Decoding is by hand rather than through cloudevents-sdk, because the SDK
//! parses `time` into a timestamp (losing the text as sent), builds an owned
//! `Event` of its own that would be converted again, and ties us to its
//! rdkafka version; see `docs/architecture.md`.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::engine::{WitEvent, WitKafkaOrigin};
use crate::event::Event;

/// The only CloudEvents version accepted.
pub const SPEC_VERSION: &str = "1.0";

/// The `content-type` of a structured-mode record, before any parameters.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// Prefix of attribute headers in binary mode.
const HEADER_PREFIX: &str = "ce_";

/// Why a record is not a valid CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither a `ce_specversion` header nor a structured content type.
    #[error(
        "not a CloudEvent: no `ce_specversion` header (binary mode) and no \
         `content-type: {STRUCTURED_CONTENT_TYPE}` (structured mode)"
    )]
    NotACloudEvent,
    /// A required attribute is absent.
    #[error("the required attribute `{0}` is missing")]
    MissingAttribute(&'static str),
    /// A required attribute is empty.
    #[error("the required attribute `{0}` is empty")]
    EmptyAttribute(&'static str),
    /// The specversion is not `1.0`.
    #[error("unsupported specversion {0:?}; only \"1.0\" is accepted")]
    UnsupportedSpecVersion(String),
    /// A header value is not UTF-8.
    #[error("the header `{0}` is not UTF-8")]
    NotUtf8(String),
    /// An attribute appears twice.
    #[error("the attribute `{0}` appears more than once")]
    DuplicateAttribute(String),
    /// An extension name is not lower-case ASCII letters and digits.
    #[error(
        "the extension name {0:?} is invalid: CloudEvents names are lower-case letters and digits"
    )]
    InvalidExtensionName(String),
    /// The structured body is not a JSON object, or an attribute has the
    /// wrong JSON type.
    #[error("invalid structured event: {0}")]
    InvalidStructured(String),
}

/// The parts of a Kafka record the decoder reads, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value, if any (a tombstone has none).
    pub value: Option<&'a [u8]>,
    /// The timestamp in milliseconds since the Unix epoch, if any.
    pub timestamp_ms: Option<i64>,
}

impl Record<'_> {
    fn origin(&self) -> WitKafkaOrigin {
        WitKafkaOrigin {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            key: self.key.map(<[u8]>::to_vec),
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// Decode `record`, whose headers are `headers` (name, value) in order.
pub fn decode<'h>(
    record: &Record<'_>,
    headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> Result<Event, DecodeError> {
    decode_wit(record, headers).map(Event::from_wit)
}

fn decode_wit<'h>(
    record: &Record<'_>,
    headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> Result<WitEvent, DecodeError> {
    let mut content_type: Option<&'h [u8]> = None;
    let mut attributes = Attributes::default();
    let mut saw_specversion_header = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-type") {
            if content_type.is_some() {
                return Err(DecodeError::DuplicateAttribute("content-type".to_owned()));
            }
            content_type = value;
        } else if let Some(attribute) = strip_prefix_ignore_case(name, HEADER_PREFIX) {
            let text = match value {
                Some(bytes) => {
                    std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8(name.to_owned()))?
                }
                None => continue,
            };
            // Header names are lowercase in practice: no copy then.
            let attribute = if attribute.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(attribute.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(attribute)
            };
            saw_specversion_header |= attribute == "specversion";
            attributes.set(&attribute, text.to_owned())?;
        }
    }
    let content_type = content_type
        .map(|bytes| {
            std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8("content-type".to_owned()))
        })
        .transpose()?;

    if let Some(content_type) = content_type
        && is_structured(content_type)
    {
        return decode_structured(record);
    }
    if !saw_specversion_header {
        return Err(DecodeError::NotACloudEvent);
    }
    if content_type.is_some() && attributes.datacontenttype.is_some() {
        return Err(DecodeError::DuplicateAttribute(
            "datacontenttype".to_owned(),
        ));
    }
    attributes.datacontenttype = attributes
        .datacontenttype
        .or(content_type.map(str::to_owned));
    attributes.into_event(record.value.map(<[u8]>::to_vec), record)
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

fn is_structured(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case(STRUCTURED_CONTENT_TYPE)
}

/// Attributes gathered from headers or a structured body.
#[derive(Default)]
struct Attributes {
    id: Option<String>,
    source: Option<String>,
    specversion: Option<String>,
    ty: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    extensions: Vec<(String, String)>,
}

impl Attributes {
    fn set(&mut self, name: &str, value: String) -> Result<(), DecodeError> {
        let slot = match name {
            "id" => &mut self.id,
            "source" => &mut self.source,
            "specversion" => &mut self.specversion,
            "type" => &mut self.ty,
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "datacontenttype" => &mut self.datacontenttype,
            "dataschema" => &mut self.dataschema,
            _ => {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(DecodeError::InvalidExtensionName(name.to_owned()));
                }
                if self.extensions.iter().any(|(existing, _)| existing == name) {
                    return Err(DecodeError::DuplicateAttribute(name.to_owned()));
                }
                self.extensions.push((name.to_owned(), value));
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(DecodeError::DuplicateAttribute(name.to_owned()));
        }
        *slot = Some(value);
        Ok(())
    }

    fn into_event(
        self,
        data: Option<Vec<u8>>,
        record: &Record<'_>,
    ) -> Result<WitEvent, DecodeError> {
        fn required(value: Option<String>, name: &'static str) -> Result<String, DecodeError> {
            match value {
                None => Err(DecodeError::MissingAttribute(name)),
                Some(value) if value.is_empty() => Err(DecodeError::EmptyAttribute(name)),
                Some(value) => Ok(value),
            }
        }
        let specversion = required(self.specversion, "specversion")?;
        if specversion != SPEC_VERSION {
            return Err(DecodeError::UnsupportedSpecVersion(specversion));
        }
        Ok(WitEvent {
            id: required(self.id, "id")?,
            source: required(self.source, "source")?,
            specversion,
            type_: required(self.ty, "type")?,
            subject: self.subject,
            time: self.time,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            extensions: self.extensions,
            data,
            origin: record.origin(),
        })
    }
}

fn decode_structured(record: &Record<'_>) -> Result<WitEvent, DecodeError> {
    let body = record
        .value
        .ok_or_else(|| DecodeError::InvalidStructured("the record has no value".to_owned()))?;
    let object: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(DecodeError::InvalidStructured(
                "the body is not a JSON object".to_owned(),
            ));
        }
        Err(err) => {
            return Err(DecodeError::InvalidStructured(format!(
                "the body is not JSON: {err}"
            )));
        }
    };
    let mut attributes = Attributes::default();
    let mut data = None;
    let mut data_base64 = None;
    for (name, value) in object {
        match name.as_str() {
            "data" => data = Some(value),
            "data_base64" => data_base64 = Some(value),
            _ => {
                let text = match value {
                    Value::Null => continue,
                    Value::String(text) => text,
                    Value::Bool(_) | Value::Number(_) if !is_core_attribute(&name) => {
                        value.to_string()
                    }
                    other => {
                        return Err(DecodeError::InvalidStructured(format!(
                            "attribute `{name}` must be a string, found {other}"
                        )));
                    }
                };
                attributes.set(&name, text)?;
            }
        }
    }
    let data = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(DecodeError::InvalidStructured(
                "both `data` and `data_base64` are present".to_owned(),
            ));
        }
        (None, None) | (Some(Value::Null), None) => None,
        (None, Some(Value::String(encoded))) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|err| {
                    DecodeError::InvalidStructured(format!("`data_base64` is not base64: {err}"))
                })?,
        ),
        (None, Some(_)) => {
            return Err(DecodeError::InvalidStructured(
                "`data_base64` must be a string".to_owned(),
            ));
        }
        (Some(value), None) => Some(structured_data(
            value,
            attributes.datacontenttype.as_deref(),
        )),
    };
    attributes.into_event(data, record)
}

fn is_core_attribute(name: &str) -> bool {
    matches!(
        name,
        "id" | "source"
            | "specversion"
            | "type"
            | "subject"
            | "time"
            | "datacontenttype"
            | "dataschema"
    )
}

/// `data` of a structured event as bytes: JSON text for JSON content (or
/// none given), and a string's own bytes for other content types.
fn structured_data(value: Value, datacontenttype: Option<&str>) -> Vec<u8> {
    let is_json = datacontenttype.is_none_or(|ct| {
        let media_type = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        media_type == "application/json"
            || media_type == "text/json"
            || media_type.ends_with("+json")
    });
    match value {
        Value::String(text) if !is_json => text.into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder's record, to look at every field.
    fn decode<'h>(
        record: &Record<'_>,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    ) -> Result<WitEvent, DecodeError> {
        super::decode(record, headers).map(Event::into_wit)
    }

    fn record(value: Option<&[u8]>) -> Record<'_> {
        Record {
            topic: "customers",
            partition: 2,
            offset: 41,
            key: Some(b"c-1"),
            value,
            timestamp_ms: Some(1_700_000_000_000),
        }
    }

    fn binary_headers() -> Vec<(&'static str, Option<&'static [u8]>)> {
        vec![
            ("ce_specversion", Some(b"1.0")),
            ("ce_id", Some(b"e-1")),
            ("ce_source", Some(b"/crm")),
            ("ce_type", Some(b"CustomerCreated")),
            ("ce_subject", Some(b"c-1")),
            ("ce_time", Some(b"2026-11-23T22:00:00.123+01:00")),
            ("ce_traceparent", Some(b"00-abc-def-01")),
            ("content-type", Some(b"application/json")),
        ]
    }

    #[test]
    fn binary_mode_keeps_every_attribute_as_sent() {
        let event = decode(&record(Some(br#"{"name":"Ada"}"#)), binary_headers()).unwrap();
        assert_eq!(event.id, "e-1");
        assert_eq!(event.source, "/crm");
        assert_eq!(event.type_, "CustomerCreated");
        assert_eq!(event.subject.as_deref(), Some("c-1"));
        assert_eq!(event.time.as_deref(), Some("2026-11-23T22:00:00.123+01:00"));
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(
            event.extensions,
            vec![("traceparent".to_owned(), "00-abc-def-01".to_owned())]
        );
        assert_eq!(event.data.as_deref(), Some(&br#"{"name":"Ada"}"#[..]));
        assert_eq!(event.origin.topic, "customers");
        assert_eq!((event.origin.partition, event.origin.offset), (2, 41));
        assert_eq!(event.origin.key.as_deref(), Some(&b"c-1"[..]));
    }

    #[test]
    fn binary_mode_header_names_are_case_insensitive() {
        let headers = vec![
            ("CE_SpecVersion", Some(&b"1.0"[..])),
            ("ce_ID", Some(b"e-1")),
            ("ce_source", Some(b"/s")),
            ("ce_type", Some(b"T")),
            ("Content-Type", Some(b"text/plain")),
        ];
        let event = decode(&record(Some(b"hi")), headers).unwrap();
        assert_eq!(event.id, "e-1");
        assert_eq!(event.datacontenttype.as_deref(), Some("text/plain"));
    }

    #[test]
    fn a_tombstone_has_no_data() {
        let event = decode(&record(None), binary_headers()).unwrap();
        assert_eq!(event.data, None);
    }

    #[test]
    fn each_missing_required_attribute_is_named() {
        for (missing, header) in [
            ("id", "ce_id"),
            ("source", "ce_source"),
            ("type", "ce_type"),
        ] {
            let headers: Vec<_> = binary_headers()
                .into_iter()
                .filter(|(n, _)| *n != header)
                .collect();
            assert_eq!(
                decode(&record(None), headers),
                Err(DecodeError::MissingAttribute(missing)),
                "{missing}"
            );
        }
    }

    #[test]
    fn empty_required_attribute_is_refused() {
        let mut headers = binary_headers();
        headers[1] = ("ce_id", Some(b""));
        assert_eq!(
            decode(&record(None), headers),
            Err(DecodeError::EmptyAttribute("id"))
        );
    }

    #[test]
    fn wrong_specversion_is_refused() {
        let mut headers = binary_headers();
        headers[0] = ("ce_specversion", Some(b"0.3"));
        assert_eq!(
            decode(&record(None), headers),
            Err(DecodeError::UnsupportedSpecVersion("0.3".to_owned()))
        );
    }

    #[test]
    fn non_utf8_header_is_named() {
        let mut headers = binary_headers();
        headers[4] = ("ce_subject", Some(&[0xff, 0xfe]));
        assert_eq!(
            decode(&record(None), headers),
            Err(DecodeError::NotUtf8("ce_subject".to_owned()))
        );
    }

    #[test]
    fn duplicated_attribute_is_refused() {
        let mut headers = binary_headers();
        headers.push(("ce_id", Some(b"e-2")));
        assert_eq!(
            decode(&record(None), headers),
            Err(DecodeError::DuplicateAttribute("id".to_owned()))
        );
    }

    #[test]
    fn bad_extension_name_is_refused() {
        let mut headers = binary_headers();
        headers.push(("ce_Trace-Id", Some(b"x")));
        assert!(matches!(
            decode(&record(None), headers),
            Err(DecodeError::InvalidExtensionName(_))
        ));
    }

    #[test]
    fn a_plain_record_is_not_a_cloud_event() {
        let headers = vec![("content-type", Some(&b"application/json"[..]))];
        assert_eq!(
            decode(&record(Some(b"{}")), headers),
            Err(DecodeError::NotACloudEvent)
        );
        assert_eq!(
            decode(&record(Some(b"{}")), Vec::new()),
            Err(DecodeError::NotACloudEvent)
        );
    }

    fn structured(body: &str) -> Result<WitEvent, DecodeError> {
        let headers = vec![(
            "content-type",
            Some(&b"application/cloudevents+json; charset=utf-8"[..]),
        )];
        decode(&record(Some(body.as_bytes())), headers)
    }

    #[test]
    fn structured_mode_with_json_data() {
        let event = structured(
            r#"{"specversion":"1.0","id":"e-9","source":"/crm","type":"CustomerCreated",
                "subject":"c-9","datacontenttype":"application/json","comexampleflag":true,
                "data":{"name":"Ada"}}"#,
        )
        .unwrap();
        assert_eq!(event.id, "e-9");
        assert_eq!(event.subject.as_deref(), Some("c-9"));
        assert_eq!(event.data.as_deref(), Some(&br#"{"name":"Ada"}"#[..]));
        assert_eq!(
            event.extensions,
            vec![("comexampleflag".to_owned(), "true".to_owned())]
        );
        assert_eq!(event.origin.offset, 41);
    }

    #[test]
    fn structured_mode_with_base64_and_text_data() {
        let event = structured(
            r#"{"specversion":"1.0","id":"e","source":"/s","type":"T",
                "datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#,
        )
        .unwrap();
        assert_eq!(event.data.as_deref(), Some(&[0, 1, 2, 255][..]));
        let event = structured(
            r#"{"specversion":"1.0","id":"e","source":"/s","type":"T",
                "datacontenttype":"text/plain","data":"hello"}"#,
        )
        .unwrap();
        assert_eq!(event.data.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn structured_mode_errors_say_why() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (
                r#"{"specversion":"1.0","id":7,"source":"/s","type":"T"}"#,
                "`id` must be a string",
            ),
            (
                r#"{"specversion":"1.0","id":"e","source":"/s","type":"T","data":1,"data_base64":"AA=="}"#,
                "both",
            ),
            (
                r#"{"specversion":"1.0","id":"e","source":"/s","type":"T","data_base64":"!!"}"#,
                "base64",
            ),
        ];
        for (body, expected) in cases {
            let err = structured(body).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
        assert_eq!(
            structured(r#"{"specversion":"1.0","id":"e","type":"T"}"#),
            Err(DecodeError::MissingAttribute("source"))
        );
        let headers = vec![("content-type", Some(&b"application/cloudevents+json"[..]))];
        assert!(matches!(
            decode(&record(None), headers),
            Err(DecodeError::InvalidStructured(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the headers and value, decoding returns; it never panics.
        #[test]
        fn arbitrary_records_never_panic(
            headers in proptest::collection::vec(
                ("(ce_[a-z]{0,12}|content-type|[a-z_-]{0,8})", proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..24))),
                0..10,
            ),
            value in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
        ) {
            let headers: Vec<(&str, Option<&[u8]>)> =
                headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())).collect();
            let _ = decode(&record(value.as_deref()), headers);
        }

        /// Any structured body that is a JSON object decodes or fails with a reason.
        #[test]
        fn arbitrary_structured_bodies_never_panic(body in "\\{(\"[a-z_]{1,12}\":(\"[a-z0-9]{0,6}\"|[0-9]{1,3}|true|null|\\{\\}),?){0,8}\\}") {
            let _ = structured(&body);
        }
    }
}
