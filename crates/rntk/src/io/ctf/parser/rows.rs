//! The rows of a block: line by line into sequences (by id, or one per line), the
//! fields of each row looked up and handed to the dense or sparse value parser, the
//! per-sequence checks of readers.md §1.3 and the error policy.

use super::super::index::{row_start, LineEnds, RowStart};
use super::scan::{is_blank, is_delim};
use super::BlockParser;
use crate::error::{Error, Result};
use crate::io::buffer::IoFloat;
use crate::io::diagnostics::{as_warning, quote, ErrorPolicy, Locator};

/// Per-sequence bookkeeping while its rows are parsed.
struct SeqState {
    key: u64,
    first_row_pos: usize,
    first_line: u64,
    rows: u64,
    /// Rows of the sequence that carry each stream (byte offsets of row starts),
    /// kept only to point at the first row that lacks the longest stream.
    row_starts: Vec<usize>,
    skipping: bool,
}

impl<'a, 'c, T: IoFloat> BlockParser<'a, 'c, T> {
    pub(super) fn run(&mut self) -> Result<()> {
        let bytes = self.ctx.bytes;
        let end = self.block.end;
        let mut pos = self.block.start;
        let mut seq: Option<SeqState> = None;
        let mut cur_id: Option<u64> = None;
        let mut ordinal = self.block.first_seq;
        // One search for all line ends of the block: a call per short line
        // costs more than the search itself.
        let mut line_ends = LineEnds::new(bytes, pos, end);
        while pos < end {
            self.line_start = pos;
            let (le, next) = match line_ends.next() {
                Some(i) => (i, i + 1),
                None => (end, end),
            };
            let start = row_start(bytes, pos, le);
            let id = match start {
                Ok(RowStart::Id { id, .. }) => Some(id),
                _ => None,
            };
            let new_seq = seq.is_none() || self.ctx.per_line || (id.is_some() && id != cur_id);
            if id.is_some() {
                cur_id = id;
            }
            if new_seq {
                if let Some(s) = seq.take() {
                    self.finish(s)?;
                }
                let key = if self.ctx.per_line {
                    ordinal
                } else {
                    id.unwrap_or(ordinal)
                };
                ordinal += 1;
                seq = Some(SeqState {
                    key,
                    first_row_pos: pos,
                    first_line: self.block.first_line + self.line,
                    rows: 0,
                    row_starts: Vec::new(),
                    skipping: false,
                });
                for r in &mut self.stream_rows {
                    r.clear();
                }
            }
            if let Some(s) = seq.as_mut() {
                if !s.skipping {
                    s.rows += 1;
                    s.row_starts.push(pos);
                    self.row_no += 1;
                    let row = match start {
                        Ok(RowStart::Id { pos, .. }) | Ok(RowStart::NoId { pos }) => {
                            self.parse_row(pos, le, s.rows)
                        }
                        Err((at, expected)) => Err(self.err(at, expected)),
                    };
                    if let Err(e) = row {
                        self.fail(e)?;
                        s.skipping = true;
                    }
                }
            }
            pos = next;
            self.line += 1;
        }
        if let Some(s) = seq.take() {
            self.finish(s)?;
        }
        Ok(())
    }

    /// Apply the error policy to a malformed sequence: propagate, or roll back
    /// what was read of it (the caller then skips its remaining rows).
    fn fail(&mut self, e: Error) -> Result<()> {
        match self.ctx.policy {
            ErrorPolicy::Fail => Err(e),
            ErrorPolicy::SkipSequence => {
                for b in &mut self.set.streams {
                    b.rollback();
                }
                self.ctx
                    .sink
                    .warn(as_warning(&e, "malformed sequence skipped"));
                self.ctx.sink.note_skipped();
                Ok(())
            }
        }
    }

    fn finish(&mut self, s: SeqState) -> Result<()> {
        let mut valid = !s.skipping;
        if valid {
            if let Err(e) = self.check_sequence(&s) {
                self.fail(e)?;
                valid = false;
            }
        }
        for b in &mut self.set.streams {
            b.end_sequence();
        }
        self.set.keys.push(s.key);
        self.set.lines.push(s.first_line);
        self.set.valid.push(valid);
        Ok(())
    }

