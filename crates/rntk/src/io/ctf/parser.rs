//! Parsing the rows of one index block into decoded sequences: fields, dense and
//! sparse values, comments, sequence grouping and the per-sequence checks of
//! readers.md §1.3–§1.5. One call per block, so blocks parse in parallel.

use super::index::{row_start, Block, LineEnds, RowStart};
use super::source::{BufPool, Source};
use crate::error::{Error, Result};
use crate::io::buffer::{prefer_huge_pages, IoFloat, SequenceSet, StreamBuffer};
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

/// Bytes read past a block's end where the file has them: the 64-byte windows of the
/// fast paths then run to the block's last row (the values are the same either way).
const READ_PAD: usize = 256;

/// Everything a block parse needs besides the block.
#[derive(Clone, Copy)]
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

/// Bytes of `0`..`9` at the start of `v` (little endian: the first byte of text
/// is the lowest), 0..=8. A byte is a digit when its high nibble is 3 and adding
/// 6 keeps it 3; carries only move upward, so bytes before the first non-digit
/// are judged exactly.
#[inline(always)]
fn digit_run(v: u64) -> u32 {
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let bad = ((v & HI) ^ THREES) | ((v.wrapping_add(0x0606_0606_0606_0606) & HI) ^ THREES);
    bad.trailing_zeros() / 8
}

/// The value of the first `n` (1..=8) digit bytes of `v`: shifted to the top so
/// that the vacated low bytes read as leading zeros, then the usual three
/// multiply-and-add steps of an eight-digit conversion.
#[inline(always)]
fn digits_value(v: u64, n: u32) -> u64 {
    // borrows of the subtraction only move upward, into bytes shifted out
    let d = v.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - n));
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    let v1 = (d & MASK).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((d >> 16) & MASK).wrapping_mul(1 + (10_000 << 32));
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// [`plain_decimal`] eight digits at a time for the usual short forms: an
/// optional sign, 1–7 integer digits, optionally `.` and up to 8 fraction digits,
/// then a delimiter. Needs 18 readable bytes from `p` (anything else, and any
/// longer form, returns `None` for the general paths). Reading past the line end
/// is harmless: a line end is no digit, so it stops the run. Returns the exact
/// numerator and divisor of [`IoFloat::decimal_parts`] and the length.
#[inline(always)]
fn short_decimal_parts<T: IoFloat>(bytes: &[u8], p: usize) -> Option<(T, T, usize)> {
    if p + 18 > bytes.len() {
        return None;
    }
    let c = bytes[p];
    let negative = c == b'-';
    let mut i = p + usize::from(negative || c == b'+');
    let w = load8(bytes, i);
    let ni = digit_run(w);
    if ni == 0 || ni == 8 {
        return None;
    }
    let mut m = digits_value(w, ni);
    i += ni as usize;
    let mut frac = 0usize;
    if bytes[i] == b'.' {
        i += 1;
        let w = load8(bytes, i);
        let nf = digit_run(w);
        if nf > 0 {
            m = m * POW10_U64[nf as usize] + digits_value(w, nf);
            i += nf as usize;
            frac = nf as usize;
        }
    }
    if !is_delim(bytes[i]) {
        return None;
    }
    T::decimal_parts(m, frac, negative).map(|(n, d)| (n, d, i - p))
}

/// [`short_decimal_parts`], divided.
#[inline(always)]
fn short_decimal<T: IoFloat>(bytes: &[u8], p: usize) -> Option<(T, usize)> {
    // integers (one-hot values) skip the division's latency
    short_decimal_parts::<T>(bytes, p)
        .map(|(n, d, len)| (if d == T::one() { n } else { n / d }, len))
}

