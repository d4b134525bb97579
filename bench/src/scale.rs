//! How cost grows with the view: throughput, peak resident memory and disk
//! size at several numbers of distinct subjects. Each scale runs in a child
//! process of its own (`projector-bench scale`), so that its peak memory is
//! its own.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::input::Workload;
use crate::memory::EngineRun;
use crate::views::Runner;

/// The figures of one scale.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Scale {
    /// Distinct subjects (rows).
    pub subjects: u64,
    /// Events applied (each subject created once, then updates).
    pub events: u64,
    /// Events per second through the engine-only pipeline.
    pub events_per_second: f64,
    /// Rows in the view at the end.
    pub rows: u64,
    /// Peak resident memory of the process, in MiB.
    pub peak_rss_mib: f64,
    /// Size of the data directory (store and compiled module), in MiB.
    pub disk_mib: f64,
}

/// The events a scale of `subjects` applies: every subject once, and at
/// least `min_events` in all.
pub fn events_for(subjects: u64, min_events: u64) -> u64 {
    min_events.max(subjects + subjects / 4)
}

/// Run one scale in a child process, keeping its view in `dir`.
///
/// # Errors
/// When the child fails or reports nothing.
pub fn measure(subjects: u64, events: u64, dir: &Path) -> anyhow::Result<Scale> {
    let exe = std::env::current_exe().context("the benchmark's own path")?;
    let output = Command::new(exe)
        .args(["scale", "--subjects", &subjects.to_string()])
        .args(["--events", &events.to_string()])
        .arg("--dir")
        .arg(dir)
        .output()
        .context("starting the scale child")?;
    if !output.status.success() {
        bail!(
            "the scale child for {subjects} subjects failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the scale child printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("the scale child printed {line:?}"))
}

/// The child's side: apply, then report as one JSON line on stdout.
///
/// # Errors
/// When the run fails.
pub fn child(subjects: u64, events: u64, dir: &Path) -> anyhow::Result<()> {
    let run: EngineRun = crate::memory::run(
        Workload::Customers,
        Runner::Wasm,
        events,
        subjects,
        1,
        false,
        dir,
    )?;
    #[allow(clippy::cast_precision_loss)]
    let scale = Scale {
        subjects,
        events,
        events_per_second: run.events_per_second,
        rows: run.rows,
        peak_rss_mib: crate::system::peak_rss_kib() as f64 / 1024.0,
        disk_mib: crate::system::disk_bytes(dir) as f64 / 1024.0 / 1024.0,
    };
    println!("{}", serde_json::to_string(&scale)?);
    Ok(())
}
