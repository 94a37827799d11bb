//! The AVX2+FMA f32 kernels, 8 lanes: a transcription of `scalar.rs`.
//! Tails shorter than a vector go through a zero-padded stack buffer.

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::scalar::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, TANH_Q, TANH_SMALL};

const LANES: usize = 8;

#[inline(always)]
unsafe fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

#[inline(always)]
unsafe fn sign_mask() -> __m256 {
    _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN))
}

/// e^x per lane (see `scalar::exp1`).
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    // max/min return their second operand when either is NaN: NaN passes the clamp.
    let x = _mm256_min_ps(splat(EXP_HI), _mm256_max_ps(splat(EXP_LO), x));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        splat(LOG2E),
    ));
    let r = _mm256_fnmadd_ps(n, splat(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, splat(LN2_LO), r);
    let mut p = splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = _mm256_fmadd_ps(p, r, splat(c));
    }
    let e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), splat(1.0));
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(ni);
    let n2 = _mm256_sub_epi32(ni, n1);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    _mm256_mul_ps(_mm256_mul_ps(e, s1), s2)
}

#[inline(always)]
unsafe fn sigmoid8(x: __m256) -> __m256 {
    let one = splat(1.0);
    let e = exp8(_mm256_xor_ps(x, sign_mask()));
    _mm256_div_ps(one, _mm256_add_ps(one, e))
}

#[inline(always)]
unsafe fn tanh8(x: __m256) -> __m256 {
    let one = splat(1.0);
    let sign = _mm256_and_ps(x, sign_mask());
    let ax = _mm256_andnot_ps(sign_mask(), x);
    let e = exp8(_mm256_add_ps(ax, ax));
    let big = _mm256_sub_ps(one, _mm256_div_ps(splat(2.0), _mm256_add_ps(e, one)));
    let z = _mm256_mul_ps(x, x);
    let mut q = splat(TANH_Q[0]);
    for &c in &TANH_Q[1..] {
        q = _mm256_fmadd_ps(q, z, splat(c));
    }
    let small = _mm256_fmadd_ps(_mm256_mul_ps(x, z), q, x);
    // Ordered compare: false for NaN, which then takes `big` (NaN).
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(ax, splat(TANH_SMALL));
    // tanh is odd: the sign of x (also of -0.0, which `small` would lose).
    _mm256_or_ps(_mm256_blendv_ps(big, small, is_small), sign)
}

#[inline(always)]
unsafe fn map(x: &[f32], y: &mut [f32], f: impl Fn(__m256) -> __m256) {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    let body = n - n % LANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + LANES <= n for both slices.
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        _mm256_storeu_ps(y.as_mut_ptr().add(i), f(v));
        i += LANES;
    }
    if body < n {
        let mut buf = [0.0f32; LANES];
        buf[..n - body].copy_from_slice(&x[body..]);
        let v = f(_mm256_loadu_ps(buf.as_ptr()));
        _mm256_storeu_ps(buf.as_mut_ptr(), v);
        y[body..].copy_from_slice(&buf[..n - body]);
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn exp(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| exp8(v))
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sigmoid(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| sigmoid8(v))
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tanh(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| tanh8(v))
}
