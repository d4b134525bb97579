//! Scenarios for the event counter, generic over the [`Applier`], so they
//! run natively and against the compiled `.wasm`.

// Test scenarios: failing an assertion by panicking is their job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use projector_sdk::testing::{Applier, EventBuilder, MockHost, Outcome};

use crate::Counter;

/// Events over several subjects and partitions, with redeliveries mixed in,
/// leave every row equal to the oracle fold of what was published.
pub fn counts_match_the_oracle<A: Applier>(host: &mut MockHost<A>) {
    let mut published: Vec<(String, i32, i64, String, String)> = Vec::new();
    for i in 0..60_i64 {
        let subject = format!("s-{}", i % 7);
        let partition = i32::try_from(i % 3).unwrap_or_default();
        let outcome = host.publish(
            EventBuilder::new("Tick")
                .subject(&subject)
                .partition(partition),
        );
        let Outcome::Applied { origin, .. } = outcome else {
            panic!("event {i} was not applied: {outcome:?}");
        };
        published.push((
            origin.topic,
            origin.partition,
            origin.offset,
            format!("evt-{}", i + 1),
            subject,
        ));
        if i % 10 == 9 {
            // Redeliver something already applied, as after a rebalance.
            let (topic, p, offset, _, _) = &published[usize::try_from(i / 2).unwrap_or_default()];
            assert!(host.redeliver(topic, *p, *offset).is_duplicate());
        }
    }
    for s in 0..7 {
        let subject = format!("s-{s}");
        let expected = Counter::expected(
            published
                .iter()
                .filter(|(.., sub)| *sub == subject)
                .map(|(t, p, o, id, _)| (t.as_str(), *p, *o, id.as_str())),
        );
        assert_eq!(
            host.expect_row::<Counter>(&subject),
            expected,
            "subject {subject}"
        );
    }
    assert_eq!(host.rows().count(), 7);
}
