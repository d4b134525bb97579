//! A mock host for testing projections natively: no Kafka, no wasm.
//!
//! [`MockHost`] keeps a view the way the runtime keeps it:
//!
//! - one row per subject, as JSON text; `Set` replaces it, `Delete` removes
//!   it, `Ignore` leaves it;
//! - a checkpoint per `(topic, partition)`, the next offset to apply: an
//!   event at an offset below it is a redelivery and is not applied again;
//! - a `Set` whose row is not valid JSON is refused;
//! - an event without a subject is refused, unless the host falls back to
//!   the Kafka key (a per-view choice in the runtime, off by default);
//! - a failed event is recorded and passed over, as a view with
//!   `on_error = "skip"` does;
//! - with [`MockHost::with_dedup`], a copy of an event the subject applied
//!   (same `source` and `id`) within the window is not applied
//!   ([`Outcome::DuplicateId`]), by the runtime's rule
//!   ([`crate::dedup`]).
//!
//! It applies events through an [`Applier`]: [`NativeApplier`] calls the
//! projection's Rust code directly, and the runtime's wasm test kit applies
//! them through the compiled component, so one scenario can test both.
//!
//! ```
//! use projector_sdk::testing::{self, EventBuilder};
//! # use projector_sdk::{Error, Event, Projection, Update};
//! # struct Names;
//! # impl Projection for Names {
//! #     type Row = String;
//! #     fn apply(_: Option<String>, e: &Event) -> Result<Update<String>, Error> {
//! #         if e.ty == "Deleted" { Ok(Update::Delete) } else { Ok(Update::Set(e.data_json()?)) }
//! #     }
//! # }
//! let mut host = testing::native::<Names>();
//! host.publish(EventBuilder::new("Named").subject("n-1").data_json(&"Ada"));
//! assert_eq!(host.expect_row::<String>("n-1"), "Ada");
//! host.publish(EventBuilder::new("Deleted").subject("n-1"));
//! host.expect_no_row("n-1");
//! ```

// An assertion library: failing an assertion by panicking is its job.
#![allow(clippy::panic)]

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dedup::Window;
use crate::log::LogRecord;
use crate::projection::Typed;
use crate::{Event, KafkaOrigin, Projection, RawProjection, RawUpdate, Update};

/// The topic events go to when a builder names none.
pub const DEFAULT_TOPIC: &str = "events";

/// Something that applies one event to one row: the projection under test.
pub trait Applier {
    /// Why an event could not be applied.
    type Error: std::error::Error + FailureCode + Clone + 'static;

    /// Apply `event` to `state`, the subject's current row as JSON text.
    fn apply(&mut self, state: Option<&str>, event: &Event) -> Result<RawUpdate, Self::Error>;

    /// The log records emitted since the last call, oldest first.
    fn take_logs(&mut self) -> Vec<LogRecord>;
}

pub use crate::native::{NativeApplier, NativeError};

/// The code of an applier's error, as scenario files, `projector test` and
/// the other languages' mock hosts name it: the projection's own code
/// ([`Error::code`](crate::Error), such as `invalid-data`), `panic`, or the
/// engine's class of the failure (`deadline-exceeded`, `guest-trap`, ...).
pub trait FailureCode {
    /// The code.
    fn failure_code(&self) -> &str;
}

impl FailureCode for NativeError {
    fn failure_code(&self) -> &str {
        match self {
            NativeError::Guest(err) => &err.code,
            NativeError::Panic(_) => "panic",
        }
    }
}

impl<P: RawProjection> Applier for NativeApplier<P> {
    type Error = NativeError;

    fn apply(&mut self, state: Option<&str>, event: &Event) -> Result<RawUpdate, NativeError> {
        NativeApplier::apply(self, state, event)
    }

    fn take_logs(&mut self) -> Vec<LogRecord> {
        NativeApplier::take_logs(self)
    }
}

/// Builds an [`Event`] with sensible defaults.
///
/// Defaults: `source` is `/projector/testing`, `specversion` is `1.0`, the id
/// is assigned by the host (`evt-1`, `evt-2`, ...), the topic is
/// [`DEFAULT_TOPIC`], the partition is 0, the Kafka key is the subject (as
/// `projector publish` does), and the offset is the partition's next one.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: Event,
    id_set: bool,
    key_set: bool,
    offset: Option<i64>,
}

