//! Strided matrix views and the one GEMM entry point. Large products go to the `gemm`
//! crate; small ones (a recurrent step at batch 10, hidden 15) run in a simple
//! vectorizable loop here, which costs less than the crate's fixed overhead and, unlike
//! it, never allocates — so a warm time loop of small steps is allocation-free.

use super::par::GEMM_FLOPS;
use crate::backend::Par;
use crate::tensor::Element;

/// A read-only strided matrix view: element (i, j) is `data[i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// The transpose, as a view (no copy).
    pub fn t(self) -> Mat<'a, T> {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// The last index the view touches; saturates at `usize::MAX` (which no slice
    /// holds) rather than wrapping, so the bound asserts before `unsafe` calls hold.
    fn max_index(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            span(
                self.rows,
                self.rs,
                (self.cols - 1).saturating_mul(self.cs).saturating_add(1),
            ) - 1
        }
    }
}

/// Elements from the start of a view to the end of its last row: `(rows - 1)·rs +
/// row_len` for `rows ≥ 1` (0 rows: 0), saturating at `usize::MAX` instead of
/// wrapping. Bound checks guarding `unsafe` kernels use it (and [`elems`]).
pub fn span(rows: usize, rs: usize, row_len: usize) -> usize {
    match rows {
        0 => 0,
        r => (r - 1).saturating_mul(rs).saturating_add(row_len),
    }
}

/// The product of `factors`, saturating at `usize::MAX` instead of wrapping.
pub fn elems(factors: &[usize]) -> usize {
    factors.iter().fold(1usize, |a, &f| a.saturating_mul(f))
}

/// A mutable strided matrix view.
pub struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Products up to this many multiply-adds use `small_gemm`.
pub const SMALL_FLOPS: usize = 1 << 14;

/// Small products, compiled for the widest vector unit the CPU has (the loops are
/// written to auto-vectorize; plain multiply and add, no FMA contraction, so every
/// level computes the same bits).
fn small_gemm<T: Element>(a: &Mat<T>, b: &Mat<T>, c: &mut MatMut<T>, accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{simd_level, SimdLevel};
        match simd_level() {
            // SAFETY: the level was detected on this CPU (simd_level never reports more).
            SimdLevel::Avx512 => return unsafe { small_gemm_avx512(a, b, c, accumulate) },
            SimdLevel::Avx2 => return unsafe { small_gemm_avx2(a, b, c, accumulate) },
            SimdLevel::Scalar => {}
        }
    }
    small_gemm_body(a, b, c, accumulate)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn small_gemm_avx2<T: Element>(a: &Mat<T>, b: &Mat<T>, c: &mut MatMut<T>, accumulate: bool) {
    small_gemm_body(a, b, c, accumulate)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn small_gemm_avx512<T: Element>(
    a: &Mat<T>,
    b: &Mat<T>,
    c: &mut MatMut<T>,
    accumulate: bool,
) {
    small_gemm_body(a, b, c, accumulate)
}

/// Loop-order GEMM for small products, picking the order whose inner loop is
/// contiguous so the compiler vectorizes it.
#[inline(always)]
fn small_gemm_body<T: Element>(a: &Mat<T>, b: &Mat<T>, c: &mut MatMut<T>, accumulate: bool) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if b.cs == 1 && c.cs == 1 && c.rs >= n {
        // row-major: c[i, :] += a[i, kk] * b[kk, :]. Blocks of up to 4 rows × 16 columns
        // stay in registers for the whole k loop (each element still sums its products
        // in kk order, the same bits as one row at a time).
        let mut i = 0;
        while i + 4 <= m {
            row_major_rows::<T, 4>(a, b, c, i, accumulate);
            i += 4;
        }
        for i in i..m {
            row_major_rows::<T, 1>(a, b, c, i, accumulate);
        }
        return;
    }
    if !accumulate {
        // (0 + x is x: the paths below add into zeros)
        for i in 0..m {
            if c.cs == 1 {
                c.data[i * c.rs..i * c.rs + n].fill(T::zero());
            } else {
                for j in 0..n {
                    c.data[i * c.rs + j * c.cs] = T::zero();
                }
            }
        }
    }
    if a.rs == 1 && c.rs == 1 {
        // column-major: c[:, j] += a[:, kk] * b[kk, j]
        for j in 0..n {
            let ccol = &mut c.data[j * c.cs..j * c.cs + m];
            for kk in 0..k {
                let bkj = b.data[kk * b.rs + j * b.cs];
                let acol = &a.data[kk * a.cs..kk * a.cs + m];
                for (y, &x) in ccol.iter_mut().zip(acol) {
                    *y += x * bkj;
                }
            }
        }
    } else if a.cs == 1 && b.rs == 1 {
        // both operands contiguous along k (e.g. dX = dY·Wᵀ): dot products
        for i in 0..m {
            let arow = &a.data[i * a.rs..i * a.rs + k];
            let mut j = 0;
            // four columns at a time share the loads of `arow`
            while j + 4 <= n {
                let col = |q: usize| &b.data[(j + q) * b.cs..(j + q) * b.cs + k];
                let d = dot4(arow, [col(0), col(1), col(2), col(3)]);
                for (q, v) in d.into_iter().enumerate() {
                    c.data[i * c.rs + (j + q) * c.cs] += v;
                }
                j += 4;
            }
            for j in j..n {
                let bcol = &b.data[j * b.cs..j * b.cs + k];
                c.data[i * c.rs + j * c.cs] += dot(arow, bcol);
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut s = T::zero();
                for kk in 0..k {
                    s += a.data[i * a.rs + kk * a.cs] * b.data[kk * b.rs + j * b.cs];
                }
                c.data[i * c.rs + j * c.cs] += s;
            }
        }
    }
}

