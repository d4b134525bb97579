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

/// One step of a delivery sequence.
#[derive(Debug, Clone, Copy)]
pub enum Delivery {
    /// Publish a new event for subject `s-{subject}` on `partition`.
    Publish {
        /// Which subject.
        subject: u8,
        /// Which partition.
        partition: u8,
    },
    /// Deliver again the `nth` event published so far (modulo their number).
    Redeliver {
        /// Which one.
        nth: usize,
    },
}

/// Whatever mix of new events and redeliveries arrives, every row equals the
/// oracle fold of the events published: each applied once, in partition
/// order, and every redelivery reported as a duplicate.
pub fn deliveries_match_the_oracle<A: Applier>(host: &mut MockHost<A>, deliveries: &[Delivery]) {
    let mut published: Vec<(i32, i64, String, String)> = Vec::new();
    for delivery in deliveries {
        match *delivery {
            Delivery::Publish { subject, partition } => {
                let subject = format!("s-{subject}");
                let outcome = host.publish(
                    EventBuilder::new("Tick")
                        .subject(&subject)
                        .partition(i32::from(partition)),
                );
                let Outcome::Applied { origin, .. } = outcome else {
                    panic!("a first delivery must be applied: {outcome:?}");
                };
                let id = host
                    .row::<Counter>(&subject)
                    .map(|row| row.last_event_id)
                    .unwrap_or_default();
                published.push((origin.partition, origin.offset, id, subject));
            }
            Delivery::Redeliver { nth } if !published.is_empty() => {
                let (partition, offset, ..) = &published[nth % published.len()];
                let outcome = host.redeliver("events", *partition, *offset);
                assert!(
                    outcome.is_duplicate(),
                    "a redelivery must not be applied: {outcome:?}"
                );
            }
            Delivery::Redeliver { .. } => {}
        }
    }
    let subjects: std::collections::BTreeSet<&String> = published.iter().map(|(.., s)| s).collect();
    for subject in &subjects {
        let expected = Counter::expected(
            published
                .iter()
                .filter(|(.., s)| s == *subject)
                .map(|(p, o, id, _)| ("events", *p, *o, id.as_str())),
        );
        assert_eq!(
            host.expect_row::<Counter>(subject),
            expected,
            "subject {subject}"
        );
    }
    assert_eq!(host.rows().count(), subjects.len());
}

/// Random delivery sequences of up to `max` steps over six subjects and
/// four partitions, for property tests; three publications to each
/// redelivery.
pub fn deliveries(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<Delivery>> {
    use proptest::prelude::*;
    let delivery = prop_oneof![
        3 => (0_u8..6, 0_u8..4).prop_map(|(subject, partition)| Delivery::Publish { subject, partition }),
        1 => any::<usize>().prop_map(|nth| Delivery::Redeliver { nth }),
    ];
    proptest::collection::vec(delivery, 0..max)
}
