//! Image patches as matrix blocks, without materializing the whole patch matrix: `pack`
//! copies the patches of a block of output positions into rows (one row per input channel
//! and tap, one column per position), `unpack_add` adds such a block back onto an image
//! (the transpose). The kernels pack one block at a time and multiply it while it is in
//! cache.
//!
//! A block's positions are walked as *runs*: maximal stretches along the innermost output
//! axis. Along a run, one tap reads the input at a fixed stride, so a row of a run is one
//! strided copy (a plain slice copy at stride 1) between zero-filled ends.

use crate::backend::conv::{axes3, ConvAxis};
use crate::tensor::Element;

/// A stretch of block columns `q..q + len` at output positions `(o0, o1, w0..w0 + len)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    q: usize,
    o0: usize,
    o1: usize,
    w0: usize,
    len: usize,
}

/// The runs of output positions `p0..p0 + count` (flattened over the 3 axes).
pub(crate) fn runs(axes: &[ConvAxis; 3], p0: usize, count: usize, out: &mut Vec<Run>) {
    out.clear();
    let (n1, n2) = (axes[1].output, axes[2].output);
    let mut p = p0;
    let end = p0 + count;
    while p < end {
        let w0 = p % n2;
        let len = (n2 - w0).min(end - p);
        let r = p / n2;
        out.push(Run {
            q: p - p0,
            o0: r / n1,
            o1: r % n1,
            w0,
            len,
        });
        p += len;
    }
}

/// The taps of a filter over one channel, outermost axis first: `(j0, j1, j2)`.
#[inline]
fn taps(axes: &[ConvAxis; 3]) -> impl Iterator<Item = (usize, usize, usize)> {
    let (k0, k1, k2) = (axes[0].kernel, axes[1].kernel, axes[2].kernel);
    (0..k0).flat_map(move |a| (0..k1).flat_map(move |b| (0..k2).map(move |c| (a, b, c))))
}

/// Input row offset (within a channel) of tap `(j0, j1)` for a run, or `None` when the tap
/// reads outside along the two outer axes (the whole run reads zeros).
#[inline(always)]
fn row_base(axes: &[ConvAxis; 3], r: &Run, j0: usize, j1: usize) -> Option<usize> {
    let i0 = axes[0].at(r.o0, j0);
    let i1 = axes[1].at(r.o1, j1);
    if i0 < 0 || i1 < 0 || i0 as usize >= axes[0].input || i1 as usize >= axes[1].input {
        return None;
    }
    Some((i0 as usize * axes[1].input + i1 as usize) * axes[2].input)
}

/// Where tap `(j0, j1, j2)` reads for run `r`: columns `lo..hi` of the run (relative to its
/// start) read the input from channel offset `start` on; the others read zeros.
#[inline(always)]
fn segment(
    a: &[ConvAxis; 3],
    r: &Run,
    (j0, j1, j2): (usize, usize, usize),
    (vlo, vhi): (usize, usize),
) -> (usize, usize, usize) {
    let Some(base) = row_base(a, r, j0, j1) else {
        return (0, 0, 0);
    };
    // positions w0..w0+len; those in vlo..vhi read inside
    let lo = vlo.clamp(r.w0, r.w0 + r.len);
    let hi = vhi.clamp(lo, r.w0 + r.len);
    if hi == lo {
        return (0, 0, 0);
    }
    let start = (base as isize + a[2].at(lo, j2)) as usize;
    (lo - r.w0, hi - r.w0, start)
}

/// `d = s` for a short run: blocks of eight (moved inline, not through a `memcpy` call).
#[inline(always)]
pub(super) fn copy_run<T: Copy>(d: &mut [T], s: &[T]) {
    let s = &s[..d.len()];
    let mut dc = d.chunks_exact_mut(8);
    let mut sc = s.chunks_exact(8);
    for (x, y) in (&mut dc).zip(&mut sc) {
        x.copy_from_slice(y);
    }
    for (x, y) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *x = *y;
    }
}

/// Zeros into a run's edge (usually 0 or 1 values: no `memset` call for those).
#[inline(always)]
pub(super) fn zero_edge<T: Element>(d: &mut [T]) {
    match d.len() {
        0 => {}
        1 => d[0] = T::zero(),
        _ => d.fill(T::zero()),
    }
}

