//! `projector query` and `projector watch`: read a running runtime's views
//! through its query API.
//!
//! - `projector query VIEW SUBJECT`: one row;
//! - `projector query VIEW [--prefix P]`: a page of rows (`--all` follows
//!   the pages to the end);
//! - `projector query VIEW --index NAME --eq VALUE`: rows by index value;
//! - `projector watch VIEW SUBJECT`: the row, then every change, until
//!   interrupted.
//!
//! Text output is pretty JSON for people; `--output json` prints one
//! compact JSON document per row or event, for scripts.

use std::io::{BufRead, BufReader, Write};

use anyhow::Context;
use clap::Args;

use super::Output;
use super::client::{ApiArgs, ApiClient, encode, json_failure};
use crate::http::{RowEntry, RowsPage};

/// Arguments of `projector query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The view.
    pub view: String,
    /// The subject of one row. Without it, rows are listed.
    pub subject: Option<String>,
    /// List rows whose index NAME has the value given by `--eq`.
    #[arg(long, value_name = "NAME", requires = "eq", conflicts_with_all = ["subject", "prefix"])]
    pub index: Option<String>,
    /// The index value to match.
    #[arg(long, value_name = "VALUE", requires = "index")]
    pub eq: Option<String>,
    /// List rows whose subject starts with this.
    #[arg(long, conflicts_with = "subject")]
    pub prefix: Option<String>,
    /// Start after this subject (the `next` of a previous page).
    #[arg(long, conflicts_with = "subject")]
    pub after: Option<String>,
    /// Rows per page (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Follow the pages to the end.
    #[arg(long, conflicts_with = "subject")]
    pub all: bool,
    /// Read-your-writes: wait until the view applied these records
    /// (`topic:partition:offset,...`, as `projector publish` prints).
    #[arg(long, value_name = "TOKEN")]
    pub min_offsets: Option<String>,
    /// How long to wait for `--min-offsets`, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Where the API is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Arguments of `projector watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The view.
    pub view: String,
    /// The subject to watch.
    pub subject: String,
    /// Where the API is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

fn consistency(min_offsets: Option<&str>, timeout_ms: Option<u64>) -> Vec<String> {
    let mut query = Vec::new();
    if let Some(token) = min_offsets {
        query.push(format!("min_offsets={}", encode(token)));
    }
    if let Some(timeout) = timeout_ms {
        query.push(format!("timeout_ms={timeout}"));
    }
    query
}

fn with_query(path: String, query: &[String]) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Run `projector query`.
pub fn query(args: &QueryArgs) -> anyhow::Result<()> {
    json_failure(query_inner(args), args.output)
}

fn query_inner(args: &QueryArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api)?;
    let view = encode(&args.view);
    let read = consistency(args.min_offsets.as_deref(), args.timeout_ms);
    if let Some(subject) = &args.subject {
        let path = with_query(format!("/v1/views/{view}/rows/{}", encode(subject)), &read);
        let row: serde_json::Value = client.get_json(&path)?;
        match args.output {
            Output::Json => println!("{row}"),
            Output::Text => println!("{}", serde_json::to_string_pretty(&row)?),
        }
        return Ok(());
    }
    let mut after = args.after.clone();
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut query = read.clone();
        query.push(format!("limit={}", args.limit));
        if let (Some(index), Some(eq)) = (&args.index, &args.eq) {
            query.push(format!("index={}&eq={}", encode(index), encode(eq)));
        }
        if let Some(prefix) = &args.prefix {
            query.push(format!("prefix={}", encode(prefix)));
        }
        if let Some(after) = &after {
            query.push(format!("after={}", encode(after)));
        }
        let page: RowsPage =
            client.get_json(&with_query(format!("/v1/views/{view}/rows"), &query))?;
        for entry in &page.rows {
            print_row(&mut stdout, entry, args.output)?;
        }
        match (page.next, args.all) {
            (Some(next), true) => after = Some(next),
            (Some(next), false) => {
                eprintln!("more rows: continue with --after {next:?} (or pass --all)");
                break;
            }
            (None, _) => break,
        }
    }
    Ok(())
}

fn print_row(out: &mut impl Write, entry: &RowEntry, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string(entry)?)?,
        Output::Text => {
            let row: serde_json::Value = serde_json::from_str(entry.row.get())?;
            writeln!(
                out,
                "{} (version {}):\n{}",
                entry.subject,
                entry.version,
                serde_json::to_string_pretty(&row)?
            )?;
        }
    }
    Ok(())
}

/// Run `projector watch`: print each event until the stream ends or the
/// process is interrupted.
pub fn watch(args: &WatchArgs) -> anyhow::Result<()> {
    json_failure(watch_inner(args), args.output)
}

fn watch_inner(args: &WatchArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api)?;
    let path = format!(
        "/v1/views/{}/rows/{}/watch",
        encode(&args.view),
        encode(&args.subject)
    );
    let response = client.get(&path)?;
    let reader = BufReader::new(response.into_body().into_reader());
    let mut stdout = std::io::stdout().lock();
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.context("the watch stream broke")?;
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data:") {
            let data: serde_json::Value = serde_json::from_str(data.trim())
                .with_context(|| format!("the server sent an event that is not JSON: {data}"))?;
            if event == "error" {
                anyhow::bail!(
                    "the watch stream ended with an error: {}",
                    data["error"].as_str().unwrap_or("(no message)")
                );
            }
            match args.output {
                Output::Json => {
                    let mut object = serde_json::Map::new();
                    object.insert("event".to_owned(), event.clone().into());
                    if let serde_json::Value::Object(fields) = data {
                        object.extend(fields);
                    }
                    writeln!(stdout, "{}", serde_json::Value::Object(object))?;
                }
                Output::Text => {
                    let version = data["version"]
                        .as_u64()
                        .map_or_else(|| "no row".to_owned(), |v| format!("version {v}"));
                    writeln!(
                        stdout,
                        "{event} {} ({version}):\n{}",
                        data["subject"].as_str().unwrap_or_default(),
                        serde_json::to_string_pretty(&data["row"])?
                    )?;
                }
            }
            stdout.flush()?;
        }
    }
    Ok(())
}
