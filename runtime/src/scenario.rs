//! Scenario files: a projection's test scenarios as JSON, in every
//! language's terms at once. The SDKs' mock hosts run them against the
//! projection's source (`projector_sdk.scenarios` in Python), and
//! `projector test COMPONENT FILES` runs the same files against the
//! compiled component through the engine, with the Rust SDK's
//! [`MockHost`]: the same steps check the source and the shipped `.wasm`.
//! The format is in `docs/scenarios.md`.
//!
//! # What it promises
//!
//! - A step's outcome is compared by kind (`applied`, `duplicate`) or by
//!   failure code: the projection's own code, or `no-subject`,
//!   `invalid-row`, `panic`, and for other engine failures their class
//!   (`guest-trap`, `deadline-exceeded`, `row-too-large`, ...).
//! - Rows are compared as JSON values, not as text.
//! - An unknown step, field or expectation is an error that names it, never
//!   a step passed over.

use std::path::{Path, PathBuf};

use projector_sdk::dedup::{TimeSource, Window, parse_keep};
use projector_sdk::testing::{Applier, EventBuilder, MockHost, Outcome};
use serde::Deserialize;
use serde_json::Value;

use crate::engine::ApplyError;

/// One scenario: a name and its steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows.
    pub scenario: String,
    /// Use the Kafka key as the subject of events that have none.
    #[serde(default)]
    pub subject_from_key: bool,
    /// Deduplicate by CloudEvents identity, as a view with `dedup` does.
    #[serde(default)]
    pub dedup: Option<ScenarioDedup>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// A scenario's `dedup`: `{"keep": "24h", "time": "record"}`, each
/// optional (those are the defaults, as in a view's config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDedup {
    /// How long an identity is remembered, in stream time.
    pub keep: Option<String>,
    /// `record` or `event`.
    pub time: Option<String>,
}

impl Scenario {
    /// The dedup window the scenario asks for, if any.
    ///
    /// # Errors
    /// A `keep` or `time` out of range.
    pub fn dedup_window(&self) -> Result<Option<Window>, String> {
        let Some(dedup) = &self.dedup else {
            return Ok(None);
        };
        let keep = parse_keep(dedup.keep.as_deref().unwrap_or(Window::DEFAULT_KEEP))
            .map_err(|err| format!("{}: dedup.keep: {err}", self.scenario))?;
        let time = dedup
            .time
            .as_deref()
            .map(TimeSource::parse)
            .transpose()
            .map_err(|err| format!("{}: dedup.time: {err}", self.scenario))?
            .unwrap_or_default();
        Ok(Some(Window::new(keep, time)))
    }
}

/// One step: an object with one of the keys below (and `expect` beside
/// `publish` and `redeliver`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Step {
    /// Publish an event (it gets its partition's next offset unless it says
    /// otherwise), with what should happen.
    Publish {
        /// The event.
        publish: Box<Publish>,
        /// What should happen.
        #[serde(default)]
        expect: Option<Expect>,
    },
    /// Deliver a published event again.
    Redeliver {
        /// Where it was published.
        redeliver: At,
        /// What should happen (`duplicate`, normally).
        #[serde(default)]
        expect: Option<Expect>,
    },
    /// The row of a subject is this JSON value.
    ExpectRow {
        /// The subject and the row.
        expect_row: ExpectRow,
    },
    /// The subject has no row.
    ExpectNoRow {
        /// The subject.
        expect_no_row: Subject,
    },
}

/// An event to publish.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// `type`.
    #[serde(rename = "type")]
    pub ty: String,
    /// `id` (default: one the host makes).
    pub id: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `time`.
    pub time: Option<String>,
    /// `dataschema`.
    pub dataschema: Option<String>,
    /// Extension attributes.
    #[serde(default)]
    pub extensions: serde_json::Map<String, Value>,
    /// JSON data (`application/json`).
    pub data: Option<Value>,
    /// Text data (`text/plain`), such as something that is not JSON.
    pub data_text: Option<String>,
    /// The topic (default `events`).
    pub topic: Option<String>,
    /// The partition (default 0).
    pub partition: Option<i32>,
    /// The offset (default: the partition's next).
    pub offset: Option<i64>,
    /// The Kafka key (default: the subject); `null` for none.
    #[serde(default, deserialize_with = "some")]
    pub key: Option<Option<String>>,
    /// The record's timestamp.
    pub timestamp_ms: Option<i64>,
}

fn some<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

