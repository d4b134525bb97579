//! `projector test MODULE.wasm`: the language-neutral test of a built
//! component, through the real engine and the SDK's mock host (rows and
//! checkpoints kept as the runtime keeps them).
//!
//! - `--events EVENTS.jsonl`: CloudEvents in structured-mode JSON, one per
//!   line (blank lines and `#` comments skipped), each with optional
//!   `topic`, `partition`, `offset` and `key` beside its attributes. Prints
//!   every failure with its class and the resulting rows; with `--expect
//!   ROWS.json` (an object of subject → row) compares the rows as JSON and
//!   exits with status 1 on a difference, showing it.
//! - `--scenarios PATH...`: scenario files (`docs/scenarios.md`), the same
//!   files the SDKs' mock hosts run against the source; exits with status 1
//!   when a step fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use projector_sdk::dedup::Window;
use projector_sdk::testing::{EventBuilder, MockHost, Outcome};
use serde_json::Value;

use super::Output;
use super::compile::{self, CompileArgs};
use crate::engine::testing::WasmApplier;
use crate::engine::{Module, Retry};
use crate::scenario;

/// Arguments of `projector test`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["events", "scenarios"])))]
pub struct TestArgs {
    /// The component (`.wasm`) to test.
    pub module: PathBuf,
    /// CloudEvents to apply, structured-mode JSON, one per line. A line may
    /// say where its record goes (`topic`, `partition`, `offset`, `key`)
    /// and what it should do (`expect`: `"applied"`, `"duplicate"`,
    /// `"duplicate-id"` or `{"failed": CODE}`); the test fails when one does
    /// not.
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub events: Option<PathBuf>,
    /// The rows the events must leave: a JSON object of subject to row.
    #[arg(long, value_name = "ROWS.json", requires = "events")]
    pub expect: Option<PathBuf>,
    /// Scenario files, or directories of them (`*.json`).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// Use the Kafka key as the subject of events that have none.
    #[arg(long)]
    pub subject_from_key: bool,
    /// Deduplicate by CloudEvents identity as a view with `dedup = { keep
    /// = KEEP }` does (default 24h): a copy of an event the subject applied
    /// (same source and id) within the window is not applied. A scenario
    /// with `dedup` of its own keeps it.
    #[arg(long, value_name = "KEEP", num_args = 0..=1, default_missing_value = projector_sdk::dedup::Window::DEFAULT_KEEP)]
    pub dedup: Option<String>,
    /// With `--dedup`, the time events are measured by: `record` (the
    /// record's timestamp) or `event` (the CloudEvents `time`).
    #[arg(
        long,
        value_name = "record|event",
        default_value = "record",
        requires = "dedup"
    )]
    pub dedup_time: String,
    /// How the component is compiled, and where its code is cached.
    #[command(flatten)]
    pub compile: CompileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Attributes of a line that are not CloudEvents extensions: where the
/// record goes, and what it should do (`expect`, as in scenario files).
const PLACEMENT: [&str; 5] = ["topic", "partition", "offset", "key", "expect"];
const KNOWN: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

/// The fields of line `at` of an events file: a JSON object.
fn fields_of(line: &str, at: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    match serde_json::from_str(line).with_context(|| format!("{at}: not a JSON object"))? {
        Value::Object(fields) => Ok(fields),
        _ => anyhow::bail!("{at}: not a JSON object"),
    }
}

