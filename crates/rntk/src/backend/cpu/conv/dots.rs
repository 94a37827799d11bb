//! `c += a·bᵀ` where both operands' rows run along k: every element of `c` is a dot
//! product of a row of `a` with a row of `b`. The filter gradient of an in-place
//! (`implicit`) convolution is one: a row of the patch matrix (read in place) against a row
//! of `dy` laid over the same grid, for every (channel·tap, output channel) pair. With few
//! output channels (LeNet's 8 and 16) this beats the `a·b` product of `micro`, which
//! needs `dy` transposed and, at 8 outputs, runs half its lanes masked.
//!
//! f32 with AVX2 + FMA (also on AVX-512 CPUs, so both give the same bits) runs a kernel
//! of 3 rows of `a` by 4 rows of `b` in 12 registers of 8 partial sums: lane `l` sums the
//! terms `k ≡ l (mod 8)` in order, one fused multiply-add each (a masked tail adds
//! `0·0`), then the 8 lanes add as `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))` and the
//! result adds to `c`. `lanes_reference` is that order in plain loops (the test compares
//! bit for bit); other types and CPUs run `plain`, the dot products in k order.

use super::micro::Rows;
use crate::tensor::Element;
use std::any::TypeId;

/// Whether the AVX2 kernel runs for `T` here.
fn simd<T: Element>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::backend::cpu::simd::{simd_level, SimdLevel};
        TypeId::of::<T>() == TypeId::of::<f32>()
            && simd_level() >= SimdLevel::Avx2
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = TypeId::of::<T>();
        false
    }
}

/// `c[i·ldc + j] += a_i · b_j` for every row `i` of `a` and row `j` of `b` (both `k` long).
pub(crate) fn dots<T: Element>(a: Rows<T>, b: Rows<T>, c: &mut [T], ldc: usize) {
    let (m, n, k) = (a.rows, b.rows, a.cols);
    assert_eq!(b.cols, k, "dot products of rows of different lengths");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ldc + n <= c.len(), "dot products out of bounds");
    #[cfg(target_arch = "x86_64")]
    if simd::<T>() {
        // SAFETY: T is f32 (checked by `simd`), AVX2 + FMA were detected, and the views
        // were bounds-checked in `Rows::new`/`Rows::gathered` and `c` above.
        unsafe {
            let c = std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<f32>(), c.len());
            return avx2::dots(as_f32(a), as_f32(b), c, ldc);
        }
    }
    plain(a, b, c, ldc)
}

/// The same view of f32 data.
///
/// # Safety
/// `T` is f32.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32<T>(r: Rows<'_, T>) -> Rows<'_, f32> {
    Rows {
        data: std::slice::from_raw_parts(r.data.as_ptr().cast::<f32>(), r.data.len()),
        rows: r.rows,
        cols: r.cols,
        rs: r.rs,
        offs: r.offs,
    }
}

/// The dot products in k order (off the AVX2 path).
fn plain<T: Element>(a: Rows<T>, b: Rows<T>, c: &mut [T], ldc: usize) {
    for i in 0..a.rows {
        let ar = &a.data[a.start(i)..][..a.cols];
        for j in 0..b.rows {
            let br = &b.data[b.start(j)..][..b.cols];
            let mut s = T::zero();
            for (&x, &y) in ar.iter().zip(br) {
                s += x * y;
            }
            c[i * ldc + j] += s;
        }
    }
}

