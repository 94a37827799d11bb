//! Convolution forward, backward-data and backward-filter on the CPU, for 1 to 3 spatial
//! axes, strides, padding, dilation and groups (`backend::conv` has the geometry).
//!
//! All three are one product per block of output positions, with the patches of the block
//! packed (`pack`) just before they are used and never the whole patch matrix:
//!
//! ```text
//!   forward          Y_g[:, block]  = W_g (Og × Cg·K)   · patches(X_g)[:, block] (Cg·K × q)
//!   backward data    dX_g          += unpack( W_gᵀ (Cg·K × Og) · dY_g[:, block] )
//!   backward filter  dW_gᵀ         += patches(X_g)[:, block] · dY_g[:, block]ᵀ (q × Og)
//! ```
//!
//! A pointwise convolution (1×1, stride 1, no padding) multiplies the image rows in place.
//! Other stride-1 convolutions on the register-blocked path (AVX-512 or AVX2) read their
//! patches in place from a zero-padded copy of the image instead of packing them
//! (`implicit`).
//! Work is split over `threads` as contiguous ranges of (image, group, block) items, each
//! thread with one scratch buffer for all its items; backward-filter sums per-thread
//! partial gradients in thread order, so results depend on `threads` but not on scheduling.

use super::implicit;
use super::micro::{product, Rows};
use super::pack::{pack, runs, unpack_add, Run};
use crate::backend::conv::ConvGeometry;
use crate::tensor::Element;

/// Output positions per block: the block's patches (`rows × q` values) stay in L2.
fn block_cols(rows: usize, fast: bool) -> usize {
    let budget = if fast { 64 << 10 } else { 256 << 10 };
    let q = (budget / rows.max(1)) / 32 * 32;
    q.clamp(32, if fast { 256 } else { 2048 })
}

/// `f(item_range)` over `0..items` split into `threads` contiguous ranges.
pub(super) fn split<F>(items: usize, threads: usize, f: F)
where
    F: Fn(std::ops::Range<usize>) + Sync,
{
    let t = threads.clamp(1, items.max(1));
    if t == 1 {
        return f(0..items);
    }
    rayon::scope(|s| {
        for i in 0..t {
            let r = items * i / t..items * (i + 1) / t;
            let f = &f;
            s.spawn(move |_| f(r));
        }
    });
}