impl EventBuilder {
    /// An event of type `ty`.
    pub fn new(ty: impl Into<String>) -> Self {
        Self {
            event: Event {
                source: "/projector/testing".to_owned(),
                specversion: "1.0".to_owned(),
                ty: ty.into(),
                origin: KafkaOrigin {
                    topic: DEFAULT_TOPIC.to_owned(),
                    ..KafkaOrigin::default()
                },
                ..Event::default()
            },
            id_set: false,
            key_set: false,
            offset: None,
        }
    }

    /// Set the `id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = id.into();
        self.id_set = true;
        self
    }

    /// Set the `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.event.source = source.into();
        self
    }

    /// Set the `specversion` (to test how a projection copes with others).
    pub fn specversion(mut self, specversion: impl Into<String>) -> Self {
        self.event.specversion = specversion.into();
        self
    }

    /// Set the `subject`: the row this event updates.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.event.subject = Some(subject.into());
        self
    }

    /// Set the `time`, as RFC 3339 text.
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.event.time = Some(time.into());
        self
    }

    /// Set the `dataschema`.
    pub fn dataschema(mut self, dataschema: impl Into<String>) -> Self {
        self.event.dataschema = Some(dataschema.into());
        self
    }

    /// Add an extension attribute.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.event.extensions.push((name.into(), value.into()));
        self
    }

    /// Set `data` to `value` as JSON, and `datacontenttype` to
    /// `application/json`.
    ///
    /// # Panics
    ///
    /// If `value` does not serialise to JSON, which is a bug in the test.
    pub fn data_json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let data = serde_json::to_vec(value)
            .unwrap_or_else(|err| panic!("test event data does not serialise to JSON: {err}"));
        self.event.data = Some(data);
        self.event.datacontenttype = Some("application/json".to_owned());
        self
    }

    /// Set `data` to raw bytes with the given content type.
    pub fn data(mut self, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.event.data = Some(data.into());
        self.event.datacontenttype = Some(content_type.into());
        self
    }

    /// Set the Kafka topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.event.origin.topic = topic.into();
        self
    }

    /// Set the Kafka partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.event.origin.partition = partition;
        self
    }

    /// Set the Kafka offset, instead of the partition's next one.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Set the Kafka key (by default, the subject).
    pub fn key(mut self, key: Option<&[u8]>) -> Self {
        self.event.origin.key = key.map(<[u8]>::to_vec);
        self.key_set = true;
        self
    }

    /// Set the Kafka timestamp, in milliseconds since the Unix epoch.
    pub fn timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.event.origin.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// What happened to one published event.
#[derive(Debug)]
pub enum Outcome<E> {
    /// The projection ran and its update was applied to `subject`'s row.
    Applied {
        /// The row the event updated.
        subject: String,
        /// Where the event was read from.
        origin: KafkaOrigin,
        /// What the projection returned.
        update: RawUpdate,
    },
    /// The offset was already applied: the event was not applied again.
    Duplicate {
        /// Where the redelivered event came from.
        origin: KafkaOrigin,
        /// The partition's checkpoint: the next offset to apply.
        next_offset: i64,
    },
    /// A copy of an event its subject applied (same `source` and `id`)
    /// within the dedup window: not applied ([`MockHost::with_dedup`]).
    DuplicateId {
        /// The subject.
        subject: String,
        /// Where the copy came from.
        origin: KafkaOrigin,
        /// The time the first copy's window counts from.
        first_ms: i64,
    },
    /// The event could not be applied; it is in [`MockHost::failures`].
    Failed(Failure<E>),
}

impl<E: fmt::Debug> Outcome<E> {
    /// True if the event was applied.
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied { .. })
    }

    /// True if the event was a redelivery and was not applied.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Outcome::Duplicate { .. })
    }

    /// True if the event was a copy of one applied (same subject, `source`
    /// and `id`) within the dedup window, and was not applied.
    pub fn is_duplicate_id(&self) -> bool {
        matches!(self, Outcome::DuplicateId { .. })
    }

    /// The failure, if the event failed.
    pub fn failure(&self) -> Option<&Failure<E>> {
        match self {
            Outcome::Failed(failure) => Some(failure),
            _ => None,
        }
    }

    /// The failure's code, if the event failed: `Some("invalid-data")` for
    /// the SDK's [`Error::invalid_data`](crate::Error::invalid_data), and so
    /// on ([`Failure::code`]).
    pub fn failure_code(&self) -> Option<&str>
    where
        E: FailureCode,
    {
        self.failure().map(Failure::code)
    }

    /// The update the projection returned.
    ///
    /// # Panics
    ///
    /// If the event was not applied.
    pub fn expect_applied(&self) -> &RawUpdate {
        match self {
            Outcome::Applied { update, .. } => update,
            other => panic!("expected the event to be applied, but: {other:?}"),
        }
    }
}