/// The AVX2 kernel's arithmetic in plain loops: 8 lane sums by fused multiply-adds, the
/// lanes added in the kernel's order.
#[cfg(test)]
pub(crate) fn lanes_reference(a: Rows<f32>, b: Rows<f32>, c: &mut [f32], ldc: usize) {
    let k = a.cols;
    for i in 0..a.rows {
        let ar = &a.data[a.start(i)..][..k];
        for j in 0..b.rows {
            let br = &b.data[b.start(j)..][..k];
            let mut s = [0.0f32; 8];
            for p0 in (0..k).step_by(8) {
                for (l, sl) in s.iter_mut().enumerate() {
                    let (x, y) = match p0 + l < k {
                        true => (ar[p0 + l], br[p0 + l]),
                        false => (0.0, 0.0),
                    };
                    *sl = x.mul_add(y, *sl);
                }
            }
            c[i * ldc + j] += ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Rows;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(a: Rows<f32>, b: Rows<f32>, c: &mut [f32], ldc: usize) {
        let (m, n) = (a.rows, b.rows);
        let mut i = 0;
        while i < m {
            let r = (m - i).min(3);
            let mut j = 0;
            while j < n {
                let o = (n - j).min(4);
                match (r, o) {
                    (3, 4) => tile::<3, 4>(&a, &b, c, ldc, (i, j)),
                    (3, 3) => tile::<3, 3>(&a, &b, c, ldc, (i, j)),
                    (3, 2) => tile::<3, 2>(&a, &b, c, ldc, (i, j)),
                    (3, _) => tile::<3, 1>(&a, &b, c, ldc, (i, j)),
                    (2, 4) => tile::<2, 4>(&a, &b, c, ldc, (i, j)),
                    (2, 3) => tile::<2, 3>(&a, &b, c, ldc, (i, j)),
                    (2, 2) => tile::<2, 2>(&a, &b, c, ldc, (i, j)),
                    (2, _) => tile::<2, 1>(&a, &b, c, ldc, (i, j)),
                    (_, 4) => tile::<1, 4>(&a, &b, c, ldc, (i, j)),
                    (_, 3) => tile::<1, 3>(&a, &b, c, ldc, (i, j)),
                    (_, 2) => tile::<1, 2>(&a, &b, c, ldc, (i, j)),
                    _ => tile::<1, 1>(&a, &b, c, ldc, (i, j)),
                }
                j += o;
            }
            i += r;
        }
    }

    /// Lanes `0..n` (n ≤ 8) set, the rest clear.
    #[inline(always)]
    unsafe fn lanes(n: usize) -> __m256i {
        const ONES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        _mm256_loadu_si256(ONES.as_ptr().add(8 - n.min(8)).cast())
    }

    /// `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
        _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)))
    }

    /// `c[(i + r)·ldc + j + o] += a_{i+r} · b_{j+o}` for `r < R`, `o < O`.
    #[inline(always)]
    unsafe fn tile<const R: usize, const O: usize>(
        a: &Rows<f32>,
        b: &Rows<f32>,
        c: &mut [f32],
        ldc: usize,
        (i, j): (usize, usize),
    ) {
        let k = a.cols;
        let mut ap = [a.data.as_ptr(); R];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = p.add(a.start(i + r));
        }
        let mut bp = [b.data.as_ptr(); O];
        for (o, p) in bp.iter_mut().enumerate() {
            *p = p.add(b.start(j + o));
        }
        let mut s = [[_mm256_setzero_ps(); O]; R];
        let mut p = 0;
        while p + 8 <= k {
            let mut av = [_mm256_setzero_ps(); R];
            for r in 0..R {
                av[r] = _mm256_loadu_ps(ap[r].add(p));
            }
            for o in 0..O {
                let bv = _mm256_loadu_ps(bp[o].add(p));
                for r in 0..R {
                    s[r][o] = _mm256_fmadd_ps(av[r], bv, s[r][o]);
                }
            }
            p += 8;
        }
        if p < k {
            let m = lanes(k - p);
            let mut av = [_mm256_setzero_ps(); R];
            for r in 0..R {
                av[r] = _mm256_maskload_ps(ap[r].add(p), m);
            }
            for o in 0..O {
                let bv = _mm256_maskload_ps(bp[o].add(p), m);
                for r in 0..R {
                    s[r][o] = _mm256_fmadd_ps(av[r], bv, s[r][o]);
                }
            }
        }
        for r in 0..R {
            for o in 0..O {
                c[(i + r) * ldc + j + o] += hsum(s[r][o]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel equals `lanes_reference` bit for bit (strided and gathered rows, every
    /// tile edge and tail length), and both equal the f64 dot products within rounding;
    /// `plain` in f64 is exact on these small integers.
    #[test]
    fn dots_equal_the_lane_reference_and_f64() {
        for &(m, n, k) in &[(1, 1, 1), (3, 4, 8), (5, 7, 13), (25, 8, 892), (7, 16, 33)] {
            let ars = k + 3;
            let a: Vec<f32> = (0..m * ars)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.0)
                .collect();
            let offs: Vec<usize> = (0..m).map(|i| (m - 1 - i) * ars).collect();
            let arev: Vec<f32> = (0..m)
                .flat_map(|i| a[(m - 1 - i) * ars..][..ars].to_vec())
                .collect();
            let ldc = n + 2;
            let c0: Vec<f32> = (0..m * ldc).map(|i| (i % 5) as f32).collect();
            let bv = Rows::new(&b, n, k, k);
            let mut want = c0.clone();
            lanes_reference(Rows::new(&a, m, k, ars), bv, &mut want, ldc);
            for gathered in [false, true] {
                let av = if gathered {
                    Rows::gathered(&arev, &offs, k)
                } else {
                    Rows::new(&a, m, k, ars)
                };
                let mut c = c0.clone();
                dots(av, bv, &mut c, ldc);
                if simd::<f32>() {
                    let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}x{n}x{k} gathered={gathered}");
                }
                let (a64, b64): (Vec<f64>, Vec<f64>) = (
                    a.iter().map(|&v| v as f64).collect(),
                    b.iter().map(|&v| v as f64).collect(),
                );
                let mut c64: Vec<f64> = c0.iter().map(|&v| v as f64).collect();
                plain(
                    Rows::new(&a64, m, k, ars),
                    Rows::new(&b64, n, k, k),
                    &mut c64,
                    ldc,
                );
                for (x, y) in c.iter().zip(&c64) {
                    assert!(
                        (*x as f64 - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "{x} vs {y}"
                    );
                }
            }
        }
    }
}
