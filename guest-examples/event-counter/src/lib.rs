//! Event counter: counts the events applied per subject and keeps, per
//! source partition, a tally of the offsets seen. It is the oracle of the
//! reliability tests: any event applied twice, skipped or applied out of
//! order shows in its row.
//!
//! Every event with a subject is counted, whatever its type. Per partition
//! (`"topic/partition"`) the row keeps the number of events, the first and
//! last offset, the sum of the offsets, an order-sensitive digest of them,
//! and how many arrived at or below the last offset seen (`outOfOrder`), which
//! is zero when every event was applied once and in partition order.
//! [`Counter::expected`] recomputes the row from the offsets a subject was
//! published at, to compare with what a runtime built.
//!
//! # Layout
//! - this file: the row type, the projection and the oracle fold;
//! - `scenarios`: test scenarios run natively and against the `.wasm`.

use std::collections::BTreeMap;

use projector_sdk::{Error, Event, Projection, Update};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;

/// The offsets of one partition seen for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionTally {
    /// Events counted from this partition.
    pub count: u64,
    /// The first offset counted.
    pub first: i64,
    /// The last offset counted.
    pub last: i64,
    /// The sum of the offsets counted.
    pub offset_sum: i64,
    /// FNV-1a (64-bit, hex) over the offsets in the order they were counted.
    pub digest: String,
    /// Events whose offset was at or below the last one counted.
    pub out_of_order: u64,
}

/// The view row of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    /// Events counted for this subject.
    pub count: u64,
    /// Per `"topic/partition"`, the offsets counted.
    pub partitions: BTreeMap<String, PartitionTally>,
    /// The id of the last event counted.
    pub last_event_id: String,
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(seed: u64, offset: i64) -> u64 {
    offset.to_le_bytes().iter().fold(seed, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

impl Counter {
    /// Count one event at `offset` of `topic/partition`.
    pub fn count(&mut self, topic: &str, partition: i32, offset: i64, event_id: &str) {
        self.count += 1;
        self.last_event_id = event_id.to_owned();
        let tally = self
            .partitions
            .entry(format!("{topic}/{partition}"))
            .or_insert_with(|| PartitionTally {
                count: 0,
                first: offset,
                last: offset,
                offset_sum: 0,
                digest: format!("{FNV_OFFSET_BASIS:016x}"),
                out_of_order: 0,
            });
        if tally.count > 0 && offset <= tally.last {
            tally.out_of_order += 1;
        }
        let seed = u64::from_str_radix(&tally.digest, 16).unwrap_or(FNV_OFFSET_BASIS);
        tally.digest = format!("{:016x}", fnv1a(seed, offset));
        tally.count += 1;
        tally.last = tally.last.max(offset);
        tally.offset_sum = tally.offset_sum.wrapping_add(offset);
    }

    /// The row a subject must have once every one of `events` was applied
    /// exactly once, in partition order: `(topic, partition, offset,
    /// event id)` in publication order.
    pub fn expected<'a>(events: impl IntoIterator<Item = (&'a str, i32, i64, &'a str)>) -> Self {
        let mut counter = Counter::default();
        for (topic, partition, offset, id) in events {
            counter.count(topic, partition, offset, id);
        }
        counter
    }
}

/// The event-counter projection.
#[derive(Debug)]
pub struct EventCounter;

impl Projection for EventCounter {
    type Row = Counter;

    fn apply(state: Option<Counter>, event: &Event) -> Result<Update<Counter>, Error> {
        let mut counter = state.unwrap_or_default();
        let origin = &event.origin;
        counter.count(&origin.topic, origin.partition, origin.offset, &event.id);
        Ok(Update::Set(counter))
    }
}

#[cfg(feature = "component")]
projector_sdk::export_projection!(EventCounter);

#[cfg(test)]
mod tests {
    use projector_sdk::testing;

    use super::*;

    #[test]
    fn counts_match_the_oracle() {
        scenarios::counts_match_the_oracle(&mut testing::native::<EventCounter>());
    }

    proptest::proptest! {
        /// Any mix of first deliveries and redeliveries, over several
        /// subjects and partitions, leaves rows equal to the oracle fold.
        #[test]
        fn deliveries_match_the_oracle(deliveries in scenarios::deliveries(120)) {
            scenarios::deliveries_match_the_oracle(&mut testing::native::<EventCounter>(), &deliveries);
        }
    }

    #[test]
    fn double_application_shows_in_the_row() {
        let mut once = Counter::default();
        once.count("t", 0, 5, "a");
        let mut twice = once.clone();
        twice.count("t", 0, 5, "a");
        assert_ne!(once, twice);
        assert_eq!(twice.partitions["t/0"].out_of_order, 1);
    }

    #[test]
    fn digest_depends_on_order() {
        let ab = Counter::expected([("t", 0, 1, "a"), ("t", 0, 2, "b")]);
        let ba = Counter::expected([("t", 0, 2, "b"), ("t", 0, 1, "a")]);
        assert_ne!(ab.partitions["t/0"].digest, ba.partitions["t/0"].digest);
    }
}
