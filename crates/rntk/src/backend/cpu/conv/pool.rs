//! Max and average pooling, their gradients, and max unpooling on the CPU, with CNTK's
//! rules: a window skips cells outside the input; the maximum's gradient goes to the first
//! maximum of the window (row-major, last axis fastest); average pooling divides by the
//! cells inside the input or, with `include_pad`, by the window size; unpooling writes each
//! value at the first maximum of its window of the pooling input (later windows overwrite).
//!
//! Planes (channels × images) are independent; `threads` split them in contiguous ranges.

use crate::backend::conv::{ConvAxis, PoolGeometry, PoolKind};
use crate::tensor::Element;
use smallvec::{smallvec, SmallVec};

/// The in-range taps of output position `(o0, o1, o2)`, as flat input offsets.
#[inline]
fn window(a: &[ConvAxis; 3], o: [usize; 3], mut f: impl FnMut(usize)) {
    for j0 in 0..a[0].kernel {
        let i0 = a[0].at(o[0], j0);
        if i0 < 0 || i0 as usize >= a[0].input {
            continue;
        }
        for j1 in 0..a[1].kernel {
            let i1 = a[1].at(o[1], j1);
            if i1 < 0 || i1 as usize >= a[1].input {
                continue;
            }
            let row = (i0 as usize * a[1].input + i1 as usize) * a[2].input;
            let (lo, hi) = a[2].valid_outputs_taps(o[2]);
            for j2 in lo..hi {
                f(row + a[2].at(o[2], j2) as usize);
            }
        }
    }
}

impl ConvAxis {
    /// The taps `j` of output `o` that read inside the input: `lo..hi`.
    #[inline]
    fn valid_outputs_taps(&self, o: usize) -> (usize, usize) {
        // o·s + j·d − pad ∈ [0, input)
        let start = (o * self.stride) as isize - self.pad;
        let d = self.dilation as isize;
        let lo = if start >= 0 { 0 } else { (-start + d - 1) / d };
        let end = self.input as isize - start; // j·d < end
        let hi = if end <= 0 { 0 } else { (end + d - 1) / d };
        let lo = lo.min(self.kernel as isize) as usize;
        (lo, (hi.min(self.kernel as isize) as usize).max(lo))
    }
}

/// Output positions of a plane as `[o0, o1, o2]`.
fn positions(a: &[ConvAxis; 3]) -> impl Iterator<Item = [usize; 3]> {
    let (n0, n1, n2) = (a[0].output, a[1].output, a[2].output);
    (0..n0).flat_map(move |x| (0..n1).flat_map(move |y| (0..n2).map(move |z| [x, y, z])))
}

/// The first maximum of a window (`None`: no tap inside the input).
#[inline]
fn argmax<T: Element>(a: &[ConvAxis; 3], plane: &[T], o: [usize; 3]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    window(a, o, |i| {
        let v = plane[i];
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    });
    best.map(|b| b.0)
}

/// Whether every window of every output lies inside the input (no tap in the padding).
fn inside(a: &[ConvAxis; 3]) -> bool {
    a.iter().all(|x| {
        x.output == 0 || (x.pad <= 0 && x.at(x.output - 1, x.kernel - 1) < x.input as isize)
    })
}

/// The first maximum of each window of the output row `(o0, o1, ·)`, for a geometry whose
/// windows all lie [`inside`] the input: values into `bv` and, given `bi`, their offsets
/// (those of [`argmax`]: taps in row-major order, a later tap only when strictly greater).
/// Taps outermost, the row's positions innermost, with selects instead of branches, so
/// the inner loop runs at a fixed stride (`S`, or `a[2].stride` when `S` is 0).
#[inline(always)]
fn row_first_max<T: Element, const S: usize>(
    a: &[ConvAxis; 3],
    plane: &[T],
    (o0, o1): (usize, usize),
    bv: &mut [T],
    mut bi: Option<&mut [usize]>,
) {
    let (n1, n2, out2) = (a[1].input, a[2].input, a[2].output);
    let s = if S == 0 { a[2].stride } else { S };
    let (bv, mut first) = (&mut bv[..out2], true);
    for j0 in 0..a[0].kernel {
        for j1 in 0..a[1].kernel {
            let row = (a[0].at(o0, j0) as usize * n1 + a[1].at(o1, j1) as usize) * n2;
            for j2 in 0..a[2].kernel {
                let base = row + a[2].at(0, j2) as usize;
                let src = &plane[base..=base + (out2 - 1) * s];
                match bi.as_deref_mut() {
                    Some(bi) if first => {
                        for (o2, (b, i)) in bv.iter_mut().zip(&mut bi[..out2]).enumerate() {
                            (*b, *i) = (src[o2 * s], base + o2 * s);
                        }
                    }
                    None if first => {
                        for (o2, b) in bv.iter_mut().enumerate() {
                            *b = src[o2 * s];
                        }
                    }
                    Some(bi) => {
                        for (o2, (b, i)) in bv.iter_mut().zip(&mut bi[..out2]).enumerate() {
                            let v = src[o2 * s];
                            let gt = v > *b;
                            *b = if gt { v } else { *b };
                            *i = if gt { base + o2 * s } else { *i };
                        }
                    }
                    None => {
                        for (o2, b) in bv.iter_mut().enumerate() {
                            let v = src[o2 * s];
                            *b = if v > *b { v } else { *b };
                        }
                    }
                }
                first = false;
            }
        }
    }
}

