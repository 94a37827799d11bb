//! The AVX-512F f32 kernels, 16 lanes: a transcription of `scalar.rs`.
//! Tails use masked loads and stores. Only AVX-512F instructions are used (the
//! bitwise float ops go through the integer unit, as `and_ps` & co. need AVX-512DQ).

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::scalar::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, TANH_Q, TANH_SMALL};
use crate::backend::recurrent::LstmStrides;

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

/// The fused LSTM cell over `rows` rows (see `ops::lstm_cell`): gates from `pre`
/// (rows × 4n), `c = f ⊙ c_prev + i ⊙ g`, `h = tanh(c) ⊙ o` into `out` (rows × 2n),
/// `[i, g, f, o, tanh(c)]` into `kept` (rows × 5n). The same lane functions and the
/// same operation order as the portable loops, so the same bits.
///
/// # Safety
/// The CPU must support AVX-512F; `pre`, `kept`, `out` hold `rows` rows and `cprev`
/// holds `(rows - 1) * cprev_stride + n` values.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn lstm_forward(
    pre: &[f32],
    cprev: &[f32],
    cprev_stride: usize,
    kept: &mut [f32],
    out: &mut [f32],
    n: usize,
    rows: usize,
) {
    assert!(pre.len() >= rows * 4 * n && kept.len() >= rows * 5 * n && out.len() >= rows * 2 * n);
    assert!(rows == 0 || cprev.len() >= (rows - 1) * cprev_stride + n);
    let (k, o) = (kept.as_mut_ptr(), out.as_mut_ptr());
    lstm_forward_units(
        pre.as_ptr(),
        cprev.as_ptr(),
        cprev_stride,
        k,
        o,
        n,
        rows,
        (0, n),
    );
}

/// `lstm_forward` for units `j0..j1` of every row only (all four gates of each), on
/// raw operands, so two threads can take disjoint unit ranges of one step.
///
/// # Safety
/// AVX-512F; the operands hold `rows` rows as `lstm_forward` requires; `j1 <= n`; no
/// other thread touches units `j0..j1` of `kept` or `out` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn lstm_forward_units(
    pre: *const f32,
    cprev: *const f32,
    cprev_stride: usize,
    kept: *mut f32,
    out: *mut f32,
    n: usize,
    rows: usize,
    (j0, j1): (usize, usize),
) {
    for r in 0..rows {
        let p = pre.add(r * 4 * n);
        let k = kept.add(r * 5 * n);
        let o = out.add(r * 2 * n);
        let cp = cprev.add(r * cprev_stride);
        let mut j = j0;
        while j < j1 {
            // SAFETY: the mask covers lanes j..min(j + 16, j1) of each n-wide segment.
            let m: __mmask16 = if j1 - j >= LANES {
                0xffff
            } else {
                (1u16 << (j1 - j)) - 1
            };
            let ld = |q: *const f32| _mm512_maskz_loadu_ps(m, q.add(j));
            let gi = sigmoid16(ld(p));
            let gg = tanh16(ld(p.add(n)));
            let gf = sigmoid16(ld(p.add(2 * n)));
            let go = sigmoid16(ld(p.add(3 * n)));
            let c = _mm512_add_ps(_mm512_mul_ps(gf, ld(cp)), _mm512_mul_ps(gi, gg));
            let tc = tanh16(c);
            let h = _mm512_mul_ps(tc, go);
            _mm512_mask_storeu_ps(k.add(j), m, gi);
            _mm512_mask_storeu_ps(k.add(n + j), m, gg);
            _mm512_mask_storeu_ps(k.add(2 * n + j), m, gf);
            _mm512_mask_storeu_ps(k.add(3 * n + j), m, go);
            _mm512_mask_storeu_ps(k.add(4 * n + j), m, tc);
            _mm512_mask_storeu_ps(o.add(j), m, h);
            _mm512_mask_storeu_ps(o.add(n + j), m, c);
            j += LANES;
        }
    }
}