/// Rows `(c, taps…)` for the `channels` channels of `img` (each `in_spatial` values) and
/// columns the output positions of `runs`, into `dst` (row stride `ld`). Taps outermost:
/// where a tap reads for a run is worked out once for all channels.
pub(crate) fn pack<T: Element>(
    axes: &[ConvAxis],
    img: &[T],
    channels: usize,
    runs: &[Run],
    dst: &mut [T],
    ld: usize,
) {
    let a = axes3(axes);
    let plane = a[0].input * a[1].input * a[2].input;
    let ntaps = a[0].kernel * a[1].kernel * a[2].kernel;
    let inner = a[2];
    for (t, tap) in taps(&a).enumerate() {
        let valid = inner.valid_outputs(tap.2);
        for r in runs {
            let (lo, hi, start) = segment(&a, r, tap, valid);
            for c in 0..channels {
                let out = &mut dst[(c * ntaps + t) * ld + r.q..][..r.len];
                zero_edge(&mut out[..lo]);
                zero_edge(&mut out[hi..]);
                if hi > lo {
                    let chan = &img[c * plane..(c + 1) * plane];
                    let d = &mut out[lo..hi];
                    if inner.stride == 1 {
                        copy_run(d, &chan[start..]);
                    } else {
                        let src = &chan[start..];
                        for (i, v) in d.iter_mut().enumerate() {
                            *v = src[i * inner.stride];
                        }
                    }
                }
            }
        }
    }
}

/// `img += ` the block `src` laid out as `pack` writes it (the transpose of `pack`).
pub(crate) fn unpack_add<T: Element>(
    axes: &[ConvAxis],
    img: &mut [T],
    channels: usize,
    runs: &[Run],
    src: &[T],
    ld: usize,
) {
    let a = axes3(axes);
    let plane = a[0].input * a[1].input * a[2].input;
    let ntaps = a[0].kernel * a[1].kernel * a[2].kernel;
    let inner = a[2];
    for (t, tap) in taps(&a).enumerate() {
        let valid = inner.valid_outputs(tap.2);
        for r in runs {
            let (lo, hi, start) = segment(&a, r, tap, valid);
            if hi == lo {
                continue;
            }
            for c in 0..channels {
                let from = &src[(c * ntaps + t) * ld + r.q + lo..][..hi - lo];
                let chan = &mut img[c * plane..(c + 1) * plane];
                if inner.stride == 1 {
                    for (d, v) in chan[start..start + (hi - lo)].iter_mut().zip(from) {
                        *d += *v;
                    }
                } else {
                    for (i, v) in from.iter().enumerate() {
                        chan[start + i * inner.stride] += *v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_is_the_adjoint() {
        // <pack(x), y> == <x, unpack(y)> for any x, y: the two are transposes
        let axes = [
            ConvAxis::auto_padded(5, 3, 2, 1, false).unwrap(),
            ConvAxis::explicit(7, 2, 3, 2, (1, 2), false).unwrap(),
        ];
        let a3 = axes3(&axes);
        let positions: usize = axes.iter().map(|a| a.output).product();
        let taps: usize = axes.iter().map(|a| a.kernel).product();
        let plane: usize = axes.iter().map(|a| a.input).product();
        let ch = 2;
        let x: Vec<f64> = (0..ch * plane).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut rs = Vec::new();
        for (p0, count) in [(0, positions), (1, positions - 3), (positions - 1, 1)] {
            runs(&a3, p0, count, &mut rs);
            let ld = count + 2;
            let mut col = vec![f64::NAN; ch * taps * ld];
            pack(&axes, &x, ch, &rs, &mut col, ld);
            let y: Vec<f64> = (0..col.len()).map(|i| (i as f64 * 0.11).cos()).collect();
            let mut back = vec![0.0; x.len()];
            unpack_add(&axes, &mut back, ch, &rs, &y, ld);
            let mut lhs = 0.0;
            for r in 0..ch * taps {
                for q in 0..count {
                    lhs += col[r * ld + q] * y[r * ld + q];
                }
            }
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
        }
    }
}
