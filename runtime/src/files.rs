//! Small files the CLI keeps in the projector home (secrets, the stored
//! broker): written atomically with a given mode, and a file error that
//! names what was being done and where.
//!
//! # What it promises
//!
//! - [`write_atomically`] leaves the old content or the new one, never a
//!   part: it writes and syncs a temporary file beside the target, created
//!   with `mode` (not widened by the umask's default), then renames it over
//!   the target; on failure the temporary is removed.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct FileError {
    /// What was being done.
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The error.
    #[source]
    pub source: std::io::Error,
}

/// A mapper of an I/O error of `action` on `path` to a [`FileError`].
pub fn failed(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_owned();
    move |source| FileError {
        action,
        path,
        source,
    }
}

/// Write `bytes` to `path` atomically, the file created with `mode`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy());
    let temporary = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let written = create_with_mode(&temporary, mode)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(failed("write", &temporary))
        .and_then(|()| std::fs::rename(&temporary, path).map_err(failed("rename", path)));
    if written.is_err() {
        std::fs::remove_file(&temporary).ok();
    }
    written
}

#[cfg(unix)]
fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("projector-files-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.toml");
        write_atomically(&path, b"old", 0o600).unwrap();
        write_atomically(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.toml"]);
        // Into a directory that does not exist: an error naming the step.
        let err = write_atomically(&dir.join("missing/state.toml"), b"x", 0o600).unwrap_err();
        assert_eq!(err.action, "write");
        std::fs::remove_dir_all(&dir).ok();
    }
}
