//! The distributions CNTK 2.7's CPU initializers draw with: Boost.Random 1.60's
//! `uniform_real_distribution<double>`, `uniform_01<double>`,
//! `exponential_distribution<double>` and the ziggurat `normal_distribution<double>`,
//! reproduced operation for operation over [`Mt19937_64`] so that the same seed gives
//! the same bits (the oracle fixtures in tests/random_oracle.rs check this).
//!
//! Ziggurat (Marsaglia–Tsang, Boost's layout): one 64-bit draw gives the layer `i`
//! (bits 1..8), the sign (bit 0) and a fraction `r` (bits 8..64, as Boost 1.60 makes it:
//! bit 11 cleared, then the 56 bits scaled by 2⁻⁵⁶). `x = r·X[i]` is accepted at once
//! when `x < X[i+1]` (inside the layer's rectangle, ~99 % of draws); layer 0 beyond
//! `X[1]` is the tail (Marsaglia's exponential method); otherwise a second uniform picks
//! `y` in `[Y[i], Y[i+1])` and `x` is kept when `y < exp(−x²/2)` (the wedge), else the
//! loop starts again. `exp` and `ln` are the platform's libm, as in CNTK (see
//! docs/random.md on portability).

use super::mt::Mt19937_64;
use super::ziggurat_tables::{X, Y};

/// 2⁶⁴ as Boost computes it: `double(max - min) + 1`.
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// `boost::random::uniform_real_distribution<double>(lo, hi)(e)`: `n/2⁶⁴·(hi−lo)+lo`,
/// drawn again when rounding reaches `hi`.
#[inline]
pub fn uniform_real(e: &mut Mt19937_64, lo: f64, hi: f64) -> f64 {
    loop {
        let r = e.next_u64() as f64 / TWO_64 * (hi - lo) + lo;
        if r < hi {
            return r;
        }
    }
}

/// `boost::random::uniform_01<double>()(e)`: `n·2⁻⁶⁴`, drawn again when it rounds to 1.
#[inline]
pub fn uniform_01(e: &mut Mt19937_64) -> f64 {
    loop {
        let r = e.next_u64() as f64 * (1.0 / TWO_64);
        if r < 1.0 {
            return r;
        }
    }
}

/// `boost::random::exponential_distribution<double>(1)(e)` (Boost 1.60: inversion).
#[inline]
pub fn exponential(e: &mut Mt19937_64) -> f64 {
    // Boost: -1/λ · ln(1 − u) with λ = 1 (negation is exact)
    -(1.0 - uniform_01(e)).ln()
}

/// Boost 1.60's `generate_int_float_pair<double, 8>` over a 64-bit engine.
#[inline]
fn int_float_pair(e: &mut Mt19937_64) -> (f64, usize) {
    let u = e.next_u64();
    let bucket = (u & 0xFF) as usize;
    // Boost 1.60 "zeroes unused bits" by clearing the single bit 64 − 53 = 11.
    let u = u & !(1u64 << 11);
    ((u >> 8) as f64 * (1.0 / 72_057_594_037_927_936.0), bucket)
}

/// A standard normal variate: Boost 1.60's `unit_normal_distribution<double>`.
#[inline]
pub fn unit_normal(e: &mut Mt19937_64) -> f64 {
    unit_normal_counted(e, &mut ZigguratPaths::default())
}

fn normal_tail(e: &mut Mt19937_64) -> f64 {
    let start = X[1];
    loop {
        let x = exponential(e) / start;
        let y = exponential(e);
        if 2.0 * y > x * x {
            return x + start;
        }
    }
}

/// `boost::random::normal_distribution<double>(mean, sigma)(e)`.
#[inline]
pub fn normal(e: &mut Mt19937_64, mean: f64, sigma: f64) -> f64 {
    unit_normal(e) * sigma + mean
}

/// Which path the ziggurat took for one variate (tests use it to show that a fixture
/// exercises the tail and the wedges, not only the rectangles).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZigguratPaths {
    pub rectangle: u64,
    pub wedge_tests: u64,
    pub tail: u64,
}

/// [`unit_normal`], counting its paths (the one implementation of the ziggurat).
#[doc(hidden)]
pub fn unit_normal_counted(e: &mut Mt19937_64, paths: &mut ZigguratPaths) -> f64 {
    loop {
        let (r, bits) = int_float_pair(e);
        let sign = ((bits & 1) as f64) * 2.0 - 1.0;
        let i = bits >> 1;
        let x = r * X[i];
        if x < X[i + 1] {
            paths.rectangle += 1;
            return x * sign;
        }
        if i == 0 {
            paths.tail += 1;
            return normal_tail(e) * sign;
        }
        paths.wedge_tests += 1;
        let y = Y[i] + uniform_01(e) * (Y[i + 1] - Y[i]);
        if y < (-x * x / 2.0).exp() {
            return x * sign;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables describe 128 layers of equal area v under exp(−x²/2) (checked in f64
    /// to 1e-12; the generator works at 60 digits).
    #[test]
    fn ziggurat_layers_have_equal_areas() {
        let f = |x: f64| (-x * x / 2.0).exp();
        let v = X[0] * Y[1];
        for i in 1..128 {
            let area = X[i] * (Y[i + 1] - Y[i]);
            assert!((area - v).abs() < 1e-12, "layer {i}: {area} vs {v}");
            assert!((Y[i] - f(X[i])).abs() < 1e-15, "Y[{i}]");
        }
        assert_eq!((X[128], Y[0], Y[128]), (0.0, 0.0, 1.0));
    }

    #[test]
    fn moments_of_the_normal_and_the_uniform() {
        let mut e = Mt19937_64::new(7);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = unit_normal(&mut e);
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let mut lo = f64::MAX;
        let mut hi = f64::MIN;
        for _ in 0..n {
            let u = uniform_real(&mut e, -0.5, 0.25);
            lo = lo.min(u);
            hi = hi.max(u);
        }
        assert!(lo >= -0.5 && hi < 0.25 && lo < -0.499 && hi > 0.249);
    }
}
