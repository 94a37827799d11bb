//! The AVX-512 f32 kernel of max pooling (`pool.rs` runs it, or its AVX2 twin in
//! `pool_avx2.rs`, for f32 when every window lies inside the input): a whole plane at a time, output row by output row, up to 16
//! outputs of a row at once. Each tap is read for those outputs together: a masked load at
//! stride 1; at stride s ≤ 31, the `(w − 1)·s + 1` cells of `w = min(16, ⌊31/s⌋ + 1)`
//! outputs as two masked loads and one two-register permute (gathers are several times
//! slower on this class of CPU); wider strides gather. "A later tap only when strictly
//! greater" (the first maximum in row-major tap order, as `pool::argmax`) is a compare
//! into a mask register and two blends: no branch depends on the data. The scalar loops
//! in `pool.rs` stay the path for f64 and other CPUs, and the reference this kernel is
//! tested against.

use super::micro::Isa;
use crate::backend::conv::ConvAxis;
use crate::tensor::Element;

/// Whether a kernel runs for `T` on planes of `len` cells, and which: f32, AVX-512F (this
/// file) or AVX2 (`pool_avx2`), and every offset fits 32-bit lanes.
pub(super) fn applies<T: Element>(len: usize) -> Option<Isa> {
    super::micro::isa::<T>().filter(|_| len < i32::MAX as usize)
}

/// What a plane pass produces.
pub(super) enum Pass<'a> {
    /// `y` = the maximum of each window.
    Forward(&'a mut [f32]),
    /// `dx[first maximum of window k] += dy[k]`.
    Backward(&'a [f32], &'a mut [f32]),
}

/// Max pooling over one plane `x` of `win`'s geometry, every window inside the plane, by
/// the kernel of `isa`.
///
/// # Safety
/// The CPU has `isa`'s features (`applies` said so).
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn plane(isa: Isa, win: &Windows<'_>, x: &[f32], pass: Pass<'_>) {
    match isa {
        Isa::Avx512 => plane_avx512(win, x, pass),
        Isa::Avx2 => super::pool_avx2::plane(win, x, pass),
    }
}

/// The windows of a pooling geometry: the tap offsets from a window's first cell
/// (row-major, `argmax`'s order) and where the first window of each output row starts.
pub(super) struct Windows<'a> {
    pub a: &'a [ConvAxis; 3],
    pub taps: smallvec::SmallVec<[usize; 32]>,
}

impl<'a> Windows<'a> {
    /// The windows of `a` (built once per call, used for every plane).
    pub fn new(a: &'a [ConvAxis; 3]) -> Self {
        let (n1, n2) = (a[1].input, a[2].input);
        let mut taps = smallvec::SmallVec::new();
        for j0 in 0..a[0].kernel {
            for j1 in 0..a[1].kernel {
                for j2 in 0..a[2].kernel {
                    taps.push(
                        (j0 * a[0].dilation * n1 + j1 * a[1].dilation) * n2 + j2 * a[2].dilation,
                    );
                }
            }
        }
        Windows { a, taps }
    }

    /// Whether there are outputs; asserts that the last window of plane `x` and the
    /// outputs of `pass` lie inside their buffers.
    pub fn check(&self, x: &[f32], pass: &Pass<'_>) -> bool {
        let a = self.a;
        let (out0, out1, out2) = (a[0].output, a[1].output, a[2].output);
        if out0 * out1 * out2 == 0 || self.taps.is_empty() {
            return false;
        }
        let last = self.first(out0 - 1, out1 - 1)
            + (out2 - 1) * a[2].stride
            + self.taps[self.taps.len() - 1];
        assert!(last < x.len(), "pooling plane out of bounds");
        match pass {
            Pass::Forward(y) => assert!(y.len() >= out0 * out1 * out2, "pooling output size"),
            Pass::Backward(dy, dx) => assert!(
                dy.len() >= out0 * out1 * out2 && dx.len() >= x.len(),
                "pooling gradient size"
            ),
        }
        true
    }

