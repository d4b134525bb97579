//! Restart time: the `projector` binary started on a data directory holding
//! a large view, killed with SIGKILL once ready, and started again; the
//! figure is the time from process start to `/readyz` answering 200.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::input::Workload;

/// The figures of the restart run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restart {
    /// Rows in the view.
    pub rows: u64,
    /// First start on the directory (module cached, view present), to
    /// ready, in seconds.
    pub first_start_seconds: f64,
    /// Start after a SIGKILL of the ready process, to ready, in seconds.
    pub after_kill_seconds: f64,
}

/// Where the `projector` binary is: `explicit`, else next to this one.
///
/// # Errors
/// When it is not there.
pub fn projector_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("projector"),
    };
    if !path.exists() {
        bail!(
            "the projector binary is not at {}: build it (cargo build --release -p projector) or pass --projector",
            path.display()
        );
    }
    Ok(path)
}

/// Start `projector`, SIGKILL it once ready, start it again; `dir` holds a
/// view of `workload` with `rows` rows made by `crate::memory::run`.
///
/// # Errors
/// When the process does not become ready within 120 s.
pub fn run(
    projector: &Path,
    bootstrap: &str,
    workload: Workload,
    rows: u64,
    dir: &Path,
) -> anyhow::Result<Restart> {
    let (first, child) = start_until_ready(projector, bootstrap, workload, dir, 1)?;
    kill(child)?;
    let (after_kill, child) = start_until_ready(projector, bootstrap, workload, dir, 2)?;
    kill(child)?;
    Ok(Restart {
        rows,
        first_start_seconds: first.as_secs_f64(),
        after_kill_seconds: after_kill.as_secs_f64(),
    })
}

fn kill(mut child: Child) -> anyhow::Result<()> {
    child.kill().context("SIGKILL")?;
    child.wait().context("reaping the killed process")?;
    Ok(())
}

fn start_until_ready(
    projector: &Path,
    bootstrap: &str,
    workload: Workload,
    dir: &Path,
    attempt: u32,
) -> anyhow::Result<(Duration, Child)> {
    let port = projector_tansu::free_port()?;
    let view = crate::views::config(workload)?;
    // A group per start, without static membership: tansu 0.6 never
    // expires the member of a killed process, and it revokes a static
    // member's partitions at every session timeout, so the restart cannot
    // be taken in the same group on it. A view resumes from its store, not
    // from group offsets, so the figure is the same.
    let config = format!(
        "data_dir = {dir:?}\nstatic_membership = false\n[http]\nbind = \"127.0.0.1:{port}\"\n[broker]\nbootstrap_servers = \"{bootstrap}\"\n\n\
         [[views]]\nname = \"{}\"\nmodule = {:?}\ntopics = [\"{}\"]\ngroup = \"bench-restart-{}-{attempt}\"\n",
        view.name,
        view.module,
        workload.name(),
        std::process::id()
    );
    let config_path = dir.join("projector.toml");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.join(format!("run-{attempt}.log")))?;
    let started = Instant::now();
    let child = Command::new(projector)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", projector.display()))?;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if ureq::get(&ready)
            .call()
            .is_ok_and(|response| response.status() == 200)
        {
            return Ok((started.elapsed(), child));
        }
        if started.elapsed() > Duration::from_secs(120) {
            let mut child = child;
            let _ = child.kill();
            bail!(
                "projector was not ready within 120 s; its log is in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