/// [`row_first_max`] for every output row of a plane, `f(k, bv, bi)` after each (`k`:
/// the row's first output), with the stride specialized for 1, 2 and 3.
fn rows_first_max<T: Element>(
    a: &[ConvAxis; 3],
    plane: &[T],
    (bv, mut bi): (&mut [T], Option<&mut [usize]>),
    mut f: impl FnMut(usize, &[T], Option<&[usize]>),
) {
    let out2 = a[2].output;
    if out2 == 0 {
        return;
    }
    for o0 in 0..a[0].output {
        for o1 in 0..a[1].output {
            let o = (o0, o1);
            let b = bi.as_deref_mut();
            match a[2].stride {
                1 => row_first_max::<T, 1>(a, plane, o, bv, b),
                2 => row_first_max::<T, 2>(a, plane, o, bv, b),
                3 => row_first_max::<T, 3>(a, plane, o, bv, b),
                _ => row_first_max::<T, 0>(a, plane, o, bv, b),
            }
            let k = (o0 * a[1].output + o1) * out2;
            f(k, &bv[..out2], bi.as_deref().map(|b| &b[..out2]));
        }
    }
}

/// `f(k, position)` for the output positions of a plane, `k` counting from 0.
#[inline(always)]
fn each_position(a: &[ConvAxis; 3], mut f: impl FnMut(usize, [usize; 3])) {
    let mut k = 0;
    for x in 0..a[0].output {
        for y in 0..a[1].output {
            for z in 0..a[2].output {
                f(k, [x, y, z]);
                k += 1;
            }
        }
    }
}

fn for_planes<T: Send, U: Sync>(
    planes: usize,
    threads: usize,
    out: &mut [T],
    out_len: usize,
    inp: &[U],
    in_len: usize,
    f: impl Fn(&mut [T], &[U], usize) + Sync,
) {
    assert_eq!(out.len(), planes * out_len, "pooling buffer size");
    assert_eq!(inp.len(), planes * in_len, "pooling buffer size");
    let t = threads.clamp(1, planes.max(1));
    if t == 1 {
        for (p, o) in out.chunks_mut(out_len.max(1)).enumerate().take(planes) {
            f(o, &inp[p * in_len..(p + 1) * in_len], p);
        }
        return;
    }
    let per = planes.div_ceil(t);
    rayon::scope(|s| {
        for (ci, chunk) in out.chunks_mut(per * out_len.max(1)).enumerate() {
            let f = &f;
            s.spawn(move |_| {
                for (k, o) in chunk.chunks_mut(out_len.max(1)).enumerate() {
                    let p = ci * per + k;
                    f(o, &inp[p * in_len..(p + 1) * in_len], p);
                }
            });
        }
    });
}

/// The f32 view of a slice of `T` (callers check `T` is f32: `pool_simd::applies`).
///
/// # Safety
/// `T` is f32.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32<T>(s: &[T]) -> &[f32] {
    std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len())
}

/// # Safety
/// `T` is f32.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32_mut<T>(s: &mut [T]) -> &mut [f32] {
    std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len())
}

