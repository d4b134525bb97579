//! The benchmark's input: realistic binary-mode CloudEvents (about 200
//! bytes of JSON data), generated deterministically from a seed, for the
//! `customer-view` and `order-totals` projections.
//!
//! The first `subjects` events create each subject once (in a scrambled
//! order); the rest update subjects drawn uniformly. With the clean input a
//! subject always goes to the same partition (an FNV hash of it), as a keyed
//! producer does; with an application's input ([`Input::Application`]) the
//! odd subjects go round robin (mis-partitioned: one subject on every
//! partition), and one record in [`MALFORMED_EVERY`] is malformed.

use projector::kafka::{OutgoingEvent, binary_headers};
use rdkafka::message::{OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::producer::BaseRecord;
use rdkafka::util::IntoOpaque;

/// Which projection the input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `customer-view`: created, then address and name changes.
    Customers,
    /// `order-totals`: orders placed.
    Orders,
}

impl Workload {
    /// The view's name, and the topic the input goes to.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Customers => "customers",
            Workload::Orders => "orders",
        }
    }
}

/// Which producer and records the input topics get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// Every record a valid event, every subject on its own partition, a
    /// producer batching for 20 ms without idempotence.
    Clean,
    /// An application's producer: idempotent, `acks=all`, `linger.ms = 5`;
    /// half the subjects mis-partitioned; one record in
    /// [`MALFORMED_EVERY`] malformed (not a CloudEvent), for the view's
    /// dead-letter policy.
    Application,
}

impl Input {
    /// The topic this input of `workload` goes to.
    pub fn topic(self, workload: Workload) -> String {
        match self {
            Input::Clean => workload.name().to_owned(),
            Input::Application => format!("{}-app", workload.name()),
        }
    }

    /// A short name, for tables.
    pub fn name(self) -> &'static str {
        match self {
            Input::Clean => "clean",
            Input::Application => "application",
        }
    }
}

/// With [`Input::Application`], one record in this many is malformed
/// (0.2%).
pub const MALFORMED_EVERY: u64 = 500;

/// One generated event.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Its partition.
    pub partition: i32,
    /// Its subject (also the record key).
    pub subject: String,
    /// Its id.
    pub id: String,
    /// Its type.
    pub ty: &'static str,
    /// Its JSON data.
    pub data: Vec<u8>,
}

impl Generated {
    /// The binary-mode headers of this event.
    pub fn headers(&self) -> OwnedHeaders {
        binary_headers(&OutgoingEvent {
            id: &self.id,
            source: "/bench/generator",
            ty: self.ty,
            subject: Some(&self.subject),
            datacontenttype: Some("application/json"),
        })
    }

    /// `record` addressed and filled with this event: its partition, key
    /// (the subject), value and headers.
    pub fn fill<'a, D: IntoOpaque>(
        &'a self,
        record: BaseRecord<'a, [u8], [u8], D>,
    ) -> BaseRecord<'a, [u8], [u8], D> {
        record
            .partition(self.partition)
            .key(self.subject.as_bytes())
            .payload(self.data.as_slice())
            .headers(self.headers())
    }

    /// This event as the Kafka record the consumer would hand over, at
    /// `offset` of `topic`.
    pub fn record(&self, topic: &str, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(self.data.clone()),
            Some(self.subject.clone().into_bytes()),
            topic.to_owned(),
            Timestamp::CreateTime(1_764_000_000_000),
            self.partition,
            offset,
            Some(self.headers()),
        )
    }
}

/// A deterministic stream of events.
#[derive(Debug, Clone)]
pub struct Generator {
    workload: Workload,
    subjects: u64,
    partitions: i32,
    state: u64,
    next: u64,
    misplaced: bool,
}

const STREETS: [&str; 4] = [
    "Rue de la Grande Horloge",
    "Avenue des Champs-Élysées",
    "Kurfürstendamm",
    "Calle de Alcalá",
];
const CITIES: [&str; 4] = ["Lyon", "Paris", "Berlin", "Madrid"];

impl Generator {
    /// Events for `workload` over `subjects` subjects and `partitions`
    /// partitions, from `seed`.
    pub fn new(workload: Workload, subjects: u64, partitions: i32, seed: u64) -> Self {
        Self {
            workload,
            subjects: subjects.max(1),
            partitions: partitions.max(1),
            state: seed,
            next: 0,
            misplaced: false,
        }
    }

    /// The same events with odd subjects sent round robin, as an
    /// application that does not key them: one subject on every partition.
    #[must_use]
    pub fn misplacing_odd_subjects(mut self) -> Self {
        self.misplaced = true;
        self
    }

    /// SplitMix64.
    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The subject index of event `n`: a permutation of all subjects first
    /// (each created once), then uniform draws.
    fn subject_index(&mut self, n: u64) -> (u64, bool) {
        if n < self.subjects {
            // 1,000,003 is prime and larger than any scale here, so the
            // multiplication is a bijection modulo `subjects`.
            ((n.wrapping_mul(1_000_003)) % self.subjects, true)
        } else {
            (self.random() % self.subjects, false)
        }
    }

