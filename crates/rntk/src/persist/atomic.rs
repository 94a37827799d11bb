//! Atomic file replacement: write a temporary file beside the target, flush it to
//! disk, then rename it over the target, so readers (and a crash at any point) see
//! either the old file or the new one, never a torn mix.

use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Io {
        file: path.display().to_string(),
        detail: format!("{what}: {e}"),
    }
}

/// The temporary file used while replacing `path`: same directory (so the rename
/// stays on one file system), hidden, unique per process and call.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::Io {
        file: path.display().to_string(),
        detail: "expected a path ending in a file name".into(),
    })?;
    let tmp = format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    );
    Ok(path.with_file_name(tmp))
}

/// Replace (or create) `path` with `bytes` atomically. On failure the previous file,
/// if any, is untouched and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, "cannot create", e))?;
        f.write_all(bytes)
            .map_err(|e| io_err(&tmp, "cannot write", e))?;
        f.sync_all().map_err(|e| io_err(&tmp, "cannot flush", e))?;
        fs::rename(&tmp, path).map_err(|e| io_err(path, "cannot replace", e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    // Make the rename itself durable (best effort: not every platform can open a
    // directory for syncing).
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
