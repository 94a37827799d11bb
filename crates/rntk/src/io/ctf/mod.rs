//! The CNTK Text Format deserializer: a memory-mapped file, its index built once
//! at construction, chunks decoded in parallel on demand.
//!
//! Accepted beyond CNTK 2.7 (each harmless, each refused by CNTK):
//! * trailing blank lines at the end of the file;
//! * a number with no digit before the point (`.5`) or none after it before an
//!   exponent (`3.e2`);
//! * blanks before the sequence id on any row (CNTK accepts them on the first only);
//! * non-ASCII stream names;
//! * a `StreamDef` without a field name reads the field named like the stream.
//!
//! Stricter than CNTK: a number that overflows the element type (`1e99` as
//! float32) is an error rather than infinity.

mod index;
mod parser;
mod writer;

pub use writer::{CtfWriter, SeqStream};

use super::buffer::{SequenceSet, StreamBuffer};
use super::deserializer::{ChunkDescription, Deserializer};
use super::diagnostics::{ErrorPolicy, Warning, WarningSink};
use super::stream::{StorageFormat, StreamDef, StreamInformation};
use crate::error::{Error, Result};
use crate::tensor::{DType, Shape};
use index::{Block, CtfIndex};
use parser::{BlockParser, FieldSpec, ParseCtx};
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// CNTK's default chunk size for CTF (32 MiB): the randomization window counts
/// chunks of this size.
pub const DEFAULT_CHUNK_BYTES: usize = 32 << 20;

/// Decoded sets kept for reuse once a source is done with them: a source
/// decodes at most four chunks at once, so four sets cover it, and the memory
/// held stays that of four chunks.
const POOLED_SETS: usize = 4;

/// Options of a [`CtfDeserializer`].
#[derive(Clone, Debug)]
pub struct CtfOptions {
    /// Element type of the delivered values (CNTK: always float32).
    pub dtype: DType,
    pub chunk_bytes: usize,
    pub policy: ErrorPolicy,
    pub warnings: Arc<WarningSink>,
}

impl Default for CtfOptions {
    fn default() -> Self {
        CtfOptions {
            dtype: DType::F32,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            policy: ErrorPolicy::Fail,
            warnings: Arc::new(WarningSink::default()),
        }
    }
}

enum Backing {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
    /// Drop the pages of a range already decoded: the kernel reads them again
    /// if needed, and the resident memory of a huge file stays bounded.
    fn release(&self, offset: usize, len: usize) {
        if let Backing::Mapped(m) = self {
            // A fault maps more than its page (fault-around, and whole large folios of
            // the page cache, up to 2 MiB): a block's first and last pages map pages of
            // its neighbours, which another thread may have released already. Release
            // that margin too, or ~6 % of a huge file stays mapped (measured: 337 MiB
            // of a 5.2 GiB file); a page still in use just faults back in.
            const AROUND: usize = 2 << 20;
            let start = offset.saturating_sub(AROUND);
            let len = (offset + len + AROUND).min(m.len()).saturating_sub(start);
            let offset = start;
            // SAFETY: the map is a read-only shared mapping of a file; DONTNEED
            // only drops this process's page-table entries, and later reads
            // fault the same file contents back in. No Rust reference sees
            // different bytes afterwards.
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
            };
        }
    }
}

/// One sequence's extent, for key lookups (the joined role only).
#[derive(Clone, Copy, Debug)]
struct SeqSpan {
    key: u64,
    block: Block,
}

/// Reads a CTF file (readers.md §1).
pub struct CtfDeserializer {
    path: String,
    data: Backing,
    fields: Vec<FieldSpec>,
    infos: Vec<StreamInformation>,
    index: CtfIndex,
    chunks: Vec<ChunkDescription>,
    options: CtfOptions,
    by_key: OnceLock<std::result::Result<Vec<SeqSpan>, Error>>,
    /// Emptied sets whose buffers the next chunks decode into.
    pool: Mutex<Vec<SequenceSet>>,
}