/// Rows `i..i + R` of a row-major product, in column blocks of 16, 8, 4 and 1.
#[inline(always)]
fn row_major_rows<T: Element, const R: usize>(
    a: &Mat<T>,
    b: &Mat<T>,
    c: &mut MatMut<T>,
    i: usize,
    acc: bool,
) {
    let n = c.cols;
    let mut j = 0;
    while j + 16 <= n {
        row_major_block::<T, R, 16>(a, b, c, i, j, acc);
        j += 16;
    }
    if j + 8 <= n {
        row_major_block::<T, R, 8>(a, b, c, i, j, acc);
        j += 8;
    }
    if j + 4 <= n {
        row_major_block::<T, R, 4>(a, b, c, i, j, acc);
        j += 4;
    }
    while j < n {
        row_major_block::<T, R, 1>(a, b, c, i, j, acc);
        j += 1;
    }
}

/// `c[i..i+R, j..j+W] (+)= a[i..i+R, :] · b[:, j..j+W]` with the R×W block held in
/// registers across the k loop (starting from zeros unless `accumulate`).
#[inline(always)]
fn row_major_block<T: Element, const R: usize, const W: usize>(
    a: &Mat<T>,
    b: &Mat<T>,
    c: &mut MatMut<T>,
    i: usize,
    j: usize,
    accumulate: bool,
) {
    let k = a.cols;
    let mut acc = [[T::zero(); W]; R];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            let o = (i + r) * c.rs + j;
            row.copy_from_slice(&c.data[o..o + W]);
        }
    }
    for kk in 0..k {
        let o = kk * b.rs + j;
        let brow = &b.data[o..o + W];
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a.data[(i + r) * a.rs + kk * a.cs];
            for l in 0..W {
                row[l] += av * brow[l];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let o = (i + r) * c.rs + j;
        c.data[o..o + W].copy_from_slice(row);
    }
}

/// Four dot products of `x` with `ys`, each in eight partial sums summed as `dot` does
/// (the same bits as four `dot` calls).
#[inline(always)]
fn dot4<T: Element>(x: &[T], ys: [&[T]; 4]) -> [T; 4] {
    let mut acc = [[T::zero(); 8]; 4];
    let chunks = x.len() / 8;
    for ch in 0..chunks {
        let a = &x[ch * 8..ch * 8 + 8];
        for q in 0..4 {
            let b = &ys[q][ch * 8..ch * 8 + 8];
            for l in 0..8 {
                acc[q][l] += a[l] * b[l];
            }
        }
    }
    let mut out = [T::zero(); 4];
    for q in 0..4 {
        let a = &acc[q];
        let mut s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        for e in chunks * 8..x.len() {
            s += x[e] * ys[q][e];
        }
        out[q] = s;
    }
    out
}

/// A dot product in eight independent partial sums, so it vectorizes.
#[inline(always)]
fn dot<T: Element>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in xr.iter().zip(yr) {
        s += *a * *b;
    }
    s
}