/// Why an event was not applied.
#[derive(Debug, Clone)]
pub enum Failure<E> {
    /// The applier (the projection) failed.
    Applier(E),
    /// The projection returned a `Set` whose row is not valid JSON.
    InvalidRow(String),
    /// The event has no subject (and the host does not fall back to the key,
    /// or the event has no key either).
    NoSubject,
}

impl<E: FailureCode> Failure<E> {
    /// The failure's code: the applier's ([`FailureCode`]), `invalid-row`
    /// or `no-subject`.
    pub fn code(&self) -> &str {
        match self {
            Failure::Applier(err) => err.failure_code(),
            Failure::InvalidRow(_) => "invalid-row",
            Failure::NoSubject => "no-subject",
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Applier(err) => err.fmt(f),
            Failure::InvalidRow(reason) => write!(f, "the row is not valid JSON: {reason}"),
            Failure::NoSubject => f.write_str("the event has no subject"),
        }
    }
}

/// A failed event and why it failed.
#[derive(Debug)]
pub struct FailedEvent<E> {
    /// The event as it was delivered.
    pub event: Event,
    /// Why it was not applied.
    pub failure: Failure<E>,
}

/// A view kept the way the runtime keeps it, fed by hand.
pub struct MockHost<A: Applier> {
    applier: A,
    rows: BTreeMap<String, String>,
    checkpoints: BTreeMap<(String, i32), i64>,
    log: BTreeMap<(String, i32, i64), Event>,
    logs: Vec<LogRecord>,
    failures: Vec<FailedEvent<A::Error>>,
    next_id: u64,
    subject_from_key: bool,
    dedup: Option<DedupMemory>,
}

/// What a host with deduplication remembers: per `(subject, source, id)`
/// applied, the time it counts from. It never forgets (a runtime forgets
/// what its watermark is past, which a copy inside the window never is).
#[derive(Debug)]
struct DedupMemory {
    window: Window,
    applied: BTreeMap<(String, String, String), i64>,
}

impl<A: Applier> fmt::Debug for MockHost<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockHost")
            .field("rows", &self.rows)
            .field("checkpoints", &self.checkpoints)
            .field("failures", &self.failures.len())
            .finish_non_exhaustive()
    }
}

/// A mock host applying the typed projection `P` natively.
pub fn native<P: Projection>() -> MockHost<NativeApplier<Typed<P>>> {
    MockHost::new(NativeApplier::default())
}

/// A mock host applying the raw projection `P` natively.
pub fn native_raw<P: RawProjection>() -> MockHost<NativeApplier<P>> {
    MockHost::new(NativeApplier::default())
}

impl<A: Applier> MockHost<A> {
    /// A host applying events through `applier`, with an empty view.
    pub fn new(applier: A) -> Self {
        Self {
            applier,
            rows: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            log: BTreeMap::new(),
            logs: Vec::new(),
            failures: Vec::new(),
            next_id: 0,
            subject_from_key: false,
            dedup: None,
        }
    }

    /// Deduplicate by CloudEvents identity within `window`, as a view with
    /// `dedup = { keep, time }` does ([`crate::dedup`]).
    pub fn with_dedup(mut self, window: Window) -> Self {
        self.dedup = Some(DedupMemory {
            window,
            applied: BTreeMap::new(),
        });
        self
    }

    /// Use the Kafka key as the subject of events that have none.
    pub fn with_subject_from_key(mut self, enabled: bool) -> Self {
        self.subject_from_key = enabled;
        self
    }

    /// The applier, for instance to inspect a wasm instance.
    pub fn applier_mut(&mut self) -> &mut A {
        &mut self.applier
    }

