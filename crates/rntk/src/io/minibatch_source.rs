//! `MinibatchSource`: joins deserializers by sequence key, walks the randomized
//! order sweep after sweep, forms minibatches as CNTK does (readers.md §3,
//! dynamic-axes.md §6.2), checkpoints its position and prefetches chunks on a
//! background thread.

use super::chunk_loader::{Composed, Loader};
use super::deserializer::{ChunkDescription, Deserializer};
use super::minibatch::{pack, Minibatch, MinibatchData, Piece};
use super::randomizer::{Draw, Event, RandomizationWindow, Randomizer};
use super::stream::StreamInformation;
use super::truncation::{Bptt, Supplier};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Repeat forever (CNTK's `INFINITELY_REPEAT`, 2^64 − 1).
pub const INFINITELY_REPEAT: u64 = u64::MAX;
/// One pass over the data (CNTK's `FULL_DATA_SWEEP`, 2^64 − 2), as `max_samples`.
pub const FULL_DATA_SWEEP: u64 = u64::MAX - 1;
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

/// One worker's part of a minibatch read by several (`next_minibatch_partition`).
#[derive(Debug)]
pub struct MinibatchPartition {
    /// This worker's sequences; `None` when none of the minibatch's sequences are
    /// in its partition (it still takes part in the step).
    pub minibatch: Option<Minibatch>,
    /// The whole minibatch ends a sweep.
    pub end_of_sweep: bool,
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
        Ok(self
            .next_minibatch_partition(size, 1, 0)?
            .and_then(|p| p.minibatch))
    }

    /// This worker's part of the next minibatch of about `size` samples of all
    /// workers (CNTK's `next_minibatch(size, num_data_partitions, partition_index)`):
    /// every worker walks the same randomized order and takes, of the sequences
    /// that make up the whole minibatch, those of its chunks (chunk `c` belongs to
    /// partition `c % num_data_partitions`). The partitions of one minibatch are
    /// disjoint and together are the minibatch one worker would read; sample
    /// counts, `max_samples` and sweeps count all partitions. `None` once the
    /// source is exhausted (for every worker at once).
    pub fn next_minibatch_partition(
        &mut self,
        size: usize,
        num_data_partitions: usize,
        partition_index: usize,
    ) -> Result<Option<MinibatchPartition>> {
        if size == 0 {
            return Err(Error::invalid(
                "next_minibatch",
                "the minibatch size must be at least one sample",
            ));
        }
        if partition_index >= num_data_partitions {
            return Err(Error::invalid(
                "next_minibatch",
                format!(
                    "partition_index {partition_index} is not below num_data_partitions {num_data_partitions}"
                ),
            ));
        }
        if self.truncation.is_some() {
            if num_data_partitions > 1 {
                return Err(Error::Unsupported(
                    "a partitioned (distributed) read with truncated BPTT (truncation_length > 0)"
                        .into(),
                ));
            }
            return Ok(self.next_truncated(size)?.map(|mb| MinibatchPartition {
                end_of_sweep: mb.end_of_sweep(),
                minibatch: Some(mb),
            }));
        }
        let Some((mut selected, end_of_sweep)) = self.select(size)? else {
            return Ok(None);
        };
        if num_data_partitions > 1 {
            selected.retain(|p| p.draw.chunk % num_data_partitions == partition_index);
        }
        if selected.is_empty() {
            return Ok(Some(MinibatchPartition {
                minibatch: None,
                end_of_sweep,
            }));
        }
        let mut counts = vec![0usize; self.streams.len()];
        for p in &selected {
            for (c, n) in counts.iter_mut().zip(self.lengths(p)) {
                *c += n;
            }
        }
        let mb = self.assemble(&selected, &counts, end_of_sweep)?;
        Ok(Some(MinibatchPartition {
            minibatch: Some(mb),
            end_of_sweep,
        }))
    }

    /// The sequences of the next (whole) minibatch and whether it ends a sweep;
    /// counts its samples as delivered.
    fn select(&mut self, size: usize) -> Result<Option<(Vec<Picked>, bool)>> {
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
        Ok(Some((selected, end_of_sweep)))
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