    fn partition_of(&self, subject: &str) -> i32 {
        let hash = subject.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        i32::try_from(hash % u64::try_from(self.partitions).unwrap_or(1)).unwrap_or(0)
    }
}

impl Iterator for Generator {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        let n = self.next;
        self.next += 1;
        let (index, first) = self.subject_index(n);
        let pick = usize::try_from(self.random() % 4).unwrap_or(0);
        let (street, city) = (STREETS[pick], CITIES[pick]);
        let number = self.random() % 200 + 1;
        let (subject, ty, data) = match self.workload {
            Workload::Customers => {
                let subject = format!("customer-{index:08}");
                if first {
                    let data = format!(
                        r#"{{"email":"{subject}@example.com","name":"Customer {index} of the benchmark","address":{{"street":"{number} {street}, building B, floor 3","city":"{city}"}},"segment":"retail"}}"#
                    );
                    (subject, "com.example.CustomerCreated", data)
                } else if number.is_multiple_of(4) {
                    let data = format!(
                        r#"{{"newName":"Customer {index}, renamed on change {n} of the benchmark","reason":"the customer asked for it at the counter","channel":"store-{number}"}}"#
                    );
                    (subject, "com.example.CustomerNameChanged", data)
                } else {
                    let data = format!(
                        r#"{{"newAddress":{{"street":"{number} {street}, building C, floor {pick}","city":"{city}"}},"reason":"moved","validFrom":"2026-11-24T10:00:00Z","channel":"web"}}"#
                    );
                    (subject, "com.example.CustomerAddressChanged", data)
                }
            }
            Workload::Orders => {
                let subject = format!("customer-{index:08}");
                let data = format!(
                    r#"{{"orderId":"order-{n:010}","amountCents":{},"currency":"EUR","items":[{{"sku":"sku-{number:05}","quantity":{}}}],"shipTo":"{city}","channel":"web"}}"#,
                    number * 137,
                    number % 5 + 1
                );
                (subject, "com.example.OrderPlaced", data)
            }
        };
        let partition = if self.misplaced && index % 2 == 1 {
            i32::try_from(n % u64::try_from(self.partitions).unwrap_or(1)).unwrap_or(0)
        } else {
            self.partition_of(&subject)
        };
        Some(Generated {
            partition,
            id: format!("bench-{n:010}"),
            subject,
            ty,
            data: data.into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_deterministic_and_creates_every_subject_first() {
        let a: Vec<_> = Generator::new(Workload::Customers, 100, 4, 7)
            .take(300)
            .map(|e| (e.partition, e.subject, e.ty, e.data))
            .collect();
        let b: Vec<_> = Generator::new(Workload::Customers, 100, 4, 7)
            .take(300)
            .map(|e| (e.partition, e.subject, e.ty, e.data))
            .collect();
        assert_eq!(a, b);
        let created: std::collections::BTreeSet<_> = a[..100]
            .iter()
            .map(|(_, subject, ty, _)| {
                assert_eq!(*ty, "com.example.CustomerCreated");
                subject.clone()
            })
            .collect();
        assert_eq!(created.len(), 100);
        assert!(
            a[100..]
                .iter()
                .all(|(_, _, ty, _)| *ty != "com.example.CustomerCreated")
        );
    }

    #[test]
    fn data_is_about_two_hundred_bytes_of_json() {
        for workload in [Workload::Customers, Workload::Orders] {
            for event in Generator::new(workload, 50, 4, 1).take(200) {
                let _: serde_json::Value = serde_json::from_slice(&event.data).unwrap();
                assert!(
                    (120..=260).contains(&event.data.len()),
                    "{} bytes: {}",
                    event.data.len(),
                    String::from_utf8_lossy(&event.data)
                );
            }
        }
    }

    #[test]
    fn misplaced_odd_subjects_arrive_on_every_partition() {
        let mut seen: std::collections::BTreeMap<String, std::collections::BTreeSet<i32>> =
            std::collections::BTreeMap::new();
        for event in Generator::new(Workload::Orders, 30, 4, 3)
            .misplacing_odd_subjects()
            .take(2_000)
        {
            seen.entry(event.subject.clone())
                .or_default()
                .insert(event.partition);
        }
        let spread = seen.values().filter(|p| p.len() == 4).count();
        let kept = seen.values().filter(|p| p.len() == 1).count();
        assert_eq!((spread, kept), (15, 15), "{seen:?}");
    }

    #[test]
    fn a_subject_always_goes_to_one_partition() {
        let mut seen = std::collections::BTreeMap::new();
        for event in Generator::new(Workload::Orders, 30, 4, 3).take(500) {
            assert_eq!(
                *seen.entry(event.subject.clone()).or_insert(event.partition),
                event.partition
            );
        }
        let partitions: std::collections::BTreeSet<_> = seen.values().collect();
        assert_eq!(partitions.len(), 4);
    }
}