/// The value of a token whose extent is known (`len` bytes at `at`, as the
/// 64-byte window finds it) in the commonest short form: an optional `-`, then at
/// most 8 bytes of digits with at most one `.` and at least one digit. The token
/// is read as one word ending at its last byte, so the digits land right-aligned
/// (the bytes before them become leading zeros) and the point is squeezed out
/// with two masks: no loop, no branch on the digit counts. `dot` is the offset
/// of the token's first `.` from `at` (`len` or more when it has none), as the
/// window's bitmask gives it. `None` hands the token to the general paths.
#[inline(always)]
fn token_decimal_parts<T: IoFloat>(
    bytes: &[u8],
    at: usize,
    len: usize,
    dot: usize,
) -> Option<(T, T)> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let negative = *bytes.get(at)? == b'-';
    let body = len - usize::from(negative);
    let end = at + len;
    if body == 0 || body > 8 || end < 8 {
        return None;
    }
    let w = load8(bytes, end - 8);
    // bytes before the body read as '0'
    let keep = !0u64 << (8 * (8 - body));
    let w = (w & keep) | (ZEROS & !keep);
    let (digits, frac) = if dot >= len {
        (w, 0)
    } else {
        if body == 1 {
            return None; // "." alone
        }
        // byte of the (first) point in w (the token's first byte is 8 - len,
        // a sign before it: the point is never the sign)
        let dp = (8 + dot - len) as u32;
        let below = w & ((1u64 << (8 * dp)) - 1);
        let above = w & ((!0u64 << (8 * dp)) << 8);
        // the point removed, one more leading '0' at the bottom
        (above | (below << 8) | 0x30, (7 - dp) as usize)
    };
    // all eight bytes digits (a second point, a '+', an 'e' fail here)
    let bad = ((digits & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS)
        | ((digits.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS);
    if bad != 0 {
        return None;
    }
    let d = digits - ZEROS;
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    let v1 = (d & MASK).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((d >> 16) & MASK).wrapping_mul(1 + (10_000 << 32));
    let m = u64::from((v1.wrapping_add(v2) >> 32) as u32);
    T::decimal_parts(m, frac, negative)
}

/// Bitmasks over 64 bytes of text (bit `i` for byte `i`): blanks, and the bytes
/// that end a field's values (`|`, `\r`, `\n`), and points (`.`). Finding every
/// value's end at once keeps the next value's start off the chain of each
/// value's digits; the points spare each value its own search.
/// `AVX2` (only inside a function compiled for it, after runtime detection)
/// classifies 32 bytes per compare instead of 16.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify64<const AVX2: bool>(w: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::*;
    if AVX2 {
        let mut blank = 0u64;
        let mut stop = 0u64;
        let mut dot = 0u64;
        for k in 0..2 {
            // SAFETY: `AVX2` is only true in `dense_loop_avx2`, which runs after
            // `fast_dense()` detected AVX2; the load reads bytes 32k..32k+32 of
            // the 64-byte array.
            unsafe {
                let v = _mm256_loadu_si256(w.as_ptr().add(32 * k).cast::<__m256i>());
                let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
                let b = _mm256_or_si256(eq(b' '), eq(b'\t'));
                let e = _mm256_or_si256(_mm256_or_si256(eq(b'|'), eq(b'\r')), eq(b'\n'));
                blank |= u64::from(_mm256_movemask_epi8(b) as u32) << (32 * k);
                stop |= u64::from(_mm256_movemask_epi8(e) as u32) << (32 * k);
                dot |= u64::from(_mm256_movemask_epi8(eq(b'.')) as u32) << (32 * k);
            }
        }
        return (blank, stop, dot);
    }
    let mut blank = 0u64;
    let mut stop = 0u64;
    let mut dot = 0u64;
    for k in 0..4 {
        // SAFETY: SSE2 is part of every x86_64 target; the load reads bytes
        // 16k..16k+16 of the 64-byte array.
        unsafe {
            let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast::<__m128i>());
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let b = _mm_or_si128(eq(b' '), eq(b'\t'));
            let e = _mm_or_si128(_mm_or_si128(eq(b'|'), eq(b'\r')), eq(b'\n'));
            blank |= u64::from(_mm_movemask_epi8(b) as u16) << (16 * k);
            stop |= u64::from(_mm_movemask_epi8(e) as u16) << (16 * k);
            dot |= u64::from(_mm_movemask_epi8(eq(b'.')) as u16) << (16 * k);
        }
    }
    (blank, stop, dot)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify64<const AVX2: bool>(w: &[u8; 64]) -> (u64, u64, u64) {
    let mut blank = 0u64;
    let mut stop = 0u64;
    let mut dot = 0u64;
    for (i, &c) in w.iter().enumerate() {
        blank |= u64::from(is_blank(c)) << i;
        stop |= u64::from(matches!(c, b'|' | b'\r' | b'\n')) << i;
        dot |= u64::from(c == b'.') << i;
    }
    (blank, stop, dot)
}