/// `y = pool(x)` over `n` images.
pub fn pool_forward<T: Element>(
    g: &PoolGeometry,
    kind: PoolKind,
    n: usize,
    x: &[T],
    y: &mut [T],
    threads: usize,
) {
    let a = g.axes3();
    let size: usize = g.axes.iter().map(|a| a.kernel).product();
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let fast = inside(&a);
    let simd = super::pool_simd::applies::<T>(pin);
    let win = super::pool_simd::Windows::new(&a);
    let out2 = a[2].output;
    for_planes(n * g.planes, threads, y, pout, x, pin, |yo, xi, _| {
        #[cfg(target_arch = "x86_64")]
        if let (PoolKind::Max, true, Some(isa)) = (kind, fast, simd) {
            // SAFETY: T is f32 and the CPU has `isa`'s features (`applies`).
            unsafe {
                let y = super::pool_simd::Pass::Forward(as_f32_mut(yo));
                return super::pool_simd::plane(isa, &win, as_f32(xi), y);
            }
        }
        if kind == PoolKind::Max && fast {
            let mut bv: SmallVec<[T; 64]> = smallvec![T::zero(); out2];
            return rows_first_max(&a, xi, (&mut bv, None), |k, v, _| {
                yo[k..k + out2].copy_from_slice(v)
            });
        }
        if kind == PoolKind::Max {
            return each_position(&a, |k, pos| {
                yo[k] = argmax(&a, xi, pos).map_or(T::zero(), |i| xi[i])
            });
        }
        for (o, pos) in yo.iter_mut().zip(positions(&a)) {
            *o = match kind {
                PoolKind::Max => argmax(&a, xi, pos).map_or(T::zero(), |i| xi[i]),
                PoolKind::Average { include_pad } => {
                    let (mut s, mut cnt) = (T::zero(), 0usize);
                    window(&a, pos, |i| {
                        s += xi[i];
                        cnt += 1;
                    });
                    let div = if include_pad { size } else { cnt };
                    if div == 0 {
                        T::zero()
                    } else {
                        s / T::from_f64(div as f64)
                    }
                }
            };
        }
    });
}

/// `dx (+)= ∂pool/∂x · dy` over `n` images (`x` is the pooling input).
#[allow(clippy::too_many_arguments)]
pub fn pool_backward<T: Element>(
    g: &PoolGeometry,
    kind: PoolKind,
    n: usize,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let a = g.axes3();
    let size: usize = g.axes.iter().map(|a| a.kernel).product();
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    assert_eq!(x.len(), dx.len(), "pooling gradient size");
    let fast = inside(&a);
    let simd = super::pool_simd::applies::<T>(pin);
    let win = super::pool_simd::Windows::new(&a);
    let out2 = a[2].output;
    // pair each plane's dx with its x and dy
    for_planes(n * g.planes, threads, dx, pin, dy, pout, |dxi, dyi, p| {
        if !accumulate {
            dxi.fill(T::zero());
        }
        let xi = &x[p * pin..(p + 1) * pin];
        #[cfg(target_arch = "x86_64")]
        if let (PoolKind::Max, true, Some(isa)) = (kind, fast, simd) {
            // SAFETY: T is f32 and the CPU has `isa`'s features (`applies`).
            unsafe {
                let g = super::pool_simd::Pass::Backward(as_f32(dyi), as_f32_mut(dxi));
                return super::pool_simd::plane(isa, &win, as_f32(xi), g);
            }
        }
        if kind == PoolKind::Max && fast {
            let mut bv: SmallVec<[T; 64]> = smallvec![T::zero(); out2];
            let mut bi: SmallVec<[usize; 64]> = smallvec![0; out2];
            return rows_first_max(&a, xi, (&mut bv, Some(&mut bi)), |k, _, bi| {
                for (&i, &d) in bi.unwrap_or_default().iter().zip(&dyi[k..k + out2]) {
                    dxi[i] += d;
                }
            });
        }
        if kind == PoolKind::Max {
            return each_position(&a, |k, pos| {
                if let Some(i) = argmax(&a, xi, pos) {
                    dxi[i] += dyi[k];
                }
            });
        }
        for (&d, pos) in dyi.iter().zip(positions(&a)) {
            match kind {
                PoolKind::Max => {
                    if let Some(i) = argmax(&a, xi, pos) {
                        dxi[i] += d;
                    }
                }
                PoolKind::Average { include_pad } => {
                    let mut cnt = 0usize;
                    if include_pad {
                        cnt = size;
                    } else {
                        window(&a, pos, |_| cnt += 1);
                    }
                    if cnt > 0 {
                        let v = d / T::from_f64(cnt as f64);
                        window(&a, pos, |i| dxi[i] += v);
                    }
                }
            }
        }
    });
}

