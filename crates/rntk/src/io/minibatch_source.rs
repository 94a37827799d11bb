//! `MinibatchSource`: joins deserializers by sequence key, walks the randomized
//! order sweep after sweep, forms minibatches as CNTK does (readers.md §3,
//! dynamic-axes.md §6.2), checkpoints its position and prefetches chunks on a
//! background thread.

use super::buffer::SequenceSet;
use super::deserializer::{ChunkDescription, Deserializer};
use super::minibatch::{pack, Minibatch, MinibatchData, Piece};
use super::randomizer::{chunk_order, Draw, Event, RandomizationWindow, Randomizer};
use super::stream::StreamInformation;
use super::truncation::{Bptt, Supplier};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Repeat forever (CNTK's `INFINITELY_REPEAT`, 2^64 − 1).
pub const INFINITELY_REPEAT: u64 = u64::MAX;
/// One pass over the data (CNTK's `FULL_DATA_SWEEP`, 2^64 − 2), as `max_samples`.
pub const FULL_DATA_SWEEP: u64 = u64::MAX - 1;
/// Chunks the prefetch decodes at once (one per worker, at most this many):
/// each holds its decoded samples, so memory grows with it.
const MAX_DECODING_CHUNKS: usize = 4;
/// CNTK's default window: 128 chunks.
pub const DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS: usize = 128;

/// Options of a [`MinibatchSource`], named and defaulted as CNTK's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinibatchSourceConfig {
    pub max_samples: u64,
    pub max_sweeps: u64,
    pub randomize: bool,
    pub randomization_window_in_chunks: usize,
    pub randomization_window_in_samples: u64,
    pub randomization_seed: u64,
    /// Every sample is its own sequence; values come with a batch axis only.
    pub frame_mode: bool,
    /// Truncated BPTT: deliver sequences in pieces of at most this many steps.
    pub truncation_length: usize,
    /// Decode upcoming chunks on a background thread.
    pub prefetch: bool,
}

impl Default for MinibatchSourceConfig {
    fn default() -> Self {
        MinibatchSourceConfig {
            max_samples: INFINITELY_REPEAT,
            max_sweeps: INFINITELY_REPEAT,
            randomize: true,
            randomization_window_in_chunks: DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS,
            randomization_window_in_samples: 0,
            randomization_seed: 0,
            frame_mode: false,
            truncation_length: 0,
            prefetch: true,
        }
    }
}

/// Where a source stands: enough to resume on exactly the same next minibatches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Sweep and draw index (within the sweep) of the next sequence.
    pub sweep: u64,
    pub index: u64,
    /// Samples delivered so far, counted as for the minibatch size (CNTK's
    /// `minibatchSourcePosition`).
    pub samples: u64,
    /// Truncated BPTT: per slot, the (sweep, index) of its sequence and the steps
    /// of it already delivered (`None` for an idle slot).
    pub slots: Vec<Option<(u64, u64, u64)>>,
}

/// Sequences of one primary chunk with the joined streams of the others.
struct Composed {
    /// One set per deserializer, all aligned with the primary's sequences.
    sets: Vec<SequenceSet>,
    /// Their deserializers, which take the sets back when the chunk is dropped.
    owners: Arc<[Arc<dyn Deserializer>]>,
}

impl Drop for Composed {
    fn drop(&mut self) {
        for (d, s) in self.owners.iter().zip(self.sets.drain(..)) {
            d.recycle(s);
        }
    }
}

impl Composed {
    fn valid(&self, i: usize) -> bool {
        self.sets.iter().all(|s| s.valid[i])
    }
}

fn load_composed(
    desers: &Arc<[Arc<dyn Deserializer>]>,
    chunks: &[ChunkDescription],
    chunk: usize,
    sweep: u64,
) -> Result<Composed> {
    let primary = desers[0].load_chunk_in_sweep(chunk, sweep)?;
    if primary.num_sequences() != chunks[chunk].num_sequences {
        return Err(Error::InvalidValue(format!(
            "{}: chunk {chunk} decoded {} sequences but its index says {}",
            desers[0].name(),
            primary.num_sequences(),
            chunks[chunk].num_sequences
        )));
    }
    let mut sets = Vec::with_capacity(desers.len());
    let keys = primary.keys.clone();
    sets.push(primary);
    for d in &desers[1..] {
        let s = d.load_keys(&keys)?;
        if s.num_sequences() != keys.len() {
            return Err(Error::InvalidValue(format!(
                "{}: {} sequences returned for {} keys",
                d.name(),
                s.num_sequences(),
                keys.len()
            )));
        }
        sets.push(s);
    }
    Ok(Composed {
        sets,
        owners: desers.clone(),
    })
}