/// Whether this CPU has what `dense_loop_avx2` is compiled for.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fast_dense() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("popcnt")
}

const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

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
    /// Divisors of the dense field being parsed (reused between fields).
    divs: Vec<T>,
}

impl<'a, 'c, T: IoFloat> BlockParser<'a, 'c, T> {
    /// Parse consecutive blocks into one set: appending, rather than joining
    /// one set per block afterwards, saves a copy of everything decoded.
    /// Each block's bytes are read from `src` just before it is parsed, into one
    /// buffer of `pool` (`ctx.bytes` is not used). `reuse`, an emptied set of the
    /// same streams, lends its buffers (their memory is already faulted in).
    pub fn parse_blocks(
        ctx: &ParseCtx<'a>,
        blocks: &[Block],
        src: &dyn Source,
        pool: &BufPool,
        reuse: Option<SequenceSet>,
    ) -> Result<SequenceSet> {
        // Reserve for the first block from its size (a number takes at least two
        // bytes of text, usually about eight), for the others from what the
        // first held: buffers then grow once, not by doubling, and hold little
        // unused room.
        let bytes: usize = blocks.iter().map(|b| b.end - b.start).sum();
        let first = blocks.first().map_or(0, |b| b.end - b.start);
        let share = first / ctx.fields.len().max(1);
        let mut set = reuse
            .filter(|s| {
                s.num_sequences() == 0
                    && s.streams.len() == ctx.fields.len()
                    && s.streams.iter().zip(ctx.fields).all(|(b, f)| {
                        b.sparse == f.sparse
                            && b.sample_size == f.dim
                            && b.values.dtype() == T::DTYPE
                            && b.rows() == 0
                    })
            })
            .unwrap_or_else(|| {
                SequenceSet::new(
                    ctx.fields
                        .iter()
                        .map(|f| StreamBuffer::new(f.dim, f.sparse, T::DTYPE))
                        .collect(),
                )
            });
        for b in &mut set.streams {
            if let Some(v) = T::view_mut(&mut b.values) {
                v.reserve(share / 8);
            }
            if b.sparse {
                b.indices.reserve(share / 8);
                b.indptr.reserve(share / 16);
            }
        }
        let seqs: u64 = blocks.iter().map(|b| b.num_sequences).sum();
        set.keys.reserve(seqs as usize);
        set.lines.reserve(seqs as usize);
        set.valid.reserve(seqs as usize);
        let mut divs = Vec::new();
        let mut buf = pool.take();
        for block in blocks {
            let (text, base) = match src.read(block.start, block.end, READ_PAD, &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    pool.give(buf);
                    return Err(e);
                }
            };
            let ctx = ParseCtx {
                bytes: text,
                ..*ctx
            };
            let rebased = Block {
                start: block.start - base,
                end: block.end - base,
                ..*block
            };
            let mut p = BlockParser::<T> {
                ctx: &ctx,
                block: &rebased,
                set,
                seen_on_row: vec![0; ctx.fields.len()],
                stream_rows: vec![Vec::new(); ctx.fields.len()],
                row_no: 0,
                hint: 0,
                line: 0,
                line_start: rebased.start,
                divs,
            };
            let r = p.run();
            set = p.set;
            divs = p.divs;
            if let Err(e) = r {
                pool.give(buf);
                return Err(e);
            }
            if std::ptr::eq(block, &blocks[0]) && first > 0 && bytes > first {
                let rest = |n: usize| {
                    let est = (n as u128 * (bytes - first) as u128 / first as u128) as usize;
                    est + est / 16
                };
                for b in &mut set.streams {
                    let n = b.values.len();
                    if let Some(v) = T::view_mut(&mut b.values) {
                        v.reserve(rest(n));
                    }
                    b.indices.reserve(rest(b.indices.len()));
                    b.indptr.reserve(rest(b.indptr.len()));
                    b.seq_rows.reserve(rest(b.seq_rows.len()));
                    if let Some(v) = T::view_mut(&mut b.values) {
                        prefer_huge_pages(v);
                    }
                    prefer_huge_pages(&b.indices);
                    prefer_huge_pages(&b.indptr);
                }
            }
        }
        pool.give(buf);
        Ok(set)
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

