//! Parsing the rows of one index block into decoded sequences: fields, dense and
//! sparse values, comments, sequence grouping and the per-sequence checks of
//! readers.md §1.3–§1.5. One call per block, so blocks parse in parallel.

use super::index::{row_start, Block, RowStart};
use crate::error::{Error, Result};
use crate::io::buffer::{IoFloat, SequenceSet, StreamBuffer};
use crate::io::diagnostics::{as_warning, quote, token_at, ErrorPolicy, Locator, WarningSink};

/// A configured stream as the parser sees it.
#[derive(Clone, Debug)]
pub(crate) struct FieldSpec {
    /// Name exposed by the source (for messages).
    pub name: String,
    /// Name inside the file.
    pub field: Vec<u8>,
    pub dim: usize,
    pub sparse: bool,
}

/// Everything a block parse needs besides the block.
pub(crate) struct ParseCtx<'a> {
    pub bytes: &'a [u8],
    pub file: &'a str,
    pub fields: &'a [FieldSpec],
    pub per_line: bool,
    pub policy: ErrorPolicy,
    pub sink: &'a WarningSink,
}

#[inline(always)]
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// End of a value: blank, bar, line end.
#[inline(always)]
fn is_delim(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'|' | b'\r' | b'\n')
}

const NUMBER: &str =
    "a number (digits with optional sign, fraction and exponent, e.g. 1, -2.5, 1e-3)";

/// Plain decimals (`-0.168231`, `1`, `007`, `0.`) without exponent and with few
/// enough digits to be exact: read directly. Anything else returns `None` and goes
/// through fast-float (the result is the same; this only skips its generic path).
#[inline(always)]
fn plain_decimal<T: IoFloat>(s: &[u8]) -> Option<(T, usize)> {
    let (negative, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let start = i;
    let mut m: u64 = 0;
    // 19 digits always fit in a u64
    while i < s.len() && s[i].is_ascii_digit() && i - start < 19 {
        m = m * 10 + u64::from(s[i] - b'0');
        i += 1;
    }
    if i == start {
        return None;
    }
    let mut frac = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let f0 = i;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 20 {
            m = m * 10 + u64::from(s[i] - b'0');
            i += 1;
        }
        frac = i - f0;
    }
    if i < s.len() && !is_delim(s[i]) {
        return None;
    }
    T::from_decimal(m, frac, negative).map(|v| (v, i))
}

/// Parse a number at `p` (line content ends at `le`): value and bytes consumed, or
/// (position of the bad character, what was expected).
#[inline(never)]
pub(crate) fn parse_number<T: IoFloat>(
    bytes: &[u8],
    p: usize,
    le: usize,
) -> std::result::Result<(T, usize), (usize, String)> {
    let s = &bytes[p..le];
    if let Some(r) = plain_decimal::<T>(s) {
        return Ok(r);
    }
    let q = usize::from(matches!(s.first(), Some(b'+') | Some(b'-')));
    // fast-float also reads "nan", "inf" and "infinity"; CTF has no such numbers.
    match s.get(q) {
        Some(c) if c.is_ascii_digit() || *c == b'.' => {}
        _ => return Err((p, NUMBER.to_string())),
    }
    let (v, n) = match fast_float2::parse_partial::<T, _>(s) {
        Ok(r) => r,
        Err(_) => return Err((p, NUMBER.to_string())),
    };
    if let Some(&c) = s.get(n) {
        if !is_delim(c) {
            let expected = if matches!(c, b'e' | b'E') {
                "digits after the exponent symbol (e.g. 1e-3)".to_string()
            } else {
                format!("{NUMBER}, followed by a blank, '|' or the end of the line")
            };
            return Err((p, expected));
        }
    }
    if !v.is_finite() {
        return Err((p, format!("a number within the range of {}", T::DTYPE)));
    }
    Ok((v, n))
}

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

pub(crate) struct BlockParser<'a, 'c, T> {
    ctx: &'c ParseCtx<'a>,
    block: &'c Block,
    set: SequenceSet,
    /// Row number (+1) on which each stream was last seen: refuses a second
    /// sample of a stream on one row without clearing a mask per row.
    seen_on_row: Vec<u64>,
    /// Rows (1-based, within the sequence) on which each stream appears.
    stream_rows: Vec<Vec<u32>>,
    row_no: u64,
    /// The field expected next: rows usually list fields in the same order, so
    /// this guess saves comparing names against every configured field.
    hint: usize,
    line: u64,
    line_start: usize,
    _t: std::marker::PhantomData<T>,
}

