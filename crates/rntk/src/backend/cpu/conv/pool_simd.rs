//! The AVX-512 f32 kernel of max pooling's row pass (`pool::row_first_max`'s contract): the
//! first maximum of each window of one output row, up to 16 outputs at a time. Each tap is
//! read for those outputs at once: a masked load at stride 1; at stride s ≤ 31, the
//! `(w − 1)·s + 1` cells of `w = min(16, ⌊31/s⌋ + 1)` outputs as two masked loads and one
//! two-register permute (gathers are several times slower on this class of CPU); wider
//! strides gather. "Later tap only when strictly greater" is a compare into a mask
//! register and two blends: no branch depends on the data. The scalar loop in `pool.rs` stays the path for
//! f64 and other CPUs, and the reference this kernel is tested against.

use crate::backend::conv::ConvAxis;
use crate::tensor::Element;

/// Whether the kernel runs for `T` on a plane of `len` cells: f32, AVX-512F, and every
/// offset fits the gathers' 32-bit indices.
pub(super) fn applies<T: Element>(len: usize) -> bool {
    super::micro::fast::<T>() && len < i32::MAX as usize
}

/// The first maximum of each window of output row `(o0, o1)` (all windows inside the
/// plane): values into `bv[..out]`, and their plane offsets into `bi[..out]` when given.
///
/// # Safety
/// The CPU has AVX-512F, and every window of the row lies inside `plane` (the caller's
/// `inside` check; the last offset is asserted here too).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn row_first_max(
    a: &[ConvAxis; 3],
    plane: &[f32],
    (o0, o1): (usize, usize),
    bv: &mut [f32],
    mut bi: Option<&mut [usize]>,
) {
    use std::arch::x86_64::*;
    let (n1, n2, out) = (a[1].input, a[2].input, a[2].output);
    let s = a[2].stride;
    if out == 0 {
        return;
    }
    let last = |ax: &ConvAxis, o: usize| ax.at(o, ax.kernel - 1) as usize;
    let end = (last(&a[0], o0) * n1 + last(&a[1], o1)) * n2 + last(&a[2], out - 1);
    assert!(
        end < plane.len() && bv.len() >= out,
        "pooling row out of bounds"
    );
    assert!(
        bi.as_ref().is_none_or(|b| b.len() >= out),
        "pooling row out of bounds"
    );
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(s as i32));
    let p = plane.as_ptr();
    // outputs per chunk: their cells span at most two vectors when s ≤ 31
    let per = if s <= 31 { (31 / s + 1).min(16) } else { 16 };
    let mut c = 0;
    while c < out {
        let w = (out - c).min(per);
        let m = ((1u32 << w) - 1) as __mmask16;
        // the cells the chunk reads at one tap, as masks of two 16-lane loads
        let span = (w - 1) * s + 1;
        let (mlo, mhi) = (
            ((1u32 << span.min(16)) - 1) as __mmask16,
            ((1u32 << span.saturating_sub(16).min(16)) - 1) as __mmask16,
        );
        let (mut best, mut at, mut first) = (_mm512_setzero_ps(), _mm512_setzero_si512(), true);
        for j0 in 0..a[0].kernel {
            for j1 in 0..a[1].kernel {
                let row = (a[0].at(o0, j0) as usize * n1 + a[1].at(o1, j1) as usize) * n2;
                for j2 in 0..a[2].kernel {
                    // the first output of this chunk at tap j2; ≥ 0 inside the plane
                    let base = row + a[2].at(c, j2) as usize;
                    let offs = _mm512_add_epi32(_mm512_set1_epi32(base as i32), step);
                    let v = if s == 1 {
                        _mm512_maskz_loadu_ps(m, p.add(base))
                    } else if s <= 31 {
                        // lanes ≥ span stay unread (masked); `hi` may start past the end
                        let lo = _mm512_maskz_loadu_ps(mlo, p.add(base));
                        let hi = _mm512_maskz_loadu_ps(mhi, p.wrapping_add(base + 16));
                        _mm512_permutex2var_ps(lo, step, hi)
                    } else {
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, offs, p)
                    };
                    if first {
                        (best, at, first) = (v, offs, false);
                    } else if bi.is_some() {
                        let gt = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(m, v, best);
                        best = _mm512_mask_blend_ps(gt, best, v);
                        at = _mm512_mask_blend_epi32(gt, at, offs);
                    } else {
                        // x86 max returns its second operand unless the first is
                        // greater: `if v > best { v } else { best }`, NaN included
                        best = _mm512_max_ps(v, best);
                    }
                }
            }
        }
        _mm512_mask_storeu_ps(bv.as_mut_ptr().add(c), m, best);
        if let Some(bi) = bi.as_deref_mut() {
            let lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(at));
            let hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(at));
            let q = bi.as_mut_ptr().add(c).cast::<i64>();
            _mm512_mask_storeu_epi64(q, m as __mmask8, lo);
            _mm512_mask_storeu_epi64(q.add(8), (m >> 8) as __mmask8, hi);
        }
        c += w;
    }
}