/// The LSTM cell's vector-Jacobian product over `rows` rows: adds `∂/∂pre` into
/// `dpre` (rows × 4n) and `∂/∂c_prev` into `dcprev`, from `dh`, `dc` (the gradients
/// of h and c) and what the forward kept. Same operation order as the portable loop.
///
/// # Safety
/// The CPU must support AVX-512F; every operand holds its `rows` rows at its stride.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn lstm_backward(
    kept: &[f32],
    cprev: &[f32],
    dh: &[f32],
    dc: &[f32],
    dpre: Option<&mut [f32]>,
    dcprev: Option<&mut [f32]>,
    s: &LstmStrides,
    n: usize,
    rows: usize,
) {
    if rows == 0 {
        return;
    }
    let fits = |len: usize, stride: usize| len >= (rows - 1) * stride + n;
    assert!(kept.len() >= rows * 5 * n && fits(cprev.len(), s.cprev));
    assert!(fits(dh.len(), s.dh) && fits(dc.len(), s.dc));
    assert!(dpre.as_ref().is_none_or(|d| d.len() >= rows * 4 * n));
    assert!(dcprev.as_ref().is_none_or(|d| fits(d.len(), s.dcprev)));
    let dp = dpre.map_or(std::ptr::null_mut(), |d| d.as_mut_ptr());
    let dcp = dcprev.map_or(std::ptr::null_mut(), |d| d.as_mut_ptr());
    let (k, c) = (kept.as_ptr(), cprev.as_ptr());
    let (dh, dc) = (dh.as_ptr(), dc.as_ptr());
    lstm_backward_units(k, c, dh, dc, dp, dcp, s, n, rows, (0, n), false);
}

/// `lstm_backward` for units `j0..j1` of every row only, on raw operands (`dpre`,
/// `dcprev` null when not wanted), so two threads can take disjoint unit ranges.
/// With `store_dpre`, `∂/∂pre` is written instead of added (`dpre` need not be zeroed).
///
/// # Safety
/// AVX-512F; the operands hold `rows` rows at their strides as `lstm_backward`
/// requires; `j1 <= n`; no other thread touches units `j0..j1` of `dpre`, `dcprev`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn lstm_backward_units(
    kept: *const f32,
    cprev: *const f32,
    dh: *const f32,
    dc: *const f32,
    dpre: *mut f32,
    dcprev: *mut f32,
    s: &LstmStrides,
    n: usize,
    rows: usize,
    (j0, j1): (usize, usize),
    store_dpre: bool,
) {
    let one = splat(1.0);
    for r in 0..rows {
        let g = kept.add(r * 5 * n);
        let cp = cprev.add(r * s.cprev);
        let dhp = dh.add(r * s.dh);
        let dcp = dc.add(r * s.dc);
        let mut j = j0;
        while j < j1 {
            let m: __mmask16 = if j1 - j >= LANES {
                0xffff
            } else {
                (1u16 << (j1 - j)) - 1
            };
            let ld = |q: *const f32| _mm512_maskz_loadu_ps(m, q.add(j));
            let (gi, gg, gf, go, tc) = (
                ld(g),
                ld(g.add(n)),
                ld(g.add(2 * n)),
                ld(g.add(3 * n)),
                ld(g.add(4 * n)),
            );
            let dhv = ld(dhp);
            // dc = dc_out + dh·o·(1 − tanh²c)
            let dcv = _mm512_add_ps(
                ld(dcp),
                _mm512_mul_ps(
                    _mm512_mul_ps(dhv, go),
                    _mm512_sub_ps(one, _mm512_mul_ps(tc, tc)),
                ),
            );
            if !dpre.is_null() {
                let dp = dpre.add(r * 4 * n + j);
                let acc = |q: *mut f32, v: __m512| {
                    let v = if store_dpre {
                        v
                    } else {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(m, q), v)
                    };
                    _mm512_mask_storeu_ps(q, m, v);
                };
                let mul = _mm512_mul_ps;
                acc(dp, mul(mul(mul(dcv, gg), gi), _mm512_sub_ps(one, gi)));
                acc(
                    dp.add(n),
                    mul(mul(dcv, gi), _mm512_sub_ps(one, mul(gg, gg))),
                );
                acc(
                    dp.add(2 * n),
                    mul(mul(mul(dcv, ld(cp)), gf), _mm512_sub_ps(one, gf)),
                );
                acc(
                    dp.add(3 * n),
                    mul(mul(mul(dhv, tc), go), _mm512_sub_ps(one, go)),
                );
            }
            if !dcprev.is_null() {
                let q = dcprev.add(r * s.dcprev + j);
                let v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, q), _mm512_mul_ps(dcv, gf));
                _mm512_mask_storeu_ps(q, m, v);
            }
            j += LANES;
        }
    }
}