/// `c = a·b` (or `c += a·b`) for a right operand stored contiguous along k (`b.rs ==
/// 1`, e.g. `dY·Wᵀ`), given also as `bt`: b copied row-major (k rows of `np` ≥ n
/// columns, `np` a multiple of 16, zeros past n). Small products then sum every
/// element exactly as `gemm` does (`dot`'s eight partial sums over k), vectorized
/// across columns instead of along k, which avoids a horizontal reduction and a
/// scalar tail per element. Larger ones go to `gemm`. Same values as `gemm(a, b, c)`.
pub fn gemm_with_transposed<T: Element>(
    a: &Mat<T>,
    b: &Mat<T>,
    bt: &[T],
    np: usize,
    c: &mut MatMut<T>,
    accumulate: bool,
    par: Par,
) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    let dot_path = a.cs == 1 && b.rs == 1 && !(b.cs == 1 && c.cs == 1) && !(a.rs == 1 && c.rs == 1);
    let fits =
        np >= n && np.is_multiple_of(16) && bt.len() >= elems(&[k, np]) && c.cs == 1 && c.rs >= n;
    if m * n * k > SMALL_FLOPS || k == 0 || !dot_path || !fits || m == 0 || n == 0 {
        return gemm(a, b, c, accumulate, par);
    }
    assert!(a.max_index() < a.data.len(), "gemm lhs view out of bounds");
    assert!(
        span(m, c.rs, n) <= c.data.len(),
        "gemm dst view out of bounds"
    );
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{simd_level, SimdLevel};
        match simd_level() {
            // SAFETY: the level was detected on this CPU (simd_level never reports more).
            SimdLevel::Avx512 => return unsafe { dot_order_avx512(a, bt, np, c, accumulate) },
            SimdLevel::Avx2 => return unsafe { dot_order_avx2(a, bt, np, c, accumulate) },
            SimdLevel::Scalar => {}
        }
    }
    dot_order_body(a, bt, np, c, accumulate)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_order_avx2<T: Element>(
    a: &Mat<T>,
    bt: &[T],
    np: usize,
    c: &mut MatMut<T>,
    accumulate: bool,
) {
    dot_order_body(a, bt, np, c, accumulate)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_order_avx512<T: Element>(
    a: &Mat<T>,
    bt: &[T],
    np: usize,
    c: &mut MatMut<T>,
    accumulate: bool,
) {
    dot_order_body(a, bt, np, c, accumulate)
}

/// Row i, columns j..j+16: eight partial sums per column over k (l = kk mod 8), summed
/// as `dot` sums its eight, then the tail, each lane one output element.
#[inline(always)]
fn dot_order_body<T: Element>(
    a: &Mat<T>,
    bt: &[T],
    np: usize,
    c: &mut MatMut<T>,
    accumulate: bool,
) {
    const W: usize = 16;
    let (m, n, k) = (c.rows, c.cols, a.cols);
    let chunks = k / 8;
    for i in 0..m {
        let arow = &a.data[i * a.rs..i * a.rs + k];
        let mut j = 0;
        while j < n {
            let mut acc = [[T::zero(); W]; 8];
            for ch in 0..chunks {
                for (l, accl) in acc.iter_mut().enumerate() {
                    let kk = ch * 8 + l;
                    let av = arow[kk];
                    let brow = &bt[kk * np + j..kk * np + j + W];
                    for q in 0..W {
                        accl[q] += av * brow[q];
                    }
                }
            }
            let mut s = [T::zero(); W];
            for q in 0..W {
                s[q] = ((acc[0][q] + acc[4][q]) + (acc[1][q] + acc[5][q]))
                    + ((acc[2][q] + acc[6][q]) + (acc[3][q] + acc[7][q]));
            }
            for (kk, &av) in arow.iter().enumerate().skip(chunks * 8) {
                let brow = &bt[kk * np + j..kk * np + j + W];
                for q in 0..W {
                    s[q] += av * brow[q];
                }
            }
            let w = W.min(n - j);
            let crow = &mut c.data[i * c.rs + j..i * c.rs + j + w];
            if accumulate {
                for (y, &v) in crow.iter_mut().zip(&s[..w]) {
                    *y += v;
                }
            } else {
                crow.copy_from_slice(&s[..w]);
            }
            j += W;
        }
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`), on `par`'s threads when large.
pub fn gemm<T: Element>(a: &Mat<T>, b: &Mat<T>, c: &mut MatMut<T>, accumulate: bool, par: Par) {
    assert_eq!(a.cols, b.rows, "gemm inner dimensions");
    assert_eq!((a.rows, b.cols), (c.rows, c.cols), "gemm output dimensions");
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // The views must stay inside their slices: checked here so the unsafe call is sound.
    assert!(
        a.rows == 0 || a.cols == 0 || a.max_index() < a.data.len(),
        "gemm lhs view out of bounds"
    );
    assert!(
        b.rows == 0 || b.cols == 0 || b.max_index() < b.data.len(),
        "gemm rhs view out of bounds"
    );
    let cmax = span(
        c.rows,
        c.rs,
        (c.cols - 1).saturating_mul(c.cs).saturating_add(1),
    ) - 1;
    assert!(cmax < c.data.len(), "gemm dst view out of bounds");
    if a.cols == 0 {
        if !accumulate {
            for i in 0..c.rows {
                for j in 0..c.cols {
                    c.data[i * c.rs + j * c.cs] = T::zero();
                }
            }
        }
        return;
    }
    let work = a.rows * a.cols * b.cols;
    if work <= SMALL_FLOPS {
        small_gemm(a, b, c, accumulate);
        return;
    }
    // A few rows times a right operand stored along k (dY·Wᵀ in a recurrent step) ran
    // at less than half its one-thread speed when split (measured by `gemm_peak`:
    // 20×800·(200×800)ᵀ, 26 against 59 GFLOP/s).
    let few_rows_transposed = c.rows < 32 && b.rs == 1 && b.cs != 1;
    let par = if par.is_parallel() && work >= GEMM_FLOPS && !few_rows_transposed {
        gemm::Parallelism::Rayon(par.threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the kernel touches is (i*rs + j*cs) within the bounds
    // asserted above; `c` is uniquely borrowed and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            c.rows,
            c.cols,
            a.cols,
            c.data.as_mut_ptr(),
            c.cs as isize,
            c.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strides whose bound arithmetic wraps (2^63 + 2^63 = 0 mod 2^64) must fail the
    /// bound check, not pass it and let the kernel read outside the slice.
    #[test]
    #[should_panic(expected = "out of bounds")]
    fn wrapping_strides_fail_the_bound_check() {
        let data = [1.0f64; 4];
        let a = Mat {
            data: &data,
            rows: 2,
            cols: 2,
            rs: 1 << 63,
            cs: 1 << 63,
        };
        let b = Mat {
            data: &data,
            rows: 2,
            cols: 2,
            rs: 2,
            cs: 1,
        };
        let mut out = [0.0f64; 4];
        let mut c = MatMut {
            data: &mut out,
            rows: 2,
            cols: 2,
            rs: 2,
            cs: 1,
        };
        gemm(&a, &b, &mut c, false, Par::Seq);
    }

    #[test]
    fn spans_saturate() {
        assert_eq!(span(0, 5, 3), 0);
        assert_eq!(span(3, 4, 2), 10);
        assert_eq!(span(2, usize::MAX, 1), usize::MAX);
        assert_eq!(elems(&[1 << 40, 1 << 40]), usize::MAX);
        assert_eq!(elems(&[3, 4]), 12);
    }

    fn naive(a: &Mat<f64>, b: &Mat<f64>, i: usize, j: usize) -> f64 {
        (0..a.cols)
            .map(|k| a.data[i * a.rs + k * a.cs] * b.data[k * b.rs + j * b.cs])
            .sum()
    }

    #[test]
    fn small_and_large_paths_agree_for_every_layout() {
        for &(m, n, k) in &[(3, 4, 5), (1, 7, 3), (6, 5, 21), (40, 50, 30)] {
            let a: Vec<f64> = (0..m * k).map(|x| ((x * 7 % 13) as f64) - 6.0).collect();
            let b: Vec<f64> = (0..k * n).map(|x| ((x * 5 % 11) as f64) * 0.5).collect();
            for (ta, tb, tc) in [
                (false, false, false),
                (true, false, false),
                (false, true, true),
                (true, true, false),
            ] {
                let am = if ta {
                    Mat {
                        data: &a,
                        rows: k,
                        cols: m,
                        rs: m,
                        cs: 1,
                    }
                    .t()
                } else {
                    Mat {
                        data: &a,
                        rows: m,
                        cols: k,
                        rs: k,
                        cs: 1,
                    }
                };
                let bm = if tb {
                    Mat {
                        data: &b,
                        rows: n,
                        cols: k,
                        rs: k,
                        cs: 1,
                    }
                    .t()
                } else {
                    Mat {
                        data: &b,
                        rows: k,
                        cols: n,
                        rs: n,
                        cs: 1,
                    }
                };
                let mut c = vec![1.0; m * n];
                let (rs, cs) = if tc { (1, m) } else { (n, 1) };
                gemm(
                    &am,
                    &bm,
                    &mut MatMut {
                        data: &mut c,
                        rows: m,
                        cols: n,
                        rs,
                        cs,
                    },
                    true,
                    Par::Seq,
                );
                for i in 0..m {
                    for j in 0..n {
                        assert_eq!(
                            c[i * rs + j * cs],
                            1.0 + naive(&am, &bm, i, j),
                            "{m}x{n}x{k} {ta}{tb}{tc}"
                        );
                    }
                }
            }
        }
    }
    /// The pre-transposed path gives exactly gemm's bits (f32: the summation order
    /// matters), for shapes with k tails, n not a multiple of 16, and both modes.
    #[test]
    fn pretransposed_dot_order_equals_gemm_bit_for_bit() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 15, 60),
            (5, 17, 13),
            (7, 4, 8),
            (2, 33, 9),
            (40, 15, 60),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|x| ((x * 7 % 13) as f32) * 0.37 - 2.1)
                .collect();
            // w is n × k row-major; b = wᵀ (k × n) is contiguous along k
            let w: Vec<f32> = (0..n * k)
                .map(|x| ((x * 5 % 11) as f32) * 0.29 - 1.3)
                .collect();
            let am = Mat {
                data: &a,
                rows: m,
                cols: k,
                rs: k,
                cs: 1,
            };
            let bm = Mat {
                data: &w,
                rows: n,
                cols: k,
                rs: k,
                cs: 1,
            }
            .t();
            let np = n.div_ceil(16) * 16;
            let mut bt = vec![0.0f32; k * np];
            for j in 0..n {
                for kk in 0..k {
                    bt[kk * np + j] = w[j * k + kk];
                }
            }
            for accumulate in [false, true] {
                let init: Vec<f32> = (0..m * n).map(|x| x as f32 * 0.01).collect();
                let (mut c1, mut c2) = (init.clone(), init);
                fn mk(d: &mut [f32], m: usize, n: usize) -> MatMut<'_, f32> {
                    MatMut {
                        data: d,
                        rows: m,
                        cols: n,
                        rs: n,
                        cs: 1,
                    }
                }
                gemm(&am, &bm, &mut mk(&mut c1, m, n), accumulate, Par::Seq);
                gemm_with_transposed(
                    &am,
                    &bm,
                    &bt,
                    np,
                    &mut mk(&mut c2, m, n),
                    accumulate,
                    Par::Seq,
                );
                assert_eq!(c1, c2, "{m}x{n}x{k} accumulate={accumulate}");
            }
        }
    }

    #[test]
    fn strided_products_match_naive() {
        let a: Vec<f64> = (0..6).map(|x| x as f64).collect(); // 2×3
        let b: Vec<f64> = (0..12).map(|x| (x as f64) * 0.5).collect(); // 3×4
        let mut c = vec![1.0; 8];
        gemm(
            &Mat {
                data: &a,
                rows: 2,
                cols: 3,
                rs: 3,
                cs: 1,
            },
            &Mat {
                data: &b,
                rows: 3,
                cols: 4,
                rs: 4,
                cs: 1,
            },
            &mut MatMut {
                data: &mut c,
                rows: 2,
                cols: 4,
                rs: 4,
                cs: 1,
            },
            true,
            Par::Seq,
        );
        for i in 0..2 {
            for j in 0..4 {
                let s: f64 = (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum();
                assert_eq!(c[i * 4 + j], 1.0 + s);
            }
        }
        // transposed view: (bᵀ)(4×3) · aᵀ(3×2)
        let mut d = vec![0.0; 8];
        gemm(
            &Mat {
                data: &b,
                rows: 3,
                cols: 4,
                rs: 4,
                cs: 1,
            }
            .t(),
            &Mat {
                data: &a,
                rows: 2,
                cols: 3,
                rs: 3,
                cs: 1,
            }
            .t(),
            &mut MatMut {
                data: &mut d,
                rows: 4,
                cols: 2,
                rs: 2,
                cs: 1,
            },
            false,
            Par::Seq,
        );
        for i in 0..4 {
            for j in 0..2 {
                assert_eq!(d[i * 2 + j], c[j * 4 + i] - 1.0);
            }
        }
    }
}
