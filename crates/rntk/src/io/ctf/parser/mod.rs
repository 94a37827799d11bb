//! Parsing the rows of one index block into decoded sequences: fields, dense and
//! sparse values, comments, sequence grouping and the per-sequence checks of
//! readers.md §1.3–§1.5. One call per block, so blocks parse in parallel.
//!
//! `scan.rs`: byte classes and the 64-byte classifier; `number.rs`: the number
//! grammar and its fast paths; `rows.rs`: the row loop, sequence grouping,
//! checks and the error policy; `dense.rs` and `sparse.rs`: a field's values.

mod dense;
mod number;
mod rows;
mod scan;
mod sparse;

use super::index::Block;
use super::source::{BufPool, Source};
use crate::error::{Error, Result};
use crate::io::buffer::{prefer_huge_pages, IoFloat, SequenceSet, StreamBuffer};
use crate::io::diagnostics::{token_at, ErrorPolicy, Locator, WarningSink};

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
}