    /// The first cell of output row `(o0, o1)`'s first window.
    pub fn first(&self, o0: usize, o1: usize) -> usize {
        let a = self.a;
        (a[0].at(o0, 0) as usize * a[1].input + a[1].at(o1, 0) as usize) * a[2].input
            + a[2].at(0, 0) as usize
    }
}

/// The AVX-512 kernel of [`plane`].
///
/// # Safety
/// The CPU has AVX-512F. (Bounds are checked by `Windows::check` before any access.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane_avx512(win: &Windows<'_>, x: &[f32], mut pass: Pass<'_>) {
    use std::arch::x86_64::*;
    if !win.check(x, &pass) {
        return;
    }
    let a = win.a;
    let (taps, first) = (&win.taps, |o0, o1| win.first(o0, o1));
    let (out0, out1, out2) = (a[0].output, a[1].output, a[2].output);
    let s = a[2].stride;
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(s as i32));
    let p = x.as_ptr();
    // outputs per chunk: their cells span at most two vectors when s ≤ 31
    let per = if s <= 31 { (31 / s + 1).min(16) } else { 16 };
    let mut at_lanes = [0i32; 16];
    let mut k = 0;
    for o0 in 0..out0 {
        for o1 in 0..out1 {
            let row = first(o0, o1);
            let mut c = 0;
            while c < out2 {
                let w = (out2 - c).min(per);
                let m = ((1u32 << w) - 1) as __mmask16;
                // the cells the chunk reads at one tap, as masks of two 16-lane loads
                let span = (w - 1) * s + 1;
                let mlo = ((1u32 << span.min(16)) - 1) as __mmask16;
                let mhi = ((1u32 << span.saturating_sub(16).min(16)) - 1) as __mmask16;
                let read = |base: usize| {
                    if s == 1 {
                        _mm512_maskz_loadu_ps(m, p.add(base))
                    } else if s <= 31 {
                        // lanes past `span` stay unread; `hi` may start past the end
                        let lo = _mm512_maskz_loadu_ps(mlo, p.add(base));
                        let hi = _mm512_maskz_loadu_ps(mhi, p.wrapping_add(base + 16));
                        _mm512_permutex2var_ps(lo, step, hi)
                    } else {
                        let offs = _mm512_add_epi32(_mm512_set1_epi32(base as i32), step);
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, offs, p)
                    }
                };
                let b0 = row + c * s;
                let mut best = read(b0 + taps[0]);
                match &mut pass {
                    Pass::Forward(y) => {
                        for &t in &taps[1..] {
                            // x86 max returns its second operand unless the first is
                            // greater: `if v > best { v } else { best }`, NaN included
                            best = _mm512_max_ps(read(b0 + t), best);
                        }
                        _mm512_mask_storeu_ps(y.as_mut_ptr().add(k + c), m, best);
                    }
                    Pass::Backward(dy, dx) => {
                        let mut at = _mm512_set1_epi32(taps[0] as i32);
                        for &t in &taps[1..] {
                            let v = read(b0 + t);
                            let gt = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(m, v, best);
                            best = _mm512_mask_blend_ps(gt, best, v);
                            at = _mm512_mask_blend_epi32(gt, at, _mm512_set1_epi32(t as i32));
                        }
                        // window l's first maximum: b0 + l·s + tap; overlapping windows
                        // may share it, so the adds run lane by lane
                        let cells = _mm512_add_epi32(
                            at,
                            _mm512_add_epi32(step, _mm512_set1_epi32(b0 as i32)),
                        );
                        _mm512_storeu_si512(at_lanes.as_mut_ptr().cast(), cells);
                        for (l, &i) in at_lanes[..w].iter().enumerate() {
                            dx[i as usize] += dy[k + c + l];
                        }
                    }
                }
                c += w;
            }
            k += out2;
        }
    }
}
