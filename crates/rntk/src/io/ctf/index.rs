//! The CTF index, built once per file (read by ranges, see `source.rs`):
//! sequence-aligned blocks (about 1 MiB each, the unit of parallel parsing) grouped
//! into chunks (the unit of loading and of randomization). Only per-block and per-chunk counts are kept, so the index of a
//! file larger than memory stays small; sequence offsets inside a block are found
//! again when the block is parsed.

use super::source::{BufPool, Source};
use crate::error::{Error, Result};
use crate::io::diagnostics::{token_at, Locator};
use rayon::prelude::*;

/// A run of whole sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub start: usize,
    pub end: usize,
    /// 1-based line number of the block's first row.
    pub first_line: u64,
    /// Ordinal of the block's first sequence in the file.
    pub first_seq: u64,
    pub num_sequences: u64,
    pub num_rows: u64,
}

/// Consecutive blocks loaded together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkSpan {
    pub blocks: std::ops::Range<usize>,
    pub num_sequences: u64,
    pub num_rows: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct CtfIndex {
    /// The first row has no sequence id: every row is its own sequence.
    pub per_line: bool,
    pub blocks: Vec<Block>,
    pub chunks: Vec<ChunkSpan>,
    pub missing_final_newline: bool,
}

/// What starts a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowStart {
    /// No id; `pos` is the first non-blank byte.
    NoId { pos: usize },
    /// A sequence id; `pos` is the byte after its digits.
    Id { id: u64, pos: usize },
}

/// Classify the start of the row at `start` (`end` = end of the buffer); on error
/// the offset of the problem and what was expected.
#[inline]
pub(crate) fn row_start(
    bytes: &[u8],
    start: usize,
    end: usize,
) -> std::result::Result<RowStart, (usize, &'static str)> {
    let mut p = start;
    while p < end && (bytes[p] == b' ' || bytes[p] == b'\t') {
        p += 1;
    }
    if p >= end || !bytes[p].is_ascii_digit() {
        return match bytes.get(p) {
            None | Some(b'|') | Some(b'\n') | Some(b'\r') => Ok(RowStart::NoId { pos: p }),
            Some(_) => Err((
                p,
                "a sequence id (decimal digits) or '|' at the start of a row",
            )),
        };
    }
    let id_start = p;
    let mut id: u64 = 0;
    while p < end && bytes[p].is_ascii_digit() {
        id = match id
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(bytes[p] - b'0')))
        {
            Some(v) => v,
            None => return Err((id_start, "a sequence id that fits in 64 bits")),
        };
        p += 1;
    }
    match bytes.get(p) {
        None | Some(b' ') | Some(b'\t') | Some(b'|') | Some(b'\n') | Some(b'\r') => {
            Ok(RowStart::Id { id, pos: p })
        }
        Some(_) => Err((p, "a blank or '|' after the sequence id")),
    }
}

/// Positions of the line ends in `bytes[start..end]`, found 64 bytes at a time:
/// rows of sparse data are a few dozen bytes, too short for a search call each.
pub(crate) struct LineEnds<'b> {
    bytes: &'b [u8],
    end: usize,
    /// Start of the current window and its unread line ends.
    at: usize,
    mask: u64,
}

impl<'b> LineEnds<'b> {
    pub(crate) fn new(bytes: &'b [u8], start: usize, end: usize) -> Self {
        let mut l = LineEnds {
            bytes,
            end,
            at: start,
            mask: 0,
        };
        l.mask = l.window();
        l
    }
    #[inline(always)]
    fn window(&self) -> u64 {
        let room = self.end.saturating_sub(self.at);
        match self.bytes.get(self.at..self.at + 64) {
            Some(w) if room >= 64 => match <&[u8; 64]>::try_from(w) {
                Ok(w) => newlines64(w),
                Err(_) => 0,
            },
            _ => {
                let mut m = 0u64;
                for (i, &c) in self.bytes[self.at..self.end].iter().enumerate() {
                    m |= u64::from(c == b'\n') << i;
                }
                m
            }
        }
    }
}

