//! The product at the heart of every convolution kernel: `c (+)= a·b` for a block of
//! packed patches (or a block of an image used in place) against the filters. f32 on CPUs
//! with AVX-512F and FMA runs a register-blocked kernel that reads `b` where it lies (rows
//! at any stride: a packed block, or rows of an image or gradient used directly), 32
//! columns at a time with masked edges, so a block is multiplied straight from the cache it
//! was packed into; CPUs with AVX2 and FMA but not AVX-512 run the same kernel 16 columns
//! wide (`avx2`). Both sum every element over k in order with one fused multiply-add per
//! term, from zero or the old value, so they give the same bits. Elsewhere (f64, older
//! CPUs) the product goes to `backend::cpu::gemm`.

use crate::backend::cpu::gemm::{gemm, Mat, MatMut};
use crate::backend::Par;
use crate::tensor::Element;
use std::any::TypeId;

/// Columns per register block of the AVX-512 kernel: two 16-lane vectors.
pub(crate) const COLS: usize = 32;

/// Which register-blocked kernel runs for f32.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
}

/// The register-blocked kernel for `T` on this CPU (`None`: f64, or a CPU without FMA and
/// AVX2): AVX-512F + FMA, else AVX2 + FMA, as `simd_level` allows (`RNTK_SIMD` caps it).
pub(crate) fn isa<T: Element>() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::backend::cpu::simd::{simd_level, SimdLevel};
        if TypeId::of::<T>() != TypeId::of::<f32>() || !std::arch::is_x86_feature_detected!("fma") {
            return None;
        }
        match simd_level() {
            SimdLevel::Avx512 => Some(Isa::Avx512),
            SimdLevel::Avx2 => Some(Isa::Avx2),
            SimdLevel::Scalar => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = TypeId::of::<T>();
        None
    }
}

/// Whether a register-blocked kernel (AVX-512 or AVX2) runs the products for `T` here.
pub(crate) fn fast<T: Element>() -> bool {
    isa::<T>().is_some()
}

/// A row-major matrix view with contiguous rows: element (i, j) at `data[i*rs + j]`, or,
/// for a view with a row table (`gathered`), at `data[offs[i] + j]` (the rows of a patch
/// matrix read in place from a zero-padded image: `implicit`).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub offs: Option<&'a [usize]>,
}

impl<'a, T> Rows<'a, T> {
    pub fn new(data: &'a [T], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * rs + cols <= data.len(),
            "matrix view out of bounds"
        );
        Rows {
            data,
            rows,
            cols,
            rs,
            offs: None,
        }
    }

    /// Row `i` is `data[offs[i]..offs[i] + cols]`.
    pub fn gathered(data: &'a [T], offs: &'a [usize], cols: usize) -> Self {
        assert!(
            cols == 0 || offs.iter().all(|&o| o + cols <= data.len()),
            "gathered matrix view out of bounds"
        );
        Rows {
            data,
            rows: offs.len(),
            cols,
            rs: 0,
            offs: Some(offs),
        }
    }

    /// Where row `i` starts in `data`.
    #[inline(always)]
    pub fn start(&self, i: usize) -> usize {
        match self.offs {
            Some(o) => o[i],
            None => i * self.rs,
        }
    }
}

/// `c (+)= a·b`: `a` m × k, `b` k × n, `c` m × n (row stride `ldc`).
pub(crate) fn product<T: Element>(
    a: Rows<T>,
    b: Rows<T>,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "conv product inner dimensions");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * ldc + n <= c.len(),
        "conv product output out of bounds"
    );
    #[cfg(target_arch = "x86_64")]
    if let (Some(isa), true) = (isa::<T>(), k > 0) {
        // SAFETY: T is f32 (checked by `isa`), the kernel's features were detected, and
        // the views were bounds-checked above and in `Rows::new`.
        unsafe {
            let a = Rows {
                data: std::slice::from_raw_parts(a.data.as_ptr().cast::<f32>(), a.data.len()),
                rows: a.rows,
                cols: a.cols,
                rs: a.rs,
                offs: a.offs,
            };
            let b = Rows {
                data: std::slice::from_raw_parts(b.data.as_ptr().cast::<f32>(), b.data.len()),
                rows: b.rows,
                cols: b.cols,
                rs: b.rs,
                offs: b.offs,
            };
            let c = std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<f32>(), c.len());
            match isa {
                Isa::Avx512 => avx512::product(a, b, c, ldc, accumulate),
                Isa::Avx2 => avx2::product(a, b, c, ldc, accumulate),
            }
        }
        return;
    }
    if a.offs.is_some() || b.offs.is_some() {
        return plain(a, b, c, ldc, accumulate);
    }
    let am = Mat {
        data: a.data,
        rows: m,
        cols: k,
        rs: a.rs,
        cs: 1,
    };
    let bm = Mat {
        data: b.data,
        rows: k,
        cols: n,
        rs: b.rs,
        cs: 1,
    };
    let mut cm = MatMut {
        data: c,
        rows: m,
        cols: n,
        rs: ldc,
        cs: 1,
    };
    // One block of one thread: the caller splits the work (`threads`), not the product.
    gemm(&am, &bm, &mut cm, accumulate, Par::Seq);
}

