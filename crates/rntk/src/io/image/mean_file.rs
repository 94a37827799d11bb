//! CNTK's mean file: an OpenCV `FileStorage` XML document with `Channel`, `Row`, `Col` and
//! a `MeanImg` matrix (`rows`, `cols`, `dt` f or d, `data`), the mean image in OpenCV's
//! interleaved (row, column, channel) order with the channels in BGR order.

use crate::error::{Error, Result};

/// A mean image: `rows × cols × channels` values, interleaved, BGR.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanImage {
    pub channels: usize,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// The text between `<tag ...>` and `</tag>` (the first such element).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = xml.find(&format!("<{tag}"))?;
    let rest = &xml[open + tag.len() + 1..];
    // the opening tag ends at '>' (attributes allowed); it must be followed by '>' or ' '
    if !rest.starts_with('>') && !rest.starts_with(' ') {
        return None;
    }
    let body_start = rest.find('>')? + 1;
    let body = &rest[body_start..];
    let end = body.find(&format!("</{tag}>"))?;
    Some(&body[..end])
}

/// Largest mean image accepted (values): 64 M, far beyond any image model.
const MAX_VALUES: usize = 64 << 20;

impl MeanImage {
    /// Parse the XML text of mean file `name`.
    pub fn parse(xml: &str, name: &str) -> Result<MeanImage> {
        let bad = |detail: String| Error::Format {
            file: name.to_string(),
            detail,
        };
        let int = |tag: &str, within: &str| -> Result<usize> {
            let t = element(within, tag).ok_or_else(|| {
                bad(format!(
                    "no <{tag}> element (a CNTK mean file has Channel, Row, Col and MeanImg)"
                ))
            })?;
            t.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("<{tag}> holds {:?}, expected a count", t.trim())))
        };
        let channels = int("Channel", xml)?;
        let rows = int("Row", xml)?;
        let cols = int("Col", xml)?;
        let m = element(xml, "MeanImg").ok_or_else(|| bad("no <MeanImg> matrix".into()))?;
        let dt = element(m, "dt").map(str::trim).unwrap_or("f");
        if !matches!(dt, "f" | "d") && !dt.ends_with('f') && !dt.ends_with('d') {
            return Err(bad(format!(
                "MeanImg has element type {dt:?}; expected f or d"
            )));
        }
        let data_text = element(m, "data").ok_or_else(|| bad("MeanImg has no <data>".into()))?;
        let n = channels
            .checked_mul(rows)
            .and_then(|v| v.checked_mul(cols))
            .filter(|&v| v > 0 && v <= MAX_VALUES)
            .ok_or_else(|| {
                bad(format!(
                    "Channel {channels} × Row {rows} × Col {cols} is not a valid image size"
                ))
            })?;
        let mut data = Vec::with_capacity(n);
        for tok in data_text.split_ascii_whitespace() {
            if data.len() == n {
                return Err(bad(format!(
                    "MeanImg holds more than Channel × Row × Col = {n} values"
                )));
            }
            let v: f64 = tok
                .parse()
                .map_err(|_| bad(format!("MeanImg value {tok:?} is not a number")))?;
            data.push(v as f32);
        }
        if data.len() != n {
            return Err(bad(format!(
                "MeanImg holds {} values, but Channel × Row × Col = {n}",
                data.len()
            )));
        }
        Ok(MeanImage {
            channels,
            rows,
            cols,
            data,
        })
    }

    /// Read and parse the mean file at `path`.
    pub fn load(path: &std::path::Path) -> Result<MeanImage> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::Io {
            file: name.clone(),
            detail: e.to_string(),
        })?;
        if meta.len() > 64 << 20 {
            return Err(Error::Format {
                file: name,
                detail: format!("{} bytes: too large for a mean file", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            file: name.clone(),
            detail: e.to_string(),
        })?;
        MeanImage::parse(&text, &name)
    }

    /// The mean file's XML text as CNTK tutorial 201A's `saveMean` writes it (OpenCV's
    /// `FileStorage` layout, one row of `rows × cols × channels` values).
    pub fn to_xml(&self) -> String {
        let mut data = String::with_capacity(self.data.len() * 10);
        for (i, v) in self.data.iter().enumerate() {
            data.push_str(if i % 8 == 0 { "\n    " } else { " " });
            data.push_str(&format!("{v:?}"));
        }
        format!(
            "<?xml version=\"1.0\" ?>\n<opencv_storage>\n  <Channel>{}</Channel>\n  \
             <Row>{}</Row>\n  <Col>{}</Col>\n  <MeanImg type_id=\"opencv-matrix\">\n    \
             <rows>1</rows>\n    <cols>{}</cols>\n    <dt>f</dt>\n    <data>{data}</data>\n  \
             </MeanImg>\n</opencv_storage>\n",
            self.channels,
            self.rows,
            self.cols,
            self.data.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cntk_mean_files_and_refuses_broken_ones() {
        let xml = "<?xml version=\"1.0\"?>\n<opencv_storage>\n<Channel>3</Channel>\n<Row>1</Row>\n<Col>2</Col>\n<MeanImg type_id=\"opencv-matrix\">\n<rows>1</rows>\n<cols>6</cols>\n<dt>f</dt>\n<data>\n 1. 2.5 3 4 5e0 -6</data></MeanImg>\n</opencv_storage>\n";
        let m = MeanImage::parse(xml, "m.xml").unwrap();
        assert_eq!((m.channels, m.rows, m.cols), (3, 1, 2));
        assert_eq!(m.data, vec![1.0, 2.5, 3.0, 4.0, 5.0, -6.0]);
        let short = xml.replace(" -6", "");
        assert!(MeanImage::parse(&short, "m.xml")
            .unwrap_err()
            .to_string()
            .contains("holds 5 values"));
        let huge = xml.replace("<Row>1</Row>", "<Row>100000000000</Row>");
        assert!(MeanImage::parse(&huge, "m.xml")
            .unwrap_err()
            .to_string()
            .contains("not a valid image size"));
        let nan = xml.replace("2.5", "x");
        assert!(MeanImage::parse(&nan, "m.xml")
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        assert!(MeanImage::parse("<a/>", "m.xml")
            .unwrap_err()
            .to_string()
            .contains("Channel"));
    }

    #[test]
    fn a_written_mean_file_reads_back() {
        let m = MeanImage {
            channels: 3,
            rows: 2,
            cols: 3,
            data: (0..18).map(|v| v as f32 * 7.25 - 3.0).collect(),
        };
        assert_eq!(MeanImage::parse(&m.to_xml(), "m.xml").unwrap(), m);
    }
}
