//! The chunks a `MinibatchSource` reads: one chunk of the primary deserializer
//! joined by sequence key with the others (`Composed`), decoded on the caller's
//! thread or ahead of need on a prefetch thread, in the order the randomizer
//! will ask for them.

use super::buffer::SequenceSet;
use super::deserializer::{ChunkDescription, Deserializer};
use super::randomizer::chunk_order;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Chunks the prefetch decodes at once (one per worker, at most this many):
/// each holds its decoded samples, so memory grows with it.
const MAX_DECODING_CHUNKS: usize = 4;

/// Sequences of one primary chunk with the joined streams of the others.
pub(super) struct Composed {
    /// One set per deserializer, all aligned with the primary's sequences.
    pub(super) sets: Vec<SequenceSet>,
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
    pub(super) fn valid(&self, i: usize) -> bool {
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
pub(super) enum Loader {
    Inline,
    Thread {
        rx: Option<Receiver<Loaded>>,
        stop: Arc<AtomicBool>,
        handle: Option<std::thread::JoinHandle<()>>,
    },
}

impl Loader {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
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

    pub(super) fn get(
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
