//! The CNTK Text Format deserializer: a file read by offset (`source.rs`: a file
//! that changes underneath is an error, never a fault), its index built once at
//! construction, chunks decoded in parallel on demand.
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
mod source;
mod writer;

pub use source::read_stream;
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
use source::{BufPool, FileSource, Source};
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

/// The bytes a deserializer reads: its file, or text given in memory.
enum Backing {
    File(FileSource),
    Owned(Vec<u8>),
}

impl Backing {
    fn source(&self) -> &dyn Source {
        match self {
            Backing::File(f) => f,
            Backing::Owned(v) => v,
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
    /// Read buffers, reused across blocks and chunks.
    bufs: BufPool,
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
        let (file, regular) = crate::files::open_input(path.as_ref(), "a CTF file")?;
        let data = if regular {
            let meta = file.metadata().map_err(|e| Error::Io {
                file: name.clone(),
                detail: format!("cannot read the file: {e}"),
            })?;
            Backing::File(FileSource::new(file, &name, &meta)?)
        } else {
            // a pipe or a device: its text is read into memory, within limits
            Backing::Owned(source::read_stream(file, &name)?)
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
            crate::limits::check_sample_shape(&Shape::from([s.dim]))
                .map_err(|d| ctx(format!("stream '{}': {d}", s.name)))?;
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
        let bufs = BufPool::default();
        let src = data.source();
        let index = CtfIndex::build(src, &path, options.chunk_bytes, &bufs)?;
        if index.missing_final_newline {
            let line = match index.blocks.last() {
                Some(b) => {
                    let mut buf = bufs.take();
                    let (bytes, base) = src.read(b.start, src.len(), 0, &mut buf)?;
                    let n = memchr::memchr_iter(b'\n', &bytes[b.start - base..]).count();
                    bufs.give(buf);
                    b.first_line + n as u64
                }
                None => 1,
            };
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
            bufs,
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
            bytes: &[],
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
        let src = self.data.source();
        let reuse = if reuse {
            self.pool.lock().ok().and_then(|mut p| p.pop())
        } else {
            None
        };
        match self.options.dtype {
            DType::F32 => BlockParser::<f32>::parse_blocks(ctx, blocks, src, &self.bufs, reuse),
            DType::F64 => BlockParser::<f64>::parse_blocks(ctx, blocks, src, &self.bufs, reuse),
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
            let src = self.data.source();
            let per_line = self.index.per_line;
            let spans: Vec<Result<Vec<SeqSpan>>> = self
                .index
                .blocks
                .par_iter()
                .map(|b| {
                    let mut buf = self.bufs.take();
                    let r = src.read(b.start, b.end, 64, &mut buf).map(|(bytes, base)| {
                        let rebased = Block {
                            start: b.start - base,
                            end: b.end - base,
                            ..*b
                        };
                        let mut spans = sequence_spans(bytes, &rebased, per_line);
                        for s in &mut spans {
                            s.block.start += base;
                            s.block.end += base;
                        }
                        spans
                    });
                    self.bufs.give(buf);
                    r
                })
                .collect();
            let spans = spans.into_iter().collect::<Result<Vec<_>>>()?;
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