/// Where an event was published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct At {
    /// The topic (default `events`).
    pub topic: Option<String>,
    /// The partition (default 0).
    pub partition: Option<i32>,
    /// The offset.
    pub offset: i64,
}

/// A subject and its expected row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRow {
    /// The subject.
    pub subject: String,
    /// The row.
    pub row: Value,
}

/// A subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The subject.
    pub subject: String,
}

/// What a published or redelivered event should do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// `"applied"`, `"duplicate"` (a redelivered offset) or
    /// `"duplicate-id"` (a copy by `source` and `id`, with `dedup`).
    Kind(String),
    /// `{"failed": CODE}`.
    Failed {
        /// The failure code.
        failed: String,
    },
}

/// A step that did not go as its scenario says, or a file that cannot be
/// read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read or is not scenarios.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A step failed.
    #[error("{scenario}, step {step}: {reason}")]
    Step {
        /// The scenario.
        scenario: String,
        /// The step, from 1.
        step: usize,
        /// What happened instead.
        reason: String,
    },
}

/// The scenarios of the file at `path`: one scenario, or a list.
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn load(path: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let error = |reason: String| ScenarioError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| error(err.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|err| error(err.to_string()))?;
    let list = match value {
        Value::Array(list) => list,
        one => vec![one],
    };
    list.into_iter()
        .map(|scenario| {
            serde_json::from_value(scenario)
                .map_err(|err| error(format!("not a scenario ({err}); see docs/scenarios.md")))
        })
        .collect()
}

/// Every `*.json` file under `paths` (files, or directories searched
/// recursively), sorted per directory.
///
/// # Errors
/// When a directory cannot be read.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inner = Vec::new();
            collect(path, &mut inner).map_err(|err| ScenarioError::File {
                path: path.clone(),
                reason: err.to_string(),
            })?;
            inner.sort();
            found.extend(inner);
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn collect(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            found.push(path);
        }
    }
    Ok(())
}

fn builder(publish: &Publish) -> EventBuilder {
    let mut builder = EventBuilder::new(publish.ty.clone());
    if let Some(id) = &publish.id {
        builder = builder.id(id.clone());
    }
    if let Some(source) = &publish.source {
        builder = builder.source(source.clone());
    }
    if let Some(subject) = &publish.subject {
        builder = builder.subject(subject.clone());
    }
    if let Some(time) = &publish.time {
        builder = builder.time(time.clone());
    }
    if let Some(schema) = &publish.dataschema {
        builder = builder.dataschema(schema.clone());
    }
    for (name, value) in &publish.extensions {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        builder = builder.extension(name.clone(), value);
    }
    if let Some(data) = &publish.data {
        builder = builder.data_json(data);
    }
    if let Some(text) = &publish.data_text {
        builder = builder.data("text/plain", text.clone().into_bytes());
    }
    if let Some(topic) = &publish.topic {
        builder = builder.topic(topic.clone());
    }
    if let Some(partition) = publish.partition {
        builder = builder.partition(partition);
    }
    if let Some(offset) = publish.offset {
        builder = builder.offset(offset);
    }
    if let Some(key) = &publish.key {
        builder = builder.key(key.as_deref().map(str::as_bytes));
    }
    if let Some(timestamp) = publish.timestamp_ms {
        builder = builder.timestamp_ms(timestamp);
    }
    builder
}

/// Whether `outcome` is what `expect` says (anything, without one).
///
/// # Errors
/// What happened instead, or an expectation that is not one.
pub fn check(outcome: &Outcome<ApplyError>, expect: Option<&Expect>) -> Result<(), String> {
    let Some(expect) = expect else {
        return Ok(());
    };
    let described = || match outcome {
        Outcome::Applied { update, .. } => format!("applied ({update:?})"),
        Outcome::Duplicate { next_offset, .. } => {
            format!("a duplicate (the partition's next offset is {next_offset})")
        }
        Outcome::DuplicateId { first_ms, .. } => format!(
            "a copy of an event its subject applied (same source and id, its window from {first_ms} ms)"
        ),
        Outcome::Failed(failure) => format!("failed: {}: {failure}", failure.code()),
    };
    let ok = match (expect, outcome) {
        (Expect::Kind(kind), Outcome::Applied { .. }) if kind == "applied" => true,
        (Expect::Kind(kind), Outcome::Duplicate { .. }) if kind == "duplicate" => true,
        (Expect::Kind(kind), Outcome::DuplicateId { .. }) if kind == "duplicate-id" => true,
        (Expect::Kind(kind), _)
            if !["applied", "duplicate", "duplicate-id"].contains(&kind.as_str()) =>
        {
            return Err(format!(
                "unknown expectation {kind:?}: \"applied\", \"duplicate\", \"duplicate-id\" or {{\"failed\": CODE}}"
            ));
        }
        (Expect::Failed { failed }, Outcome::Failed(failure)) => failure.code() == failed,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {expect:?}, but the event was {}",
            described()
        ))
    }
}