impl<'a, 'c, T: IoFloat> BlockParser<'a, 'c, T> {
    pub fn parse(ctx: &'c ParseCtx<'a>, block: &'c Block) -> Result<SequenceSet> {
        // Reserve from the block size so buffers do not grow by doubling (a number
        // takes at least two bytes of text, usually about eight).
        let share = (block.end - block.start) / ctx.fields.len().max(1);
        let streams = ctx
            .fields
            .iter()
            .map(|f| {
                let mut b = StreamBuffer::new(f.dim, f.sparse, T::DTYPE);
                if let Some(v) = T::view_mut(&mut b.values) {
                    v.reserve(share / 8);
                }
                if f.sparse {
                    b.indices.reserve(share / 8);
                    b.indptr.reserve(share / 16);
                }
                b
            })
            .collect();
        let mut p = BlockParser::<T> {
            ctx,
            block,
            set: SequenceSet::new(streams),
            seen_on_row: vec![0; ctx.fields.len()],
            stream_rows: vec![Vec::new(); ctx.fields.len()],
            row_no: 0,
            hint: 0,
            line: 0,
            line_start: block.start,
            _t: std::marker::PhantomData,
        };
        p.run()?;
        Ok(p.set)
    }

    fn loc(&self) -> Locator<'a> {
        Locator {
            file: self.ctx.file,
            bytes: self.ctx.bytes,
            base_line: self.block.first_line,
            known_line_start: self.line_start,
            known_line: self.line,
        }
    }

    fn err(&self, pos: usize, expected: impl Into<String>) -> Error {
        self.loc()
            .error(pos, token_at(self.ctx.bytes, pos), expected)
    }

    fn run(&mut self) -> Result<()> {
        let bytes = self.ctx.bytes;
        let end = self.block.end;
        let mut pos = self.block.start;
        let mut seq: Option<SeqState> = None;
        let mut cur_id: Option<u64> = None;
        let mut ordinal = self.block.first_seq;
        while pos < end {
            self.line_start = pos;
            let (le, next) = match memchr::memchr(b'\n', &bytes[pos..end]) {
                Some(i) => (pos + i, pos + i + 1),
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
            let name_start = p;
            while p < le && !is_delim(bytes[p]) {
                p += 1;
            }
            if p == name_start {
                return Err(self.err(name_start, "a stream name right after '|'"));
            }
            let name = &bytes[name_start..p];
            let fields = self.ctx.fields;
            let guess = fields.get(self.hint).filter(|f| same(&f.field, name));
            let found = match guess {
                Some(_) => Some(self.hint),
                None => fields.iter().position(|f| same(&f.field, name)),
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

    #[inline]
    fn dense_values(&mut self, k: usize, mut p: usize, le: usize) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = self.ctx.fields[k].dim;
        let field_start = p;
        let mut count = 0usize;
        // Work on the typed vector directly (put back below, also on error).
        let mut vals = match T::view_mut(&mut self.set.streams[k].values) {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        };
        let r = self.dense_loop(k, &mut p, le, dim, &mut count, &mut vals);
        if let Some(v) = T::view_mut(&mut self.set.streams[k].values) {
            *v = vals;
        }
        r?;
        if count < dim {
            // CNTK's "sparse suffix" warning: the missing tail is zero.
            let f = &self.ctx.fields[k];
            let w = self.loc().warning(
                field_start,
                quote(&bytes[field_start..p]),
                format!(
                    "dense stream '{}' has {count} of {dim} values; the missing tail is zero",
                    f.name
                ),
            );
            self.ctx.sink.warn(w);
            if let Some(vals) = T::view_mut(&mut self.set.streams[k].values) {
                vals.resize(vals.len() + dim - count, T::zero());
            }
        }
        Ok(p)
    }

    #[inline(always)]
    fn dense_loop(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        dim: usize,
        count: &mut usize,
        vals: &mut Vec<T>,
    ) -> Result<()> {
        let bytes = self.ctx.bytes;
        let mut q = *p;
        let r = loop {
            while q < le && is_blank(bytes[q]) {
                q += 1;
            }
            if q >= le || bytes[q] == b'|' || bytes[q] == b'\r' {
                break Ok(());
            }
            if *count == dim {
                let f = &self.ctx.fields[k];
                break Err(self.err(
                    q,
                    format!(
                        "at most {dim} values for dense stream '{}' (its dimension)",
                        f.name
                    ),
                ));
            }
            // the common case inline, everything else (and errors) out of line
            if let Some((v, n)) = plain_decimal::<T>(&bytes[q..le]) {
                vals.push(v);
                *count += 1;
                q += n;
                continue;
            }
            match parse_number::<T>(bytes, q, le) {
                Ok((v, n)) => {
                    vals.push(v);
                    *count += 1;
                    q += n;
                }
                Err((at, expected)) => break Err(self.err(at, expected)),
            }
        };
        *p = q;
        r
    }

    #[inline]
    fn sparse_values(&mut self, k: usize, mut p: usize, le: usize) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = self.ctx.fields[k].dim;
        let row_begin = self.set.streams[k].indices.len();
        loop {
            while p < le && is_blank(bytes[p]) {
                p += 1;
            }
            if p >= le || bytes[p] == b'|' || bytes[p] == b'\r' {
                break;
            }
            let idx_pos = p;
            let mut idx: u64 = 0;
            while p < le && bytes[p].is_ascii_digit() {
                idx = match idx
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(bytes[p] - b'0')))
                {
                    Some(v) => v,
                    None => return Err(self.err(idx_pos, "a sparse index that fits in 64 bits")),
                };
                p += 1;
            }
            if p == idx_pos {
                return Err(self.err(
                    p,
                    "a sparse entry 'index:value' starting with an unsigned decimal index",
                ));
            }
            if p >= le || bytes[p] != b':' {
                return Err(self.err(idx_pos, format!("':' right after the sparse index {idx}")));
            }
            p += 1;
            let (v, n) = match plain_decimal::<T>(&bytes[p..le]) {
                Some(r) => r,
                None => match parse_number::<T>(bytes, p, le) {
                    Ok(r) => r,
                    Err((at, expected)) => return Err(self.err(at, expected)),
                },
            };
            if idx >= dim as u64 {
                let f = &self.ctx.fields[k];
                return Err(self.err(
                    idx_pos,
                    format!(
                        "a sparse index below {dim}, the dimension of stream '{}'",
                        f.name
                    ),
                ));
            }
            let buf = &mut self.set.streams[k];
            buf.indices.push(idx as u32);
            if let Some(vals) = T::view_mut(&mut buf.values) {
                vals.push(v);
            }
            p += n;
        }
        let buf = &mut self.set.streams[k];
        normalize_row::<T>(buf, row_begin);
        let nnz = buf.indices.len();
        buf.indptr.push(nnz);
        Ok(p)
    }
}