/// Max unpooling: `y` (the pooling input's shape) is zero except, for each window, the
/// first maximum of `x` there, which receives `u` at the window's position.
pub fn unpool_forward<T: Element>(
    g: &PoolGeometry,
    n: usize,
    u: &[T],
    x: &[T],
    y: &mut [T],
    threads: usize,
) {
    let a = g.axes3();
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    assert_eq!(x.len(), y.len(), "unpooling size");
    for_planes(n * g.planes, threads, y, pin, u, pout, |yi, ui, p| {
        yi.fill(T::zero());
        let xi = &x[p * pin..(p + 1) * pin];
        for (&v, pos) in ui.iter().zip(positions(&a)) {
            if let Some(i) = argmax(&a, xi, pos) {
                yi[i] = v;
            }
        }
    });
}

/// CNTK's gradient of max unpooling with respect to the unpooled operand: the maximum of
/// `dy` over each window (`max_pool(dy)`) — what CNTK 2.7 computes, which is not the
/// derivative of [`unpool_forward`] (that is [`unpool_backward_exact`]).
pub fn unpool_backward_cntk<T: Element>(
    g: &PoolGeometry,
    n: usize,
    dy: &[T],
    du: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let a = g.axes3();
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    for_planes(n * g.planes, threads, du, pout, dy, pin, |dui, dyi, _| {
        for (o, pos) in dui.iter_mut().zip(positions(&a)) {
            let m = argmax(&a, dyi, pos).map_or(T::zero(), |i| dyi[i]);
            if accumulate {
                *o += m;
            } else {
                *o = m;
            }
        }
    });
}

