//! `projector status`: ask a running runtime (its `/v1/views`) how each view
//! and partition stands: checkpoint, high watermark, lag, state, last error.

use clap::Args;

use super::Output;
use super::client::{ApiArgs, ApiClient};
use crate::http::ViewsReport;

/// Arguments of `projector status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where the API is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Run `projector status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let report: ViewsReport = ApiClient::new(&args.api)?.get_json("/v1/views")?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for view in &report.views {
                println!(
                    "view {} ({}), module {}",
                    view.name, view.state, view.module_hash
                );
                println!("  topics {}, group {}", view.topics.join(", "), view.group);
                println!("  rows {}, indexes {}", view.rows, view.indexes.join(", "));
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