/// Sort the entries of the row starting at `begin` by index and sum duplicates
/// (CNTK sums repeated indices, readers.md §1.4).
fn normalize_row<T: IoFloat>(buf: &mut StreamBuffer, begin: usize) {
    let n = buf.indices.len() - begin;
    if n < 2 {
        return;
    }
    let Some(vals) = T::view_mut(&mut buf.values) else {
        return;
    };
    let idx = &mut buf.indices[begin..];
    let sorted_unique = idx.windows(2).all(|w| w[0] < w[1]);
    if sorted_unique {
        return;
    }
    let mut pairs: Vec<(u32, T)> = idx
        .iter()
        .copied()
        .zip(vals[begin..].iter().copied())
        .collect();
    pairs.sort_by_key(|e| e.0);
    buf.indices.truncate(begin);
    vals.truncate(begin);
    for (i, v) in pairs {
        if buf.indices.len() > begin && buf.indices.last() == Some(&i) {
            if let Some(last) = vals.last_mut() {
                *last += v;
            }
        } else {
            buf.indices.push(i);
            vals.push(v);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// The direct path for plain decimals gives exactly fast-float's value.
        #[test]
        fn plain_decimals_match_fast_float(
            sign in prop::sample::select(vec!["", "-", "+"]),
            int in "[0-9]{1,12}",
            frac in prop::option::of("[0-9]{0,12}"),
        ) {
            let text = match &frac {
                Some(f) => format!("{sign}{int}.{f}"),
                None => format!("{sign}{int}"),
            };
            let b = text.as_bytes();
            if let Some((v, n)) = plain_decimal::<f32>(b) {
                prop_assert_eq!(n, b.len());
                let want: f32 = fast_float2::parse(b).expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
            if let Some((v, n)) = plain_decimal::<f64>(b) {
                prop_assert_eq!(n, b.len());
                let want: f64 = fast_float2::parse(b).expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
        }
    }
    #[test]
    fn numbers_follow_the_ctf_grammar() {
        let ok = |s: &str| parse_number::<f32>(s.as_bytes(), 0, s.len()).map(|r| r.0);
        assert_eq!(ok("1"), Ok(1.0));
        assert_eq!(ok("+1"), Ok(1.0));
        assert_eq!(ok("007"), Ok(7.0));
        assert_eq!(ok("0."), Ok(0.0));
        assert_eq!(ok("-2.5E+1"), Ok(-25.0));
        assert_eq!(ok("1e-1"), Ok(0.1));
        assert_eq!(ok(".5"), Ok(0.5)); // extension
        for bad in [
            "nan", "inf", "-inf", "0x10", "1,2", "1e", "1e+", "a", "-", ".", "1e99",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let r = parse_number::<f64>(b"0.1 2", 0, 5).unwrap();
        assert_eq!(r, (0.1, 3));
    }
}
