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
//! Column order (CNTK's MBLayout for values fed from arrays): a minibatch of `S`
//! sequences, the longest `T` steps long, is `T·S` columns, column `t·S + s` holding
//! step `t` of sequence `s` (the caller's order); a sequence shorter than `T` leaves
//! gap columns, and gaps draw too. A batch-only value is `S` columns of one step.
//! Inside a recurrent loop a node runs once per step and draws that step's `S`
//! columns (gaps included), in the loop's order — backwards for a `future_value` loop.

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
}
