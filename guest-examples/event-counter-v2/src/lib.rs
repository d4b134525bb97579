//! Event counter, version 2: the same counts as `event-counter`, and the
//! row names its subject. It is the change a redeploy carries in the
//! live-redeploy tests: a field added, so a reader tells a row of one
//! version from the other's, and the counts still follow the oracle.

use event_counter::Counter;
use projector_sdk::{Error, Event, Projection, Update};
use serde::{Deserialize, Serialize};

/// The view row of one subject: event-counter's, and the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CounterV2 {
    /// The counts, as event-counter keeps them.
    #[serde(flatten)]
    pub counter: Counter,
    /// The subject counted: the field version 2 adds.
    pub subject: String,
}

/// The event-counter-v2 projection.
#[derive(Debug)]
pub struct EventCounterV2;

impl Projection for EventCounterV2 {
    type Row = CounterV2;

    fn apply(state: Option<CounterV2>, event: &Event) -> Result<Update<CounterV2>, Error> {
        let mut row = state.unwrap_or_default();
        let origin = &event.origin;
        row.counter
            .count(&origin.topic, origin.partition, origin.offset, &event.id);
        row.subject = event.require_subject()?.to_owned();
        Ok(Update::Set(row))
    }
}

projector_sdk::export_projection!(EventCounterV2);

#[cfg(test)]
mod tests {
    use projector_sdk::testing::{self, EventBuilder};

    use super::*;

    #[test]
    fn counts_as_version_one_does_and_names_the_subject() {
        let mut host = testing::native::<EventCounterV2>();
        for _ in 0..3 {
            host.publish(EventBuilder::new("Tick").subject("s-1").partition(0))
                .expect_applied();
        }
        let row: CounterV2 = host.expect_row("s-1");
        assert_eq!(row.subject, "s-1");
        assert_eq!(row.counter.count, 3);
        let json = host.row_json("s-1").unwrap();
        assert!(
            json.contains("\"partitions\""),
            "version 1's fields stay: {json}"
        );
    }
}