impl Iterator for LineEnds<'_> {
    type Item = usize;
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.at += 64;
            if self.at >= self.end {
                return None;
            }
            self.mask = self.window();
        }
        let i = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.at + i)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn newlines64(w: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    let mut m = 0u64;
    for k in 0..4 {
        // SAFETY: SSE2 is part of every x86_64 target; the load reads bytes
        // 16k..16k+16 of the 64-byte array.
        unsafe {
            let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast::<__m128i>());
            let e = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            m |= u64::from(_mm_movemask_epi8(e) as u16) << (16 * k);
        }
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn newlines64(w: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for (i, &c) in w.iter().enumerate() {
        m |= u64::from(c == b'\n') << i;
    }
    m
}

/// Parallel indexing works on ranges of this size (line aligned), each read into a
/// buffer of its own.
const RANGE_BYTES: usize = 4 << 20;
/// Target size of a block (the unit of parallel parsing).
pub(crate) const BLOCK_BYTES: usize = 1 << 20;

struct RangeScan {
    lines: u64,
    blocks: Vec<Block>,
    /// Rows before the first row with an id (they continue the previous range's
    /// last sequence): end offset and number of rows.
    prefix: (usize, u64),
    /// The sequence starting at the first row with an id: its id, end offset and
    /// rows. Whether it continues the previous range's last sequence depends on
    /// that sequence's id, known only when the ranges are joined.
    first: Option<(u64, usize, u64)>,
    last_id: Option<u64>,
}

fn scan_range(
    bytes: &[u8],
    a: usize,
    b: usize,
    per_line: bool,
    block_target: usize,
    file: &str,
) -> Result<RangeScan> {
    let mut lines = 0u64;
    let mut blocks = Vec::new();
    let mut cur_id: Option<u64> = None;
    let mut prefix: Option<(usize, u64)> = None;
    let mut first: Option<(u64, usize, u64)> = None;
    // (id, start offset, start line) of the first id row, until its sequence ends
    let mut first_open: Option<(u64, u64)> = None;
    let mut blk = Block {
        start: a,
        end: a,
        first_line: 0,
        first_seq: 0,
        num_sequences: 0,
        num_rows: 0,
    };
    let mut ls = a;
    // one search for all line ends: a call per short line costs more
    let mut line_ends = LineEnds::new(bytes, a, b);
    while ls < b {
        let le = match line_ends.next() {
            Some(i) => i + 1,
            None => b,
        };
        let new_seq = if per_line {
            true
        } else {
            let id = match row_start(bytes, ls, le) {
                Ok(RowStart::Id { id, .. }) => Some(id),
                Ok(RowStart::NoId { .. }) => None,
                Err((pos, expected)) => {
                    let loc = Locator {
                        file,
                        bytes,
                        base_line: 0,
                        known_line_start: ls,
                        known_line: 0,
                    };
                    // Line numbers are fixed up by the caller (ranges run in parallel).
                    let (_, column) = loc.line_col(pos);
                    return Err(Error::Reader {
                        file: file.to_string(),
                        line: lines,
                        column,
                        text: token_at(bytes, pos),
                        expected: expected.to_string(),
                    });
                }
            };
            let new = lines == 0 || (id.is_some() && id != cur_id);
            if new {
                if let Some((fid, fline)) = first_open.take() {
                    first = Some((fid, ls, lines - fline));
                }
            }
            if let (Some(x), None) = (id, cur_id) {
                prefix = Some((ls, lines));
                first_open = Some((x, lines));
            }
            if id.is_some() {
                cur_id = id;
            }
            new
        };
        if new_seq {
            if blk.num_sequences > 0 && ls - blk.start >= block_target {
                blk.end = ls;
                let next = Block {
                    start: ls,
                    end: ls,
                    first_line: lines,
                    first_seq: 0,
                    num_sequences: 0,
                    num_rows: 0,
                };
                blocks.push(std::mem::replace(&mut blk, next));
            }
            blk.num_sequences += 1;
        }
        blk.num_rows += 1;
        lines += 1;
        ls = le;
    }
    blk.end = b;
    if blk.num_sequences > 0 {
        blocks.push(blk);
    }
    if let Some((fid, fline)) = first_open {
        first = Some((fid, b, lines - fline));
    }
    Ok(RangeScan {
        lines,
        blocks,
        prefix: prefix.unwrap_or((b, lines)),
        first,
        last_id: cur_id,
    })
}

/// Bytes looked at per read while searching for a line end or the end of the data.
const WINDOW: usize = 64 << 10;

/// The last byte of `src` that is not blank (space, tab, line end), read backwards a
/// window at a time; `None` if there is none.
fn last_non_blank<S: Source + ?Sized>(src: &S, buf: &mut Vec<u8>) -> Result<Option<usize>> {
    let mut hi = src.len();
    while hi > 0 {
        let lo = hi.saturating_sub(WINDOW);
        let (b, base) = src.read(lo, hi, 0, buf)?;
        if let Some(i) = b[lo - base..hi - base]
            .iter()
            .rposition(|&c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Ok(Some(lo + i));
        }
        hi = lo;
    }
    Ok(None)
}

/// The offset just past the first line end at or after `from` and before `end`,
/// read forwards a window at a time: `None` if there is none before `end`. Further
/// than `max` bytes from `from` there is no reason to look: the row is refused.
fn next_line_end<S: Source + ?Sized>(
    src: &S,
    from: usize,
    end: usize,
    max: usize,
    file: &str,
    buf: &mut Vec<u8>,
) -> Result<Option<usize>> {
    let mut lo = from;
    while lo < end {
        if lo - from > max {
            return Err(Error::Format {
                file: file.to_string(),
                detail: format!(
                    "the row around byte {from} is longer than {max} bytes: not CTF text ({})",
                    crate::limits::how_to_raise("max_line_bytes")
                ),
            });
        }
        let hi = lo.saturating_add(WINDOW).min(end);
        let (b, base) = src.read(lo, hi, 0, buf)?;
        if let Some(i) = memchr::memchr(b'\n', &b[lo - base..hi - base]) {
            return Ok(Some(lo + i + 1));
        }
        lo = hi;
    }
    Ok(None)
}

impl RangeScan {
    /// Offsets of a scan of a buffer whose byte 0 is data offset `base`.
    fn shifted(mut self, base: usize) -> RangeScan {
        if base == 0 {
            return self;
        }
        for b in &mut self.blocks {
            b.start += base;
            b.end += base;
        }
        self.prefix.0 += base;
        if let Some(f) = self.first.as_mut() {
            f.1 += base;
        }
        self
    }
}

impl CtfIndex {
    /// Index the CTF text of `src` (read by ranges into buffers of `pool`).
    pub fn build<S: Source + ?Sized>(
        src: &S,
        file: &str,
        chunk_bytes: usize,
        pool: &BufPool,
    ) -> Result<CtfIndex> {
        Self::build_ranged(src, file, chunk_bytes, RANGE_BYTES, pool)
    }

    /// [`CtfIndex::build`] with a chosen range size (tests use tiny ranges to
    /// exercise the merge of sequences that cross range boundaries).
    pub fn build_ranged<S: Source + ?Sized>(
        src: &S,
        file: &str,
        chunk_bytes: usize,
        range_bytes: usize,
        pool: &BufPool,
    ) -> Result<CtfIndex> {
        let max_line = crate::limits::current().max_line_bytes;
        let mut buf = pool.take();
        // Trailing blank lines (an editor's habit) are not rows: a documented
        // extension, CNTK fails on them with "Empty input row".
        let Some(last) = last_non_blank(src, &mut buf)? else {
            pool.give(buf);
            return Err(Error::Reader {
                file: file.to_string(),
                line: 1,
                column: 1,
                text: if src.len() == 0 {
                    "end of file".into()
                } else {
                    "blank lines only".into()
                },
                expected: "at least one row of data (the file is empty)".into(),
            });
        };
        // only blanks follow `last`: no row is refused for its length here
        let data_end =
            next_line_end(src, last, src.len(), usize::MAX, file, &mut buf)?.unwrap_or(src.len());
        let missing_final_newline = {
            let (b, base) = src.read(data_end - 1, data_end, 0, &mut buf)?;
            b[data_end - 1 - base] != b'\n'
        };
        let per_line = {
            // the first row's start (blanks, then an id or not) is in its first bytes
            let head = data_end.min(WINDOW);
            let (b, _) = src.read(0, head, 1, &mut buf)?;
            matches!(row_start(b, 0, head), Ok(RowStart::NoId { .. }))
        };
        let block_target = BLOCK_BYTES.min(chunk_bytes.max(1));

        let cuts = range_cuts(src, data_end, range_bytes, max_line, file, &mut buf)?;
        pool.give(buf);
        let scans: Vec<Result<RangeScan>> = cuts
            .par_windows(2)
            .map(|w| {
                let mut buf = pool.take();
                let r = src.read(w[0], w[1], 64, &mut buf).and_then(|(b, base)| {
                    scan_range(b, w[0] - base, w[1] - base, per_line, block_target, file)
                        .map(|s| s.shifted(base))
                });
                pool.give(buf);
                r
            })
            .collect();

        let mut blocks: Vec<Block> = Vec::new();
        let mut line_base = 1u64;
        let mut seq_base = 0u64;
        let mut cur_id: Option<u64> = None;
        for (k, scan) in scans.into_iter().enumerate() {
            let scan = match scan {
                Ok(s) => s,
                Err(Error::Reader {
                    file,
                    line,
                    column,
                    text,
                    expected,
                }) => {
                    return Err(Error::Reader {
                        file,
                        line: line + line_base,
                        column,
                        text,
                        expected,
                    })
                }
                Err(e) => return Err(e),
            };
            let mut rblocks = scan.blocks;
            if !per_line && k > 0 {
                absorb_continuation(&mut blocks, &mut rblocks, scan.prefix, scan.first, cur_id);
            }
            for mut b in rblocks {
                b.first_line += line_base;
                b.first_seq = seq_base;
                seq_base += b.num_sequences;
                blocks.push(b);
            }
            line_base += scan.lines;
            if scan.last_id.is_some() {
                cur_id = scan.last_id;
            }
        }

        let chunks = group_chunks(&blocks, chunk_bytes);
        Ok(CtfIndex {
            per_line,
            blocks,
            chunks,
            missing_final_newline,
        })
    }

    pub fn num_sequences(&self) -> u64 {
        self.blocks.iter().map(|b| b.num_sequences).sum()
    }
}

/// Where the ranges scanned in parallel start and end: a line end about every
/// `range_bytes`, then `data_end`.
fn range_cuts<S: Source + ?Sized>(
    src: &S,
    data_end: usize,
    range_bytes: usize,
    max_line: usize,
    file: &str,
    buf: &mut Vec<u8>,
) -> Result<Vec<usize>> {
    let mut cuts = vec![0usize];
    while let Some(&c) = cuts.last() {
        let r = range_bytes.max(1);
        if c + r >= data_end {
            break;
        }
        match next_line_end(src, c + r, data_end, max_line, file, buf)? {
            Some(e) if e < data_end => cuts.push(e),
            _ => break,
        }
    }
    cuts.push(data_end);
    Ok(cuts)
}

/// Rows at the start of a range that continue the previous range's last
/// sequence move to its last block (`blocks`' last): the rows before the first
/// id (`prefix`: end offset and rows), and the first id's sequence (`first`)
/// too when it has the same id as that sequence (`cur_id`).
fn absorb_continuation(
    blocks: &mut [Block],
    rblocks: &mut Vec<Block>,
    prefix: (usize, u64),
    first: Option<(u64, usize, u64)>,
    cur_id: Option<u64>,
) {
    let (mut absorb_end, mut absorb_rows) = prefix;
    let mut absorb_seqs = u64::from(absorb_rows > 0);
    if let Some((fid, fend, frows)) = first {
        if Some(fid) == cur_id {
            absorb_end = fend;
            absorb_rows += frows;
            absorb_seqs += 1;
        }
    }
    let mut moved_rows = 0;
    let mut moved_seqs = 0;
    while absorb_rows > moved_rows && !rblocks.is_empty() {
        let Some(prev) = blocks.last_mut() else { break };
        let b = &mut rblocks[0];
        if b.end <= absorb_end {
            prev.end = b.end;
            prev.num_rows += b.num_rows;
            moved_rows += b.num_rows;
            moved_seqs += b.num_sequences;
            rblocks.remove(0);
        } else {
            let rows = absorb_rows - moved_rows;
            prev.end = absorb_end;
            prev.num_rows += rows;
            b.start = absorb_end;
            b.num_rows -= rows;
            b.first_line += rows;
            b.num_sequences = b.num_sequences.saturating_sub(absorb_seqs - moved_seqs);
            moved_rows = absorb_rows;
        }
    }
}

/// Consecutive blocks grouped into chunks of at most `chunk_bytes` (a block
/// larger than that is a chunk of its own).
fn group_chunks(blocks: &[Block], chunk_bytes: usize) -> Vec<ChunkSpan> {
    let mut chunks: Vec<ChunkSpan> = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let start = blocks[i].start;
        let mut j = i + 1;
        while j < blocks.len() && blocks[j].end - start <= chunk_bytes {
            j += 1;
        }
        chunks.push(ChunkSpan {
            blocks: i..j,
            num_sequences: blocks[i..j].iter().map(|b| b.num_sequences).sum(),
            num_rows: blocks[i..j].iter().map(|b| b.num_rows).sum(),
        });
        i = j;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(text: &str, chunk: usize) -> CtfIndex {
        CtfIndex::build(text.as_bytes(), "t", chunk, &BufPool::default()).unwrap()
    }

    #[test]
    fn groups_rows_by_id_and_by_line() {
        let i = idx("0 |x 1\n0 |x 2\n|x 3\n1 |x 4\n0 |x 5\n", 1 << 20);
        assert!(!i.per_line);
        assert_eq!(i.num_sequences(), 3);
        let i = idx("|x 1\n0 |x 2\n0 |x 3\n", 1 << 20);
        assert!(i.per_line);
        assert_eq!(i.num_sequences(), 3);
    }

    #[test]
    fn tiny_chunks_stay_sequence_aligned() {
        let text = "0 |x 1\n0 |x 2\n1 |x 3\n2 |x 4\n2 |x 5\n2 |x 6\n3 |x 7\n";
        let i = idx(text, 8);
        let seqs: Vec<u64> = i.chunks.iter().map(|c| c.num_sequences).collect();
        assert_eq!(seqs.iter().sum::<u64>(), 4);
        let rows: u64 = i.chunks.iter().map(|c| c.num_rows).sum();
        assert_eq!(rows, 7);
        for b in &i.blocks {
            assert!(matches!(
                row_start(text.as_bytes(), b.start, b.end),
                Ok(RowStart::Id { .. })
            ));
        }
        assert_eq!(i.blocks.last().map(|b| b.first_line), Some(7));
    }

    #[test]
    fn ranges_merge_sequences_that_cross_them() {
        let mut text = String::new();
        for s in 0..40u32 {
            for r in 0..(s % 5 + 1) {
                if r == 1 && s % 3 == 0 {
                    text.push_str(&format!("|x {r}\n")); // row without id continues
                } else {
                    text.push_str(&format!("{} |x {r}\n", s % 7));
                }
            }
        }
        let whole =
            CtfIndex::build_ranged(text.as_bytes(), "t", 1 << 20, 1 << 30, &BufPool::default())
                .unwrap();
        assert_eq!(whole.num_sequences(), 40);
        for range in [1, 5, 13, 64] {
            for chunk in [1, 40, 1 << 20] {
                let i =
                    CtfIndex::build_ranged(text.as_bytes(), "t", chunk, range, &BufPool::default())
                        .unwrap();
                assert_eq!(i.num_sequences(), whole.num_sequences(), "range {range}");
                let rows: u64 = i.blocks.iter().map(|b| b.num_rows).sum();
                assert_eq!(rows, 120);
                // blocks tile the data and start where a sequence starts
                let mut at = 0;
                let mut seq = 0;
                for b in &i.blocks {
                    assert_eq!(b.start, at);
                    assert_eq!(b.first_seq, seq);
                    let line = text[..b.start].matches('\n').count() as u64 + 1;
                    assert_eq!(b.first_line, line);
                    at = b.end;
                    seq += b.num_sequences;
                }
                assert_eq!(at, text.len());
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        /// Any mix of id rows, rows without id and repeated ids: indexing in tiny
        /// ranges finds the same sequences as one range, in blocks that tile the
        /// data, with the right line numbers.
        #[test]
        fn tiny_ranges_agree_with_one_range(
            rows in proptest::collection::vec(proptest::option::of(0u64..4), 1..60),
            range in 1usize..40,
            chunk in 1usize..200,
        ) {
            let mut text = String::new();
            for (i, r) in rows.iter().enumerate() {
                match (i, r) {
                    (0, _) => text.push_str("0 |x 1\n"),
                    (_, Some(id)) => text.push_str(&format!("{id} |x 1\n")),
                    (_, None) => text.push_str("|x 2\n"),
                }
            }
            // naive reference: offsets where a sequence starts
            let mut starts = Vec::new();
            let mut cur = None;
            let mut off = 0;
            for (i, r) in rows.iter().enumerate() {
                let id = if i == 0 { Some(0) } else { *r };
                if i == 0 || (id.is_some() && id != cur) {
                    starts.push(off);
                }
                if id.is_some() {
                    cur = id;
                }
                off += if i == 0 || r.is_some() { 7 } else { 5 };
            }
            let one = CtfIndex::build_ranged(text.as_bytes(), "t", 1 << 20, 1 << 30, &BufPool::default()).unwrap();
            proptest::prop_assert_eq!(one.num_sequences(), starts.len() as u64);
            let i = CtfIndex::build_ranged(text.as_bytes(), "t", chunk, range, &BufPool::default()).unwrap();
            proptest::prop_assert_eq!(i.num_sequences(), one.num_sequences());
            let mut at = 0;
            let mut seq = 0;
            for b in &i.blocks {
                proptest::prop_assert_eq!(b.start, at);
                proptest::prop_assert_eq!(b.first_seq, seq);
                proptest::prop_assert!(b.num_sequences > 0);
                proptest::prop_assert!(starts.contains(&b.start), "block at {} is not a sequence start", b.start);
                let line = text[..b.start].matches('\n').count() as u64 + 1;
                proptest::prop_assert_eq!(b.first_line, line);
                proptest::prop_assert_eq!(b.num_rows, text[b.start..b.end].matches('\n').count() as u64);
                at = b.end;
                seq += b.num_sequences;
            }
            proptest::prop_assert_eq!(at, text.len());
        }
    }

    #[test]
    fn bad_ids_and_empty_files() {
        let e = CtfIndex::build(&b"0 |x 1\n-1 |x 2\n"[..], "f.ctf", 100, &BufPool::default())
            .unwrap_err();
        assert!(
            matches!(&e, Error::Reader { line: 2, column: 1, text, .. } if text == "-1"),
            "{e}"
        );
        let e = CtfIndex::build(&b"0 |x 1\n5a |x 2\n"[..], "f.ctf", 100, &BufPool::default())
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Reader {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = CtfIndex::build(
            &b"99999999999999999999 |x 1\n"[..],
            "f",
            100,
            &BufPool::default(),
        );
        assert!(matches!(e, Err(Error::Reader { line: 1, .. })));
        assert!(CtfIndex::build(&b""[..], "f", 100, &BufPool::default()).is_err());
        assert!(CtfIndex::build(&b"\n \n"[..], "f", 100, &BufPool::default()).is_err());
    }

    #[test]
    fn trailing_blank_lines_and_missing_newline() {
        let i = idx("0 |x 1\n\n  \n", 100);
        assert_eq!(i.blocks.last().map(|b| b.end), Some(7));
        assert!(!i.missing_final_newline);
        let i = idx("0 |x 1", 100);
        assert!(i.missing_final_newline);
    }
}
