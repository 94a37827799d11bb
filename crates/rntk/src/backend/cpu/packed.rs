//! Products whose right operand is packed once and reused many times: a recurrent
//! step's `h_prev·H` and BPTT's `∂pre·Hᵀ` over every step of a time loop.
//!
//! The `gemm` crate packs its right operand on every call; for a step of a few dozen
//! rows against H (e.g. 300 × 1200, 1.4 MB) that repacking costs as much as the
//! product itself. Here the operand is packed once per time loop into column panels
//! and each step runs a register-blocked AVX-512 kernel over them, the panels split
//! between two threads when the step is large enough to pay for it. f32 on CPUs with
//! AVX-512F and FMA; elsewhere `packed_available` is false and callers use `gemm`.

use super::gemm::{elems, span, Mat, MatMut};
use super::par::{PACKED_MACS, PACK_ELEMS};
use crate::backend::Par;
use crate::tensor::Element;
use std::any::TypeId;

/// Columns per packed panel: two 16-lane vectors.
pub const PANEL: usize = 32;

/// Values a packed `k × n` right operand takes.
pub fn packed_len(k: usize, n: usize) -> usize {
    elems(&[k, n.div_ceil(PANEL), PANEL])
}

/// Whether `packed_gemm` runs for `T` on this CPU.
pub fn packed_available<T: Element>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{simd_level, SimdLevel};
        TypeId::of::<T>() == TypeId::of::<f32>()
            && simd_level() == SimdLevel::Avx512
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = TypeId::of::<T>();
        false
    }
}

