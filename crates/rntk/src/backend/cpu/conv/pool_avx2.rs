//! The AVX2 f32 kernel of max pooling, `pool_simd.rs`'s AVX-512 kernel 8 lanes wide, for
//! CPUs without AVX-512: a whole plane at a time, output row by output row, up to 8
//! outputs of a row at once. A tap's cells for those outputs are one masked load at
//! stride 1; at stride 2–4 the `(w − 1)·s + 1` cells span at most `s` vectors, each loaded
//! (masked past the last cell) and moved into place, at stride 2 by one shuffle and one
//! permute, at 3 and 4 by a lane permute and a blend per vector; wider strides gather. "A later tap only when strictly greater" (`pool::argmax`'s first
//! maximum in row-major tap order) is a compare and two blends: no branch depends on the
//! data, and `max` returns its second operand unless the first is greater, as the scalar
//! loop does (NaN included). Tested against the scalar loops in `pool.rs`.

use super::pool_simd::{Pass, Windows};
use std::arch::x86_64::*;

/// Lanes `0..n` (n ≤ 8) set, the rest clear.
#[inline(always)]
unsafe fn lanes(n: usize) -> __m256i {
    const ONES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    _mm256_loadu_si256(ONES.as_ptr().add(8 - n.min(8)).cast())
}

/// The first `n` cells from `p` (a plain load when all 8 lie inside), zeros after.
#[inline(always)]
unsafe fn load(p: *const f32, n: usize) -> __m256 {
    match n >= 8 {
        true => _mm256_loadu_ps(p),
        false => _mm256_maskload_ps(p, lanes(n)),
    }
}

/// How the 8 lanes of a strided read come from the vectors of cells `8i..8i + 8` after a
/// window's first cell: per vector `i < S`, the permute that moves its cells into place and
/// the lanes that take them.
struct Strided {
    perm: [__m256i; 4],
    take: [__m256; 4],
}

impl Strided {
    #[inline(always)]
    unsafe fn new(s: usize) -> Self {
        let mut perm = [_mm256_setzero_si256(); 4];
        let mut take = [_mm256_setzero_ps(); 4];
        for i in 0..s.min(4) {
            let (mut idx, mut tk) = ([0i32; 8], [0i32; 8]);
            for l in 0..8 {
                if (l * s) / 8 == i {
                    idx[l] = ((l * s) % 8) as i32;
                    tk[l] = -1;
                }
            }
            perm[i] = _mm256_loadu_si256(idx.as_ptr().cast());
            take[i] = _mm256_castsi256_ps(_mm256_loadu_si256(tk.as_ptr().cast()));
        }
        Strided { perm, take }
    }
}

/// The cells `p[base + l·s]` of lanes `l < w` (`step`: the lanes' `l·s`) (`span = (w − 1)·s + 1` cells from `base`
/// lie inside the plane); other lanes hold cells of the span or zeros. `S` is the stride
/// when 1 to 4, or 0 for a gather at stride `s`.
#[inline(always)]
unsafe fn read<const S: usize>(
    p: *const f32,
    base: usize,
    (w, span): (usize, usize),
    st: &Strided,
    step: __m256i,
) -> __m256 {
    match S {
        1 => _mm256_maskload_ps(p.add(base), lanes(span)),
        2 => {
            let v0 = load(p.add(base), span);
            let v1 = match span > 8 {
                true => load(p.add(base + 8), span - 8),
                false => _mm256_setzero_ps(),
            };
            // the even cells, as 64-bit pairs (0 2 | 8 10 || 4 6 | 12 14) → pairs 0, 2, 1, 3
            let e = _mm256_shuffle_ps::<0b10_00_10_00>(v0, v1);
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)))
        }
        3 | 4 => {
            let mut r = _mm256_setzero_ps();
            for i in 0..S {
                if 8 * i >= span {
                    break;
                }
                let v = load(p.add(base + 8 * i), span - 8 * i);
                let v = _mm256_permutevar8x32_ps(v, st.perm[i]);
                r = _mm256_blendv_ps(r, v, st.take[i]);
            }
            r
        }
        _ => {
            let offs = _mm256_add_epi32(_mm256_set1_epi32(base as i32), step);
            let m = _mm256_castsi256_ps(lanes(w));
            _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), p, offs, m)
        }
    }
}

/// Max pooling over one plane `x` of `win`'s geometry, every window inside the plane.
///
/// # Safety
/// The CPU has AVX2. (Bounds are checked by `Windows::check` before any access; offsets
/// fit 32-bit lanes, `pool_simd::applies`.)
#[target_feature(enable = "avx2")]
pub(super) unsafe fn plane(win: &Windows<'_>, x: &[f32], pass: Pass<'_>) {
    match win.a[2].stride {
        1 => run::<1>(win, x, pass),
        2 => run::<2>(win, x, pass),
        3 => run::<3>(win, x, pass),
        4 => run::<4>(win, x, pass),
        _ => run::<0>(win, x, pass),
    }
}

#[inline(always)]
unsafe fn run<const S: usize>(win: &Windows<'_>, x: &[f32], mut pass: Pass<'_>) {
    if !win.check(x, &pass) {
        return;
    }
    let a = win.a;
    let taps = &win.taps;
    let (out0, out1, out2) = (a[0].output, a[1].output, a[2].output);
    let s = a[2].stride;
    let step = _mm256_mullo_epi32(
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        _mm256_set1_epi32(s as i32),
    );
    let st = Strided::new(s);
    let p = x.as_ptr();
    let mut at_lanes = [0i32; 8];
    let mut k = 0;
    for o0 in 0..out0 {
        for o1 in 0..out1 {
            let row = win.first(o0, o1);
            let mut c = 0;
            while c < out2 {
                let w = (out2 - c).min(8);
                let geo = (w, (w - 1) * s + 1);
                let b0 = row + c * s;
                let mut best = read::<S>(p, b0 + taps[0], geo, &st, step);
                match &mut pass {
                    Pass::Forward(y) => {
                        for &t in &taps[1..] {
                            best = _mm256_max_ps(read::<S>(p, b0 + t, geo, &st, step), best);
                        }
                        _mm256_maskstore_ps(y.as_mut_ptr().add(k + c), lanes(w), best);
                    }
                    Pass::Backward(dy, dx) => {
                        let mut at = _mm256_set1_epi32(taps[0] as i32);
                        for &t in &taps[1..] {
                            let v = read::<S>(p, b0 + t, geo, &st, step);
                            let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best);
                            best = _mm256_blendv_ps(best, v, gt);
                            let tv = _mm256_castsi256_ps(_mm256_set1_epi32(t as i32));
                            at = _mm256_castps_si256(_mm256_blendv_ps(
                                _mm256_castsi256_ps(at),
                                tv,
                                gt,
                            ));
                        }
                        // window l's first maximum: b0 + l·s + tap; overlapping windows
                        // may share it, so the adds run lane by lane
                        let cells = _mm256_add_epi32(
                            at,
                            _mm256_add_epi32(step, _mm256_set1_epi32(b0 as i32)),
                        );
                        _mm256_storeu_si256(at_lanes.as_mut_ptr().cast(), cells);
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