/// Run `scenario` on `host`.
///
/// # Errors
/// At the first step that does not go as it says.
pub fn run<A: Applier<Error = ApplyError>>(
    scenario: &Scenario,
    host: &mut MockHost<A>,
) -> Result<(), ScenarioError> {
    for (index, step) in scenario.steps.iter().enumerate() {
        let failed = |reason: String| ScenarioError::Step {
            scenario: scenario.scenario.clone(),
            step: index + 1,
            reason,
        };
        match step {
            Step::Publish { publish, expect } => {
                let outcome = host.publish(builder(publish));
                check(&outcome, expect.as_ref()).map_err(failed)?;
            }
            Step::Redeliver { redeliver, expect } => {
                let topic = redeliver.topic.as_deref().unwrap_or("events");
                let partition = redeliver.partition.unwrap_or(0);
                if host
                    .checkpoint(topic, partition)
                    .is_none_or(|next| redeliver.offset >= next)
                {
                    return Err(failed(format!(
                        "nothing was published at {topic}/{partition}@{}",
                        redeliver.offset
                    )));
                }
                let outcome = host.redeliver(topic, partition, redeliver.offset);
                check(&outcome, expect.as_ref()).map_err(failed)?;
            }
            Step::ExpectRow { expect_row } => {
                let actual = host
                    .row_json(&expect_row.subject)
                    .map(serde_json::from_str::<Value>)
                    .transpose()
                    .map_err(|err| failed(format!("the row is not JSON: {err}")))?;
                if actual.as_ref() != Some(&expect_row.row) {
                    return Err(failed(format!(
                        "the row of {:?} is {}, expected {}",
                        expect_row.subject,
                        actual.map_or_else(|| "absent".to_owned(), |row| row.to_string()),
                        expect_row.row
                    )));
                }
            }
            Step::ExpectNoRow { expect_no_row } => {
                if let Some(row) = host.row_json(&expect_no_row.subject) {
                    return Err(failed(format!(
                        "{:?} has a row: {row}",
                        expect_no_row.subject
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_unknown_ones_are_refused() {
        let scenario: Scenario = serde_json::from_value(serde_json::json!({
            "scenario": "s",
            "steps": [
                {"publish": {"type": "T", "subject": "a", "data": {"x": 1}}, "expect": "applied"},
                {"publish": {"type": "T", "key": null}, "expect": {"failed": "no-subject"}},
                {"redeliver": {"offset": 0}, "expect": "duplicate"},
                {"expect_row": {"subject": "a", "row": {"x": 1}}},
                {"expect_no_row": {"subject": "b"}}
            ]
        }))
        .unwrap();
        assert_eq!(scenario.steps.len(), 5);
        assert!(matches!(
            &scenario.steps[1],
            Step::Publish { publish, .. } if publish.key == Some(None)
        ));
        let unknown = serde_json::from_value::<Scenario>(serde_json::json!({
            "scenario": "s", "steps": [{"publsh": {"type": "T"}}]
        }));
        assert!(unknown.is_err());
        let unknown_field = serde_json::from_value::<Scenario>(serde_json::json!({
            "scenario": "s", "steps": [{"publish": {"type": "T", "subjet": "a"}}]
        }));
        assert!(unknown_field.is_err());
    }

    #[test]
    fn a_scenarios_dedup_takes_the_views_defaults_and_refuses_a_bad_window() {
        let parse = |dedup: serde_json::Value| {
            serde_json::from_value::<Scenario>(serde_json::json!({
                "scenario": "s", "dedup": dedup, "steps": []
            }))
            .map_err(|err| err.to_string())
            .and_then(|scenario| scenario.dedup_window())
        };
        assert_eq!(
            parse(serde_json::json!({})),
            Ok(Some(Window::new(
                std::time::Duration::from_secs(86_400),
                TimeSource::Record
            )))
        );
        assert_eq!(
            parse(serde_json::json!({"keep": "90s", "time": "event"})),
            Ok(Some(Window::new(
                std::time::Duration::from_secs(90),
                TimeSource::Event
            )))
        );
        for bad in [
            serde_json::json!({"keep": "7 weeks"}),
            serde_json::json!({"time": "wall"}),
            serde_json::json!({"kept": "7d"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
