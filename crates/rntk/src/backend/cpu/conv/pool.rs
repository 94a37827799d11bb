//! Max and average pooling, their gradients, and max unpooling on the CPU, with CNTK's
//! rules: a window skips cells outside the input; the maximum's gradient goes to the first
//! maximum of the window (row-major, last axis fastest); average pooling divides by the
//! cells inside the input or, with `include_pad`, by the window size; unpooling writes each
//! value at the first maximum of its window of the pooling input (later windows overwrite).
//!
//! Planes (channels × images) are independent; `threads` split them in contiguous ranges.

use crate::backend::conv::{ConvAxis, PoolGeometry, PoolKind};
use crate::tensor::Element;

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

/// [`argmax`] for a geometry whose windows all lie [`inside`] the input: the same first
/// maximum (row-major, the first tap unless a later one is strictly greater), without the
/// range checks.
#[inline(always)]
fn argmax_inside<T: Element>(a: &[ConvAxis; 3], plane: &[T], o: [usize; 3]) -> usize {
    let (n1, n2) = (a[1].input, a[2].input);
    let first = (a[0].at(o[0], 0) as usize * n1 + a[1].at(o[1], 0) as usize) * n2
        + a[2].at(o[2], 0) as usize;
    let (d0, d1, d2) = (a[0].dilation * n1 * n2, a[1].dilation * n2, a[2].dilation);
    let (mut best, mut bv) = (first, plane[first]);
    let mut p0 = first;
    for _ in 0..a[0].kernel {
        let mut p1 = p0;
        for _ in 0..a[1].kernel {
            let mut p = p1;
            for _ in 0..a[2].kernel {
                let v = plane[p];
                if v > bv {
                    (best, bv) = (p, v);
                }
                p += d2;
            }
            p1 += d1;
        }
        p0 += d0;
    }
    best
}

/// The first maximum of each window: [`argmax_inside`] when `fast` (the geometry is
/// [`inside`]), else [`argmax`].
#[inline(always)]
fn first_max<T: Element>(
    fast: bool,
    a: &[ConvAxis; 3],
    plane: &[T],
    o: [usize; 3],
) -> Option<usize> {
    if fast {
        Some(argmax_inside(a, plane, o))
    } else {
        argmax(a, plane, o)
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
    for_planes(n * g.planes, threads, y, pout, x, pin, |yo, xi, _| {
        if kind == PoolKind::Max {
            return each_position(&a, |k, pos| {
                yo[k] = first_max(fast, &a, xi, pos).map_or(T::zero(), |i| xi[i])
            });
        }
        for (o, pos) in yo.iter_mut().zip(positions(&a)) {
            *o = match kind {
                PoolKind::Max => first_max(fast, &a, xi, pos).map_or(T::zero(), |i| xi[i]),
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
    // pair each plane's dx with its x and dy
    for_planes(n * g.planes, threads, dx, pin, dy, pout, |dxi, dyi, p| {
        if !accumulate {
            dxi.fill(T::zero());
        }
        let xi = &x[p * pin..(p + 1) * pin];
        if kind == PoolKind::Max {
            return each_position(&a, |k, pos| {
                if let Some(i) = first_max(fast, &a, xi, pos) {
                    dxi[i] += dyi[k];
                }
            });
        }
        for (&d, pos) in dyi.iter().zip(positions(&a)) {
            match kind {
                PoolKind::Max => {
                    if let Some(i) = first_max(fast, &a, xi, pos) {
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

    /// The fast first-maximum equals the checked one, ties and dilation included.
    #[test]
    fn argmax_inside_equals_argmax_with_ties() {
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
        ] {
            assert!(inside(&a));
            let n: usize = a.iter().map(|x| x.input).product();
            // few distinct values: many ties
            let plane: Vec<f32> = (0..n).map(|i| ((i * 7919) % 5) as f32).collect();
            for o0 in 0..a[0].output {
                for o1 in 0..a[1].output {
                    for o2 in 0..a[2].output {
                        let o = [o0, o1, o2];
                        assert_eq!(Some(argmax_inside(&a, &plane, o)), argmax(&a, &plane, o));
                    }
                }
            }
        }
        let padded = ConvAxis {
            pad: 1,
            ..ax(6, 2, 2, 1)
        };
        assert!(!inside(&[ConvAxis::UNIT, padded, ax(4, 2, 2, 1)]));
    }
}
