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

/// The target and process id of a temporary file name made by [`write_atomic`]
/// (`.NAME.tmp-PID-N` → `("NAME", PID)`), if it is one.
pub fn parse_temp_name(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (target, tail) = rest.rsplit_once(".tmp-")?;
    let (pid, n) = tail.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if target.is_empty() || !digits(pid) || !digits(n) {
        return None;
    }
    Some((target, pid.parse().ok()?))
}

/// Whether process `pid` is running (`None`: cannot tell on this platform).
fn process_alive(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") {
        Some(Path::new(&format!("/proc/{pid}")).exists())
    } else {
        None
    }
}

/// Remove the temporary files a killed writer left beside targets in `dir`: those
/// whose target name `keep` accepts and whose writer is gone (with `any_writer`,
/// every one: the caller holds a lock that no other writer can hold). Returns how
/// many were removed.
pub fn remove_stale_temps(dir: &Path, keep: impl Fn(&str) -> bool, any_writer: bool) -> usize {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((target, pid)) = name.to_str().and_then(parse_temp_name) else {
            continue;
        };
        let stale = pid != me && (any_writer || process_alive(pid) == Some(false));
        if keep(target)
            && stale
            && e.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Replace (or create) `path` with `bytes` atomically. On failure the previous file,
/// if any, is untouched and the temporary file is removed. Errors name `path` (the
/// temporary file is an implementation detail).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let written = (|| {
        let mut f = File::create(&tmp)
            .map_err(|e| io_err(path, "cannot create a temporary file beside it", e))?;
        f.write_all(bytes)
            .map_err(|e| io_err(path, "cannot write", e))?;
        f.sync_all().map_err(|e| io_err(path, "cannot flush", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_parse_and_stale_ones_go() {
        assert_eq!(parse_temp_name(".m.model.tmp-12-0"), Some(("m.model", 12)));
        assert_eq!(parse_temp_name(".a.tmp-b.tmp-3-44"), Some(("a.tmp-b", 3)));
        assert_eq!(parse_temp_name("m.model.tmp-12-0"), None);
        assert_eq!(parse_temp_name(".m.model.tmp-x-0"), None);
        assert_eq!(parse_temp_name(".m.model.tmp-1-"), None);
        assert_eq!(parse_temp_name("..tmp-1-2"), None);
        let d = std::env::temp_dir().join(format!("rntk-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let me = std::process::id();
        for n in [
            ".m.tmp-999999999-0",
            ".m.tmp-999999998-3",
            ".other.tmp-999999999-0",
        ] {
            fs::write(d.join(n), b"x").unwrap();
        }
        fs::write(d.join(format!(".m.tmp-{me}-0")), b"x").unwrap();
        fs::write(d.join("m"), b"x").unwrap();
        let n = remove_stale_temps(&d, |t| t == "m", true);
        assert_eq!(n, 2);
        let mut left: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                format!(".m.tmp-{me}-0"),
                ".other.tmp-999999999-0".into(),
                "m".into()
            ]
        );
        // a target whose write fails names the target, not the temporary file
        let e = write_atomic(&d.join("no/such/dir/m"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no/such/dir/m:") && !e.contains(".tmp-"), "{e}");
    }
}
