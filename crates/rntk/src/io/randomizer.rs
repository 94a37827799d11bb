//! The order in which a source visits sequences: sweep after sweep, chunks in a
//! per-sweep random order, sequences drawn at random from a window of resident
//! chunks (CNTK's chunk-window randomization), or plain file order.
//!
//! The order depends only on the chunk sizes and the seed, never on the data, so
//! it can be replayed without decoding anything: that is how a checkpoint is
//! restored, and how the prefetch thread knows which chunk comes next.

use super::deserializer::ChunkDescription;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::VecDeque;
use std::sync::Arc;

/// How much data the randomizer may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomizationWindow {
    /// At most this many chunks resident (CNTK's `randomization_window_in_chunks`).
    Chunks(usize),
    /// At most this many samples resident (at least one chunk).
    Samples(u64),
}

/// One drawn sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Draw {
    pub sweep: u64,
    /// Index of the draw within its sweep.
    pub index: u64,
    /// Position of the chunk in the sweep's chunk order.
    pub pos: usize,
    pub chunk: usize,
    pub seq: usize,
    pub last_in_sweep: bool,
}

/// Data-loading events since the last draw (in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The chunk at this (sweep, position) joins the window: load it.
    Load {
        sweep: u64,
        pos: usize,
        chunk: usize,
    },
    /// All its sequences are drawn: it may be dropped once the draw is used.
    Release { sweep: u64, pos: usize },
}

/// SplitMix64 finalizer: decorrelates seeds derived from (seed, sweep, purpose).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rng_for(seed: u64, sweep: u64, purpose: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(mix(mix(seed) ^ mix(sweep).rotate_left(17) ^ purpose))
}

/// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for any
/// realistic n).
fn below(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// The chunk order of a sweep (identity without randomization).
pub(crate) fn chunk_order(n: usize, randomize: bool, seed: u64, sweep: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if randomize {
        let mut rng = rng_for(seed, sweep, 1);
        for i in (1..n).rev() {
            order.swap(i, below(&mut rng, i + 1));
        }
    }
    order
}

#[derive(Clone, Debug)]
pub(crate) struct Randomizer {
    chunks: Arc<[ChunkDescription]>,
    randomize: bool,
    window: RandomizationWindow,
    seed: u64,
    total: u64,
    sweep: u64,
    index: u64,
    order: Vec<usize>,
    next_pos: usize,
    /// Undrawn sequences of resident chunks: (position, sequence).
    pool: VecDeque<(usize, usize)>,
    /// Undrawn count per resident position.
    remaining: Vec<(usize, usize)>,
    resident_samples: u64,
    rng: Xoshiro256PlusPlus,
    events: Vec<Event>,
}

impl Randomizer {
    pub fn new(
        chunks: Arc<[ChunkDescription]>,
        randomize: bool,
        window: RandomizationWindow,
        seed: u64,
    ) -> Self {
        let total = chunks.iter().map(|c| c.num_sequences as u64).sum();
        let mut r = Randomizer {
            order: Vec::new(),
            chunks,
            randomize,
            window,
            seed,
            total,
            sweep: 0,
            index: 0,
            next_pos: 0,
            pool: VecDeque::new(),
            remaining: Vec::new(),
            resident_samples: 0,
            rng: rng_for(seed, 0, 2),
            events: Vec::new(),
        };
        r.start_sweep(0);
        r
    }

    pub fn total_sequences(&self) -> u64 {
        self.total
    }

    fn start_sweep(&mut self, sweep: u64) {
        self.sweep = sweep;
        self.index = 0;
        self.order = chunk_order(self.chunks.len(), self.randomize, self.seed, sweep);
        self.next_pos = 0;
        self.pool.clear();
        self.remaining.clear();
        self.resident_samples = 0;
        self.rng = rng_for(self.seed, sweep, 2);
    }

    /// (sweep, index) of the next draw.
    pub fn position(&self) -> (u64, u64) {
        if self.index >= self.total {
            (self.sweep + 1, 0)
        } else {
            (self.sweep, self.index)
        }
    }

    fn may_add(&self, c: &ChunkDescription) -> bool {
        if self.remaining.is_empty() {
            return true;
        }
        if !self.randomize {
            return false;
        }
        match self.window {
            RandomizationWindow::Chunks(n) => self.remaining.len() < n.max(1),
            RandomizationWindow::Samples(s) => self.resident_samples + c.num_samples <= s,
        }
    }

    /// Draw the next sequence; loading events are queued for [`Self::take_events`].
    /// None when the data set has no sequence at all.
    pub fn next(&mut self) -> Option<Draw> {
        if self.total == 0 {
            return None;
        }
        if self.index >= self.total {
            self.start_sweep(self.sweep + 1);
        }
        // Fill the window. Chunks with no sequences are skipped right away.
        while self.next_pos < self.order.len() {
            let chunk = self.order[self.next_pos];
            let c = self.chunks[chunk];
            if !self.may_add(&c) {
                break;
            }
            let pos = self.next_pos;
            self.next_pos += 1;
            if c.num_sequences == 0 {
                continue;
            }
            self.events.push(Event::Load {
                sweep: self.sweep,
                pos,
                chunk,
            });
            self.pool.extend((0..c.num_sequences).map(|s| (pos, s)));
            self.remaining.push((pos, c.num_sequences));
            self.resident_samples += c.num_samples;
        }
        let (pos, seq) = if self.randomize {
            let pick = below(&mut self.rng, self.pool.len());
            self.pool.swap_remove_back(pick)?
        } else {
            self.pool.pop_front()?
        };
        let slot = self.remaining.iter().position(|r| r.0 == pos)?;
        self.remaining[slot].1 -= 1;
        if self.remaining[slot].1 == 0 {
            self.remaining.remove(slot);
            self.resident_samples -= self.chunks[self.order[pos]].num_samples;
            self.events.push(Event::Release {
                sweep: self.sweep,
                pos,
            });
        }
        let d = Draw {
            sweep: self.sweep,
            index: self.index,
            pos,
            chunk: self.order[pos],
            seq,
            last_in_sweep: self.index + 1 == self.total,
        };
        self.index += 1;
        Some(d)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Rewind (or fast-forward) to draw `index` of `sweep` by replaying the draws,
    /// which touches no data. Afterwards `resident()` lists the chunks that must be
    /// loaded before the next draw.
    pub fn seek(&mut self, sweep: u64, index: u64) {
        self.start_sweep(sweep);
        for _ in 0..index.min(self.total) {
            self.next();
        }
        self.events.clear();
    }

    /// Resident chunk positions and ids, in load order.
    pub fn resident(&self) -> Vec<(usize, usize)> {
        let mut r: Vec<(usize, usize)> = self
            .remaining
            .iter()
            .map(|&(pos, _)| (pos, self.order[pos]))
            .collect();
        r.sort_unstable();
        r
    }

    /// The next chunk position the window will load in the current sweep.
    pub fn next_position(&self) -> usize {
        self.next_pos
    }

    pub fn sweep(&self) -> u64 {
        self.sweep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> Arc<[ChunkDescription]> {
        sizes
            .iter()
            .map(|&n| ChunkDescription {
                num_sequences: n,
                num_samples: n as u64,
            })
            .collect()
    }

    fn sweep_of(r: &mut Randomizer) -> Vec<(usize, usize)> {
        (0..r.total_sequences())
            .map(|_| r.next().map(|d| (d.chunk, d.seq)).unwrap_or((9, 9)))
            .collect()
    }

    #[test]
    fn file_order_without_randomization() {
        let mut r = Randomizer::new(chunks(&[2, 0, 1]), false, RandomizationWindow::Chunks(4), 0);
        assert_eq!(sweep_of(&mut r), vec![(0, 0), (0, 1), (2, 0)]);
        let d = r.next().unwrap();
        assert_eq!((d.sweep, d.index, d.chunk), (1, 0, 0));
    }

    #[test]
    fn window_bounds_resident_chunks_and_seek_replays() {
        let mut r = Randomizer::new(
            chunks(&[3, 4, 2, 5, 1, 3]),
            true,
            RandomizationWindow::Chunks(2),
            7,
        );
        let mut seen = Vec::new();
        for _ in 0..40 {
            let d = r.next().unwrap();
            assert!(r.resident().len() <= 2);
            seen.push(d);
        }
        let mut again = Randomizer::new(
            chunks(&[3, 4, 2, 5, 1, 3]),
            true,
            RandomizationWindow::Chunks(2),
            7,
        );
        again.seek(seen[25].sweep, seen[25].index);
        assert_eq!(again.next(), Some(seen[25]));
        assert_eq!(again.next(), Some(seen[26]));
    }
}