/// The derivative of [`unpool_forward`] with respect to `u`: `dy` at the position each
/// window's value was written (zero where a later window overwrote it).
pub fn unpool_backward_exact<T: Element>(
    g: &PoolGeometry,
    n: usize,
    x: &[T],
    dy: &[T],
    du: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let a = g.axes3();
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    for_planes(n * g.planes, threads, du, pout, dy, pin, |dui, dyi, p| {
        let xi = &x[p * pin..(p + 1) * pin];
        let targets: Vec<Option<usize>> = positions(&a).map(|pos| argmax(&a, xi, pos)).collect();
        for (k, o) in dui.iter_mut().enumerate() {
            // the value lands only if no later window writes the same cell
            let v = match targets[k] {
                Some(i) if !targets[k + 1..].contains(&Some(i)) => dyi[i],
                _ => T::zero(),
            };
            if accumulate {
                *o += v;
            } else {
                *o = v;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-wise first maximum equals the checked one, ties, NaN, strides 1 to 7 and
    /// 40 (a gather), dilation and rows longer than one chunk of lanes included: for f32 (the AVX-512
    /// kernel where the CPU has it) and f64 (the scalar loop).
    #[test]
    fn row_first_max_equals_argmax_with_ties() {
        check_rows::<f32>();
        check_rows::<f64>();
    }

    fn check_rows<T: Element>() {
        let ax = |input, kernel, stride, dilation| ConvAxis {
            input,
            output: (input - ((kernel - 1) * dilation + 1)) / stride + 1,
            kernel,
            stride,
            dilation,
            pad: 0,
        };
        for a in [
            [ConvAxis::UNIT, ax(9, 2, 2, 1), ax(10, 3, 3, 1)],
            [ax(5, 2, 1, 2), ax(7, 3, 2, 2), ax(8, 2, 1, 3)],
            [ConvAxis::UNIT, ax(12, 2, 2, 1), ax(10, 2, 2, 1)],
            [ConvAxis::UNIT, ax(7, 2, 3, 1), ax(17, 3, 4, 2)],
            [ConvAxis::UNIT, ax(28, 2, 2, 1), ax(28, 2, 2, 1)],
            [ConvAxis::UNIT, ax(14, 3, 3, 1), ax(14, 3, 3, 1)],
            [ConvAxis::UNIT, ax(4, 3, 1, 1), ax(40, 3, 1, 1)],
            [ConvAxis::UNIT, ax(5, 2, 2, 1), ax(75, 3, 2, 1)],
            [ConvAxis::UNIT, ax(4, 3, 1, 1), ax(50, 3, 3, 1)],
            [ConvAxis::UNIT, ax(3, 2, 1, 1), ax(130, 2, 40, 1)],
            [ConvAxis::UNIT, ax(3, 2, 1, 1), ax(100, 5, 7, 2)],
        ] {
            assert!(inside(&a));
            let n: usize = a.iter().map(|x| x.input).product();
            // few distinct values: many ties; a NaN now and then
            let plane: Vec<T> = (0..n)
                .map(|i| match (i * 7919) % 23 {
                    0 => T::from_f64(f64::NAN),
                    r => T::from_f64((r % 5) as f64),
                })
                .collect();
            let out2 = a[2].output;
            let (mut bv, mut bi) = (vec![T::zero(); out2], vec![0usize; out2]);
            let mut seen = 0;
            let mut check = |k: usize, v: &[T], i: Option<&[usize]>| {
                let (o0, o1) = (k / out2 / a[1].output, k / out2 % a[1].output);
                for (o2, &vo) in v.iter().enumerate() {
                    let want = argmax(&a, &plane, [o0, o1, o2]).expect("inside");
                    if let Some(i) = i {
                        assert_eq!(i[o2], want, "({o0}, {o1}, {o2})");
                    }
                    let w = plane[want];
                    assert!(vo == w || (vo.is_nan() && w.is_nan()), "({o0}, {o1}, {o2})");
                }
                seen += out2;
            };
            rows_first_max(&a, &plane, (&mut bv, Some(&mut bi)), &mut check);
            rows_first_max(&a, &plane, (&mut bv, None), &mut check);
            assert_eq!(seen, 2 * a.iter().map(|x| x.output).product::<usize>());
        }
        let padded = ConvAxis {
            pad: 1,
            ..ax(6, 2, 2, 1)
        };
        assert!(!inside(&[ConvAxis::UNIT, padded, ax(4, 2, 2, 1)]));
    }

    /// Max pooling forward and backward in f32 (the AVX-512 plane kernel where the CPU
    /// has it) equal the f64 scalar loops to the bit, on values with many ties and some
    /// NaN, for 1–3 axes, strides 1–4 and 40, overlapping windows and dilation.
    #[test]
    fn max_pool_f32_equals_f64_scalar() {
        let ax = |input: usize, kernel: usize, stride: usize, dilation: usize| ConvAxis {
            input,
            output: (input - ((kernel - 1) * dilation + 1)) / stride + 1,
            kernel,
            stride,
            dilation,
            pad: 0,
        };
        let geoms: Vec<Vec<ConvAxis>> = vec![
            vec![ax(28, 2, 2, 1), ax(28, 2, 2, 1)],
            vec![ax(14, 3, 3, 1), ax(14, 3, 3, 1)],
            vec![ax(9, 3, 2, 1), ax(33, 3, 2, 1)],
            vec![ax(7, 3, 1, 1), ax(40, 3, 1, 1)],
            vec![ax(5, 2, 2, 1), ax(75, 3, 4, 2)],
            vec![ax(4, 2, 1, 1), ax(3, 2, 1, 1), ax(130, 2, 40, 1)],
            vec![ax(50, 5, 3, 2)],
        ];
        for axes in geoms {
            let g = PoolGeometry {
                axes: axes.iter().copied().collect(),
                planes: 3,
            };
            let n = 2;
            let (pin, pout) = (g.in_spatial(), g.out_spatial());
            let len = n * g.planes * pin;
            let x64: Vec<f64> = (0..len)
                .map(|i| match (i * 7919) % 29 {
                    0 => f64::NAN,
                    r => (r % 5) as f64,
                })
                .collect();
            let dy64: Vec<f64> = (0..n * g.planes * pout)
                .map(|i| (i % 7) as f64 - 3.0)
                .collect();
            let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
            let dy32: Vec<f32> = dy64.iter().map(|&v| v as f32).collect();
            let (mut y64, mut y32) = (vec![0.0f64; dy64.len()], vec![0.0f32; dy64.len()]);
            pool_forward(&g, PoolKind::Max, n, &x64, &mut y64, 1);
            pool_forward(&g, PoolKind::Max, n, &x32, &mut y32, 1);
            for (k, (&a, &b)) in y32.iter().zip(&y64).enumerate() {
                assert!(
                    a as f64 == b || (a.is_nan() && b.is_nan()),
                    "y[{k}] of {axes:?}"
                );
            }
            let (mut d64, mut d32) = (vec![0.5f64; len], vec![0.5f32; len]);
            pool_backward(&g, PoolKind::Max, n, &x64, &dy64, &mut d64, true, 1);
            pool_backward(&g, PoolKind::Max, n, &x32, &dy32, &mut d32, true, 1);
            for (k, (&a, &b)) in d32.iter().zip(&d64).enumerate() {
                assert_eq!(a as f64, b, "dx[{k}] of {axes:?}");
            }
        }
    }
}