/// `c (+)= a·b` by the plain loops (views with a row table off the AVX-512 path).
fn plain<T: Element>(a: Rows<T>, b: Rows<T>, c: &mut [T], ldc: usize, accumulate: bool) {
    for i in 0..a.rows {
        let ar = &a.data[a.start(i)..][..a.cols];
        let cr = &mut c[i * ldc..][..b.cols];
        if !accumulate {
            cr.fill(T::zero());
        }
        for (kk, &av) in ar.iter().enumerate() {
            let br = &b.data[b.start(kk)..][..b.cols];
            for (cv, &bv) in cr.iter_mut().zip(br) {
                *cv += av * bv;
            }
        }
    }
}

/// How a view's rows are found: a stride, or a table (bounds checked by `Rows`).
#[cfg(target_arch = "x86_64")]
mod addr {
    pub(super) trait Addr: Copy {
        fn at(self, i: usize) -> usize;
    }
    #[derive(Clone, Copy)]
    pub(super) struct Stride(pub usize);
    impl Addr for Stride {
        #[inline(always)]
        fn at(self, i: usize) -> usize {
            i * self.0
        }
    }
    #[derive(Clone, Copy)]
    pub(super) struct Table<'a>(pub &'a [usize]);
    impl Addr for Table<'_> {
        #[inline(always)]
        fn at(self, i: usize) -> usize {
            // SAFETY (of the callers): i < rows = the table's length.
            unsafe { *self.0.get_unchecked(i) }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::addr::{Addr, Stride, Table};
    use super::{Rows, COLS};
    use std::arch::x86_64::*;

    /// Rows of `a` per pass over a column block (their slice of `a` stays in L1).
    const MC: usize = 64;

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn product(
        a: Rows<f32>,
        b: Rows<f32>,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        match (a.offs, b.offs) {
            (None, None) => run(&a, &b, Stride(a.rs), Stride(b.rs), c, ldc, accumulate),
            (Some(t), None) => run(&a, &b, Table(t), Stride(b.rs), c, ldc, accumulate),
            (None, Some(t)) => run(&a, &b, Stride(a.rs), Table(t), c, ldc, accumulate),
            (Some(s), Some(t)) => run(&a, &b, Table(s), Table(t), c, ldc, accumulate),
        }
    }

    #[inline(always)]
    unsafe fn run<A: Addr, B: Addr>(
        a: &Rows<f32>,
        b: &Rows<f32>,
        aa: A,
        ba: B,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let (m, n) = (a.rows, b.cols);
        let cp = c.as_mut_ptr();
        let mut j = 0;
        while j < n {
            let w = COLS.min(n - j);
            let masks = (mask(w, 0), mask(w, 16));
            let mut i0 = 0;
            while i0 < m {
                let i1 = (i0 + MC).min(m);
                let mut i = i0;
                let at = |i| Tile { i, j, masks };
                while i + 8 <= i1 {
                    block::<8, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 8;
                }
                if i + 4 <= i1 {
                    block::<4, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 4;
                }
                if i + 2 <= i1 {
                    block::<2, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 2;
                }
                if i < i1 {
                    block::<1, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                }
                i0 = i1;
            }
            j += COLS;
        }
    }

    /// Rows `i..`, columns `j..j + 32` (masked to the view) of `c`.
    #[derive(Clone, Copy)]
    struct Tile {
        i: usize,
        j: usize,
        masks: (u16, u16),
    }

    fn mask(w: usize, lo: usize) -> u16 {
        let v = w.saturating_sub(lo).min(16);
        if v == 16 {
            u16::MAX
        } else {
            (1u16 << v) - 1
        }
    }

    /// Rows `i..i + R`, columns `j..j + 32` of `c`, held in registers across all of k.
    #[inline(always)]
    unsafe fn block<const R: usize, A: Addr, B: Addr>(
        a: &Rows<f32>,
        b: &Rows<f32>,
        (aa, ba): (A, B),
        c: *mut f32,
        ldc: usize,
        Tile {
            i,
            j,
            masks: (m0, m1),
        }: Tile,
        accumulate: bool,
    ) {
        let mut x0 = [_mm512_setzero_ps(); R];
        let mut x1 = [_mm512_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                let s = c.add((i + r) * ldc + j);
                x0[r] = _mm512_maskz_loadu_ps(m0, s);
                x1[r] = _mm512_maskz_loadu_ps(m1, s.wrapping_add(16));
            }
        }
        let mut ap = [a.data.as_ptr(); R];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = p.add(aa.at(i + r));
        }
        let bp = b.data.as_ptr().add(j);
        let full = m0 == u16::MAX && m1 == u16::MAX;
        for kk in 0..a.cols {
            let br = bp.add(ba.at(kk));
            // (masked loads never read past the view's last column)
            let (b0, b1) = if full {
                (_mm512_loadu_ps(br), _mm512_loadu_ps(br.add(16)))
            } else {
                (
                    _mm512_maskz_loadu_ps(m0, br),
                    _mm512_maskz_loadu_ps(m1, br.wrapping_add(16)),
                )
            };
            for r in 0..R {
                let av = _mm512_set1_ps(*ap[r].add(kk));
                x0[r] = _mm512_fmadd_ps(av, b0, x0[r]);
                x1[r] = _mm512_fmadd_ps(av, b1, x1[r]);
            }
        }
        for r in 0..R {
            let d = c.add((i + r) * ldc + j);
            _mm512_mask_storeu_ps(d, m0, x0[r]);
            _mm512_mask_storeu_ps(d.wrapping_add(16), m1, x1[r]);
        }
    }
}