/// The event of one line of an events file, from its `fields`.
fn event_of(fields: &serde_json::Map<String, Value>, at: &str) -> anyhow::Result<EventBuilder> {
    let text = |name: &str| -> anyhow::Result<Option<String>> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => anyhow::bail!("{at}: `{name}` must be a string, not {other}"),
        }
    };
    let ty = text("type")?.with_context(|| format!("{at}: the event has no `type`"))?;
    let mut builder = EventBuilder::new(ty);
    if let Some(id) = text("id")? {
        builder = builder.id(id);
    }
    if let Some(source) = text("source")? {
        builder = builder.source(source);
    }
    if let Some(specversion) = text("specversion")? {
        builder = builder.specversion(specversion);
    }
    if let Some(subject) = text("subject")? {
        builder = builder.subject(subject);
    }
    if let Some(time) = text("time")? {
        builder = builder.time(time);
    }
    if let Some(schema) = text("dataschema")? {
        builder = builder.dataschema(schema);
    }
    let content_type = text("datacontenttype")?;
    match (fields.get("data"), text("data_base64")?) {
        (Some(_), Some(_)) => anyhow::bail!("{at}: both `data` and `data_base64`"),
        (Some(Value::Null) | None, None) => {}
        (Some(data), None) => {
            // As the runtime decodes a structured-mode event: JSON data is
            // its JSON text, a string with another content type its text.
            let json = content_type.as_deref().is_none_or(|t| t.contains("json"));
            let bytes = match data {
                Value::String(text) if !json => text.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            builder = builder.data(
                content_type.unwrap_or_else(|| "application/json".to_owned()),
                bytes,
            );
        }
        (_, Some(encoded)) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .with_context(|| format!("{at}: `data_base64` is not base64"))?;
            builder = builder.data(
                content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes,
            );
        }
    }
    if let Some(topic) = text("topic")? {
        builder = builder.topic(topic);
    }
    let integer = |name: &str| -> anyhow::Result<Option<i64>> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .with_context(|| format!("{at}: `{name}` must be an integer")),
        }
    };
    if let Some(partition) = integer("partition")? {
        builder = builder.partition(
            i32::try_from(partition).with_context(|| format!("{at}: `partition` out of range"))?,
        );
    }
    if let Some(offset) = integer("offset")? {
        builder = builder.offset(offset);
    }
    if fields.contains_key("key") {
        builder = builder.key(text("key")?.as_deref().map(str::as_bytes));
    }
    for (name, value) in fields {
        if KNOWN.contains(&name.as_str()) || PLACEMENT.contains(&name.as_str()) {
            continue;
        }
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        builder = builder.extension(name.clone(), value);
    }
    Ok(builder)
}

/// What line `at` (its `fields`) says its event should do: its `expect`, as in scenario
/// files (`"applied"`, `{"failed": "rejected"}`, ...).
fn expectation_of(
    fields: &serde_json::Map<String, Value>,
    at: &str,
) -> anyhow::Result<Option<scenario::Expect>> {
    fields
        .get("expect")
        .map(|expect| {
            serde_json::from_value(expect.clone()).map_err(|_| {
                anyhow::anyhow!(
                    "{at}: `expect` must be \"applied\", \"duplicate\", \"duplicate-id\" or {{\"failed\": CODE}}, not {expect}"
                )
            })
        })
        .transpose()
}

/// A mock host over a fresh instance of `module`. Transient failures are
/// retried as a view retries them by default, so a deadline missed once on
/// a busy machine is not reported as the component's failure; an endless
/// loop still is, after the same three attempts the runtime makes.
fn host(
    module: &Arc<Module>,
    subject_from_key: bool,
    dedup: Option<Window>,
) -> MockHost<WasmApplier> {
    let host = MockHost::new(WasmApplier::new(module.instance()).with_retry(Retry::default()))
        .with_subject_from_key(subject_from_key);
    match dedup {
        Some(window) => host.with_dedup(window),
        None => host,
    }
}

impl TestArgs {
    /// The window `--dedup` asks for, checked.
    fn dedup(&self) -> anyhow::Result<Option<Window>> {
        self.dedup
            .as_ref()
            .map(|keep| {
                let keep = projector_sdk::dedup::parse_keep(keep)
                    .map_err(|err| anyhow::anyhow!("--dedup: {err}"))?;
                let time = projector_sdk::dedup::TimeSource::parse(&self.dedup_time)
                    .map_err(|err| anyhow::anyhow!("--dedup-time: {err}"))?;
                Ok(Window::new(keep, time))
            })
            .transpose()
    }
}

