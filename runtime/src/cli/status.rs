//! `projector status`: ask a running runtime (its `/v1/views`) how each view
//! and partition stands: checkpoint, high watermark, lag, state, last error.

use std::time::Duration;

use clap::Args;

use super::Output;
use super::client::{ApiArgs, ApiClient, json_failure};
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

/// The counters as `applied N, name N, ...`: `applied` first, then the
/// others that are not zero, in name order.
fn counters_line(counters: &serde_json::Value) -> String {
    let Some(counters) = counters.as_object() else {
        return counters.to_string();
    };
    let applied = counters
        .get("applied")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let mut parts = vec![format!("applied {applied}")];
    parts.extend(
        counters
            .iter()
            .filter(|(name, value)| *name != "applied" && value.as_u64().is_some_and(|n| n > 0))
            .map(|(name, value)| format!("{} {value}", name.replace('_', " "))),
    );
    parts.join(", ")
}

/// Run `projector status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let report: ViewsReport = json_failure(
        ApiClient::new(&args.api).and_then(|client| client.get_json("/v1/views")),
        args.output,
    )?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for view in &report.views {
                println!(
                    "view {} ({}), module {}",
                    view.name, view.state, view.module_hash
                );
                println!("  topics {}, group {}", view.topics.join(", "), view.group);
                println!(
                    "  rows {}, shards {}, indexes {}",
                    view.rows,
                    view.shards,
                    if view.indexes.is_empty() {
                        "none".to_owned()
                    } else {
                        view.indexes.join(", ")
                    }
                );
                if let Some(restoring) = &view.restoring {
                    println!(
                        "  restoring from its changelog: {} of about {} records, {:.1} MB, {:.0} records/s{}",
                        restoring.records,
                        restoring.total,
                        restoring.bytes as f64 / 1e6,
                        restoring.records_per_second,
                        restoring
                            .eta_seconds
                            .map_or_else(String::new, |eta| format!(", about {eta:.0} s left"))
                    );
                }
                if let Some(deployment) = &view.deployment {
                    println!("  {}", deployment_line(deployment));
                }
                if let Some(standby) = &view.standby {
                    println!(
                        "  standby copy (follows its changelog, applies nothing): lag {} records{}",
                        standby.lag,
                        standby
                            .last_error
                            .as_ref()
                            .map_or_else(String::new, |err| format!(", retrying: {err}"))
                    );
                }
                if let Some(standbys) = &view.standbys {
                    let heard: Vec<String> = standbys
                        .heard
                        .iter()
                        .map(|s| format!("{} (lag {})", s.name, s.lag))
                        .collect();
                    println!(
                        "  standbys: {} of {} expected heard{}",
                        standbys.heard.len(),
                        standbys.expected,
                        if heard.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", heard.join(", "))
                        }
                    );
                }
                println!("  events since start: {}", counters_line(&view.counters));
                if view.identities_remembered > 0 || view.dedup_watermark_ms.is_some() {
                    println!(
                        "  dedup: {} identities remembered, watermark {}",
                        view.identities_remembered,
                        view.dedup_watermark_ms.map_or_else(
                            || "-".to_owned(),
                            |ms| format!("{ms} ms since the epoch")
                        )
                    );
                }
                if view.dead_letters_held > 0 {
                    println!(
                        "  dead letters held (not yet acknowledged by the dead-letter topic): {}",
                        view.dead_letters_held
                    );
                }
                if view.quarantined_subjects > 0 {
                    println!(
                        "  quarantined: {} subjects, {} records held (`projector view quarantine {}` lists them, `projector view release {}` applies them)",
                        view.quarantined_subjects, view.quarantined_records, view.name, view.name
                    );
                }
                if let Some(unassigned) = view.unassigned_ms {
                    let verdict = if unassigned >= view.max_unassigned_ms {
                        "NOT READY: another member of the group holds its partitions"
                    } else {
                        "within the bound"
                    };
                    println!(
                        "  owns no partition of its topics for {:.1} s (bound {:.1} s): {verdict}",
                        Duration::from_millis(unassigned).as_secs_f64(),
                        Duration::from_millis(view.max_unassigned_ms).as_secs_f64(),
                    );
                }
                println!(
                    "  {:<24} {:>12} {:>14} {:>10} {:>6}  {:<8} last error",
                    "partition", "checkpoint", "high watermark", "lag", "gaps", "state"
                );
                let show =
                    |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
                for p in &view.partitions {
                    println!(
                        "  {:<24} {:>12} {:>14} {:>10} {:>6}  {:<8} {}",
                        format!("{}/{}", p.topic, p.partition),
                        show(p.checkpoint),
                        show(p.high_watermark),
                        show(p.lag),
                        p.gaps,
                        p.state,
                        p.last_error.as_deref().unwrap_or("-")
                    );
                    if !p.stopped_shards.is_empty() {
                        let shards: Vec<String> =
                            p.stopped_shards.iter().map(u32::to_string).collect();
                        println!(
                            "  {:<24} stopped shards: {} (the others go on)",
                            "",
                            shards.join(", ")
                        );
                    }
                    if let Some(gap) = p.last_gap {
                        println!(
                            "  {:<24} last gap: offsets {} to {} hold no record",
                            "", gap.from, gap.to
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// A view's versions in one line: the live one, the previous one, and a
/// deploy's shadow with its progress.
fn deployment_line(deployment: &crate::deploy::DeploymentReport) -> String {
    let mut line = format!("version {} live", deployment.live.version);
    if let Some(previous) = &deployment.previous {
        line.push_str(&format!(
            ", version {} kept for a rollback",
            previous.version
        ));
    }
    if let Some(shadow) = &deployment.shadow {
        match &shadow.failed {
            Some(reason) => line.push_str(&format!(
                "; the deploy of version {} failed: {reason}",
                shadow.version
            )),
            None => line.push_str(&format!(
                "; deploying version {} ({}): {} of {} records replayed, lag {}, {:.0} records/s, {} failures",
                shadow.version,
                shadow.state,
                shadow.replayed,
                shadow.total,
                shadow
                    .lag
                    .map_or_else(|| "unknown".to_owned(), |lag| lag.to_string()),
                shadow.records_per_second,
                shadow.failures
            )),
        }
    }
    line
}