type Loaded = Result<(u64, usize, Arc<Composed>)>;

/// Decodes chunks in the order the randomizer will ask for them.
enum Loader {
    Inline,
    Thread {
        rx: Option<Receiver<Loaded>>,
        stop: Arc<AtomicBool>,
        handle: Option<std::thread::JoinHandle<()>>,
    },
}

impl Loader {
    #[allow(clippy::too_many_arguments)]
    fn start(
        prefetch: bool,
        desers: Arc<[Arc<dyn Deserializer>]>,
        chunks: Arc<[ChunkDescription]>,
        randomize: bool,
        seed: u64,
        max_sweeps: u64,
        sweep: u64,
        pos: usize,
    ) -> Loader {
        if !prefetch {
            return Loader::Inline;
        }
        // Each chunk is decoded on one worker (a chunk decoded alone spreads
        // its blocks over the workers instead, but then its parts must be
        // joined by copying), one chunk per worker at a time, handed over in
        // order. A worker that finishes starts the next chunk at once: waiting
        // for a pair to finish together left one worker idle whenever the
        // other ran late. Decoded chunks are handed over without a queue: at
        // most one waits to be taken while the workers decode the next ones,
        // so at most 1 + min(workers, 4) chunks beyond the window.
        let (tx, rx) = sync_channel::<Loaded>(0);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let depth = rayon::current_num_threads().clamp(1, MAX_DECODING_CHUNKS) as u64;
        let handle = std::thread::Builder::new()
            .name("rntk-prefetch".into())
            .spawn(move || {
                let mut next = ChunkPositions {
                    chunks: chunks.clone(),
                    randomize,
                    seed,
                    max_sweeps,
                    sweep,
                    pos,
                    order: None,
                };
                let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, Loaded)>();
                let mut ready: HashMap<u64, Loaded> = HashMap::new();
                let (mut issued, mut delivered, mut more) = (0u64, 0u64, true);
                // Start chunks until `depth` of them are decoding or decoded and
                // waiting for their turn.
                let mut issue = |issued: &mut u64, delivered: u64| {
                    while more && *issued - delivered < depth {
                        let Some((s, p, c)) = next.next() else {
                            more = false;
                            break;
                        };
                        let (desers, chunks, done) =
                            (desers.clone(), chunks.clone(), done_tx.clone());
                        let n = *issued;
                        rayon::spawn(move || {
                            // A panic would abort the process from a spawned
                            // job: report it as this chunk's error instead.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                load_composed(&desers, &chunks, c, s)
                            }))
                            .unwrap_or_else(|_| {
                                Err(Error::InvalidValue(format!(
                                    "decoding chunk {c} failed (panic in the reader)"
                                )))
                            });
                            let _ = done.send((n, r.map(|x| (s, p, Arc::new(x)))));
                        });
                        *issued += 1;
                    }
                };
                loop {
                    issue(&mut issued, delivered);
                    if delivered == issued || stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = loop {
                        if let Some(r) = ready.remove(&delivered) {
                            break Some(r);
                        }
                        match done_rx.recv() {
                            Ok((k, r)) => {
                                ready.insert(k, r);
                            }
                            Err(_) => break None,
                        }
                    };
                    let Some(r) = r else { break };
                    delivered += 1;
                    let failed = r.is_err();
                    if !failed {
                        // the next chunk starts before this one waits to be taken
                        issue(&mut issued, delivered);
                    }
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
                // Let the decodes still running finish: no work outlives the
                // source.
                let running = issued - delivered - ready.len() as u64;
                drop(ready);
                for _ in 0..running {
                    if done_rx.recv().is_err() {
                        break;
                    }
                }
            });
        match handle {
            Ok(h) => Loader::Thread {
                rx: Some(rx),
                stop,
                handle: Some(h),
            },
            // No thread available: decode on the caller's thread instead.
            Err(_) => Loader::Inline,
        }
    }

    fn get(
        &mut self,
        desers: &Arc<[Arc<dyn Deserializer>]>,
        chunks: &[ChunkDescription],
        sweep: u64,
        pos: usize,
        chunk: usize,
    ) -> Result<Arc<Composed>> {
        match self {
            Loader::Inline => Ok(Arc::new(load_composed(desers, chunks, chunk, sweep)?)),
            Loader::Thread { rx, .. } => loop {
                let got = rx.as_ref().and_then(|r| r.recv().ok());
                match got {
                    Some(Ok((s, p, c))) if s == sweep && p == pos => return Ok(c),
                    // Chunks the window no longer needs (after a seek): skip them.
                    Some(Ok((s, p, _))) if (s, p) < (sweep, pos) => continue,
                    Some(Ok((s, p, _))) => {
                        return Err(Error::InvalidValue(format!(
                            "prefetch out of step: got chunk position {p} of sweep {s}, wanted {pos} of sweep {sweep}"
                        )))
                    }
                    Some(Err(e)) => {
                        // The thread stops after an error; later calls decode inline
                        // and report the same error again.
                        *self = Loader::Inline;
                        return Err(e);
                    }
                    None => {
                        *self = Loader::Inline;
                        return Ok(Arc::new(load_composed(desers, chunks, chunk, sweep)?));
                    }
                }
            },
        }
    }
}