fn run_events(args: &TestArgs, module: &Arc<Module>, path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read events {}", path.display()))?;
    let mut host = host(module, args.subject_from_key, args.dedup()?);
    let mut failures = Vec::new();
    let mut unexpected = Vec::new();
    let mut applied = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), index + 1);
        let fields = fields_of(line, &at)?;
        let expect = expectation_of(&fields, &at)?;
        let outcome = host.publish(event_of(&fields, &at)?);
        if let Err(reason) = scenario::check(&outcome, expect.as_ref()) {
            unexpected.push(format!("line {}: {reason}", index + 1));
        }
        match outcome {
            Outcome::Applied { .. } => applied += 1,
            Outcome::Duplicate { origin, next_offset } => failures.push(serde_json::json!({
                "line": index + 1,
                "origin": format!("{}/{}@{}", origin.topic, origin.partition, origin.offset),
                "class": "duplicate",
                "message": format!("at or below the partition's next offset {next_offset}: not applied again"),
            })),
            Outcome::DuplicateId { origin, subject, .. } => failures.push(serde_json::json!({
                "line": index + 1,
                "origin": format!("{}/{}@{}", origin.topic, origin.partition, origin.offset),
                "class": "duplicate-id",
                "message": format!("a copy of an event {subject:?} applied (same source and id) within the dedup window: not applied"),
            })),
            Outcome::Failed(failure) => failures.push(serde_json::json!({
                "line": index + 1,
                "class": failure.code(),
                "message": failure.to_string(),
            })),
        }
    }
    let rows: BTreeMap<String, Value> = host
        .rows()
        .map(|(subject, row)| {
            (
                subject.to_owned(),
                serde_json::from_str(row).unwrap_or(Value::String(row.to_owned())),
            )
        })
        .collect();
    let difference = match &args.expect {
        None => None,
        Some(expect) => {
            let expected: BTreeMap<String, Value> = serde_json::from_str(
                &std::fs::read_to_string(expect)
                    .with_context(|| format!("cannot read {}", expect.display()))?,
            )
            .with_context(|| {
                format!("{}: not a JSON object of subject to row", expect.display())
            })?;
            let mut lines = Vec::new();
            for (subject, row) in &expected {
                match rows.get(subject) {
                    None => lines.push(format!("- {subject}: expected {row}, but it has no row")),
                    Some(actual) if actual != row => {
                        lines.push(format!(
                            "~ {subject}: expected {row}\n           but got  {actual}"
                        ));
                    }
                    Some(_) => {}
                }
            }
            for (subject, row) in &rows {
                if !expected.contains_key(subject) {
                    lines.push(format!("+ {subject}: not expected, but the row is {row}"));
                }
            }
            Some(lines)
        }
    };
    let passed = difference.as_ref().is_none_or(Vec::is_empty) && unexpected.is_empty();
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "applied": applied,
                "failures": failures,
                "unexpected": unexpected,
                "rows": rows,
                "difference": difference,
                "passed": passed,
            })
        ),
        Output::Text => {
            println!("{applied} events applied, {} not", failures.len());
            for failure in &failures {
                println!(
                    "  line {}: {}: {}",
                    failure["line"],
                    failure["class"].as_str().unwrap_or_default(),
                    failure["message"].as_str().unwrap_or_default()
                );
            }
            println!("rows:");
            for (subject, row) in &rows {
                println!("  {subject}: {row}");
            }
            for line in &unexpected {
                println!("not as the events file expects: {line}");
            }
            if let Some(lines) = &difference {
                if lines.is_empty() {
                    println!("the rows are as expected");
                } else {
                    println!(
                        "the rows differ from {}:",
                        args.expect
                            .as_ref()
                            .map_or_else(String::new, |p| p.display().to_string())
                    );
                    for line in lines {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    Ok(passed)
}

fn run_scenarios(args: &TestArgs, module: &Arc<Module>) -> anyhow::Result<bool> {
    let mut passed = true;
    let mut count = 0;
    let dedup = args.dedup()?;
    for path in scenario::files(&args.scenarios)? {
        for one in scenario::load(&path)? {
            count += 1;
            let window = one
                .dedup_window()
                .map_err(|reason| scenario::ScenarioError::File {
                    path: path.clone(),
                    reason,
                })?
                .or(dedup);
            let mut host = host(
                module,
                one.subject_from_key || args.subject_from_key,
                window,
            );
            match scenario::run(&one, &mut host) {
                Ok(()) => println!("ok      {}: {}", path.display(), one.scenario),
                Err(err) => {
                    passed = false;
                    println!("FAILED  {}: {err}", path.display());
                }
            }
        }
    }
    anyhow::ensure!(count > 0, "no scenario found in {:?}", args.scenarios);
    let noun = if count == 1 { "scenario" } else { "scenarios" };
    println!(
        "{count} {noun} {}",
        if passed { "passed" } else { "run, some failed" }
    );
    Ok(passed)
}

/// Run `projector test`.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.module)
        .with_context(|| format!("cannot read module {}", args.module.display()))?;
    let (_engine, module) =
        compile::load(&args.compile, &args.module.display().to_string(), &bytes)?;
    let mut passed = true;
    if let Some(events) = &args.events {
        passed &= run_events(args, &module, events)?;
    }
    if !args.scenarios.is_empty() {
        passed &= run_scenarios(args, &module)?;
    }
    anyhow::ensure!(passed, "the component does not do what the test expects");
    Ok(())
}
