//! Dropout masks as CNTK 2.7 draws them on the CPU.
//!
//! Each dropout node owns one random stream: `std::mt19937_64` seeded with the node's
//! seed (`rngSeed`) and advanced past `offset` draws (`rngOffset`). A training forward
//! draws one Boost `uniform_real_distribution<double>(0, 1)` value per mask element,
//! in CNTK's column order (below), and drops the element when the value is `<=` the
//! rate (the rate rounded to the element type first); kept elements are scaled by
//! `1/(1 − rate)`. The stream simply continues with the next minibatch; `offset`
//! counts the elements drawn so far, which is what a checkpoint stores and what
//! [`DropoutRng::new`] skips over on restore (CNTK's `RNGHandle` does the same).
//!
//! Column order (CNTK's MBLayout, see [`StreamPacking`]): a minibatch of sequences,
//! the longest `T` steps long, is packed into `W` parallel streams of `T` time slots;
//! column `τ·W + k` is slot `τ` of stream `k`, and slots no sequence occupies (gaps)
//! draw too. A batch-only value is one column per sample, in order. A node outside a
//! recurrent loop draws all `T·W` columns at once; inside a loop CNTK runs slot by slot
//! and draws each slot's `W` columns in the loop's order — last slot first for a
//! `future_value` loop.

use super::distributions::uniform_real;
use super::mt::Mt19937_64;

/// One dropout node's random stream.
#[derive(Clone, Debug)]
pub struct DropoutRng {
    seed: u64,
    offset: u64,
    engine: Mt19937_64,
}

impl DropoutRng {
    /// The stream of `seed` after `offset` mask elements were drawn.
    pub fn new(seed: u64, offset: u64) -> Self {
        let mut engine = Mt19937_64::new(seed);
        engine.discard(offset);
        DropoutRng {
            seed,
            offset,
            engine,
        }
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Mask elements drawn so far (CNTK's `rngOffset`).
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// Whether the next mask element is kept: its uniform draw exceeds `rate` (give the
    /// rate as the element type holds it: `f32` rounding for float32 values).
    #[inline]
    pub fn keep(&mut self, rate: f64) -> bool {
        self.offset += 1;
        uniform_real(&mut self.engine, 0.0, 1.0) > rate
    }
    /// Draw `n` elements for gap columns (drawn and discarded, as CNTK does).
    pub fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.keep(0.0);
        }
    }
    /// The next `mask.len()` elements: `scale` where kept, zero where dropped.
    pub fn fill<T: Copy>(&mut self, rate: f64, scale: T, zero: T, mask: &mut [T]) {
        for m in mask {
            *m = if self.keep(rate) { scale } else { zero };
        }
    }
}

/// How CNTK lays a minibatch of sequences out in parallel streams (what
/// `MBLayout::InitAsPackedSequences` produced in every case checked against CNTK 2.7,
/// for values fed from arrays and from its reader alike): streams are as long as the
/// longest sequence, `T`; each sequence in turn goes to the end of the first stream
/// with room for it, else opens a new stream. Lengths `[3, 1, 4]` give two streams:
/// `{seq 0 @ 0, seq 1 @ 3}` and `{seq 2 @ 0}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPacking {
    slots: usize,
    streams: usize,
    /// `[τ·W + k]` → (sequence, its step) occupying slot τ of stream k.
    occupant: Vec<Option<(usize, usize)>>,
}

impl StreamPacking {
    pub fn new(lengths: &[usize]) -> Self {
        let slots = lengths.iter().copied().max().unwrap_or(0);
        let mut used: Vec<usize> = Vec::new();
        let mut place = Vec::with_capacity(lengths.len());
        for &len in lengths {
            match used.iter().position(|&u| u + len <= slots) {
                Some(k) => {
                    place.push((k, used[k]));
                    used[k] += len;
                }
                None => {
                    place.push((used.len(), 0));
                    used.push(len);
                }
            }
        }
        let streams = used.len();
        let mut occupant = vec![None; slots * streams];
        for (s, (&(k, start), &len)) in place.iter().zip(lengths).enumerate() {
            for t in 0..len {
                occupant[(start + t) * streams + k] = Some((s, t));
            }
        }
        StreamPacking {
            slots,
            streams,
            occupant,
        }
    }
    /// Time slots `T` (the longest sequence's length).
    pub fn slots(&self) -> usize {
        self.slots
    }
    /// Parallel streams `W`.
    pub fn streams(&self) -> usize {
        self.streams
    }
    /// The (sequence, step) in slot `tau` of stream `k`, or `None` for a gap.
    pub fn occupant(&self, tau: usize, k: usize) -> Option<(usize, usize)> {
        self.occupant[tau * self.streams + k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_stream_continues_where_it_stopped() {
        let mut a = DropoutRng::new(9, 0);
        let mut first = vec![0u8; 37];
        a.fill(0.3, 1, 0, &mut first);
        let mut b = DropoutRng::new(9, a.offset());
        let (mut x, mut y) = (vec![0u8; 50], vec![0u8; 50]);
        a.fill(0.3, 1, 0, &mut x);
        b.fill(0.3, 1, 0, &mut y);
        assert_eq!(x, y);
        assert_eq!(a.offset(), 87);
    }

    #[test]
    fn packing_is_first_fit_in_order() {
        let p = StreamPacking::new(&[3, 1, 4, 2, 2]);
        assert_eq!((p.slots(), p.streams()), (4, 3));
        assert_eq!(p.occupant(3, 0), Some((1, 0)));
        assert_eq!(p.occupant(0, 1), Some((2, 0)));
        assert_eq!(p.occupant(2, 2), Some((4, 0)));
        let q = StreamPacking::new(&[2, 2, 3]);
        assert_eq!((q.slots(), q.streams()), (3, 3));
        assert_eq!(q.occupant(2, 0), None);
    }
}
