//! Where the bytes of a CTF file come from: the file itself, read by offset into
//! reused buffers (`pread`), or text held in memory.
//!
//! Reading rather than memory-mapping is what makes a file that changes underneath a
//! clean error: a mapped file truncated by another program faults the reader
//! (SIGBUS) on its next access, while a read just comes back short. Before each read
//! the file's size and modification time are compared with those it had when it was
//! opened, so a file truncated, appended to or rewritten in place while training
//! reads it ends the run with an error naming the file and what happened, never with
//! data that no longer matches the index. The copy costs little: each block is read
//! just before it is parsed, into a buffer that stays in cache and is reused.

use crate::error::{Error, Result};
use std::fs::File;
use std::sync::Mutex;
use std::time::SystemTime;

/// Byte ranges of CTF text.
pub(crate) trait Source: Sync {
    /// Total bytes.
    fn len(&self) -> usize;
    /// Bytes `start..end` and up to `pad` bytes after them where the data has them,
    /// as a slice whose byte 0 is offset `base` (returned) of the data: memory
    /// lends the whole text (`base` 0), a file is read into `buf`.
    fn read<'a>(
        &'a self,
        start: usize,
        end: usize,
        pad: usize,
        buf: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], usize)>;
}

impl Source for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn read<'a>(
        &'a self,
        _start: usize,
        _end: usize,
        _pad: usize,
        _buf: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], usize)> {
        Ok((self, 0))
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn read<'a>(
        &'a self,
        _start: usize,
        _end: usize,
        _pad: usize,
        _buf: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], usize)> {
        Ok((self, 0))
    }
}

/// What identifies the contents of a file: its size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
        }
    }
}

/// A CTF file read by offset.
pub(crate) struct FileSource {
    file: File,
    path: String,
    stamp: Stamp,
    len: usize,
}

impl FileSource {
    /// `file`, opened as `path`, with its metadata at opening.
    pub fn new(file: File, path: &str, meta: &std::fs::Metadata) -> Result<FileSource> {
        let len = usize::try_from(meta.len()).map_err(|_| Error::Io {
            file: path.to_string(),
            detail: format!(
                "{} bytes is more than this platform can address",
                meta.len()
            ),
        })?;
        Ok(FileSource {
            file,
            path: path.to_string(),
            stamp: Stamp::of(meta),
            len,
        })
    }

    fn changed(&self, now: Option<Stamp>) -> Error {
        let was = self.stamp.len;
        let what = match now {
            Some(n) if n.len < was => format!(
                "it shrank from {was} to {} bytes (truncated, or rewritten by another program)",
                n.len
            ),
            Some(n) if n.len > was => format!(
                "it grew from {was} to {} bytes (appended to, or rewritten by another program)",
                n.len
            ),
            Some(_) => format!("another program modified it (still {was} bytes)"),
            None => format!("it shrank below the {was} bytes it had (truncated)"),
        };
        Error::Io {
            file: self.path.clone(),
            detail: format!(
                "the file changed while it was being read: {what}; the reader stops rather \
                 than return data that no longer matches what it indexed"
            ),
        }
    }
}

impl Source for FileSource {
    fn len(&self) -> usize {
        self.len
    }
    fn read<'a>(
        &'a self,
        start: usize,
        end: usize,
        pad: usize,
        buf: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], usize)> {
        let end = end.saturating_add(pad).min(self.len);
        let start = start.min(end);
        let now = self.file.metadata().ok().map(|m| Stamp::of(&m));
        if now != Some(self.stamp) {
            return Err(self.changed(now));
        }
        let n = end - start;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        match read_at(&self.file, &mut buf[..n], start as u64) {
            Ok(()) => Ok((&buf[..n], start)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.changed(self.file.metadata().ok().map(|m| Stamp::of(&m))))
            }
            Err(e) => Err(Error::Io {
                file: self.path.clone(),
                detail: format!("cannot read bytes {start}..{end}: {e}"),
            }),
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading by offset is not available on this platform",
    ))
}

/// Read buffers kept for reuse: memory already faulted in, and no allocation per
/// block. Buffers much larger than a block (after a huge row) are not kept.
#[derive(Default)]
pub(crate) struct BufPool(Mutex<Vec<Vec<u8>>>);

const KEPT_BUFS: usize = 16;
const KEPT_BYTES: usize = 16 << 20;

impl BufPool {
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default()
    }
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() > KEPT_BYTES {
            return;
        }
        if let Ok(mut p) = self.0.lock() {
            if p.len() < KEPT_BUFS {
                p.push(buf);
            }
        }
    }
}

/// The text of a stream that is not a regular file (a pipe, `/dev/stdin`, a device),
/// read into memory: at most `limits.max_stream_bytes`, and no row longer than
/// `limits.max_line_bytes` (so `/dev/zero` stops at once, not when memory runs out).
/// `path` names it in errors.
pub fn read_stream(mut r: impl std::io::Read, path: &str) -> Result<Vec<u8>> {
    let limits = crate::limits::current();
    let io = |detail: String| Error::Io {
        file: path.to_string(),
        detail,
    };
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    // offset where the current row starts, and its line number
    let mut row_start = 0usize;
    let mut line = 1u64;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(format!("cannot read: {e}"))),
        };
        let at = out.len();
        for i in memchr::memchr_iter(b'\n', &chunk[..n]) {
            row_start = at + i + 1;
            line += 1;
        }
        if at + n - row_start > limits.max_line_bytes {
            return Err(io(format!(
                "row {line} is longer than {} bytes: not CTF text ({}); stopped reading",
                limits.max_line_bytes,
                crate::limits::how_to_raise("max_line_bytes")
            )));
        }
        if at + n > limits.max_stream_bytes {
            return Err(io(format!(
                "is a stream (not a regular file) longer than {} bytes; stopped reading \
                 ({}; or save it to a file first)",
                limits.max_stream_bytes,
                crate::limits::how_to_raise("max_stream_bytes")
            )));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}