    /// Append an event to its partition, as a producer would, and deliver it.
    ///
    /// The event gets the partition's next offset unless the builder set one.
    pub fn publish(&mut self, builder: EventBuilder) -> Outcome<A::Error> {
        let EventBuilder {
            mut event,
            id_set,
            key_set,
            offset,
        } = builder;
        if !id_set {
            self.next_id += 1;
            event.id = format!("evt-{}", self.next_id);
        }
        if !key_set {
            event.origin.key = event.subject.as_ref().map(|s| s.as_bytes().to_vec());
        }
        let partition = (event.origin.topic.clone(), event.origin.partition);
        event.origin.offset = offset.unwrap_or_else(|| {
            self.log
                .range(
                    (partition.0.clone(), partition.1, i64::MIN)
                        ..=(partition.0.clone(), partition.1, i64::MAX),
                )
                .next_back()
                .map_or(0, |((_, _, last), _)| last + 1)
        });
        self.log.insert(
            (partition.0, partition.1, event.origin.offset),
            event.clone(),
        );
        self.deliver(event)
    }

    /// Deliver the event already published at `(topic, partition, offset)`
    /// again, as Kafka does after a rebalance or a crash.
    ///
    /// # Panics
    ///
    /// If nothing was published there.
    pub fn redeliver(&mut self, topic: &str, partition: i32, offset: i64) -> Outcome<A::Error> {
        let event = self
            .log
            .get(&(topic.to_owned(), partition, offset))
            .cloned()
            .unwrap_or_else(|| panic!("nothing was published at {topic}/{partition}@{offset}"));
        self.deliver(event)
    }

    /// Deliver `event` exactly as given, with its own origin.
    pub fn deliver(&mut self, event: Event) -> Outcome<A::Error> {
        let origin = &event.origin;
        let checkpoint = (origin.topic.clone(), origin.partition);
        if let Some(&next_offset) = self.checkpoints.get(&checkpoint)
            && origin.offset < next_offset
        {
            return Outcome::Duplicate {
                origin: event.origin,
                next_offset,
            };
        }
        self.checkpoints.insert(checkpoint, event.origin.offset + 1);

        let Some(subject) = self.subject_of(&event) else {
            return self.fail(event, Failure::NoSubject);
        };
        let identity = (subject.clone(), event.source.clone(), event.id.clone());
        let remember = match &mut self.dedup {
            None => None,
            Some(memory) => {
                let time = memory
                    .window
                    .time_of(event.time.as_deref(), event.origin.timestamp_ms);
                match memory.applied.get(&identity) {
                    Some(&first_ms) if memory.window.is_duplicate(first_ms, time) => {
                        return Outcome::DuplicateId {
                            subject,
                            origin: event.origin,
                            first_ms,
                        };
                    }
                    _ => Some(time),
                }
            }
        };
        let result = self
            .applier
            .apply(self.rows.get(&subject).map(String::as_str), &event);
        self.logs.extend(self.applier.take_logs());
        match result {
            Ok(update) => {
                if let Update::Set(row) = &update
                    && let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(row)
                {
                    return self.fail(event, Failure::InvalidRow(err.to_string()));
                }
                match &update {
                    Update::Set(row) => {
                        self.rows.insert(subject.clone(), row.clone());
                    }
                    Update::Delete => {
                        self.rows.remove(&subject);
                    }
                    Update::Ignore => {}
                }
                if let (Some(memory), Some(time)) = (&mut self.dedup, remember) {
                    memory.applied.insert(identity, time);
                }
                Outcome::Applied {
                    subject,
                    origin: event.origin,
                    update,
                }
            }
            Err(err) => self.fail(event, Failure::Applier(err)),
        }
    }

    fn subject_of(&self, event: &Event) -> Option<String> {
        match (&event.subject, &event.origin.key) {
            (Some(subject), _) => Some(subject.clone()),
            (None, Some(key)) if self.subject_from_key => {
                Some(String::from_utf8_lossy(key).into_owned())
            }
            _ => None,
        }
    }

    fn fail(&mut self, event: Event, failure: Failure<A::Error>) -> Outcome<A::Error> {
        // The runtime hands the event to the error policy and moves on; the
        // mock host keeps it for inspection.
        self.failures.push(FailedEvent {
            event,
            failure: failure.clone(),
        });
        Outcome::Failed(failure)
    }

    /// The row of `subject` as JSON text.
    pub fn row_json(&self, subject: &str) -> Option<&str> {
        self.rows.get(subject).map(String::as_str)
    }