/// A `*mut T` that threads may share because they write disjoint parts.
#[derive(Clone, Copy)]
pub(super) struct Shared<T>(*mut T, usize);
// SAFETY: only used to hand disjoint regions of one buffer to scoped threads.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}
impl<T> Shared<T> {
    pub(super) fn new(s: &mut [T]) -> Self {
        Shared(s.as_mut_ptr(), s.len())
    }
    /// # Safety
    /// No two live slices obtained from the same buffer may overlap.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.1, "shared slice out of bounds");
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

fn check<T>(g: &ConvGeometry, n: usize, x: &[T], w: &[T], y: &[T]) {
    assert!(g.check().is_ok(), "bad convolution geometry {g:?}");
    assert_eq!(x.len(), n * g.in_size(), "convolution input size");
    assert_eq!(w.len(), g.filter_size(), "convolution filter size");
    assert_eq!(y.len(), n * g.out_size(), "convolution output size");
}

/// `y (+)= conv(x, w)` for `n` images.
pub fn conv_forward<T: Element>(
    g: &ConvGeometry,
    n: usize,
    x: &[T],
    w: &[T],
    y: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    check(g, n, x, w, y);
    if implicit::applies::<T>(g, n, threads) {
        return implicit::forward(g, n, x, w, y, accumulate, threads);
    }
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let rows = cg * k;
    let pointwise = g.is_pointwise();
    let q = block_cols(rows, super::micro::fast::<T>());
    let blocks = pout.div_ceil(q);
    let per_image = g.groups * blocks;
    let a3 = g.axes3();
    let ys = Shared::new(y);
    split(n * per_image, threads, |range| {
        let mut col = if pointwise {
            Vec::new()
        } else {
            vec![T::zero(); rows * q]
        };
        let mut rs: Vec<Run> = Vec::new();
        for item in range {
            let (img, rest) = (item / per_image, item % per_image);
            let (grp, blk) = (rest / blocks, rest % blocks);
            let p0 = blk * q;
            let cnt = q.min(pout - p0);
            let xg = &x[img * g.in_size() + grp * cg * pin..][..cg * pin];
            let b = if pointwise {
                Rows::new(&xg[p0..], rows, cnt, pin)
            } else {
                runs(&a3, p0, cnt, &mut rs);
                pack(&g.axes, xg, cg, &rs, &mut col, cnt);
                Rows::new(&col, rows, cnt, cnt)
            };
            let a = Rows::new(&w[grp * og * rows..], og, rows, rows);
            // SAFETY: each item writes its own group's rows of its own image's block.
            let yo = unsafe {
                ys.slice(
                    img * g.out_size() + grp * og * pout + p0,
                    (og - 1) * pout + cnt,
                )
            };
            product(a, b, yo, pout, accumulate);
        }
    });
}

/// `wt[g] = W_gᵀ`: `(Cg·K) × Og` per group.
fn transpose_filters<T: Element>(g: &ConvGeometry, w: &[T]) -> Vec<T> {
    let (og, rows) = (g.og(), g.cg() * g.kernel_size());
    let mut wt = vec![T::zero(); w.len()];
    for grp in 0..g.groups {
        let src = &w[grp * og * rows..(grp + 1) * og * rows];
        let dst = &mut wt[grp * og * rows..(grp + 1) * og * rows];
        for o in 0..og {
            for r in 0..rows {
                dst[r * og + o] = src[o * rows + r];
            }
        }
    }
    wt
}

/// `dx (+)= ∂conv/∂x` given `dy`, for `n` images.
pub fn conv_backward_data<T: Element>(
    g: &ConvGeometry,
    n: usize,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    check(g, n, dx, w, dy);
    if implicit::applies_backward_data::<T>(g, n, threads) {
        return implicit::backward_data(g, n, dy, w, dx, accumulate, threads);
    }
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let rows = cg * k;
    let pointwise = g.is_pointwise();
    let q = block_cols(rows, super::micro::fast::<T>());
    let wt = transpose_filters(g, w);
    let a3 = g.axes3();
    let dxs = Shared::new(dx);
    // items: (image, group); groups write disjoint channels of an image
    split(n * g.groups, threads, |range| {
        let mut col = if pointwise {
            Vec::new()
        } else {
            vec![T::zero(); rows * q]
        };
        let mut rs: Vec<Run> = Vec::new();
        for item in range {
            let (img, grp) = (item / g.groups, item % g.groups);
            // SAFETY: this item alone writes these channels of this image.
            let dxg = unsafe { dxs.slice(img * g.in_size() + grp * cg * pin, cg * pin) };
            if !accumulate {
                dxg.fill(T::zero());
            }
            let dyg = &dy[img * g.out_size() + grp * og * pout..][..og * pout];
            let a = Rows::new(&wt[grp * og * rows..], rows, og, og);
            for p0 in (0..pout).step_by(q) {
                let cnt = q.min(pout - p0);
                let b = Rows::new(&dyg[p0..], og, cnt, pout);
                if pointwise {
                    product(a, b, &mut dxg[p0..], pin, true);
                } else {
                    product(a, b, &mut col, cnt, false);
                    runs(&a3, p0, cnt, &mut rs);
                    unpack_add(&g.axes, dxg, cg, &rs, &col, cnt);
                }
            }
        }
    });
}

/// `dw (+)= ∂conv/∂w` given `dy`, summed over `n` images.
pub fn conv_backward_filter<T: Element>(
    g: &ConvGeometry,
    n: usize,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    check(g, n, x, dw, dy);
    let fsize = g.filter_size();
    if implicit::applies::<T>(g, n, threads) {
        let items = n * g.groups;
        let t = threads.clamp(1, items.max(1));
        let mut partial = vec![T::zero(); t * fsize];
        let ps = Shared::new(&mut partial);
        split(t, t, |threads_range| {
            for ti in threads_range {
                // SAFETY: thread ti alone writes partial ti.
                let acc = unsafe { ps.slice(ti * fsize, fsize) };
                let range = items * ti / t..items * (ti + 1) / t;
                implicit::filter_partial(g, (x, dy), range, acc);
            }
        });
        return finish_filter(g, &mut partial, dw, accumulate);
    }
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let rows = cg * k;
    let pointwise = g.is_pointwise();
    let q = block_cols(rows.max(og), super::micro::fast::<T>());
    let blocks = pout.div_ceil(q);
    let per_image = g.groups * blocks;
    let a3 = g.axes3();
    let items = n * per_image;
    let t = threads.clamp(1, items.max(1));
    // per thread: Σ dW_gᵀ, (Cg·K × Og) per group
    let mut partial = vec![T::zero(); t * fsize];
    let ps = Shared::new(&mut partial);
    split(t, t, |threads_range| {
        for ti in threads_range {
            // SAFETY: thread ti alone writes partial ti.
            let acc = unsafe { ps.slice(ti * fsize, fsize) };
            let mut col = if pointwise {
                Vec::new()
            } else {
                vec![T::zero(); rows * q]
            };
            let mut dyt = vec![T::zero(); q * og];
            let mut rs: Vec<Run> = Vec::new();
            for item in items * ti / t..items * (ti + 1) / t {
                let (img, rest) = (item / per_image, item % per_image);
                let (grp, blk) = (rest / blocks, rest % blocks);
                let p0 = blk * q;
                let cnt = q.min(pout - p0);
                let xg = &x[img * g.in_size() + grp * cg * pin..][..cg * pin];
                let dyg = &dy[img * g.out_size() + grp * og * pout..][..og * pout];
                for o in 0..og {
                    for (i, v) in dyg[o * pout + p0..o * pout + p0 + cnt].iter().enumerate() {
                        dyt[i * og + o] = *v;
                    }
                }
                let a = if pointwise {
                    Rows::new(&xg[p0..], rows, cnt, pin)
                } else {
                    runs(&a3, p0, cnt, &mut rs);
                    pack(&g.axes, xg, cg, &rs, &mut col, cnt);
                    Rows::new(&col, rows, cnt, cnt)
                };
                let b = Rows::new(&dyt, cnt, og, og);
                product(a, b, &mut acc[grp * og * rows..], og, true);
            }
        }
    });
    finish_filter(g, &mut partial, dw, accumulate);
}

/// `dw (+)= (Σ over threads of partial)ᵀ` per group: the threads' sums (`Cg·K × Og` per
/// group, one filter's size each) added in thread order, then transposed.
fn finish_filter<T: Element>(g: &ConvGeometry, partial: &mut [T], dw: &mut [T], accumulate: bool) {
    let (og, rows) = (g.og(), g.cg() * g.kernel_size());
    let (first, rest) = partial.split_at_mut(g.filter_size());
    for p in rest.chunks(g.filter_size()) {
        for (a, b) in first.iter_mut().zip(p) {
            *a += *b;
        }
    }
    for grp in 0..g.groups {
        let src = &first[grp * og * rows..(grp + 1) * og * rows];
        let dst = &mut dw[grp * og * rows..(grp + 1) * og * rows];
        for o in 0..og {
            for r in 0..rows {
                let v = src[r * og + o];
                if accumulate {
                    dst[o * rows + r] += v;
                } else {
                    dst[o * rows + r] = v;
                }
            }
        }
    }
}
