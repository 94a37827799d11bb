//! Writing CTF text: one row per time step, each stream on the rows it has samples
//! for, numbers in the shortest form that reads back to the same value.

use crate::error::{Error, Result};
use crate::io::buffer::IoFloat;
use std::fmt::Write as _;
use std::io::Write;

/// One stream of one sequence, in the writer's stream order.
#[derive(Clone, Copy, Debug)]
pub enum SeqStream<'a, T> {
    /// `values.len() / dim` samples of `dim` values each.
    Dense { dim: usize, values: &'a [T] },
    /// One list of `(index, value)` entries per sample.
    Sparse { rows: &'a [Vec<(u32, T)>] },
}

impl<T> SeqStream<'_, T> {
    fn len(&self) -> usize {
        match self {
            SeqStream::Dense { dim, values } => values.len() / (*dim).max(1),
            SeqStream::Sparse { rows } => rows.len(),
        }
    }
}

/// Writes sequences as CTF rows `id |field v v ... |field2 i:v ...`.
pub struct CtfWriter<W: Write> {
    out: W,
    fields: Vec<String>,
    line: String,
}

impl<W: Write> CtfWriter<W> {
    /// A writer for these field names (order of the streams in `write_sequence`).
    pub fn new(out: W, fields: &[&str]) -> Result<Self> {
        for f in fields {
            if f.is_empty()
                || f.starts_with('#')
                || f.bytes()
                    .any(|c| matches!(c, b' ' | b'\t' | b'|' | b'\r' | b'\n'))
            {
                return Err(Error::invalid(
                    "CTF writer",
                    format!(
                        "field name {f:?} cannot be written (blank, '|', line end or leading '#')"
                    ),
                ));
            }
        }
        Ok(CtfWriter {
            out,
            fields: fields.iter().map(|s| s.to_string()).collect(),
            line: String::new(),
        })
    }

    /// Write one sequence with id `id`. Every stream needs at least one sample
    /// (a reader requires it); the sequence has as many rows as its longest stream.
    pub fn write_sequence<T: IoFloat>(
        &mut self,
        id: u64,
        streams: &[SeqStream<'_, T>],
    ) -> Result<()> {
        if streams.len() != self.fields.len() {
            return Err(Error::invalid(
                "CTF writer",
                format!(
                    "{} streams given for {} fields",
                    streams.len(),
                    self.fields.len()
                ),
            ));
        }
        for (s, f) in streams.iter().zip(&self.fields) {
            if s.len() == 0 {
                return Err(Error::invalid(
                    "CTF writer",
                    format!("stream '{f}' of sequence {id} has no sample"),
                ));
            }
            if let SeqStream::Dense { dim, values } = s {
                if *dim == 0 || values.len() / dim * dim != values.len() {
                    return Err(Error::invalid(
                        "CTF writer",
                        format!(
                            "stream '{f}': {} values are not whole samples of {dim}",
                            values.len()
                        ),
                    ));
                }
            }
        }
        let rows = streams.iter().map(|s| s.len()).max().unwrap_or(0);
        for t in 0..rows {
            self.line.clear();
            // Writing to a String cannot fail.
            let _ = write!(self.line, "{id}");
            for (s, f) in streams.iter().zip(&self.fields) {
                if t >= s.len() {
                    continue;
                }
                let _ = write!(self.line, " |{f}");
                match s {
                    SeqStream::Dense { dim, values } => {
                        for &v in &values[t * dim..(t + 1) * dim] {
                            self.line.push(' ');
                            push_number(&mut self.line, v, f)?;
                        }
                    }
                    SeqStream::Sparse { rows } => {
                        for &(i, v) in &rows[t] {
                            let _ = write!(self.line, " {i}:");
                            push_number(&mut self.line, v, f)?;
                        }
                    }
                }
            }
            self.line.push('\n');
            self.out
                .write_all(self.line.as_bytes())
                .map_err(|e| Error::Io {
                    file: "CTF writer output".into(),
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Flush and return the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::Io {
            file: "CTF writer output".into(),
            detail: e.to_string(),
        })?;
        Ok(self.out)
    }
}

/// Rust's `Debug` float format is the shortest text that parses back to the same
/// value, and uses an exponent for very small or large values (`1e-40`), both of
/// which CTF reads.
fn push_number<T: IoFloat>(line: &mut String, v: T, field: &str) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::invalid(
            "CTF writer",
            format!("stream '{field}': {v} cannot be written (CTF has no NaN or infinity)"),
        ));
    }
    let _ = write!(line, "{v:?}");
    Ok(())
}