    #[inline]
    fn dense_values(&mut self, k: usize, mut p: usize, le: usize) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = self.ctx.fields[k].dim;
        let field_start = p;
        // Work on the typed vector directly (put back below, also on error).
        let mut vals = match T::view_mut(&mut self.set.streams[k].values) {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        };
        let mut divs = std::mem::take(&mut self.divs);
        // The row's slots exist up front, zero (CNTK's missing tail), so values
        // are stored without a capacity check each; a divisor of one stands for
        // a value already complete.
        let base = vals.len();
        vals.resize(base + dim, T::zero());
        divs.clear();
        divs.resize(dim, T::one());
        let r = self.dense_loop_dispatch(k, &mut p, le, &mut vals[base..], &mut divs);
        let count = match r {
            Ok(count) => {
                // One pass of divisions the compiler vectorizes: one per value
                // inside the parse loop stalls it on the divider's latency.
                for (v, d) in vals[base..base + count].iter_mut().zip(&divs[..count]) {
                    *v = *v / *d;
                }
                count
            }
            Err(_) => {
                vals.truncate(base);
                0
            }
        };
        if let Some(v) = T::view_mut(&mut self.set.streams[k].values) {
            *v = vals;
        }
        self.divs = divs;
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
        }
        Ok(p)
    }

    /// [`Self::dense_loop`], compiled for AVX2 and BMI1/2 (variable shifts
    /// without the count register, `tzcnt`) where the CPU has them.
    #[inline(always)]
    fn dense_loop_dispatch(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        #[cfg(target_arch = "x86_64")]
        if fast_dense() {
            // SAFETY: `fast_dense()` checked that this CPU has every feature
            // `dense_loop_avx2` is compiled for.
            return unsafe { self.dense_loop_avx2(k, p, le, slots, divs) };
        }
        self.dense_loop::<false>(k, p, le, slots, divs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn dense_loop_avx2(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        self.dense_loop::<true>(k, p, le, slots, divs)
    }

    /// Numerators into `slots`, their divisors into `divs` (both `dim` long);
    /// returns how many values the field has. `FAST`: see [`classify64`].
    #[inline(always)]
    fn dense_loop<const FAST: bool>(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = slots.len().min(divs.len());
        let mut count = 0usize;
        let mut q = *p;
        // 64 bytes at a time while the window (and the 18 bytes a short number
        // may read beyond it) lies in the buffer: value ends come from bitmasks.
        while q + 64 + 18 <= bytes.len() {
            let Some(w) = bytes
                .get(q..q + 64)
                .and_then(|w| <&[u8; 64]>::try_from(w).ok())
            else {
                break;
            };
            let (blank, stop, dots) = classify64::<FAST>(w);
            // the field ends at the first stop byte or the line end
            let room = (le - q).min(64) as u32;
            let end = stop.trailing_zeros().min(room);
            let mut ends = if end < 64 {
                (blank & ((1u64 << end) - 1)) | (1u64 << end)
            } else {
                blank
            };
            let mut s = 0usize;
            while ends != 0 {
                let e = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                if e > s {
                    let at = q + s;
                    if count >= dim {
                        *p = at;
                        return Err(self.too_many(k, at, dim));
                    }
                    // e - s < 64: bits past the token read as "no point"
                    let dot = ((dots >> s) & ((1u64 << (e - s)) - 1)).trailing_zeros() as usize;
                    let parts = match token_decimal_parts::<T>(bytes, at, e - s, dot) {
                        Some(r) => Some(r),
                        None => match short_decimal_parts::<T>(bytes, at) {
                            Some((n, d, len)) if len == e - s => Some((n, d)),
                            _ => None,
                        },
                    };
                    match parts {
                        Some((n, d)) => {
                            slots[count] = n;
                            divs[count] = d;
                        }
                        None => match self.general_number(at, le) {
                            Ok(v) => slots[count] = v,
                            Err(e) => {
                                *p = at;
                                return Err(e);
                            }
                        },
                    }
                    count += 1;
                }
                s = e + 1;
            }
            if end < 64 {
                *p = q + end as usize;
                return Ok(count);
            }
            if s == 0 {
                break; // one value longer than the window: the byte loop below
            }
            q += s;
        }
        let r = loop {
            while q < le && is_blank(bytes[q]) {
                q += 1;
            }
            if q >= le || bytes[q] == b'|' || bytes[q] == b'\r' {
                break Ok(count);
            }
            if count >= dim {
                break Err(self.too_many(k, q, dim));
            }
            if let Some((n, d, len)) = short_decimal_parts::<T>(bytes, q) {
                slots[count] = n;
                divs[count] = d;
                count += 1;
                q += len;
                continue;
            }
            let v = match plain_decimal::<T>(&bytes[q..le]) {
                Some(r) => Ok(r),
                None => parse_number::<T>(bytes, q, le),
            };
            match v {
                Ok((v, n)) => {
                    slots[count] = v;
                    count += 1;
                    q += n;
                }
                Err((at, expected)) => break Err(self.err(at, expected)),
            }
        };
        *p = q;
        r
    }

    /// A value that is delimited (the window found its end) but not in the short
    /// form: the general parsers, or the error.
    #[inline(never)]
    fn general_number(&self, at: usize, le: usize) -> Result<T> {
        let bytes = self.ctx.bytes;
        let v = match plain_decimal::<T>(&bytes[at..le]) {
            Some(r) => Ok(r),
            None => parse_number::<T>(bytes, at, le),
        };
        v.map(|(v, _)| v)
            .map_err(|(pos, expected)| self.err(pos, expected))
    }

    #[cold]
    fn too_many(&self, k: usize, at: usize, dim: usize) -> Error {
        let f = &self.ctx.fields[k];
        self.err(
            at,
            format!(
                "at most {dim} values for dense stream '{}' (its dimension)",
                f.name
            ),
        )
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
            // up to seven digits and the ':' in one word (the usual case)
            if p + 8 <= le {
                let w = load8(bytes, p);
                let n = digit_run(w);
                if (1..8).contains(&n) && bytes[p + n as usize] == b':' {
                    idx = digits_value(w, n);
                    p += n as usize;
                }
            }
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
            let fast = match short_decimal::<T>(bytes, p) {
                Some(r) => Some(r),
                None => plain_decimal::<T>(&bytes[p..le]),
            };
            let (v, n) = match fast {
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
    /// A short decimal as text, with one of the delimiters after it and padding
    /// so that the eight-byte loads are in bounds.
    fn padded(text: &str, tail: &str) -> Vec<u8> {
        format!("{text}{tail}..................").into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
        /// The eight-digits-at-a-time path gives exactly the value of a correct
        /// parser (the standard library's) and consumes exactly the number, or
        /// declines; it never accepts a number that runs into other text.
        #[test]
        fn short_decimals_match_std(
            sign in prop::sample::select(vec!["", "-", "+"]),
            int in "[0-9]{0,9}",
            frac in prop::option::of("[0-9]{0,10}"),
            tail in prop::sample::select(vec![" ", "\t", "|", "\r", "\n", "e", "x", "5", "."]),
        ) {
            let text = match &frac {
                Some(f) => format!("{sign}{int}.{f}"),
                None => format!("{sign}{int}"),
            };
            let b = padded(&text, tail);
            let delimited = is_delim(tail.as_bytes()[0]);
            if let Some((v, n)) = short_decimal::<f32>(&b, 0) {
                prop_assert!(delimited, "{:?} accepted before {:?}", text, tail);
                prop_assert_eq!(n, text.len());
                let want: f32 = text.parse().expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
            if let Some((v, n)) = short_decimal::<f64>(&b, 0) {
                prop_assert!(delimited, "{:?} accepted before {:?}", text, tail);
                prop_assert_eq!(n, text.len());
                let want: f64 = text.parse().expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
        }

        /// Random `%.6f` numbers (the common form of dense data) always take the
        /// fast path and give the correctly rounded value.
        #[test]
        fn printf_decimals_take_the_fast_path(x in -1.0e6f64..1.0e6, digits in 0usize..9) {
            let text = format!("{x:.digits$}");
            let b = padded(&text, " ");
            let (v, n) = short_decimal::<f64>(&b, 0).expect("fast path");
            prop_assert_eq!(n, text.len());
            prop_assert_eq!(v.to_bits(), text.parse::<f64>().expect("valid").to_bits());
            if x.abs() < 1.0 && digits <= 6 {
                let (v, _) = short_decimal::<f32>(&b, 0).expect("fast path");
                prop_assert_eq!(v.to_bits(), text.parse::<f32>().expect("valid").to_bits());
            }
        }
    }

    #[test]
    fn short_decimals_need_room_and_a_delimiter() {
        assert_eq!(short_decimal::<f32>(b"0.5 ", 0), None); // too close to the end
        let (v, n) = short_decimal::<f32>(&padded("-0.168231", "\n"), 0).unwrap();
        assert_eq!((v, n), (-0.168_231, 9));
        for bad in ["12345678", ".5", "-", "1e5", "0x1"] {
            assert_eq!(short_decimal::<f64>(&padded(bad, " "), 0), None, "{bad}");
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

    /// The AVX2 classification (taken wherever the CPU has it) and the SSE2 one
    /// give the same masks, so both dense loops read the same values.
    #[test]
    fn classify64_paths_agree() {
        let alphabet = b" \t|\r\n.-+0123456789eE,x";
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut w = [0u8; 64];
            for c in w.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *c = alphabet[(x % alphabet.len() as u64) as usize];
            }
            let sse2 = classify64::<false>(&w);
            let mut scalar = (0u64, 0u64, 0u64);
            for (i, &c) in w.iter().enumerate() {
                scalar.0 |= u64::from(is_blank(c)) << i;
                scalar.1 |= u64::from(matches!(c, b'|' | b'\r' | b'\n')) << i;
                scalar.2 |= u64::from(c == b'.') << i;
            }
            assert_eq!(sse2, scalar);
            #[cfg(target_arch = "x86_64")]
            if fast_dense() {
                // SAFETY: the CPU has AVX2 (checked just above); the function
                // compiled for it only classifies.
                assert_eq!(unsafe { classify64_avx2(&w) }, scalar);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn classify64_avx2(w: &[u8; 64]) -> (u64, u64, u64) {
        classify64::<true>(w)
    }
}
