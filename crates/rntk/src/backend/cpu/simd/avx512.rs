//! The AVX-512F f32 kernels, 16 lanes: a transcription of `scalar.rs`.
//! Tails use masked loads and stores. Only AVX-512F instructions are used (the
//! bitwise float ops go through the integer unit, as `and_ps` & co. need AVX-512DQ).

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::scalar::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, TANH_Q, TANH_SMALL};

const LANES: usize = 16;

#[inline(always)]
unsafe fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

/// e^x per lane (see `scalar::exp1`).
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
    // max/min return their second operand when either is NaN: NaN passes the clamp.
    let x = _mm512_min_ps(splat(EXP_HI), _mm512_max_ps(splat(EXP_LO), x));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, splat(LOG2E)),
    );
    let r = _mm512_fnmadd_ps(n, splat(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, splat(LN2_LO), r);
    let mut p = splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = _mm512_fmadd_ps(p, r, splat(c));
    }
    let e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), splat(1.0));
    let ni = _mm512_cvtps_epi32(n);
    let n1 = _mm512_srai_epi32::<1>(ni);
    let n2 = _mm512_sub_epi32(ni, n1);
    let bias = _mm512_set1_epi32(127);
    let s1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
    let s2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
    _mm512_mul_ps(_mm512_mul_ps(e, s1), s2)
}

#[inline(always)]
unsafe fn sigmoid16(x: __m512) -> __m512 {
    let one = splat(1.0);
    let neg = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(x),
        _mm512_set1_epi32(i32::MIN),
    ));
    _mm512_div_ps(one, _mm512_add_ps(one, exp16(neg)))
}

#[inline(always)]
unsafe fn tanh16(x: __m512) -> __m512 {
    let one = splat(1.0);
    let xi = _mm512_castps_si512(x);
    let sign = _mm512_and_si512(xi, _mm512_set1_epi32(i32::MIN));
    let ax = _mm512_castsi512_ps(_mm512_and_si512(xi, _mm512_set1_epi32(i32::MAX)));
    let e = exp16(_mm512_add_ps(ax, ax));
    let big = _mm512_sub_ps(one, _mm512_div_ps(splat(2.0), _mm512_add_ps(e, one)));
    let z = _mm512_mul_ps(x, x);
    let mut q = splat(TANH_Q[0]);
    for &c in &TANH_Q[1..] {
        q = _mm512_fmadd_ps(q, z, splat(c));
    }
    let small = _mm512_fmadd_ps(_mm512_mul_ps(x, z), q, x);
    // Ordered compare: false for NaN, which then takes `big` (NaN).
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, splat(TANH_SMALL));
    let t = _mm512_mask_blend_ps(is_small, big, small);
    // tanh is odd: the sign of x (also of -0.0, which `small` would lose).
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign))
}

#[inline(always)]
unsafe fn map(x: &[f32], y: &mut [f32], f: impl Fn(__m512) -> __m512) {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    let body = n - n % LANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + LANES <= n for both slices.
        let v = _mm512_loadu_ps(x.as_ptr().add(i));
        _mm512_storeu_ps(y.as_mut_ptr().add(i), f(v));
        i += LANES;
    }
    if body < n {
        // SAFETY: the mask covers exactly the n - body < LANES remaining elements;
        // masked-off lanes are neither read nor written.
        let k: __mmask16 = (1u16 << (n - body)) - 1;
        let v = _mm512_maskz_loadu_ps(k, x.as_ptr().add(body));
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(body), k, f(v));
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| exp16(v))
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sigmoid(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| sigmoid16(v))
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tanh(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| tanh16(v))
}