impl std::fmt::Debug for CtfDeserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtfDeserializer")
            .field("path", &self.path)
            .field("streams", &self.infos)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl CtfDeserializer {
    /// Open `path` with default options (float32, 32 MiB chunks, fail on errors).
    pub fn open(path: impl AsRef<std::path::Path>, streams: &[StreamDef]) -> Result<Self> {
        Self::with_options(path, streams, CtfOptions::default())
    }

    pub fn with_options(
        path: impl AsRef<std::path::Path>,
        streams: &[StreamDef],
        options: CtfOptions,
    ) -> Result<Self> {
        let name = path.as_ref().display().to_string();
        let io = |e: std::io::Error| Error::Io {
            file: name.clone(),
            detail: format!("cannot read the file: {e}"),
        };
        let file = std::fs::File::open(path.as_ref()).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let data = if len == 0 {
            // mmap refuses empty files; the index reports an empty file.
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the mapping is read-only. If another process truncates or
            // rewrites the file while it is mapped, reads may fault or see the new
            // bytes (every memory-mapped reader shares this caveat); the file is
            // not modified by rntk.
            let m = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            let _ = m.advise(memmap2::Advice::Sequential);
            Backing::Mapped(m)
        };
        Self::build(name, data, streams, options)
    }

    /// Read CTF text held in memory (`name` appears in messages).
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        streams: &[StreamDef],
        options: CtfOptions,
    ) -> Result<Self> {
        Self::build(name.to_string(), Backing::Owned(bytes), streams, options)
    }

    fn build(
        path: String,
        data: Backing,
        streams: &[StreamDef],
        options: CtfOptions,
    ) -> Result<Self> {
        let ctx = |d: String| Error::invalid(format!("CTF reader for {path}"), d);
        if streams.is_empty() {
            return Err(ctx("no stream configured".into()));
        }
        if options.chunk_bytes == 0 {
            return Err(ctx("chunk size must be at least one byte".into()));
        }
        let mut fields = Vec::new();
        let mut infos = Vec::new();
        for (id, s) in streams.iter().enumerate() {
            if s.dim == 0 {
                return Err(ctx(format!("stream '{}' has dimension 0", s.name)));
            }
            if s.sparse && s.dim > u32::MAX as usize {
                return Err(ctx(format!(
                    "sparse stream '{}' has dimension {} (at most 2^32 - 1)",
                    s.name, s.dim
                )));
            }
            if s.field.is_empty()
                || s.field
                    .bytes()
                    .any(|c| matches!(c, b' ' | b'\t' | b'|' | b'\r' | b'\n'))
                || s.field.starts_with('#')
            {
                return Err(ctx(format!(
                    "stream '{}' has field name {:?}: a field name is non-empty, has no blank or '|' and does not start with '#'",
                    s.name, s.field
                )));
            }
            if streams[..id].iter().any(|o| o.name == s.name) {
                return Err(ctx(format!("stream name '{}' is used twice", s.name)));
            }
            if streams[..id].iter().any(|o| o.field == s.field) {
                return Err(ctx(format!("field '{}' is read twice", s.field)));
            }
            fields.push(FieldSpec {
                name: s.name.clone(),
                field: s.field.as_bytes().to_vec(),
                dim: s.dim,
                sparse: s.sparse,
            });
            infos.push(StreamInformation {
                name: s.name.clone(),
                id,
                storage_format: if s.sparse {
                    StorageFormat::Sparse
                } else {
                    StorageFormat::Dense
                },
                element_type: options.dtype,
                sample_shape: Shape::from([s.dim]),
                defines_mb_size: s.defines_mb_size,
            });
        }
        let index = CtfIndex::build(data.bytes(), &path, options.chunk_bytes, &|o, l| {
            data.release(o, l)
        })?;
        if index.missing_final_newline {
            let bytes = data.bytes();
            let line = index.blocks.last().map_or(1, |b| {
                b.first_line + memchr::memchr_iter(b'\n', &bytes[b.start..]).count() as u64
            });
            options.warnings.warn(Warning {
                file: path.clone(),
                line,
                column: 1,
                text: String::new(),
                message: "the last row has no line end; it is read all the same".into(),
            });
        }
        let chunks = index
            .chunks
            .iter()
            .map(|c| ChunkDescription {
                num_sequences: c.num_sequences as usize,
                num_samples: c.num_rows,
            })
            .collect();
        Ok(CtfDeserializer {
            path,
            data,
            fields,
            infos,
            index,
            chunks,
            options,
            by_key: OnceLock::new(),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Total number of sequences in the file.
    pub fn num_sequences(&self) -> u64 {
        self.index.num_sequences()
    }

    /// The warnings of this reader.
    pub fn warnings(&self) -> &Arc<WarningSink> {
        &self.options.warnings
    }

    fn ctx(&self) -> ParseCtx<'_> {
        ParseCtx {
            bytes: self.data.bytes(),
            file: &self.path,
            fields: &self.fields,
            per_line: self.index.per_line,
            policy: self.options.policy,
            sink: &self.options.warnings,
        }
    }

    /// Parse a run of blocks into one set, into the buffers of a kept set if
    /// `reuse` (the first run of a chunk only: the others are joined to it).
    fn parse_blocks(
        &self,
        ctx: &ParseCtx<'_>,
        blocks: &[Block],
        reuse: bool,
    ) -> Result<SequenceSet> {
        let release = |b: &Block| self.data.release(b.start, b.end - b.start);
        let reuse = if reuse {
            self.pool.lock().ok().and_then(|mut p| p.pop())
        } else {
            None
        };
        match self.options.dtype {
            DType::F32 => BlockParser::<f32>::parse_blocks(ctx, blocks, &release, reuse),
            DType::F64 => BlockParser::<f64>::parse_blocks(ctx, blocks, &release, reuse),
        }
    }

    /// Keep an emptied set for the next chunks (up to [`POOLED_SETS`]).
    fn keep(&self, mut set: SequenceSet) {
        set.clear();
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOLED_SETS {
                p.push(set);
            }
        }
    }

    fn empty_set(&self) -> SequenceSet {
        SequenceSet::new(
            self.fields
                .iter()
                .map(|f| StreamBuffer::new(f.dim, f.sparse, self.options.dtype))
                .collect(),
        )
    }

    /// Decode blocks in parallel and join them in order.
    fn load_blocks(&self, blocks: &[Block]) -> Result<SequenceSet> {
        let ctx = self.ctx();
        // Runs of consecutive blocks, each parsed into one set; the runs are then
        // appended to the first. One run per thread would copy least, but a
        // worker slowed by other load then holds everyone up: two per thread
        // let the others take over its second run.
        // On a worker already (a source decodes chunks side by side): one run.
        let threads = rayon::current_num_threads();
        let runs = if threads > 1 && rayon::current_thread_index().is_none() {
            2 * threads
        } else {
            1
        };
        let per = blocks.len().div_ceil(runs).max(1);
        let parts: Vec<Result<SequenceSet>> = blocks
            .par_chunks(per)
            .enumerate()
            .map(|(k, run)| self.parse_blocks(&ctx, run, k == 0))
            .collect();
        let mut parts = parts.into_iter();
        let mut set = match parts.next() {
            Some(first) => first?,
            None => return Ok(self.empty_set()),
        };
        let rest = parts.collect::<Result<Vec<SequenceSet>>>()?;
        // One exact allocation per buffer: growing by doubling would hold up to
        // twice the chunk while it is joined.
        set.reserve_like(&rest);
        for p in &rest {
            set.append(p)?;
        }
        Ok(set)
    }

    /// Every sequence with its extent, sorted by key; refuses duplicate keys (a
    /// join needs each key once).
    fn key_index(&self) -> Result<&[SeqSpan]> {
        let built = self.by_key.get_or_init(|| {
            let bytes = self.data.bytes();
            let per_line = self.index.per_line;
            let spans: Vec<Vec<SeqSpan>> = self
                .index
                .blocks
                .par_iter()
                .map(|b| sequence_spans(bytes, b, per_line))
                .collect();
            let mut all: Vec<SeqSpan> = spans.into_iter().flatten().collect();
            all.sort_by_key(|s| s.key);
            if let Some(w) = all.windows(2).find(|w| w[0].key == w[1].key) {
                return Err(Error::Reader {
                    file: self.path.clone(),
                    line: w[1].block.first_line,
                    column: 1,
                    text: w[1].key.to_string(),
                    expected: format!(
                        "unique sequence ids in a file joined by key (id {} also starts line {})",
                        w[0].key, w[0].block.first_line
                    ),
                });
            }
            Ok(all)
        });
        match built {
            Ok(v) => Ok(v),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The sequences of a block as one-sequence blocks (same grouping rule as the
/// index and the parser).
fn sequence_spans(bytes: &[u8], b: &Block, per_line: bool) -> Vec<SeqSpan> {
    let mut out: Vec<SeqSpan> = Vec::with_capacity(b.num_sequences as usize);
    let mut pos = b.start;
    let mut line = b.first_line;
    let mut cur: Option<u64> = None;
    let mut ordinal = b.first_seq;
    while pos < b.end {
        let next = memchr::memchr(b'\n', &bytes[pos..b.end]).map_or(b.end, |i| pos + i + 1);
        let id = match index::row_start(bytes, pos, next) {
            Ok(index::RowStart::Id { id, .. }) => Some(id),
            _ => None,
        };
        let new = out.is_empty() || per_line || (id.is_some() && id != cur);
        if id.is_some() {
            cur = id;
        }
        if new {
            if let Some(last) = out.last_mut() {
                last.block.end = pos;
            }
            let key = if per_line {
                ordinal
            } else {
                id.unwrap_or(ordinal)
            };
            out.push(SeqSpan {
                key,
                block: Block {
                    start: pos,
                    end: b.end,
                    first_line: line,
                    first_seq: ordinal,
                    num_sequences: 1,
                    num_rows: 0,
                },
            });
            ordinal += 1;
        }
        if let Some(last) = out.last_mut() {
            last.block.num_rows += 1;
        }
        pos = next;
        line += 1;
    }
    out
}

impl Deserializer for CtfDeserializer {
    fn streams(&self) -> &[StreamInformation] {
        &self.infos
    }
    fn chunks(&self) -> &[ChunkDescription] {
        &self.chunks
    }
    fn load_chunk(&self, i: usize) -> Result<SequenceSet> {
        let span = self.index.chunks.get(i).ok_or_else(|| {
            Error::invalid(
                format!("CTF reader for {}", self.path),
                format!("chunk {i} out of range ({} chunks)", self.chunks.len()),
            )
        })?;
        self.load_blocks(&self.index.blocks[span.blocks.clone()])
    }
    fn load_keys(&self, keys: &[u64]) -> Result<SequenceSet> {
        let spans = self.key_index()?;
        let mut blocks = Vec::with_capacity(keys.len());
        for &k in keys {
            match spans.binary_search_by_key(&k, |s| s.key) {
                Ok(i) => blocks.push(spans[i].block),
                Err(_) => {
                    return Err(Error::invalid(
                        format!("joining {} by sequence key", self.path),
                        format!("it has no sequence with id {k}"),
                    ))
                }
            }
        }
        let mut set = self.load_blocks(&blocks)?;
        // Keys of files without ids are ordinals: report the asked-for keys.
        set.keys = keys.to_vec();
        Ok(set)
    }
    fn name(&self) -> &str {
        &self.path
    }
    fn recycle(&self, set: SequenceSet) {
        self.keep(set);
    }
}

/// Parse one CTF text held in memory with the given streams: every sequence, in
/// order (a convenience for tools, tests and the fuzz target).
pub fn parse_all(
    name: &str,
    text: &[u8],
    streams: &[StreamDef],
    options: CtfOptions,
) -> Result<SequenceSet> {
    let d = CtfDeserializer::from_bytes(name, text.to_vec(), streams, options)?;
    d.load_blocks(&d.index.blocks)
}
