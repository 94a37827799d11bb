//! ROI max pooling and its gradient on the CPU (the rules are `backend::roi`'s). Images
//! are independent; `threads` split them in contiguous ranges (an image's gradient cells
//! belong to it alone, so the backward pass needs no atomics).

use crate::backend::roi::{bin, RoiGeometry};
use crate::tensor::Element;

/// Every output cell of one image, in output order `(R, C, out_h, out_w)`: its value
/// (`None`: an empty bin, 0) and the offset in the image of the cell that receives its
/// gradient (`None`: none — an empty bin, or a box CNTK's gradient skips: one whose
/// unsigned extent wraps, `RoiBox::holds`).
fn cells<T: Element>(
    g: &RoiGeometry,
    x: &[T],
    rois: &[T],
    mut f: impl FnMut(usize, Option<T>, Option<usize>),
) {
    let (h, w) = (g.height, g.width);
    let mut o = 0;
    for r in rois.chunks_exact(4).take(g.rois) {
        let b = g.roi_box(r);
        for c in 0..g.channels {
            let plane = &x[c * h * w..(c + 1) * h * w];
            for ph in 0..g.out_h {
                let (h0, h1) = bin::<T>(ph, g.out_h, b.row, b.height, h);
                for pw in 0..g.out_w {
                    let (w0, w1) = bin::<T>(pw, g.out_w, b.col, b.width, w);
                    let mut best = None;
                    let mut top = T::from_f64(f64::from(f32::MIN)); // CNTK's −FLT_MAX
                    for i in h0..h1 {
                        for j in w0..w1 {
                            let v = plane[i * w + j];
                            if v > top {
                                (best, top) = (Some((i, j)), v);
                            }
                        }
                    }
                    let empty = h1 <= h0 || w1 <= w0;
                    let at = best
                        .filter(|&(i, j)| b.holds(i, j))
                        .map(|(i, j)| c * h * w + i * w + j);
                    f(o, if empty { None } else { Some(top) }, at);
                    o += 1;
                }
            }
        }
    }
}

/// Runs `f(k, out, x, rois)` for each image `k` over `threads` contiguous ranges of
/// images.
fn per_image<T: Element, U: Send>(
    g: &RoiGeometry,
    n: usize,
    (x, rois): (&[T], &[T]),
    (out, out_len): (&mut [U], usize),
    threads: usize,
    f: impl Fn(usize, &mut [U], &[T], &[T]) + Sync,
) {
    let (ni, nr) = (g.in_size(), g.rois_size());
    let one = |k: usize, o: &mut [U]| {
        let r = if g.shared_rois { 0 } else { k * nr };
        f(k, o, &x[k * ni..(k + 1) * ni], &rois[r..r + nr]);
    };
    let t = threads.clamp(1, n.max(1));
    if t == 1 || out_len == 0 {
        for (k, o) in out.chunks_mut(out_len.max(1)).enumerate().take(n) {
            one(k, o);
        }
        return;
    }
    let per = n.div_ceil(t);
    rayon::scope(|s| {
        for (ci, chunk) in out.chunks_mut(per * out_len).enumerate() {
            let one = &one;
            s.spawn(move |_| {
                for (k, o) in chunk.chunks_mut(out_len).enumerate() {
                    one(ci * per + k, o);
                }
            });
        }
    });
}

/// `y = roipool(x, rois)` over `n` images.
pub fn roi_pool_forward<T: Element>(
    g: &RoiGeometry,
    n: usize,
    (x, rois): (&[T], &[T]),
    y: &mut [T],
    threads: usize,
) {
    let no = g.out_size();
    per_image(
        g,
        n,
        (x, rois),
        (&mut y[..n * no], no),
        threads,
        |_, y, x, r| cells(g, x, r, |o, v, _| y[o] = v.unwrap_or_else(T::zero)),
    );
}

