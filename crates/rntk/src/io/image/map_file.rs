//! CNTK's image map file: one image per line, `path<TAB>label`, the path either a file or
//! an entry of a zip archive written `archive.zip@/inner/path`. A relative path is taken
//! relative to the map file's folder when it exists there, else to the working directory
//! (CNTK's only rule).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where an image's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ImageLocation {
    File(PathBuf),
    /// `archive`, entry name inside it (no leading `/`).
    Zip(PathBuf, String),
}

/// One line of a map file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MapEntry {
    pub location: ImageLocation,
    pub label: usize,
    /// 1-based line number in the map file, for messages.
    pub line: u64,
}

fn reader_error(file: &str, line: u64, text: &str, expected: &str) -> Error {
    Error::Reader {
        file: file.to_string(),
        line,
        column: 1,
        text: text.chars().take(60).collect(),
        expected: expected.to_string(),
    }
}

fn resolve(map_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let beside = map_dir.join(path);
    if beside.exists() {
        beside
    } else {
        path.to_path_buf()
    }
}

/// Parse the text of map file `name` (its folder `map_dir`); labels must be below
/// `num_classes`. Blank lines are skipped.
pub(crate) fn parse(
    text: &str,
    name: &str,
    map_dir: &Path,
    num_classes: usize,
) -> Result<Vec<MapEntry>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = raw.trim_end_matches('\r');
        if l.trim().is_empty() {
            continue;
        }
        let Some((path, label)) = l.split_once('\t') else {
            return Err(reader_error(
                name,
                line,
                l,
                "an image path, a TAB and an integer label",
            ));
        };
        let label_text = label.trim();
        let label: usize = label_text
            .parse()
            .map_err(|_| reader_error(name, line, label_text, "an integer label after the TAB"))?;
        if label >= num_classes {
            return Err(reader_error(
                name,
                line,
                label_text,
                &format!("a label below {num_classes} (the label stream's dimension)"),
            ));
        }
        if path.is_empty() {
            return Err(reader_error(name, line, l, "an image path before the TAB"));
        }
        let location = match path.split_once(".zip@") {
            Some((archive, inner)) => {
                let entry = inner.trim_start_matches('/');
                if entry.is_empty() {
                    return Err(reader_error(
                        name,
                        line,
                        path,
                        "archive.zip@/path/inside/the/archive",
                    ));
                }
                ImageLocation::Zip(
                    resolve(map_dir, &format!("{archive}.zip")),
                    entry.to_string(),
                )
            }
            None => ImageLocation::File(resolve(map_dir, path)),
        };
        out.push(MapEntry {
            location,
            label,
            line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_paths_zip_entries_and_errors() {
        let dir = Path::new("/nonexistent-dir");
        let m = parse("a.png\t3\n\nz.zip@/in/b.jpg\t0\r\n", "map.txt", dir, 4).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].location, ImageLocation::File("a.png".into()));
        assert_eq!((m[0].label, m[0].line), (3, 1));
        assert_eq!(
            m[1].location,
            ImageLocation::Zip("z.zip".into(), "in/b.jpg".into())
        );
        assert_eq!(m[1].line, 3);
        let e = parse("a.png 3\n", "map.txt", dir, 4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("map.txt") && e.contains('1') && e.contains("TAB"),
            "{e}"
        );
        let e = parse("a.png\tx\n", "map.txt", dir, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("integer label"), "{e}");
        let e = parse("ok.png\t1\na.png\t4\n", "map.txt", dir, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:") && e.contains("below 4"), "{e}");
        let e = parse("z.zip@/\t1\n", "map.txt", dir, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("archive.zip@"), "{e}");
    }
}
