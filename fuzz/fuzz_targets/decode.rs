//! Decoding a CloudEvent from arbitrary Kafka record parts: never panics,
//! and whatever decodes is a valid CloudEvents 1.0 event.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use projector::decode::{Record, decode};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
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
    match decode(
        &record,
        input.headers.iter().map(|(name, value)| (*name, *value)),
    ) {
        Ok(event) => {
            assert_eq!(event.specversion, "1.0");
            assert!(!event.id.is_empty() && !event.source.is_empty() && !event.ty.is_empty());
            assert_eq!((event.origin.partition, event.origin.offset), (3, 42));
        }
        Err(err) => {
            // Every reason renders.
            let _ = err.to_string();
        }
    }
});