/// `dx (+)= ∂roipool/∂x · dy` over `n` images: each output's gradient to its maximum.
pub fn roi_pool_backward<T: Element>(
    g: &RoiGeometry,
    n: usize,
    (x, rois): (&[T], &[T]),
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let (ni, no) = (g.in_size(), g.out_size());
    let dx = &mut dx[..n * ni];
    if !accumulate {
        dx.fill(T::zero());
    }
    per_image(g, n, (x, rois), (dx, ni), threads, |k, dx, x, r| {
        let dy = &dy[k * no..(k + 1) * no];
        cells(g, x, r, |o, _, at| {
            if let Some(i) = at {
                dx[i] += dy[o];
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition, cell by cell, in f64.
    fn reference(g: &RoiGeometry, x: &[f64], rois: &[f64]) -> Vec<f64> {
        let mut y = Vec::new();
        for r in rois.chunks(4) {
            let b = g.roi_box(r);
            for c in 0..g.channels {
                for ph in 0..g.out_h {
                    for pw in 0..g.out_w {
                        let (h0, h1) = bin::<f64>(ph, g.out_h, b.row, b.height, g.height);
                        let (w0, w1) = bin::<f64>(pw, g.out_w, b.col, b.width, g.width);
                        let m = (h0..h1)
                            .flat_map(|i| (w0..w1).map(move |j| (i, j)))
                            .map(|(i, j)| x[(c * g.height + i) * g.width + j])
                            .fold(f64::NEG_INFINITY, f64::max);
                        y.push(if h1 <= h0 || w1 <= w0 { 0.0 } else { m });
                    }
                }
            }
        }
        y
    }

    fn geometry(shared: bool) -> RoiGeometry {
        RoiGeometry {
            channels: 2,
            height: 5,
            width: 7,
            rois: 3,
            out_h: 2,
            out_w: 3,
            spatial_scale: 1.0,
            shared_rois: shared,
        }
    }

    #[test]
    fn forward_equals_the_definition_on_every_thread_count() {
        let g = geometry(false);
        let n = 5;
        let x: Vec<f64> = (0..n * g.in_size())
            .map(|i| ((i * 37 % 101) as f64) / 50.0 - 1.0)
            .collect();
        let rois: Vec<f64> = (0..n)
            .flat_map(|k| {
                let k = k as f64;
                [
                    0.0,
                    0.0,
                    6.0,
                    4.0,
                    k,
                    1.0,
                    4.0 + k,
                    3.0,
                    -2.0,
                    3.0,
                    2.0,
                    9.0,
                ]
            })
            .collect();
        let want: Vec<f64> = (0..n)
            .flat_map(|k| {
                reference(
                    &g,
                    &x[k * g.in_size()..(k + 1) * g.in_size()],
                    &rois[k * 12..(k + 1) * 12],
                )
            })
            .collect();
        for t in [1, 2, 3, 8] {
            let mut y = vec![f64::NAN; n * g.out_size()];
            roi_pool_forward(&g, n, (&x, &rois), &mut y, t);
            assert_eq!(y, want, "{t} threads");
        }
        // one set of boxes for every image
        let gs = geometry(true);
        let mut y = vec![0.0; n * g.out_size()];
        roi_pool_forward(&gs, n, (&x, &rois[..12]), &mut y, 2);
        assert_eq!(y[..g.out_size()], want[..g.out_size()]);
    }

    #[test]
    fn backward_sends_each_gradient_to_its_maximum() {
        let g = geometry(false);
        let n = 3;
        let x: Vec<f64> = (0..n * g.in_size())
            .map(|i| (i as f64 * 0.7).sin())
            .collect();
        let rois: Vec<f64> = [1.0, 0.0, 5.0, 4.0, 0.0, 2.0, 3.0, 4.0, 2.0, 1.0, 2.0, 1.0].repeat(n);
        let dy: Vec<f64> = (0..n * g.out_size()).map(|i| 1.0 + i as f64).collect();
        let mut want = vec![0.5; n * g.in_size()];
        for k in 0..n {
            let (xi, ri) = (&x[k * g.in_size()..], &rois[k * 12..(k + 1) * 12]);
            let mut o = 0;
            cells(&g, &xi[..g.in_size()], ri, |_, _, at| {
                if let Some(i) = at {
                    want[k * g.in_size() + i] += dy[k * g.out_size() + o];
                }
                o += 1;
            });
        }
        for t in [1, 2, 4] {
            let mut dx = vec![0.5; n * g.in_size()];
            roi_pool_backward(&g, n, (&x, &rois), &dy, &mut dx, true, t);
            assert_eq!(dx, want, "{t} threads");
        }
    }
}
