//! Image bytes to pixels: the bytes of a file or of a zip entry (bounded in size), decoded
//! by the `image` crate (PNG, JPEG, BMP) under limits on width, height and memory, then
//! converted as OpenCV's `imread` does for CNTK: to 8-bit BGR (alpha dropped, grey
//! replicated) or, when the scale transform asks for one channel, to 8-bit grey
//! (`(4899·R + 9617·G + 1868·B + 2¹³) >> 14`).

use super::map_file::ImageLocation;
use super::transform::{Img, Pixels};
use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Limits against hostile files: an image header cannot make the reader allocate more
/// than this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest encoded file or zip entry read, in bytes.
    pub max_file_bytes: u64,
    /// Largest width and height accepted.
    pub max_side: u32,
    /// Largest decoded image, in bytes.
    pub max_decoded_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_file_bytes: 256 << 20,
            max_side: 16384,
            max_decoded_bytes: 512 << 20,
        }
    }
}

/// An archive file read by offset (`pread`), shareable by clones of its `ZipArchive`:
/// each clone keeps its own position. A file truncated underneath is a read error,
/// never a fault (no memory map).
#[derive(Clone)]
struct SharedFile {
    file: Arc<std::fs::File>,
    pos: u64,
    len: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

type Archive = zip::ZipArchive<SharedFile>;

/// Opened zip archives, by path: each is opened and its directory read once; clones
/// (sharing the directory) read entries on any thread.
#[derive(Default)]
pub(crate) struct Archives {
    open: Mutex<HashMap<PathBuf, Arc<Archive>>>,
}

impl Archives {
    fn get(&self, path: &Path) -> Result<Archive, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = open.get(path) {
            return Ok((**a).clone());
        }
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open archive: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read archive: {e}"))?
            .len();
        let shared = SharedFile {
            file: Arc::new(file),
            pos: 0,
            len,
        };
        let a =
            zip::ZipArchive::new(shared).map_err(|e| format!("not a readable zip archive: {e}"))?;
        let a = Arc::new(a);
        open.insert(path.to_path_buf(), a.clone());
        Ok((*a).clone())
    }
}

/// The encoded bytes of an image (at most `limit` bytes).
pub(crate) fn read_bytes(
    loc: &ImageLocation,
    archives: &Archives,
    limit: u64,
) -> Result<Vec<u8>, String> {
    match loc {
        ImageLocation::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| format!("cannot open image: {e}"))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len > limit {
                return Err(format!(
                    "{len} bytes, more than the {limit}-byte limit for one image"
                ));
            }
            let mut v = Vec::with_capacity(len as usize);
            f.take(limit + 1)
                .read_to_end(&mut v)
                .map_err(|e| format!("cannot read image: {e}"))?;
            if v.len() as u64 > limit {
                return Err(format!("more than the {limit}-byte limit for one image"));
            }
            Ok(v)
        }
        ImageLocation::Zip(archive, entry) => {
            let mut a = archives
                .get(archive)
                .map_err(|e| format!("{}: {e}", archive.display()))?;
            let mut f = a.by_name(entry).map_err(|e| match e {
                zip::result::ZipError::FileNotFound => {
                    format!("{}: no entry {entry:?} in the archive", archive.display())
                }
                e => format!("{}: entry {entry:?}: {e}", archive.display()),
            })?;
            if f.size() > limit {
                return Err(format!(
                    "zip entry {entry:?} holds {} bytes, more than the {limit}-byte limit for one image",
                    f.size()
                ));
            }
            let mut v = Vec::with_capacity(f.size() as usize);
            (&mut f)
                .take(limit + 1)
                .read_to_end(&mut v)
                .map_err(|e| format!("zip entry {entry:?}: {e}"))?;
            if v.len() as u64 > limit {
                return Err(format!(
                    "zip entry {entry:?}: more than the {limit}-byte limit"
                ));
            }
            Ok(v)
        }
    }
}

/// Decode `bytes` into 8-bit BGR (`channels` 3) or grey (`channels` 1) pixels.
pub(crate) fn decode(bytes: &[u8], channels: usize, limits: &ImageLimits) -> Result<Img, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    if reader.format().is_none() {
        return Err("not a PNG, JPEG or BMP image (unrecognised header)".into());
    }
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_decoded_bytes);
    reader.limits(l);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err("an image with no pixels".into());
    }
    let rgb = img.to_rgb8();
    let px: Vec<u8> = if channels == 1 {
        rgb.pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(u32::from);
                ((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14) as u8
            })
            .collect()
    } else {
        let mut v = rgb.into_raw();
        for px in v.chunks_mut(3) {
            px.swap(0, 2);
        }
        v
    };
    Ok(Img {
        w,
        h,
        c: channels,
        px: Pixels::U8(px),
    })
}
