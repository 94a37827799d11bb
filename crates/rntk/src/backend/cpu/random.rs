//! Dropout's mask on the CPU: [`keep`] is the one function that draws, a counter-based
//! hash of `(seed, pass, absolute element index)` (replaceable by any generator with
//! that property, e.g. one that reproduces CNTK 2.7's numbers).

use super::Cpu;
use crate::backend::random::{DropoutDraw, Random};
use crate::tensor::Element;

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Keep (true) or drop element `index` (absolute, over all rows) of training pass
/// `pass`.
#[inline(always)]
pub fn keep(seed: u64, pass: u64, index: usize, rate: f64) -> bool {
    let key = mix(seed ^ mix(pass.wrapping_mul(0xD6E8_FEB8_6659_FD93)));
    let h = mix(key.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let u = (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    u >= rate
}

impl Random for Cpu {
    fn dropout<T: Element>(&self, d: &DropoutDraw, x: &[T], mask: &mut [T], out: &mut [T]) {
        let scale = T::from_f64(1.0 / (1.0 - d.rate));
        for (e, ((o, &v), m)) in out.iter_mut().zip(x).zip(mask.iter_mut()).enumerate() {
            *m = if keep(d.seed, d.pass, d.first + e, d.rate) {
                scale
            } else {
                T::zero()
            };
            *o = v * *m;
        }
    }
}
