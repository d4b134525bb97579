//! Decoding a CloudEvent from arbitrary Kafka record parts: never panics,
//! and whatever decodes is a valid CloudEvents 1.0 event.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use projector::decode::{Record, decode};

/// Header names the decoder knows, so that inputs reach past "not a
/// CloudEvent"; any other name is fuzzed too.
const KNOWN: [&str; 11] = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_subject",
    "ce_time",
    "ce_datacontenttype",
    "ce_dataschema",
    "content-type",
    "ce_tenant",
    "ce_Bad-Name",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Value<'a> {
    SpecVersion,
    StructuredContentType,
    Bytes(&'a [u8]),
    Null,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Vec<(Name<'a>, Value<'a>)>,
    timestamp_ms: Option<i64>,
}

fuzz_target!(|input: Input<'_>| {
    let record = Record {
        topic: "events",
        partition: 3,
        offset: 42,
        key: input.key,
        value: input.value,
        timestamp_ms: input.timestamp_ms,
    };
    let headers = input.headers.iter().map(|(name, value)| {
        let name = match name {
            Name::Known(n) => KNOWN[usize::from(*n) % KNOWN.len()],
            Name::Other(other) => other,
        };
        let value: Option<&[u8]> = match value {
            Value::SpecVersion => Some(b"1.0"),
            Value::StructuredContentType => Some(b"application/cloudevents+json; charset=utf-8"),
            Value::Bytes(bytes) => Some(bytes),
            Value::Null => None,
        };
        (name, value)
    });
    match decode(&record, headers) {
        Ok(event) => {
            assert_eq!(event.specversion, "1.0");
            assert!(!event.id.is_empty() && !event.source.is_empty() && !event.type_.is_empty());
            assert_eq!((event.origin.partition, event.origin.offset), (3, 42));
        }
        Err(err) => {
            // Every reason renders.
            let _ = err.to_string();
        }
    }
});