/// The AVX2 + FMA kernel: as `avx512`, 16 columns (two 8-lane vectors) by up to 6 rows
/// held in 12 of the 16 registers, edges through `vmaskmov` loads and stores.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::addr::{Addr, Stride, Table};
    use super::Rows;
    use std::arch::x86_64::*;

    /// Columns per register block.
    const COLS: usize = 16;
    /// Rows of `a` per pass over a column block (their slice of `a` stays in L1).
    const MC: usize = 60;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product(
        a: Rows<f32>,
        b: Rows<f32>,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        match (a.offs, b.offs) {
            (None, None) => run(&a, &b, Stride(a.rs), Stride(b.rs), c, ldc, accumulate),
            (Some(t), None) => run(&a, &b, Table(t), Stride(b.rs), c, ldc, accumulate),
            (None, Some(t)) => run(&a, &b, Stride(a.rs), Table(t), c, ldc, accumulate),
            (Some(s), Some(t)) => run(&a, &b, Table(s), Table(t), c, ldc, accumulate),
        }
    }

    #[inline(always)]
    unsafe fn run<A: Addr, B: Addr>(
        a: &Rows<f32>,
        b: &Rows<f32>,
        aa: A,
        ba: B,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let (m, n) = (a.rows, b.cols);
        let cp = c.as_mut_ptr();
        let mut j = 0;
        while j < n {
            let w = COLS.min(n - j);
            let masks = (mask(w, 0), mask(w, 8), w == COLS);
            let mut i0 = 0;
            while i0 < m {
                let i1 = (i0 + MC).min(m);
                let mut i = i0;
                let at = |i| Tile { i, j, masks };
                // 6-row blocks, but 8 rows as 4 + 4 (a 2-row block's 4 chains of
                // fused multiply-adds would wait on their latency)
                while i + 6 <= i1 && i1 - i != 8 {
                    block::<6, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 6;
                }
                if i + 4 <= i1 {
                    block::<4, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 4;
                }
                if i + 4 <= i1 {
                    block::<4, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 4;
                }
                if i + 2 <= i1 {
                    block::<2, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                    i += 2;
                }
                if i < i1 {
                    block::<1, A, B>(a, b, (aa, ba), cp, ldc, at(i), accumulate);
                }
                i0 = i1;
            }
            j += COLS;
        }
    }

    /// Rows `i..`, columns `j..j + 16` of `c`; lane masks of the two halves, and whether
    /// all 16 columns lie in the view.
    #[derive(Clone, Copy)]
    struct Tile {
        i: usize,
        j: usize,
        masks: (__m256i, __m256i, bool),
    }

    /// Lanes `lo..w` of an 8-lane half set (all bits), the rest clear.
    #[inline(always)]
    unsafe fn mask(w: usize, lo: usize) -> __m256i {
        const ONES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        let v = w.saturating_sub(lo).min(8);
        _mm256_loadu_si256(ONES.as_ptr().add(8 - v).cast())
    }

    /// Rows `i..i + R`, columns `j..j + 16` of `c`, held in registers across all of k.
    #[inline(always)]
    unsafe fn block<const R: usize, A: Addr, B: Addr>(
        a: &Rows<f32>,
        b: &Rows<f32>,
        (aa, ba): (A, B),
        c: *mut f32,
        ldc: usize,
        Tile {
            i,
            j,
            masks: (m0, m1, full),
        }: Tile,
        accumulate: bool,
    ) {
        let mut x0 = [_mm256_setzero_ps(); R];
        let mut x1 = [_mm256_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                let s = c.add((i + r) * ldc + j);
                if full {
                    x0[r] = _mm256_loadu_ps(s);
                    x1[r] = _mm256_loadu_ps(s.add(8));
                } else {
                    x0[r] = _mm256_maskload_ps(s, m0);
                    x1[r] = _mm256_maskload_ps(s.wrapping_add(8), m1);
                }
            }
        }
        let mut ap = [a.data.as_ptr(); R];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = p.add(aa.at(i + r));
        }
        let bp = b.data.as_ptr().add(j);
        for kk in 0..a.cols {
            let br = bp.add(ba.at(kk));
            // (masked loads never read past the view's last column)
            let (b0, b1) = if full {
                (_mm256_loadu_ps(br), _mm256_loadu_ps(br.add(8)))
            } else {
                (
                    _mm256_maskload_ps(br, m0),
                    _mm256_maskload_ps(br.wrapping_add(8), m1),
                )
            };
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ap[r].add(kk));
                x0[r] = _mm256_fmadd_ps(av, b0, x0[r]);
                x1[r] = _mm256_fmadd_ps(av, b1, x1[r]);
            }
        }
        for r in 0..R {
            let d = c.add((i + r) * ldc + j);
            if full {
                _mm256_storeu_ps(d, x0[r]);
                _mm256_storeu_ps(d.add(8), x1[r]);
            } else {
                _mm256_maskstore_ps(d, m0, x0[r]);
                _mm256_maskstore_ps(d.wrapping_add(8), m1, x1[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: &[f64],
        b: &[f64],
        m: usize,
        k: usize,
        n: usize,
        ars: usize,
        brs: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|kk| a[i * ars + kk] * b[kk * brs + j]).sum();
            }
        }
        c
    }

    #[test]
    fn product_matches_naive_for_every_edge() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (8, 9, 32),
            (13, 17, 33),
            (21, 3, 70),
            (64, 40, 31),
        ] {
            let (ars, brs) = (k + 2, n + 5);
            let a64: Vec<f64> = (0..m * ars)
                .map(|i| ((i * 7 % 13) as f64 - 6.0) / 8.0)
                .collect();
            let b64: Vec<f64> = (0..k * brs)
                .map(|i| ((i * 5 % 11) as f64 - 5.0) / 4.0)
                .collect();
            let want = naive(&a64, &b64, m, k, n, ars, brs);
            let a32: Vec<f32> = a64.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b64.iter().map(|&v| v as f32).collect();
            for acc in [false, true] {
                let ldc = n + 3;
                let mut c = vec![1.0f32; m * ldc];
                product(
                    Rows::new(&a32, m, k, ars),
                    Rows::new(&b32, k, n, brs),
                    &mut c,
                    ldc,
                    acc,
                );
                for i in 0..m {
                    for j in 0..n {
                        let w = want[i * n + j] + if acc { 1.0 } else { 0.0 };
                        assert!(
                            (c[i * ldc + j] as f64 - w).abs() < 1e-4,
                            "{m}x{k}x{n} ({i},{j})"
                        );
                    }
                    // columns past n untouched
                    for j in n..ldc {
                        assert_eq!(c[i * ldc + j], 1.0);
                    }
                }
                let mut c64 = vec![1.0f64; m * ldc];
                product(
                    Rows::new(&a64, m, k, ars),
                    Rows::new(&b64, k, n, brs),
                    &mut c64,
                    ldc,
                    acc,
                );
                for i in 0..m {
                    for j in 0..n {
                        let w = want[i * n + j] + if acc { 1.0 } else { 0.0 };
                        assert!((c64[i * ldc + j] - w).abs() < 1e-12);
                    }
                }
                // the same product through row tables: rows stored in reverse order
                let rev = |v: &[f64], rows: usize, rs: usize| -> Vec<f64> {
                    (0..rows)
                        .rev()
                        .flat_map(|r| v[r * rs..(r + 1) * rs].to_vec())
                        .collect()
                };
                let (ar, br) = (rev(&a64, m, ars), rev(&b64, k, brs));
                let ao: Vec<usize> = (0..m).map(|i| (m - 1 - i) * ars).collect();
                let bo: Vec<usize> = (0..k).map(|kk| (k - 1 - kk) * brs).collect();
                let (ar32, br32) = (
                    ar.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                    br.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                );
                for (ta, tb) in [(true, false), (false, true), (true, true)] {
                    let mut c = vec![1.0f32; m * ldc];
                    let av = if ta {
                        Rows::gathered(&ar32[..], &ao, k)
                    } else {
                        Rows::new(&a32[..], m, k, ars)
                    };
                    let bv = if tb {
                        Rows::gathered(&br32[..], &bo, n)
                    } else {
                        Rows::new(&b32[..], k, n, brs)
                    };
                    product(av, bv, &mut c, ldc, acc);
                    let mut c64 = vec![1.0f64; m * ldc];
                    let av = if ta {
                        Rows::gathered(&ar[..], &ao, k)
                    } else {
                        Rows::new(&a64[..], m, k, ars)
                    };
                    let bv = if tb {
                        Rows::gathered(&br[..], &bo, n)
                    } else {
                        Rows::new(&b64[..], k, n, brs)
                    };
                    product(av, bv, &mut c64, ldc, acc);
                    for i in 0..m {
                        for j in 0..n {
                            let w = want[i * n + j] + if acc { 1.0 } else { 0.0 };
                            assert!((c[i * ldc + j] as f64 - w).abs() < 1e-4, "gathered f32");
                            assert!((c64[i * ldc + j] - w).abs() < 1e-12, "gathered f64");
                        }
                        for j in n..ldc {
                            assert_eq!(c[i * ldc + j], 1.0);
                        }
                    }
                }
            }
        }
    }

    /// A register-blocked kernel's entry point.
    #[cfg(target_arch = "x86_64")]
    type Kernel = unsafe fn(Rows<f32>, Rows<f32>, &mut [f32], usize, bool);

    /// Each register-blocked kernel this CPU runs equals the plain loop of one fused
    /// multiply-add per term in k order, bit for bit (so AVX-512 and AVX2 agree too), for
    /// strided and gathered views, every edge of the 6/4/2/1-row and masked-column blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn kernels_equal_fma_in_k_order_bit_for_bit() {
        let mut kernels: Vec<(&str, Kernel)> = Vec::new();
        if std::arch::is_x86_feature_detected!("fma") {
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(("avx512", avx512::product));
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(("avx2", avx2::product));
            }
        }
        if simd_uncapped() {
            assert_eq!(kernels.is_empty(), isa::<f32>().is_none());
        }
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 9),
            (8, 7, 24),
            (13, 17, 33),
            (14, 3, 16),
            (25, 3, 16),
            (61, 9, 40),
        ] {
            let (ars, brs, ldc) = (k + 1, n + 3, n + 2);
            let a: Vec<f32> = (0..m * ars)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.3)
                .collect();
            let b: Vec<f32> = (0..k * brs)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.1)
                .collect();
            let c0: Vec<f32> = (0..m * ldc).map(|i| (i % 7) as f32 * 0.37).collect();
            let offs: Vec<usize> = (0..k).map(|kk| (k - 1 - kk) * brs).collect();
            let brev: Vec<f32> = (0..k)
                .flat_map(|kk| b[(k - 1 - kk) * brs..][..brs].to_vec())
                .collect();
            for acc in [false, true] {
                let mut want = c0.clone();
                for i in 0..m {
                    for j in 0..n {
                        let mut s = if acc { c0[i * ldc + j] } else { 0.0 };
                        for kk in 0..k {
                            s = a[i * ars + kk].mul_add(b[kk * brs + j], s);
                        }
                        want[i * ldc + j] = s;
                    }
                }
                for &(name, f) in &kernels {
                    for gathered in [false, true] {
                        let bv = if gathered {
                            Rows::gathered(&brev, &offs, n)
                        } else {
                            Rows::new(&b, k, n, brs)
                        };
                        let mut c = c0.clone();
                        // SAFETY: the kernel's features were detected above; views in bounds.
                        unsafe { f(Rows::new(&a, m, k, ars), bv, &mut c, ldc, acc) };
                        let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{name} {m}x{k}x{n} acc={acc} gathered={gathered}");
                    }
                }
            }
        }
    }

    /// Whether `RNTK_SIMD` leaves the detected level alone (it may cap it to scalar).
    #[cfg(target_arch = "x86_64")]
    fn simd_uncapped() -> bool {
        !matches!(std::env::var("RNTK_SIMD").as_deref(), Ok("scalar"))
    }
}
