//! What the machine is, and what a process costs: processors, memory, peak
//! resident memory, disk use.

use std::path::Path;

/// The machine the figures come from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// Processors available (`nproc`).
    pub nproc: usize,
    /// Total memory, in GiB.
    pub memory_gib: f64,
    /// The processor model.
    pub cpu: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let memory_gib = field_kib(&meminfo, "MemTotal:").unwrap_or(0) as f64 / 1024.0 / 1024.0;
        Self {
            nproc: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            memory_gib,
            cpu: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split(':').nth(1))
                .map_or_else(String::new, |model| model.trim().to_owned()),
        }
    }
}

/// A `Name:   1234 kB` field of a `/proc` file, in KiB.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| field_kib(&status, "VmHWM:"))
        .unwrap_or(0)
}

/// Bytes of the files under `dir`, as allocated on disk.
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_this_process_has_a_peak() {
        assert_eq!(field_kib("VmHWM:\t  2048 kB\n", "VmHWM:"), Some(2048));
        assert!(peak_rss_kib() > 0);
        assert!(Machine::this().nproc >= 1);
    }
}
