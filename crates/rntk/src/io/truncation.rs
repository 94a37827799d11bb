//! Truncated BPTT (`truncation_length`): sequences are cut into pieces of at most
//! L steps; each minibatch has `max(1, size / L)` slots that continue their
//! sequence from one minibatch to the next, as CNTK's truncated packer does. A
//! piece is delivered as its own sequence; `Minibatch::pieces` says which slot it
//! fills and whether it starts or ends its data sequence.
//!
//! All streams of a sequence must have the same length (a piece cuts every stream
//! at the same steps).

use super::buffer::StreamBuffer;
use super::minibatch::{pack, Minibatch, MinibatchData, Piece, RowRun};
use super::randomizer::Draw;
use super::stream::StreamInformation;
use crate::error::{Error, Result};

/// What truncation needs of the minibatch source: drawn sequences, their streams,
/// the sample count, and the minibatch built from the pieces (the source implements
/// it; truncation does not know the source).
pub(super) trait Supplier {
    /// A drawn sequence.
    type Picked: Clone;
    /// (sweep, draw index) of the next draw.
    fn position(&self) -> (u64, u64);
    fn samples_left(&self) -> bool;
    fn add_samples(&mut self, n: u64);
    fn streams(&self) -> &[StreamInformation];
    /// Data of stream `g` of a picked sequence.
    fn stream_of<'a>(&self, p: &'a Self::Picked, g: usize) -> &'a StreamBuffer;
    /// Per-stream lengths of a picked sequence.
    fn lengths_of(&self, p: &Self::Picked) -> Vec<usize>;
    fn key_of(p: &Self::Picked) -> u64;
    fn draw_of(p: &Self::Picked) -> Draw;
    fn build(&self, data: Vec<MinibatchData>, keys: Vec<u64>, pieces: Vec<Piece>) -> Minibatch;
    /// The next valid sequence and whether a sweep ended on the way.
    fn draw_valid(&mut self) -> Result<Option<(Self::Picked, bool)>>;
}

/// Per slot of a checkpoint: the (sweep, index) of its sequence and the steps of it
/// already delivered (`None` for an idle slot).
pub(super) type SlotStates = Vec<Option<(u64, u64, u64)>>;

struct Slot<P> {
    picked: P,
    offset: usize,
    len: usize,
}

pub(crate) struct Bptt<P> {
    len: usize,
    slots: Vec<Option<Slot<P>>>,
}

impl<P: Clone> Bptt<P> {
    pub fn new(len: usize) -> Self {
        Bptt {
            len,
            slots: Vec::new(),
        }
    }

    pub fn slot_states<S: Supplier<Picked = P>>(&self) -> SlotStates {
        self.slots
            .iter()
            .map(|s| {
                s.as_ref().map(|s| {
                    let d = S::draw_of(&s.picked);
                    (d.sweep, d.index, s.offset as u64)
                })
            })
            .collect()
    }

    fn open<S: Supplier<Picked = P>>(src: &S, picked: P) -> Result<Slot<P>> {
        let lens = src.lengths_of(&picked);
        let len = lens.iter().copied().max().unwrap_or(0);
        if lens.iter().any(|&l| l != len) {
            return Err(Error::invalid(
                "truncation_length",
                format!(
                    "sequence {} has streams of different lengths {lens:?}; truncated BPTT cuts all streams at the same steps",
                    S::key_of(&picked)
                ),
            ));
        }
        Ok(Slot {
            picked,
            offset: 0,
            len,
        })
    }

    /// Redraw the sequences the checkpoint's slots hold (the source has sought to
    /// the oldest of them).
    pub fn restore<S: Supplier<Picked = P>>(
        &mut self,
        src: &mut S,
        (sweep, index, states): (u64, u64, &SlotStates),
    ) -> Result<()> {
        self.slots = (0..states.len()).map(|_| None).collect();
        while src.position() < (sweep, index) {
            let Some((p, _)) = src.draw_valid()? else {
                break;
            };
            let d = S::draw_of(&p);
            if let Some(k) = states
                .iter()
                .position(|s| matches!(s, Some((sw, ix, _)) if (*sw, *ix) == (d.sweep, d.index)))
            {
                let offset = states[k].map_or(0, |s| s.2 as usize);
                let mut slot = Self::open(src, p)?;
                if offset >= slot.len {
                    return Err(Error::invalid(
                        "restore_from_checkpoint",
                        format!(
                            "slot {k} resumes at step {offset} of a sequence of {} steps: the checkpoint is not from this data",
                            slot.len
                        ),
                    ));
                }
                slot.offset = offset;
                self.slots[k] = Some(slot);
            }
        }
        Ok(())
    }

    pub fn next<S: Supplier<Picked = P>>(
        &mut self,
        src: &mut S,
        size: usize,
    ) -> Result<Option<Minibatch>> {
        if !src.samples_left() {
            return Ok(None);
        }
        let want = (size / self.len).max(1);
        if self.slots.len() < want {
            self.slots.resize_with(want, || None);
        }
        let mut pieces: Vec<(P, Piece, usize)> = Vec::new();
        let mut eos = false;
        for k in 0..self.slots.len() {
            let mut filled = 0;
            while filled < self.len {
                if self.slots[k].is_none() {
                    if k >= want {
                        break; // a slot beyond the current width is not refilled
                    }
                    match src.draw_valid()? {
                        Some((p, e)) => {
                            eos |= e;
                            self.slots[k] = Some(Self::open(src, p)?);
                        }
                        None => break,
                    }
                }
                let Some(s) = self.slots[k].as_mut() else {
                    break;
                };
                let take = (self.len - filled).min(s.len - s.offset);
                pieces.push((
                    s.picked.clone(),
                    Piece {
                        slot: k,
                        offset: s.offset,
                        starts_sequence: s.offset == 0,
                        ends_sequence: s.offset + take == s.len,
                    },
                    take,
                ));
                s.offset += take;
                filled += take;
                if s.offset == s.len {
                    self.slots[k] = None;
                }
            }
        }
        if pieces.is_empty() {
            return Ok(None);
        }
        let steps: usize = pieces.iter().map(|p| p.2).sum();
        src.add_samples(steps as u64);
        let mut data = Vec::with_capacity(src.streams().len());
        for g in 0..src.streams().len() {
            let runs: Vec<RowRun<'_>> = pieces
                .iter()
                .map(|(p, piece, take)| {
                    let b = src.stream_of(p, g);
                    let seq = S::draw_of(p).seq;
                    (b, b.seq_rows[seq] + piece.offset, *take)
                })
                .collect();
            let value = pack(&src.streams()[g], &runs, false)?;
            data.push(MinibatchData {
                data: value,
                num_sequences: pieces.len(),
                num_samples: steps,
                end_of_sweep: eos,
            });
        }
        let keys = pieces.iter().map(|(p, _, _)| S::key_of(p)).collect();
        let pieces = pieces.into_iter().map(|(_, piece, _)| piece).collect();
        Ok(Some(src.build(data, keys, pieces)))
    }
}