/// `b` (`k × n`, any strides) into `dst` as column panels: panel `p` holds columns
/// `p·PANEL ..` of every row, row after row, each row `PANEL` values (zeros past `n`).
pub fn pack_rhs<T: Element>(b: &Mat<T>, dst: &mut [T]) {
    let (k, n) = (b.rows, b.cols);
    assert!(dst.len() >= packed_len(k, n), "packed operand too short");
    for p in 0..n.div_ceil(PANEL) {
        let panel = &mut dst[p * k * PANEL..(p + 1) * k * PANEL];
        let w = PANEL.min(n - p * PANEL);
        // read along whichever of b's axes is contiguous
        if b.cs == 1 {
            for kk in 0..k {
                let row = &mut panel[kk * PANEL..(kk + 1) * PANEL];
                let o = kk * b.rs + p * PANEL;
                if w == PANEL {
                    // (a fixed length: inline vector moves, not a memmove call per row)
                    let src: &[T; PANEL] = b.data[o..o + PANEL].try_into().expect("a panel row");
                    row.copy_from_slice(src);
                } else {
                    row[..w].copy_from_slice(&b.data[o..o + w]);
                    row[w..].iter_mut().for_each(|v| *v = T::zero());
                }
            }
        } else if b.rs == 1 {
            // a transposed view (Hᵀ): 64-row tiles, so the strided writes stay in L1
            if w < PANEL {
                panel.iter_mut().for_each(|v| *v = T::zero());
            }
            for k0 in (0..k).step_by(64) {
                let k1 = (k0 + 64).min(k);
                for q in 0..w {
                    let o = (p * PANEL + q) * b.cs;
                    for (kk, &v) in (k0..k1).zip(&b.data[o + k0..o + k1]) {
                        panel[kk * PANEL + q] = v;
                    }
                }
            }
        } else {
            for kk in 0..k {
                let row = &mut panel[kk * PANEL..(kk + 1) * PANEL];
                for (q, v) in row.iter_mut().enumerate() {
                    *v = if q < w {
                        b.data[kk * b.rs + (p * PANEL + q) * b.cs]
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// `pack_rhs`, the panels split between two threads when the operand is large.
pub fn pack_rhs_par<T: Element>(b: &Mat<T>, dst: &mut [T], par: Par) {
    let (k, n) = (b.rows, b.cols);
    let panels = n.div_ceil(PANEL);
    if k * n < PACK_ELEMS || panels < 2 || !par.is_parallel() {
        return pack_rhs(b, dst);
    }
    let left = panels / 2 * PANEL;
    assert!(dst.len() >= packed_len(k, n), "packed operand too short");
    let (lo, hi) = dst.split_at_mut(packed_len(k, left));
    let bl = Mat { cols: left, ..*b };
    let br = Mat {
        data: &b.data[left * b.cs..],
        cols: n - left,
        ..*b
    };
    rayon::join(|| pack_rhs(&bl, lo), || pack_rhs(&br, hi));
}

/// `c = init + a·b` (`init` absent: `c = a·b`) for `b` packed by `pack_rhs` from a
/// `a.cols × c.cols` matrix. `a`, `init` and `c` must have contiguous rows (`cs == 1`).
/// Returns false, touching nothing, where `packed_available::<T>()` is false.
pub fn packed_gemm<T: Element>(
    a: &Mat<T>,
    bp: &[T],
    init: Option<&Mat<T>>,
    c: &mut MatMut<T>,
    par: Par,
) -> bool {
    if !packed_available::<T>() {
        return false;
    }
    let (m, k, n) = (c.rows, a.cols, c.cols);
    assert_eq!(a.rows, m, "packed gemm rows");
    assert!(a.cs == 1 && c.cs == 1, "packed gemm needs contiguous rows");
    assert!(bp.len() >= packed_len(k, n), "packed operand too short");
    if m == 0 || n == 0 {
        return true;
    }
    assert!(
        span(m, a.rs, k) <= a.data.len() && a.rs >= k,
        "packed gemm lhs out of bounds"
    );
    assert!(
        span(m, c.rs, n) <= c.data.len() && c.rs >= n,
        "packed gemm dst out of bounds"
    );
    let init = init.map(|i| {
        assert!(
            i.cs == 1 && i.rows == m && i.cols == n && i.rs >= n,
            "packed gemm init shape"
        );
        assert!(
            span(m, i.rs, n) <= i.data.len(),
            "packed gemm init out of bounds"
        );
        (i.data.as_ptr().cast::<f32>(), i.rs)
    });
    let job = Job {
        a: a.data.as_ptr().cast::<f32>(),
        ars: a.rs,
        m,
        k,
        bp: bp.as_ptr().cast::<f32>(),
        n,
        init: init.map_or(std::ptr::null(), |i| i.0),
        ldi: init.map_or(0, |i| i.1),
        c: c.data.as_mut_ptr().cast::<f32>(),
        ldc: c.rs,
    };
    run_job(&job, m * k * n, par);
    true
}

/// Rows of `k` per pass over `c`: a panel's slice of b (KC × 32) stays in L1/L2.
const KC: usize = 512;
/// Rows of `a` per block: a block's slice of a (MC × KC) stays in L2.
const MC: usize = 96;

/// Run `job` over all its panels, split between two threads when `macs` is large.
fn run_job(job: &Job, macs: usize, par: Par) {
    let panels = job.n.div_ceil(PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        if macs >= PACKED_MACS && panels >= 2 && par.is_parallel() {
            let half = panels / 2;
            rayon::join(
                // SAFETY: jobs are only built for f32 with AVX-512F + FMA detected,
                // from bounds-checked views; the halves write disjoint columns of `c`.
                || unsafe { job.run(0, half) },
                || unsafe { job.run(half, panels) },
            );
        } else {
            // SAFETY: as above, one thread.
            unsafe { job.run(0, panels) };
        }
    }
    let _ = (panels, macs, par);
}

/// One product's operands as raw parts, so the two halves can share them.
#[derive(Clone, Copy)]
struct Job {
    /// a(i, kk) at `a[i*ars + kk]`
    a: *const f32,
    ars: usize,
    m: usize,
    k: usize,
    /// packed b: panel p, row kk at `bp[p*k*PANEL + kk*PANEL]`
    bp: *const f32,
    n: usize,
    /// added to the product (null: nothing)
    init: *const f32,
    ldi: usize,
    c: *mut f32,
    ldc: usize,
}

// SAFETY: the pointers come from slices borrowed for the whole call; the threads read
// `a`, `bp`, `init` and write disjoint column ranges of `c`.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

#[cfg(target_arch = "x86_64")]
impl Job {
    /// Panels `p0..p1` of `c`, in passes of KC along k (the first from `init`, the
    /// others adding to `c`) and blocks of MC rows, each row block in register blocks
    /// of 8, 4, 2 and 1 rows.
    ///
    /// # Safety
    /// AVX-512F and FMA; the operands as checked by the caller.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn run(&self, p0: usize, p1: usize) {
        let passes = self.k.div_ceil(KC).max(1);
        for pass in 0..passes {
            let k0 = pass * KC;
            let kc = KC.min(self.k - k0);
            let (init, ldi) = if pass == 0 {
                (self.init, self.ldi)
            } else {
                (self.c as *const f32, self.ldc)
            };
            let mut i0 = 0;
            while i0 < self.m {
                let i1 = (i0 + MC).min(self.m);
                for p in p0..p1 {
                    let w = PANEL.min(self.n - p * PANEL);
                    let mask = |lo: usize| -> u16 {
                        let v = w.saturating_sub(lo).min(16);
                        if v == 16 {
                            u16::MAX
                        } else {
                            (1u16 << v) - 1
                        }
                    };
                    let t = Tile {
                        a: self.a.add(k0),
                        b: self.bp.add(p * self.k * PANEL + k0 * PANEL),
                        kc,
                        col: p * PANEL,
                        masks: (mask(0), mask(16)),
                        init,
                        ldi,
                    };
                    let mut i = i0;
                    while i + 8 <= i1 {
                        self.block::<8>(i, &t);
                        i += 8;
                    }
                    if i + 4 <= i1 {
                        self.block::<4>(i, &t);
                        i += 4;
                    }
                    if i + 2 <= i1 {
                        self.block::<2>(i, &t);
                        i += 2;
                    }
                    if i < i1 {
                        self.block::<1>(i, &t);
                    }
                }
                i0 = i1;
            }
        }
    }

    /// Rows `i..i + R` of a tile: an R × 32 block of `c` held in registers across k.
    #[inline(always)]
    unsafe fn block<const R: usize>(&self, i: usize, t: &Tile) {
        use std::arch::x86_64::*;
        let (m0, m1) = t.masks;
        let mut x0 = [_mm512_setzero_ps(); R];
        let mut x1 = [_mm512_setzero_ps(); R];
        if !t.init.is_null() {
            for r in 0..R {
                let s = t.init.add((i + r) * t.ldi + t.col);
                x0[r] = _mm512_maskz_loadu_ps(m0, s);
                x1[r] = _mm512_maskz_loadu_ps(m1, s.add(16));
            }
        }
        let a = t.a.add(i * self.ars);
        let ars = self.ars;
        for kk in 0..t.kc {
            let b0 = _mm512_loadu_ps(t.b.add(kk * PANEL));
            let b1 = _mm512_loadu_ps(t.b.add(kk * PANEL + 16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a.add(r * ars + kk));
                x0[r] = _mm512_fmadd_ps(av, b0, x0[r]);
                x1[r] = _mm512_fmadd_ps(av, b1, x1[r]);
            }
        }
        for r in 0..R {
            let d = self.c.add((i + r) * self.ldc + t.col);
            _mm512_mask_storeu_ps(d, m0, x0[r]);
            _mm512_mask_storeu_ps(d.add(16), m1, x1[r]);
        }
    }
}

/// One pass of one panel: where its slices of a and b start, its column masks and
/// what it adds to.
#[cfg(target_arch = "x86_64")]
struct Tile {
    a: *const f32,
    b: *const f32,
    kc: usize,
    col: usize,
    masks: (u16, u16),
    init: *const f32,
    ldi: usize,
}

/// Values the four gate blocks of a packed `n × 4n` recurrent weight take.
pub fn gates_packed_len(n: usize) -> usize {
    elems(&[4, packed_len(n, n)])
}

/// `H` (`n × 4n`, row-major, gates side by side) packed gate by gate (each gate's
/// `n × n` block by `pack_rhs`), so a unit range covers the same panels of every gate.
pub fn pack_gates<T: Element>(h: &[T], n: usize, dst: &mut [T], par: Par) {
    assert!(h.len() >= elems(&[4, n, n]), "recurrent weight too short");
    let l = packed_len(n, n);
    let pack = |g: usize, d: &mut [T]| {
        let block = Mat {
            data: &h[g * n..],
            rows: n,
            cols: n,
            rs: 4 * n,
            cs: 1,
        };
        pack_rhs(&block, d);
    };
    let (lo, hi) = dst[..4 * l].split_at_mut(2 * l);
    let (d0, d1) = lo.split_at_mut(l);
    let (d2, d3) = hi.split_at_mut(l);
    if 4 * n * n >= PACK_ELEMS && par.is_parallel() {
        rayon::join(|| (pack(0, d0), pack(1, d1)), || (pack(2, d2), pack(3, d3)));
    } else {
        for (g, d) in [d0, d1, d2, d3].into_iter().enumerate() {
            pack(g, d);
        }
    }
}

/// Whether a step of `rows` rows of an `n`-unit cell is split between two threads.
fn split_step(rows: usize, n: usize, par: Par) -> bool {
    rows * n * 4 * n >= PACKED_MACS && n > PANEL && par.is_parallel()
}

/// One forward step of a wide LSTM cell over `rows` rows: `pre = pre_x + h_prev·H`
/// (`hp` from `pack_gates`), then the cell (`[i, g, f, o, tanh c]` into `kept`,
/// `[h | c]` into `out`, from `cprev`, rows of n); then the first rows of h and c
/// (as many as `hnext` holds rows of n) into `hnext` and `cnext`: the next step's
/// previous state. Two threads each take half of the units: the four gates' columns
/// of those units, their cell, their part of the copy, with no wait in between.
/// Same bits as `packed_gemm` followed by the cell. False (nothing done) where
/// `packed_available::<T>()` is not.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_step_forward<T: Element>(
    (hprev, cprev): (&[T], &[T]),
    hp: &[T],
    pre_x: &[T],
    pre: &mut [T],
    kept: &mut [T],
    out: &mut [T],
    (hnext, cnext): (&mut [T], &mut [T]),
    (n, rows): (usize, usize),
    par: Par,
) -> bool {
    if !packed_available::<T>() {
        return false;
    }
    if rows == 0 || n == 0 {
        return true;
    }
    assert!(
        hprev.len() >= elems(&[rows, n]) && cprev.len() >= elems(&[rows, n]),
        "lstm step state"
    );
    assert!(hp.len() >= gates_packed_len(n), "lstm step packed weight");
    assert!(
        pre_x.len() >= elems(&[rows, 4, n]) && pre.len() >= elems(&[rows, 4, n]),
        "lstm step pre"
    );
    assert!(
        kept.len() >= elems(&[rows, 5, n]) && out.len() >= elems(&[rows, 2, n]),
        "lstm step out"
    );
    let to_next = hnext.len() / n;
    assert!(
        to_next <= rows && cnext.len() >= elems(&[to_next, n]),
        "lstm step next state"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let l = packed_len(n, n);
        let (hp, pre_x) = (hp.as_ptr().cast::<f32>(), pre_x.as_ptr().cast::<f32>());
        let (cp, pre) = (cprev.as_ptr().cast::<f32>(), pre.as_mut_ptr().cast::<f32>());
        let (kept, out) = (
            kept.as_mut_ptr().cast::<f32>(),
            out.as_mut_ptr().cast::<f32>(),
        );
        let (hn, cn) = (
            hnext.as_mut_ptr().cast::<f32>(),
            cnext.as_mut_ptr().cast::<f32>(),
        );
        let parts = Shared((
            hprev.as_ptr().cast::<f32>(),
            hp,
            pre_x,
            cp,
            pre,
            kept,
            out,
            hn,
            cn,
        ));
        let half = |q0: usize, q1: usize| {
            let (a, hp, pre_x, cp, pre, kept, out, hn, cn) = parts.get();
            let (j0, j1) = (q0 * PANEL, (q1 * PANEL).min(n));
            // SAFETY: f32 with AVX-512F + FMA (packed_available); lengths checked
            // above; this call writes only the columns of units j0..j1 (every gate) of
            // `pre`, `kept`, `out`, `hnext` and `cnext`, disjoint from the other half's.
            unsafe {
                for g in 0..4 {
                    let job = Job {
                        a,
                        ars: n,
                        m: rows,
                        k: n,
                        bp: hp.add(g * l),
                        n,
                        init: pre_x.add(g * n),
                        ldi: 4 * n,
                        c: pre.add(g * n),
                        ldc: 4 * n,
                    };
                    job.run(q0, q1);
                }
                super::simd::lstm_forward_units(pre, cp, n, kept, out, n, rows, (j0, j1));
                for r in 0..to_next {
                    for (src, dst) in [(out.add(r * 2 * n), hn), (out.add(r * 2 * n + n), cn)] {
                        std::ptr::copy_nonoverlapping(src.add(j0), dst.add(r * n + j0), j1 - j0);
                    }
                }
            }
        };
        let q = n.div_ceil(PANEL);
        if split_step(rows, n, par) {
            rayon::join(|| half(0, q / 2), || half(q / 2, q));
        } else {
            half(0, q);
        }
    }
    true
}

/// The cell part of one BPTT step of a wide LSTM over `rows` rows, two threads on
/// half the units each: `dh = gh (+ carry_h)`, `dc = gc (+ carry_c)` (the carries
/// only for the first `carried` rows; `gh`, `gc` the step's rows of `[∂h | ∂c]`,
/// rows of 2n), then the cell's backward writing `∂/∂pre` into `dpre` (no need to
/// zero it) and `∂/∂c_prev` into `carry_c`. Same values as those loops adding into a
/// zeroed `dpre` on one thread. False (nothing done) where `packed_available::<T>()`
/// is not.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_step_backward<T: Element>(
    kept: &[T],
    cprev: &[T],
    dout: &[T],
    carry_h: &[T],
    carry_c: &mut [T],
    dh: &mut [T],
    dc: &mut [T],
    dpre: &mut [T],
    (n, rows, carried): (usize, usize, usize),
    par: Par,
) -> bool {
    if !packed_available::<T>() {
        return false;
    }
    if rows == 0 || n == 0 {
        return true;
    }
    assert!(
        kept.len() >= elems(&[rows, 5, n]) && cprev.len() >= elems(&[rows, n]),
        "lstm step kept"
    );
    assert!(
        dout.len() >= elems(&[rows, 2, n]) && dpre.len() >= elems(&[rows, 4, n]),
        "lstm step grads"
    );
    assert!(
        carried <= rows && carry_h.len() >= elems(&[rows, n]) && carry_c.len() >= elems(&[rows, n])
    );
    assert!(
        dh.len() >= elems(&[rows, n]) && dc.len() >= elems(&[rows, n]),
        "lstm step scratch"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let parts = Shared((
            kept.as_ptr().cast::<f32>(),
            cprev.as_ptr().cast::<f32>(),
            dout.as_ptr().cast::<f32>(),
            carry_h.as_ptr().cast::<f32>(),
            carry_c.as_mut_ptr().cast::<f32>(),
            dh.as_mut_ptr().cast::<f32>(),
            dc.as_mut_ptr().cast::<f32>(),
            dpre.as_mut_ptr().cast::<f32>(),
        ));
        let strides = crate::backend::recurrent::LstmStrides {
            cprev: n,
            dh: n,
            dc: n,
            dcprev: n,
        };
        let part = |j0: usize, j1: usize| {
            let (kept, cprev, dout, carry_h, carry_c, dh, dc, dpre) = parts.get();
            // SAFETY: f32 with AVX-512F (packed_available); lengths checked above;
            // this call reads and writes only units j0..j1 of every row of `dh`, `dc`,
            // `carry_c` and (every gate) `dpre`, disjoint from the other part's.
            unsafe {
                let w = j1 - j0;
                for r in 0..rows {
                    // this part's units of row r: disjoint from the other part's
                    let o = r * n + j0;
                    let gh = std::slice::from_raw_parts(dout.add(r * 2 * n + j0), w);
                    let gc = std::slice::from_raw_parts(dout.add(r * 2 * n + n + j0), w);
                    let dhr = std::slice::from_raw_parts_mut(dh.add(o), w);
                    let dcr = std::slice::from_raw_parts_mut(dc.add(o), w);
                    let cc = std::slice::from_raw_parts_mut(carry_c.add(o), w);
                    if r < carried {
                        let ch = std::slice::from_raw_parts(carry_h.add(o), w);
                        for q in 0..w {
                            dhr[q] = gh[q] + ch[q];
                            dcr[q] = gc[q] + cc[q];
                        }
                    } else {
                        dhr.copy_from_slice(gh);
                        dcr.copy_from_slice(gc);
                    }
                    // ∂/∂c_prev goes straight into the carry (consumed above)
                    cc.fill(0.0);
                }
                super::simd::lstm_backward_units(
                    kept,
                    cprev,
                    dh,
                    dc,
                    dpre,
                    carry_c,
                    &strides,
                    n,
                    rows,
                    (j0, j1),
                    true,
                );
            }
        };
        if split_step(rows, n, par) {
            // a split on a 16-lane boundary
            let mid = (n / 2).div_ceil(16) * 16;
            rayon::join(|| part(0, mid.min(n)), || part(mid.min(n), n));
        } else {
            part(0, n);
        }
    }
    true
}

/// Raw parts shared by the two halves of a step (each touches its own columns).
#[derive(Clone, Copy)]
struct Shared<P>(P);
impl<P: Copy> Shared<P> {
    // (a method, so closures capture the whole wrapper, not its raw field)
    fn get(&self) -> P {
        self.0
    }
}
// SAFETY: only used as above: the halves write disjoint columns of the same rows.
unsafe impl<P> Send for Shared<P> {}
unsafe impl<P> Sync for Shared<P> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(data: &[f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Mat<'_, f32> {
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// Every shape class (row blocks of 8/4/2/1, partial panels, one and many panels,
    /// threaded or not), both layouts of b, with and without init, against f64 sums.
    #[test]
    fn packed_products_match_a_reference() {
        if !packed_available::<f32>() {
            return;
        }
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (15, 9, 33),
            (8, 300, 64),
            (66, 300, 1200),
            (13, 1200, 300),
            (7, 40, 31),
            // several row blocks and passes along k
            (130, 1100, 40),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|x| ((x * 7 % 13) as f32) * 0.1 - 0.6)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|x| ((x * 5 % 11) as f32) * 0.05 - 0.2)
                .collect();
            let init: Vec<f32> = (0..m * n).map(|x| (x % 3) as f32 - 1.0).collect();
            for transposed in [false, true] {
                // the same logical b, stored row-major or as its transpose
                let bt: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
                let bm = if transposed {
                    mat(&bt, n, k, k, 1).t()
                } else {
                    mat(&b, k, n, n, 1)
                };
                let mut bp = vec![f32::NAN; packed_len(k, n)];
                pack_rhs(&bm, &mut bp);
                for with_init in [false, true] {
                    let mut c = vec![f32::NAN; m * n];
                    let im = mat(&init, m, n, n, 1);
                    let ok = packed_gemm(
                        &mat(&a, m, k, k, 1),
                        &bp,
                        with_init.then_some(&im),
                        &mut MatMut {
                            data: &mut c,
                            rows: m,
                            cols: n,
                            rs: n,
                            cs: 1,
                        },
                        Par::Seq,
                    );
                    assert!(ok);
                    for i in 0..m {
                        for j in 0..n {
                            let mut s: f64 = if with_init {
                                init[i * n + j] as f64
                            } else {
                                0.0
                            };
                            let mut mag = s.abs();
                            for kk in 0..k {
                                let t = a[i * k + kk] as f64 * b[kk * n + j] as f64;
                                s += t;
                                mag += t.abs();
                            }
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - s).abs() <= 1e-6 * (1.0 + mag),
                                "({m},{k},{n}) [{i},{j}] {got} vs {s}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Split across threads or not, each element is summed the same way.
    #[test]
    fn threads_do_not_change_the_bits() {
        if !packed_available::<f32>() {
            return;
        }
        let (m, k, n) = (30, 300, 1200);
        let a: Vec<f32> = (0..m * k)
            .map(|x| ((x * 7 % 13) as f32) * 0.1 - 0.6)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|x| ((x * 5 % 11) as f32) * 0.03 - 0.2)
            .collect();
        let mut bp = vec![0.0; packed_len(k, n)];
        pack_rhs(&mat(&b, k, n, n, 1), &mut bp);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0.0; m * n];
            pool.install(|| {
                packed_gemm(
                    &mat(&a, m, k, k, 1),
                    &bp,
                    None,
                    &mut MatMut {
                        data: &mut c,
                        rows: m,
                        cols: n,
                        rs: n,
                        cs: 1,
                    },
                    Par::Rayon(std::num::NonZeroUsize::new(threads).unwrap()),
                )
            });
            c
        };
        assert_eq!(run(1), run(2));
    }

    /// The two-thread packings lay out exactly what one thread does.
    #[test]
    fn parallel_packing_equals_serial() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let n = 150;
        let h: Vec<f32> = (0..n * 4 * n).map(|x| (x % 97) as f32 - 48.0).collect();
        // Hᵀ as the BPTT step reads it
        let ht = mat(&h, n, 4 * n, 4 * n, 1).t();
        let mut serial = vec![0.0; packed_len(4 * n, n)];
        pack_rhs(&ht, &mut serial);
        let two = Par::Rayon(std::num::NonZeroUsize::new(2).unwrap());
        let mut par = vec![1.0; packed_len(4 * n, n)];
        pool.install(|| pack_rhs_par(&ht, &mut par, two));
        assert_eq!(serial, par);
        // gate by gate
        let l = packed_len(n, n);
        let mut serial = vec![0.0; gates_packed_len(n)];
        for g in 0..4 {
            pack_rhs(
                &mat(&h[g * n..], n, n, 4 * n, 1),
                &mut serial[g * l..(g + 1) * l],
            );
        }
        let mut par = vec![1.0; gates_packed_len(n)];
        pool.install(|| pack_gates(&h, n, &mut par, two));
        assert_eq!(serial, par);
    }

    #[test]
    fn other_types_are_declined() {
        assert!(!packed_available::<f64>());
        let a = [1.0f64; 4];
        let mut c = [7.0f64; 4];
        let am = Mat {
            data: &a[..],
            rows: 2,
            cols: 2,
            rs: 2,
            cs: 1,
        };
        let ok = packed_gemm(
            &am,
            &a,
            None,
            &mut MatMut {
                data: &mut c,
                rows: 2,
                cols: 2,
                rs: 2,
                cs: 1,
            },
            Par::Seq,
        );
        assert!(!ok && c == [7.0; 4]);
    }
}
