//! `projector view deploy VIEW --module NEW.wasm`: a new module to a running
//! view without downtime, over the runtime's API. The runtime checks the
//! module, builds a shadow of the view with it (replaying the view's topics
//! from their earliest offsets) while the live view serves, and swaps it in
//! once it has caught up. The command shows the replay's progress until
//! the swap (`--detach` returns at once; `--watch` attaches again), and
//! exits 1 when the shadow fails.
//!
//! `projector view swap`, `rollback` and `drop-previous` finish what a
//! deploy leaves open: swap in a shadow deployed with `--no-swap`, swap the
//! previous version back, free the previous version's rows.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::Output;
use super::client::{ApiArgs, ApiClient, encode, json_failure};
use crate::deploy::{DeploymentReport, Dropped};

/// What `projector view deploy` was asked.
#[derive(Debug, Clone, Copy)]
pub struct DeployRequest<'a> {
    /// The module to deploy; `None` attaches to (`--watch`) or cancels the
    /// deploy under way.
    pub module: Option<&'a Path>,
    /// Stop once the shadow has caught up (`--no-swap`).
    pub no_swap: bool,
    /// Return once the shadow is building (`--detach`).
    pub detach: bool,
    /// Cancel the deploy under way (`--cancel`).
    pub cancel: bool,
    /// Build even where a topic's earliest records are gone.
    pub allow_partial_history: bool,
}

/// Run `projector view deploy`.
pub fn deploy(
    name: &str,
    request: DeployRequest<'_>,
    api: &ApiArgs,
    output: Output,
) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let base = format!("/v1/views/{}/deploy", encode(name));
    if request.cancel {
        let report: DeploymentReport =
            json_failure(client.post_json(&format!("{base}/cancel")), output)?;
        return print(&report, output, || {
            format!(
                "view {name}: deploy cancelled; version {} stays live",
                report.live.version
            )
        });
    }
    let report: DeploymentReport = match request.module {
        Some(module) => {
            let bytes = std::fs::read(module)
                .with_context(|| format!("cannot read {}", module.display()))?;
            let swap = if request.no_swap { "manual" } else { "auto" };
            let path = format!(
                "{base}?swap={swap}&allow_partial_history={}",
                request.allow_partial_history
            );
            let report: DeploymentReport =
                json_failure(client.post(&path, "application/wasm", &bytes), output)?;
            if output == Output::Text
                && let Some(shadow) = &report.shadow
            {
                eprintln!(
                    "view {name}: building version {} (module {}) beside live version {}",
                    shadow.version,
                    short(&shadow.module_hash),
                    report.live.version
                );
            }
            report
        }
        None => json_failure(client.get_json(&base), output)?,
    };
    let Some(shadow) = report.shadow.as_ref().filter(|s| s.failed.is_none()) else {
        if let Some(failed) = report.shadow.as_ref().and_then(|s| s.failed.as_ref()) {
            if output == Output::Json {
                println!("{}", serde_json::to_string(&report)?);
            }
            anyhow::bail!("view {name}: the last deploy failed: {failed}");
        }
        return print(&report, output, || {
            format!(
                "view {name}: no deploy under way; version {} is live",
                report.live.version
            )
        });
    };
    if request.detach {
        return print(&report, output, || {
            format!(
                "view {name}: version {} is building; follow it with `projector view deploy --watch {name}`",
                shadow.version
            )
        });
    }
    follow(&client, name, shadow.version, output)
}

/// Show the shadow `version`'s progress until it is swapped in, has caught
/// up (a manual swap), or fails.
fn follow(client: &ApiClient, name: &str, version: u32, output: Output) -> anyhow::Result<()> {
    let path = format!("/v1/views/{}/deploy", encode(name));
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} records ({per_sec}), ETA {eta}",
        )
        .map_err(|err| anyhow::anyhow!("the progress bar's template: {err}"))?
        .progress_chars("=> "),
    );
    if output == Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(format!("view {name}: replaying for version {version}"));
    let mut said = std::time::Instant::now();
    loop {
        let report: DeploymentReport = json_failure(client.get_json(&path), output)?;
        if report.live.version == version {
            bar.finish_and_clear();
            return print(&report, output, || {
                format!("view {name}: swapped; version {version} is live, every read sees it")
            });
        }
        let Some(shadow) = report.shadow.as_ref().filter(|s| s.version == version) else {
            bar.finish_and_clear();
            if output == Output::Json {
                println!("{}", serde_json::to_string(&report)?);
            }
            anyhow::bail!(
                "view {name}: version {version} is no longer being built (cancelled?); version {} is live",
                report.live.version
            );
        };
        if let Some(failed) = &shadow.failed {
            bar.finish_and_clear();
            if output == Output::Json {
                println!("{}", serde_json::to_string(&report)?);
            }
            anyhow::bail!(
                "view {name}: version {version} failed and was dropped; version {} stays live: {failed}",
                report.live.version
            );
        }
        bar.set_length(u64::try_from(shadow.total.max(shadow.replayed)).unwrap_or(0));
        bar.set_position(u64::try_from(shadow.replayed).unwrap_or(0));
        if shadow.state == "caught-up" && shadow.swap == crate::deploy::SwapMode::Manual {
            bar.finish_and_clear();
            return print(&report, output, || {
                format!(
                    "view {name}: version {version} has caught up (lag {}); swap it in with `projector view swap {name}`",
                    shadow.lag.unwrap_or_default()
                )
            });
        }
        if bar.is_hidden() && output == Output::Text && said.elapsed() >= Duration::from_secs(10) {
            said = std::time::Instant::now();
            eprintln!(
                "view {name}: version {version}: {} of {} records replayed, {:.0} records/s, lag {}",
                shadow.replayed,
                shadow.total,
                shadow.records_per_second,
                shadow
                    .lag
                    .map_or_else(|| "unknown".to_owned(), |lag| lag.to_string())
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Run `projector view swap`.
pub fn swap(name: &str, api: &ApiArgs, output: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let report: DeploymentReport = json_failure(
        client.post_json(&format!("/v1/views/{}/swap", encode(name))),
        output,
    )?;
    print(&report, output, || {
        format!(
            "view {name}: swapped; version {} is live",
            report.live.version
        )
    })
}

/// Run `projector view rollback`.
pub fn rollback(name: &str, api: &ApiArgs, output: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let report: DeploymentReport = json_failure(
        client.post_json(&format!("/v1/views/{}/rollback", encode(name))),
        output,
    )?;
    print(&report, output, || {
        format!(
            "view {name}: rolled back; version {} is live (version {} is kept: `projector view rollback {name}` again undoes this)",
            report.live.version,
            report
                .previous
                .as_ref()
                .map_or_else(|| "-".to_owned(), |p| p.version.to_string())
        )
    })
}

/// Run `projector view drop-previous`.
pub fn drop_previous(name: &str, api: &ApiArgs, output: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let dropped: Dropped = json_failure(
        client.post_json(&format!("/v1/views/{}/drop-previous", encode(name))),
        output,
    )?;
    print(&dropped, output, || {
        format!(
            "view {name}: version {} dropped, {} bytes of its rows freed; a rollback is no longer possible",
            dropped.version, dropped.bytes
        )
    })
}

/// Print `value` as JSON, or `text()` as a line.
fn print<T: serde::Serialize>(
    value: &T,
    output: Output,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(value)?),
        Output::Text => println!("{}", text()),
    }
    Ok(())
}

/// The first 12 characters of a module hash.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
