//! The portable f32 kernels: the same range reduction and polynomials as the vector
//! paths, one element at a time, written without branches or libm calls so LLVM can
//! vectorize them for the baseline target (SSE2, NEON). Also the reference
//! definition of the algorithm that `avx2.rs` and `avx512.rs` transcribe.
//!
//! exp(x) = 2^n · e^r with n = round(x·log2 e), r = x − n·ln 2 (Cody–Waite split,
//! |r| ≤ ln2/2) and e^r ≈ 1 + r + r²·P(r) (Cephes `expf`, ≈ 1 ulp). 2^n is applied
//! as two factors 2^(n/2)·2^(n−n/2), so results underflow gradually into denormals
//! and overflow to +inf without an intermediate overflow.
//!
//! tanh(x) = x + x³·Q(x²) for |x| < 0.625 (Cephes `tanhf`), else
//! sign(x)·(1 − 2/(e^{2|x|} + 1)); sigmoid(x) = 1/(1 + e^{−x}). Both saturate to
//! exact ±1 / 0 / 1 for large |x| (e^{…} = inf ⇒ 2/inf = 0) and propagate NaN.

/// Inputs are clamped to [EXP_LO, EXP_HI] (NaN passes): e^-104 rounds to 0 and
/// e^89 to +inf in f32, so the clamp changes no result and keeps n in [-150, 129].
pub(super) const EXP_LO: f32 = -104.0;
pub(super) const EXP_HI: f32 = 89.0;
pub(super) const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO; LN2_HI (= 355/512 exactly) has 9 significant bits, so
/// n·LN2_HI is exact. The coefficients are Cephes' `expf`/`tanhf`, rounded to f32.
pub(super) const LN2_HI: f32 = 0.693_359_4;
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// P(r), highest degree first.
pub(super) const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_6e-1,
    0.5,
];
/// Below this |x|, tanh uses the odd polynomial.
pub(super) const TANH_SMALL: f32 = 0.625;
/// Q(z), z = x², highest degree first.
pub(super) const TANH_Q: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_908_8e-2,
    -5.373_971_5e-2,
    1.333_144_2e-1,
    -3.333_328e-1,
];

/// 1.5·2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to the
/// nearest integer (ties to even) without a `round` libcall.
const ROUND_MAGIC: f32 = 12_582_912.0;

#[inline(always)]
pub(super) fn exp1(x: f32) -> f32 {
    // NaN passes the clamp unchanged.
    let x = x.clamp(EXP_LO, EXP_HI);
    let n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_P[0];
    for &c in &EXP_P[1..] {
        p = p * r + c;
    }
    let e = p * (r * r) + r + 1.0;
    // `as` saturates and maps NaN to 0; e is already NaN then.
    let ni = n as i32;
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    e * s1 * s2
}

#[inline(always)]
pub(super) fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp1(-x))
}

#[inline(always)]
pub(super) fn tanh1(x: f32) -> f32 {
    let ax = x.abs();
    let big = 1.0 - 2.0 / (exp1(ax + ax) + 1.0);
    let z = x * x;
    let mut q = TANH_Q[0];
    for &c in &TANH_Q[1..] {
        q = q * z + c;
    }
    let small = x + x * z * q;
    let t = if ax < TANH_SMALL { small } else { big };
    // tanh is odd: the sign of x (also of -0.0, which `small` would lose).
    f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000))
}

pub(super) fn exp(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = exp1(v);
    }
}

pub(super) fn sigmoid(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = sigmoid1(v);
    }
}

pub(super) fn tanh(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = tanh1(v);
    }
}
