//! Files the user names: whole-file reads that refuse what would never end (a
//! directory, `/dev/zero`, an endless pipe beyond `limits.max_stream_bytes`), checks
//! that an output path can be written before work starts, and exclusive locks on a
//! path (a checkpoint used by one trainer at a time).

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

fn io_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Io {
        file: path.display().to_string(),
        detail: detail.into(),
    }
}

/// What a path is, for messages: "a directory", "a pipe", …
pub fn describe_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    if t.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a pipe";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_file() {
        "a file"
    } else {
        "not a regular file"
    }
}

/// Open `path` to read `what` (e.g. "a model file"): a directory is refused naming
/// both. Returns the open file and whether it is a regular file (else a stream: a
/// pipe or a device, which only [`read_stream`] may read, up to a limit).
pub fn open_input(path: &Path, what: &str) -> Result<(File, bool)> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(io_err(path, format!("is a directory, expected {what}")));
    }
    let file = File::open(path).map_err(|e| io_err(path, format!("cannot read: {e}")))?;
    Ok((file, meta.is_file()))
}

/// Everything `reader` gives, at most `limit` bytes: more is an error saying which
/// limit stopped it (`key`, see `crate::limits`). Memory grows with what was read,
/// never past the limit.
pub fn read_stream(mut reader: impl Read, path: &Path, limit: usize, key: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, format!("cannot read: {e}"))),
        };
        if out.len() + n > limit {
            return Err(io_err(
                path,
                format!(
                    "is a stream (not a regular file) longer than {limit} bytes; stopped reading \
                     there ({}; or save it to a file first)",
                    crate::limits::how_to_raise(key)
                ),
            ));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The whole contents of `path`, which holds `what`: a regular file is read to its
/// end; a pipe or device at most `limits.max_stream_bytes`; a directory is an error.
pub fn read_whole(path: &Path, what: &str) -> Result<Vec<u8>> {
    let (mut file, regular) = open_input(path, what)?;
    if regular {
        let mut out = Vec::new();
        file.read_to_end(&mut out)
            .map_err(|e| io_err(path, format!("cannot read: {e}")))?;
        Ok(out)
    } else {
        let limit = crate::limits::current().max_stream_bytes;
        read_stream(file, path, limit, "max_stream_bytes")
    }
}

/// Check, before any work, that `path` can be created or replaced as a file: it is
/// not a directory, its folder exists (it is created if missing) and accepts a new
/// file.
pub fn check_output_file(path: &Path) -> Result<()> {
    let fail = |detail: String| io_err(path, detail);
    let name = path
        .file_name()
        .ok_or_else(|| fail("expected a path ending in a file name".into()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(fail("is a directory, expected a file name".into()));
        }
        if !meta.is_file() {
            return Err(fail(format!(
                "is {}, expected a regular file to write",
                describe_kind(&meta)
            )));
        }
    }
    let dir = parent_dir(path);
    ensure_dir(&dir).map_err(fail)?;
    probe_dir(&dir, &name.to_string_lossy()).map_err(fail)
}

/// Check, before any work, that the directory `path` exists (it is created if
/// missing) and accepts new files.
pub fn check_output_dir(path: &Path) -> Result<()> {
    let fail = |detail: String| io_err(path, detail);
    ensure_dir(path).map_err(fail)?;
    probe_dir(path, "dir").map_err(fail)
}

/// The folder a file path lives in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Create `dir` and its parents if missing; an existing non-directory on the way is
/// named.
fn ensure_dir(dir: &Path) -> std::result::Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) => {
            return Err(format!(
                "{} is {}, expected a directory",
                dir.display(),
                describe_kind(&m)
            ))
        }
        Err(_) => {}
    }
    // the first ancestor that exists must be a directory
    for a in dir.ancestors().skip(1) {
        if a.as_os_str().is_empty() {
            break;
        }
        if let Ok(m) = std::fs::metadata(a) {
            if !m.is_dir() {
                return Err(format!(
                    "{} is {}, expected a directory",
                    a.display(),
                    describe_kind(&m)
                ));
            }
            break;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Create and remove a hidden file in `dir`: the only reliable test that files can be
/// written there (permissions, read-only mounts, quotas on creation).
fn probe_dir(dir: &Path, stem: &str) -> std::result::Result<(), String> {
    let probe = dir.join(format!(".{stem}.probe-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create files in {}: {e}", dir.display())),
    }
}

/// An exclusive lock on `<target>.lock`, held until dropped (or the process ends:
/// the operating system releases it even after `kill -9`). A second holder, in this
/// process or another, gets an error naming the target.
#[derive(Debug)]
pub struct PathLock {
    path: PathBuf,
    file: Option<File>,
}

impl PathLock {
    /// The lock file of `target`.
    pub fn lock_path(target: &Path) -> PathBuf {
        let mut s = target.as_os_str().to_owned();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// Take the lock of `target`, used as `what` (e.g. "checkpoint"), or fail at once
    /// if another holder has it.
    pub fn acquire(target: &Path, what: &str) -> Result<PathLock> {
        let path = Self::lock_path(target);
        // A holder that finishes removes the lock file: if it did so between our open
        // and our lock, we locked a file no longer at `path`; open it again.
        for _ in 0..16 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&path, format!("cannot create the {what} lock: {e}")))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io_err(
                        target,
                        format!(
                            "the {what} is in use by another trainer (its lock {} is held); \
                             wait for that run to end or choose another {what} file",
                            path.display()
                        ),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io_err(&path, format!("cannot lock the {what}: {e}")))
                }
            }
            if same_file(&file, &path) {
                return Ok(PathLock {
                    path,
                    file: Some(file),
                });
            }
        }
        Err(io_err(
            &path,
            format!("cannot lock the {what}: its lock file keeps being replaced"),
        ))
    }

    /// Whether the lock of `target` could be taken now (taken and released at once):
    /// an early, friendlier check than failing later, when work has started.
    pub fn probe(target: &Path, what: &str) -> Result<()> {
        let mut lock = Self::acquire(target, what)?;
        // leave the lock file for the trainer that will take it
        drop(lock.file.take());
        Ok(())
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            // remove while still holding it, so no one locks a file about to vanish
            let _ = std::fs::remove_file(&self.path);
            drop(f);
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rntk-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn directories_and_streams() {
        let d = tmp("read");
        let e = read_whole(&d, "a model file").unwrap_err().to_string();
        assert!(e.contains("is a directory, expected a model file"), "{e}");
        let f = d.join("m");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(read_whole(&f, "x").unwrap(), b"abc");
        let endless = std::io::repeat(b'x');
        let e = read_stream(endless, &f, 1000, "max_stream_bytes")
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 1000 bytes"), "{e}");
        assert!(e.contains("RNTK_MAX_STREAM_BYTES"), "{e}");
        assert_eq!(read_stream(&b"12345"[..], &f, 5, "k").unwrap(), b"12345");
    }

    #[test]
    fn output_paths() {
        let d = tmp("out");
        check_output_file(&d.join("new/sub/m.model")).unwrap();
        assert!(d.join("new/sub").is_dir());
        let e = check_output_file(&d).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let file = d.join("plain");
        std::fs::write(&file, b"").unwrap();
        let e = check_output_file(&file.join("m.model"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain is a file, expected a directory"), "{e}");
        let e = check_output_dir(&file.join("tb")).unwrap_err().to_string();
        assert!(e.contains("expected a directory"), "{e}");
        check_output_dir(&d.join("tb")).unwrap();
        // nothing left behind by the probes
        let left: Vec<_> = std::fs::read_dir(d.join("new/sub")).unwrap().collect();
        assert!(left.is_empty());
    }

    #[test]
    fn locks_are_exclusive_and_released() {
        let d = tmp("lock");
        let t = d.join("m.ckpt");
        let a = PathLock::acquire(&t, "checkpoint").unwrap();
        let e = PathLock::acquire(&t, "checkpoint").unwrap_err().to_string();
        assert!(e.contains("in use by another trainer"), "{e}");
        assert!(PathLock::probe(&t, "checkpoint").is_err());
        drop(a);
        assert!(!PathLock::lock_path(&t).exists());
        PathLock::probe(&t, "checkpoint").unwrap();
        let b = PathLock::acquire(&t, "checkpoint").unwrap();
        drop(b);
    }
}
