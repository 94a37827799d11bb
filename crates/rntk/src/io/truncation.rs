//! Truncated BPTT (`truncation_length`): sequences are cut into pieces of at most
//! L steps; each minibatch has `max(1, size / L)` slots that continue their
//! sequence from one minibatch to the next, as CNTK's truncated packer does. A
//! piece is delivered as its own sequence; `Minibatch::pieces` says which slot it
//! fills and whether it starts or ends its data sequence.
//!
//! All streams of a sequence must have the same length (a piece cuts every stream
//! at the same steps).

use super::minibatch::{pack, MinibatchData, Piece, RowRun};
use super::minibatch_source::{Checkpoint, MinibatchSource, Picked};
use crate::error::{Error, Result};

struct Slot {
    picked: Picked,
    offset: usize,
    len: usize,
}

pub(crate) struct Bptt {
    len: usize,
    slots: Vec<Option<Slot>>,
}

impl Bptt {
    pub fn new(len: usize) -> Self {
        Bptt {
            len,
            slots: Vec::new(),
        }
    }

    pub fn slot_states(&self) -> Vec<Option<(u64, u64, u64)>> {
        self.slots
            .iter()
            .map(|s| {
                s.as_ref().map(|s| {
                    let d = MinibatchSource::draw_of(&s.picked);
                    (d.sweep, d.index, s.offset as u64)
                })
            })
            .collect()
    }

    fn open(src: &MinibatchSource, picked: Picked) -> Result<Slot> {
        let lens = src.lengths_of(&picked);
        let len = lens.iter().copied().max().unwrap_or(0);
        if lens.iter().any(|&l| l != len) {
            return Err(Error::invalid(
                "truncation_length",
                format!(
                    "sequence {} has streams of different lengths {lens:?}; truncated BPTT cuts all streams at the same steps",
                    MinibatchSource::key_of(&picked)
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
    pub fn restore(&mut self, src: &mut MinibatchSource, c: &Checkpoint) -> Result<()> {
        self.slots = (0..c.slots.len()).map(|_| None).collect();
        while src.position() < (c.sweep, c.index) {
            let Some((p, _)) = src.draw_valid()? else {
                break;
            };
            let d = MinibatchSource::draw_of(&p);
            if let Some(k) = c
                .slots
                .iter()
                .position(|s| matches!(s, Some((sw, ix, _)) if (*sw, *ix) == (d.sweep, d.index)))
            {
                let offset = c.slots[k].map_or(0, |s| s.2 as usize);
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

    pub fn next(
        &mut self,
        src: &mut MinibatchSource,
        size: usize,
    ) -> Result<Option<super::minibatch::Minibatch>> {
        if !src.samples_left() {
            return Ok(None);
        }
        let want = (size / self.len).max(1);
        if self.slots.len() < want {
            self.slots.resize_with(want, || None);
        }
        let mut pieces: Vec<(Picked, Piece, usize)> = Vec::new();
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
        let mut data = Vec::with_capacity(src.stream_count());
        for g in 0..src.stream_count() {
            let runs: Vec<RowRun<'_>> = pieces
                .iter()
                .map(|(p, piece, take)| {
                    let b = src.stream_of(p, g);
                    let seq = MinibatchSource::draw_of(p).seq;
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
        let keys = pieces
            .iter()
            .map(|(p, _, _)| MinibatchSource::key_of(p))
            .collect();
        let pieces = pieces.into_iter().map(|(_, piece, _)| piece).collect();
        Ok(Some(src.build(data, keys, pieces)))
    }
}