    /// readers.md §1.3: every configured stream present; the longest stream on
    /// every row.
    fn check_sequence(&self, s: &SeqState) -> Result<()> {
        let bytes = self.ctx.bytes;
        let loc = Locator {
            file: self.ctx.file,
            bytes,
            base_line: s.first_line,
            known_line_start: s.first_row_pos,
            known_line: 0,
        };
        let mut longest = 0;
        for (k, f) in self.ctx.fields.iter().enumerate() {
            let n = self.stream_rows[k].len();
            if n == 0 {
                return Err(loc.error(
                    s.first_row_pos,
                    quote(line_text(bytes, s.first_row_pos)),
                    format!(
                        "a sample of stream '{}' (field '{}') in every sequence; sequence {} has none",
                        f.name,
                        String::from_utf8_lossy(&f.field),
                        s.key
                    ),
                ));
            }
            if n > self.stream_rows[longest].len() {
                longest = k;
            }
        }
        let have = self.stream_rows[longest].len() as u64;
        if have < s.rows {
            // the first row (1-based within the sequence) that lacks the longest stream
            let rows = &self.stream_rows[longest];
            let missing = (1..=s.rows as u32)
                .zip(rows.iter().copied().chain(std::iter::repeat(0)))
                .find(|(want, got)| want != got)
                .map_or(1, |(want, _)| want);
            let at = s.row_starts[(missing - 1) as usize];
            let f = &self.ctx.fields[longest];
            return Err(loc.error(
                at,
                quote(line_text(bytes, at)),
                format!(
                    "a sample of stream '{}' on every row of sequence {}: its longest stream has {} samples but the sequence has {} rows",
                    f.name, s.key, have, s.rows
                ),
            ));
        }
        Ok(())
    }

    fn parse_row(&mut self, mut p: usize, le: usize, row_in_seq: u64) -> Result<()> {
        let bytes = self.ctx.bytes;
        let mut samples = 0usize;
        let mut fields = 0usize;
        loop {
            while p < le && is_blank(bytes[p]) {
                p += 1;
            }
            if p >= le {
                break;
            }
            let c = bytes[p];
            if c == b'\r' {
                if p + 1 == le {
                    break;
                }
                return Err(self.err(p, "a line end after '\\r' (a lone carriage return)"));
            }
            if c != b'|' {
                return Err(self.err(p, "'|' starting the next field"));
            }
            let bar = p;
            p += 1;
            fields += 1;
            if p < le && bytes[p] == b'#' {
                // A comment runs up to the next '|' (readers.md §1.1).
                p = memchr::memchr(b'|', &bytes[p..le]).map_or(le, |i| p + i);
                continue;
            }
            let fields = self.ctx.fields;
            // The expected field compared in place (rows usually list fields in
            // the same order), else the name scanned and looked up.
            let hinted = fields.get(self.hint).filter(|f| {
                let n = f.field.len();
                bytes.get(p..p + n).is_some_and(|b| same(b, &f.field))
                    && (p + n == le || bytes.get(p + n).is_some_and(|&c| is_delim(c)))
            });
            let found = if let Some(f) = hinted {
                p += f.field.len();
                Some(self.hint)
            } else {
                let name_start = p;
                while p < le && !is_delim(bytes[p]) {
                    p += 1;
                }
                if p == name_start {
                    return Err(self.err(name_start, "a stream name right after '|'"));
                }
                let name = &bytes[name_start..p];
                fields.iter().position(|f| same(&f.field, name))
            };
            let Some(k) = found else {
                // Streams not configured are ignored (readers.md §1.3).
                p = memchr::memchr(b'|', &bytes[p..le]).map_or(le, |i| p + i);
                continue;
            };
            if self.seen_on_row[k] == self.row_no {
                let f = &self.ctx.fields[k];
                return Err(self.err(
                    bar,
                    format!(
                        "at most one sample of stream '{}' per row (it appears twice on this row)",
                        f.name
                    ),
                ));
            }
            self.seen_on_row[k] = self.row_no;
            self.hint = if k + 1 == fields.len() { 0 } else { k + 1 };
            self.stream_rows[k].push(row_in_seq as u32);
            p = if self.ctx.fields[k].sparse {
                self.sparse_values(k, p, le)?
            } else {
                self.dense_values(k, p, le)?
            };
            samples += 1;
        }
        if samples == 0 {
            let what = if fields == 0 {
                "an empty row"
            } else {
                "a row with no configured stream"
            };
            return Err(self.err(
                self.line_start,
                format!("at least one sample of a configured stream on every row (found {what})"),
            ));
        }
        Ok(())
    }
}

/// Byte equality inlined for short names (a `memcmp` call costs more than the
/// comparison of a few bytes).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The row containing `pos`, without its line end (for messages).
fn line_text(bytes: &[u8], pos: usize) -> &[u8] {
    let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
    &bytes[pos..end]
}
