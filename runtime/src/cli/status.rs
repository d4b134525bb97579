//! `projector status`: ask a running runtime (its `/v1/views`) how each view
//! and partition stands: checkpoint, high watermark, lag, state, last error.

use anyhow::Context;
use clap::Args;

use super::Output;
use crate::http::ViewsReport;

/// Arguments of `projector status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The runtime's HTTP address (its `[http] bind`).
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub api: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Run `projector status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let url = format!("{}/v1/views", args.api.trim_end_matches('/'));
    let mut response = ureq::get(&url).call().with_context(|| {
        format!(
            "cannot reach projector at {}: is `projector run` running there?",
            args.api
        )
    })?;
    let report: ViewsReport = response
        .body_mut()
        .read_json()
        .with_context(|| format!("{url} did not answer with a view status"))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for view in &report.views {
                println!(
                    "view {} ({}), module {}",
                    view.name, view.state, view.module_hash
                );
                println!("  topics {}, group {}", view.topics.join(", "), view.group);
                println!("  counters {}", view.counters);
                println!(
                    "  {:<24} {:>12} {:>14} {:>10}  {:<8} last error",
                    "partition", "checkpoint", "high watermark", "lag", "state"
                );
                let show =
                    |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
                for p in &view.partitions {
                    println!(
                        "  {:<24} {:>12} {:>14} {:>10}  {:<8} {}",
                        format!("{}/{}", p.topic, p.partition),
                        show(p.checkpoint),
                        show(p.high_watermark),
                        show(p.lag),
                        p.state,
                        p.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    Ok(())
}