/// The (sweep, position, chunk) of every non-empty chunk from a starting point
/// on, in the order the randomizer asks for them.
struct ChunkPositions {
    chunks: Arc<[ChunkDescription]>,
    randomize: bool,
    seed: u64,
    max_sweeps: u64,
    sweep: u64,
    pos: usize,
    order: Option<Vec<usize>>,
}

impl Iterator for ChunkPositions {
    type Item = (u64, usize, usize);
    fn next(&mut self) -> Option<Self::Item> {
        while self.sweep < self.max_sweeps {
            let order = self.order.get_or_insert_with(|| {
                chunk_order(self.chunks.len(), self.randomize, self.seed, self.sweep)
            });
            while self.pos < order.len() {
                let (p, c) = (self.pos, order[self.pos]);
                self.pos += 1;
                if self.chunks[c].num_sequences > 0 {
                    return Some((self.sweep, p, c));
                }
            }
            self.order = None;
            self.pos = 0;
            self.sweep += 1;
        }
        None
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Loader::Thread { rx, stop, handle } = self {
            stop.store(true, Ordering::Relaxed);
            // Dropping the receiver unblocks a thread waiting to send.
            drop(rx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// A drawn sequence with its decoded chunk.
#[derive(Clone)]
pub(super) struct Picked {
    draw: Draw,
    chunk: Arc<Composed>,
}

/// Reads minibatches from one or more deserializers (readers.md §3).
pub struct MinibatchSource {
    desers: Arc<[Arc<dyn Deserializer>]>,
    chunks: Arc<[ChunkDescription]>,
    streams: Vec<StreamInformation>,
    /// Global stream → (deserializer, stream within it).
    map: Vec<(usize, usize)>,
    /// Streams that count toward the minibatch size.
    counting: Vec<bool>,
    cfg: MinibatchSourceConfig,
    max_sweeps: u64,
    rand: Randomizer,
    resident: HashMap<(u64, usize), Arc<Composed>>,
    loader: Loader,
    peeked: Option<Picked>,
    samples: u64,
    truncation: Option<Bptt<Picked>>,
}

impl std::fmt::Debug for MinibatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinibatchSource")
            .field("streams", &self.streams)
            .field("config", &self.cfg)
            .field("samples", &self.samples)
            .finish()
    }
}

impl MinibatchSource {
    /// A source over deserializers; the first one drives the order, the others are
    /// joined to it by sequence key.
    pub fn new(
        deserializers: Vec<Arc<dyn Deserializer>>,
        config: MinibatchSourceConfig,
    ) -> Result<Self> {
        let ctx = |d: &str| Error::invalid("MinibatchSourceConfig", d.to_string());
        if deserializers.is_empty() {
            return Err(ctx("at least one deserializer is needed"));
        }
        if config.max_samples != INFINITELY_REPEAT && config.max_sweeps != INFINITELY_REPEAT {
            return Err(ctx("max samples and max sweeps are mutually exclusive options and cannot have non-default values at the same time"));
        }
        if config.randomization_window_in_chunks != 0 && config.randomization_window_in_samples != 0
        {
            return Err(ctx("randomization window in chunks and randomization window in samples are mutually exclusive options and cannot have non-zero values at the same time (set randomization_window_in_chunks to 0 to use samples)"));
        }
        if config.randomize
            && config.randomization_window_in_chunks == 0
            && config.randomization_window_in_samples == 0
        {
            return Err(ctx("randomization needs a window: set randomization_window_in_chunks or randomization_window_in_samples"));
        }
        if config.truncation_length > 0 && config.frame_mode {
            return Err(ctx(
                "truncation and frame mode are mutually exclusive options",
            ));
        }
        let (max_samples, max_sweeps) = if config.max_samples == FULL_DATA_SWEEP {
            (INFINITELY_REPEAT, 1)
        } else {
            (config.max_samples, config.max_sweeps)
        };
        let mut streams = Vec::new();
        let mut map = Vec::new();
        for (d, des) in deserializers.iter().enumerate() {
            for (s, info) in des.streams().iter().enumerate() {
                if streams
                    .iter()
                    .any(|o: &StreamInformation| o.name == info.name)
                {
                    return Err(ctx(&format!(
                        "two deserializers deliver a stream named '{}'",
                        info.name
                    )));
                }
                let mut info = info.clone();
                info.id = streams.len();
                streams.push(info);
                map.push((d, s));
            }
        }
        let any_defines = streams.iter().any(|s| s.defines_mb_size);
        let counting = streams
            .iter()
            .map(|s| !any_defines || s.defines_mb_size)
            .collect();
        let chunks: Arc<[ChunkDescription]> = deserializers[0].chunks().to_vec().into();
        let window = if config.randomization_window_in_samples > 0 {
            RandomizationWindow::Samples(config.randomization_window_in_samples)
        } else {
            RandomizationWindow::Chunks(config.randomization_window_in_chunks)
        };
        let rand = Randomizer::new(
            chunks.clone(),
            config.randomize,
            window,
            config.randomization_seed,
        );
        let desers: Arc<[Arc<dyn Deserializer>]> = deserializers.into();
        let loader = Loader::start(
            config.prefetch,
            desers.clone(),
            chunks.clone(),
            config.randomize,
            config.randomization_seed,
            max_sweeps,
            0,
            0,
        );
        let truncation =
            (config.truncation_length > 0).then(|| Bptt::new(config.truncation_length));
        Ok(MinibatchSource {
            desers,
            chunks,
            streams,
            map,
            counting,
            cfg: MinibatchSourceConfig {
                max_samples,
                max_sweeps,
                ..config
            },
            max_sweeps,
            rand,
            resident: HashMap::new(),
            loader,
            peeked: None,
            samples: 0,
            truncation,
        })
    }

    /// The streams delivered, in minibatch order.
    pub fn streams(&self) -> &[StreamInformation] {
        &self.streams
    }

    /// The stream with this name.
    pub fn stream_info(&self, name: &str) -> Option<&StreamInformation> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Number of sequences in one sweep.
    pub fn sweep_size(&self) -> u64 {
        self.rand.total_sequences()
    }

    /// Number of chunks currently held in memory (the randomization window; the
    /// prefetch holds at most one more than the chunks it decodes at once).
    pub fn resident_chunks(&self) -> usize {
        self.resident.len()
    }

    /// Samples of the chunks currently held in memory.
    pub fn resident_samples(&self) -> u64 {
        self.resident
            .values()
            .map(|c| {
                (0..c.sets[0].num_sequences())
                    .map(|i| c.sets[0].samples_of(i) as u64)
                    .sum::<u64>()
            })
            .sum()
    }

    fn draw(&mut self) -> Result<Option<Picked>> {
        if self.rand.position().0 >= self.max_sweeps {
            return Ok(None);
        }
        let Some(d) = self.rand.next() else {
            return Ok(None);
        };
        let events = self.rand.take_events();
        for e in &events {
            if let Event::Load { sweep, pos, chunk } = *e {
                let c = self
                    .loader
                    .get(&self.desers, &self.chunks, sweep, pos, chunk)?;
                self.resident.insert((sweep, pos), c);
            }
        }
        let chunk = self
            .resident
            .get(&(d.sweep, d.pos))
            .cloned()
            .ok_or_else(|| {
                Error::InvalidValue(format!(
                    "chunk {} (sweep {}) drawn before it was loaded",
                    d.chunk, d.sweep
                ))
            })?;
        for e in &events {
            if let Event::Release { sweep, pos } = *e {
                self.resident.remove(&(sweep, pos));
            }
        }
        if self.cfg.frame_mode && chunk.valid(d.seq) {
            for set in &chunk.sets {
                let n = set.samples_of(d.seq);
                if n != 1 {
                    return Err(Error::invalid(
                        "frame_mode",
                        format!(
                            "detected a non-frame sequence of size {n} (key {}, line {}); in frame mode every sequence has one sample",
                            set.keys[d.seq], set.lines[d.seq]
                        ),
                    ));
                }
            }
        }
        Ok(Some(Picked { draw: d, chunk }))
    }

    fn next_picked(&mut self) -> Result<Option<Picked>> {
        match self.peeked.take() {
            Some(p) => Ok(Some(p)),
            None => self.draw(),
        }
    }

    /// Per-stream sample counts of a sequence.
    fn lengths(&self, p: &Picked) -> Vec<usize> {
        self.map
            .iter()
            .map(|&(d, s)| p.chunk.sets[d].streams[s].len_of(p.draw.seq))
            .collect()
    }

    fn measure(&self, counts: &[usize]) -> usize {
        counts
            .iter()
            .zip(&self.counting)
            .filter(|(_, &c)| c)
            .map(|(&n, _)| n)
            .max()
            .unwrap_or(0)
    }

    /// The next minibatch of about `size` samples (readers.md §3.2): whole
    /// sequences while the largest per-stream sample count stays ≤ `size`, at least
    /// one sequence. `None` once the source is exhausted (CNTK's `{}`).
    pub fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>> {
        if size == 0 {
            return Err(Error::invalid(
                "next_minibatch",
                "the minibatch size must be at least one sample",
            ));
        }
        if self.truncation.is_some() {
            return self.next_truncated(size);
        }
        if self.samples >= self.cfg.max_samples {
            return Ok(None);
        }
        let limit = size;
        let mut selected: Vec<Picked> = Vec::new();
        let mut counts = vec![0usize; self.streams.len()];
        let mut end_of_sweep = false;
        let mut measure = 0;
        // CNTK takes a sequence only while the samples delivered before it are
        // below max_samples (so the last minibatch may overshoot, never cutting a
        // sequence): observed in the oracle fixtures.
        while measure < limit && self.samples + (measure as u64) < self.cfg.max_samples {
            let Some(p) = self.next_picked()? else { break };
            if !p.chunk.valid(p.draw.seq) {
                end_of_sweep |= p.draw.last_in_sweep;
                continue;
            }
            let lens = self.lengths(&p);
            let next: Vec<usize> = counts.iter().zip(&lens).map(|(a, b)| a + b).collect();
            let m = self.measure(&next);
            if !selected.is_empty() && m > limit {
                self.peeked = Some(p);
                break;
            }
            end_of_sweep |= p.draw.last_in_sweep;
            counts = next;
            measure = m;
            selected.push(p);
        }
        if selected.is_empty() {
            return Ok(None);
        }
        self.samples += measure as u64;
        self.assemble(&selected, &counts, end_of_sweep).map(Some)
    }

    fn assemble(
        &self,
        selected: &[Picked],
        counts: &[usize],
        end_of_sweep: bool,
    ) -> Result<Minibatch> {
        let mut data = Vec::with_capacity(self.streams.len());
        for (g, info) in self.streams.iter().enumerate() {
            let (d, s) = self.map[g];
            let seqs: Vec<_> = selected
                .iter()
                .map(|p| {
                    let b = &p.chunk.sets[d].streams[s];
                    (b, b.seq_rows[p.draw.seq], b.len_of(p.draw.seq))
                })
                .collect();
            let value = pack(info, &seqs, self.cfg.frame_mode)?;
            data.push(MinibatchData {
                data: value,
                num_sequences: selected.len(),
                num_samples: counts[g],
                end_of_sweep,
            });
        }
        Ok(Minibatch {
            streams: self.streams.clone(),
            data,
            keys: selected
                .iter()
                .map(|p| p.chunk.sets[0].keys[p.draw.seq])
                .collect(),
            pieces: Vec::new(),
        })
    }

    /// The position to resume from.
    pub fn get_checkpoint_state(&self) -> Checkpoint {
        let (sweep, index) = match &self.peeked {
            Some(p) => (p.draw.sweep, p.draw.index),
            None => self.rand.position(),
        };
        Checkpoint {
            sweep,
            index,
            samples: self.samples,
            slots: self
                .truncation
                .as_ref()
                .map(|t| t.slot_states::<Self>())
                .unwrap_or_default(),
        }
    }

    /// Resume at a checkpoint: the next minibatches are those that followed it.
    pub fn restore_from_checkpoint(&mut self, c: &Checkpoint) -> Result<()> {
        self.peeked = None;
        self.resident.clear();
        self.samples = c.samples;
        // Truncated BPTT resumes at the oldest sequence still in a slot and draws
        // forward again up to the checkpoint's position.
        let (seek_sweep, seek_index) = c
            .slots
            .iter()
            .flatten()
            .map(|&(s, i, _)| (s, i))
            .chain(std::iter::once((c.sweep, c.index)))
            .min()
            .unwrap_or((c.sweep, c.index));
        self.rand.seek(seek_sweep, seek_index);
        let resident = self.rand.resident();
        let (sweep, index) = self.rand.position();
        let start = match resident.first() {
            Some(&(pos, _)) => (self.rand.sweep(), pos),
            None if sweep == self.rand.sweep() && index > 0 => (sweep, self.rand.next_position()),
            None => (sweep, 0),
        };
        self.loader = Loader::Inline; // stop the old thread before starting anew
        self.loader = Loader::start(
            self.cfg.prefetch,
            self.desers.clone(),
            self.chunks.clone(),
            self.cfg.randomize,
            self.cfg.randomization_seed,
            self.max_sweeps,
            start.0,
            start.1,
        );
        for (pos, chunk) in resident {
            let sweep = self.rand.sweep();
            let loaded = self
                .loader
                .get(&self.desers, &self.chunks, sweep, pos, chunk)?;
            self.resident.insert((sweep, pos), loaded);
        }
        if let Some(mut t) = self.truncation.take() {
            let r = t.restore(self, (c.sweep, c.index, &c.slots));
            self.truncation = Some(t);
            r?;
        }
        Ok(())
    }

    /// Samples delivered so far (CNTK's `current_position`).
    pub fn current_position(&self) -> u64 {
        self.samples
    }

    // --- truncated BPTT ---------------------------------------------------

    fn next_truncated(&mut self, size: usize) -> Result<Option<Minibatch>> {
        let Some(mut t) = self.truncation.take() else {
            return Ok(None);
        };
        let r = t.next(self, size);
        self.truncation = Some(t);
        r
    }
}

/// What truncated BPTT draws from the source.
impl Supplier for MinibatchSource {
    type Picked = Picked;

    fn position(&self) -> (u64, u64) {
        self.rand.position()
    }
    fn samples_left(&self) -> bool {
        self.samples < self.cfg.max_samples
    }
    fn add_samples(&mut self, n: u64) {
        self.samples += n;
    }
    fn streams(&self) -> &[StreamInformation] {
        &self.streams
    }

    /// Data of stream `g` of a picked sequence.
    fn stream_of<'a>(&self, p: &'a Picked, g: usize) -> &'a super::buffer::StreamBuffer {
        let (d, s) = self.map[g];
        &p.chunk.sets[d].streams[s]
    }

    /// Per-stream lengths of a picked sequence (truncation needs them equal).
    fn lengths_of(&self, p: &Picked) -> Vec<usize> {
        self.lengths(p)
    }

    fn key_of(p: &Picked) -> u64 {
        p.chunk.sets[0].keys[p.draw.seq]
    }

    fn draw_of(p: &Picked) -> Draw {
        p.draw
    }

    fn build(&self, data: Vec<MinibatchData>, keys: Vec<u64>, pieces: Vec<Piece>) -> Minibatch {
        Minibatch {
            streams: self.streams.clone(),
            data,
            keys,
            pieces,
        }
    }

    /// Draw the next valid sequence for truncation (skipping malformed ones).
    fn draw_valid(&mut self) -> Result<Option<(Picked, bool)>> {
        let mut eos = false;
        loop {
            let Some(p) = self.next_picked()? else {
                return Ok(None);
            };
            eos |= p.draw.last_in_sweep;
            if p.chunk.valid(p.draw.seq) {
                return Ok(Some((p, eos)));
            }
        }
    }
}