    /// The row of `subject`, parsed as `T`.
    ///
    /// # Panics
    ///
    /// If the row does not parse as `T`.
    pub fn row<T: DeserializeOwned>(&self, subject: &str) -> Option<T> {
        self.row_json(subject).map(|json| {
            serde_json::from_str(json).unwrap_or_else(|err| {
                panic!("the row of {subject:?} does not parse as the requested type: {err}\nrow: {json}")
            })
        })
    }

    /// The row of `subject`, which must exist.
    ///
    /// # Panics
    ///
    /// If there is no row for `subject`, naming the subjects that have one.
    pub fn expect_row<T: DeserializeOwned>(&self, subject: &str) -> T {
        self.row(subject).unwrap_or_else(|| {
            panic!(
                "expected a row for subject {subject:?}, but there is none; rows exist for {:?}",
                self.rows.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Assert that `subject` has no row.
    ///
    /// # Panics
    ///
    /// If it has one, showing it.
    pub fn expect_no_row(&self, subject: &str) {
        if let Some(row) = self.row_json(subject) {
            panic!("expected no row for subject {subject:?}, but found {row}");
        }
    }

    /// Every row, in subject order.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rows.iter().map(|(s, r)| (s.as_str(), r.as_str()))
    }

    /// The next offset to apply on `(topic, partition)`, if any was applied.
    pub fn checkpoint(&self, topic: &str, partition: i32) -> Option<i64> {
        self.checkpoints
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// Every log record emitted so far, oldest first.
    pub fn logs(&self) -> &[LogRecord] {
        &self.logs
    }

    /// Every event that failed, oldest first.
    pub fn failures(&self) -> &[FailedEvent<A::Error>] {
        &self.failures
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dedup::TimeSource;
    use crate::{Error, Update};

    /// Counts the events applied to each subject; refuses type `refuse`.
    struct Count;

    impl Projection for Count {
        type Row = u64;

        fn apply(state: Option<u64>, event: &Event) -> Result<Update<u64>, Error> {
            if event.ty == "refuse" {
                return Err(Error::rejected("no"));
            }
            Ok(Update::Set(state.unwrap_or(0) + 1))
        }
    }

    fn tick(id: &str, subject: &str, record_ms: i64) -> EventBuilder {
        EventBuilder::new("tick")
            .id(id)
            .subject(subject)
            .timestamp_ms(record_ms)
    }

    #[test]
    fn with_dedup_a_copy_within_the_window_is_not_applied_and_past_it_is() {
        let window = Window::new(Duration::from_secs(60), TimeSource::Record);
        let mut host = native::<Count>().with_dedup(window);
        assert!(host.publish(tick("e1", "a", 1_000)).is_applied());
        let copy = host.publish(tick("e1", "a", 60_999).partition(1));
        assert!(
            matches!(
                copy,
                Outcome::DuplicateId {
                    first_ms: 1_000,
                    ..
                }
            ),
            "{copy:?}"
        );
        assert_eq!(
            host.checkpoint("events", 1),
            Some(1),
            "its offset is passed"
        );
        assert_eq!(host.row::<u64>("a"), Some(1));
        // Another subject, or another source, is another event.
        assert!(host.publish(tick("e1", "b", 2_000)).is_applied());
        assert!(
            host.publish(tick("e1", "a", 2_000).source("/x"))
                .is_applied()
        );
        // A failed event is not remembered: its copy is tried again.
        let refused = || {
            EventBuilder::new("refuse")
                .id("e9")
                .subject("a")
                .timestamp_ms(3_000)
        };
        assert!(host.publish(refused()).failure().is_some());
        assert!(host.publish(refused()).failure().is_some());
        // Past the window, a copy is applied.
        assert!(host.publish(tick("e1", "a", 61_000)).is_applied());
        assert_eq!(host.row::<u64>("a"), Some(3));
        // Without dedup, a copy is applied.
        let mut plain = native::<Count>();
        assert!(plain.publish(tick("e1", "a", 0)).is_applied());
        assert!(plain.publish(tick("e1", "a", 0)).is_applied());
        // By event time, the copies' record times do not matter.
        let by_event = Window::new(Duration::from_secs(60), TimeSource::Event);
        let mut host = native::<Count>().with_dedup(by_event);
        let at = "2026-12-06T10:00:00Z";
        assert!(host.publish(tick("e1", "a", 0).time(at)).is_applied());
        assert!(
            host.publish(tick("e1", "a", 1_000_000_000_000).time(at))
                .is_duplicate_id()
        );
    }
}
