//! Batch normalization on the CPU, forward and backward, over runs of contiguous values:
//! a statistic `j` covers elements `j·inner .. (j+1)·inner` of every row (spatial: one
//! channel's plane; per element: `inner = 1`, then a row is one run per statistic).
//! Sums are taken in f64 over eight interleaved lanes (vectorizable; fixed order, so the
//! result depends only on the data), the per-element arithmetic of the output and of the
//! input gradient is CNTK's in the element type. On threads (`Par`) the sums split over
//! blocks of statistics (each statistic still summed row by row in the same order) and
//! the per-element passes over blocks of rows: the same bits on any number of threads.
//! `reference` (tests) keeps the plain element-by-element loops the kernels are checked
//! against.

use super::par::row_blocks;
use crate::backend::reduce::NormGeom;
use crate::backend::Par;
use crate::tensor::Element;
use rayon::prelude::*;

/// Statistics per block when the sums of `g` split over `par`'s threads (one block per
/// thread: every statistic costs the same), or `None` to stay on one thread.
fn stat_blocks(g: &NormGeom, par: Par) -> Option<usize> {
    row_blocks(par, g.groups, g.rows * g.inner).map(|_| g.groups.div_ceil(par.threads()))
}

/// `g` restricted to `rows` rows (a block of a row split).
fn with_rows(g: &NormGeom, rows: usize) -> NormGeom {
    NormGeom { rows, ..*g }
}

/// Σ f(v) over `s` in f64, eight lanes then summed lane by lane.
#[inline(always)]
fn lanes<T: Element>(s: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut it = s.chunks_exact(8);
    for c in &mut it {
        for l in 0..8 {
            acc[l] += f(c[l]);
        }
    }
    for (l, &v) in it.remainder().iter().enumerate() {
        acc[l] += f(v);
    }
    acc.iter().sum()
}

/// `acc[j] += Σ f(j, v)` over the values of statistic `j0 + j` in every row of `x`.
#[inline(always)]
fn per_stat<T: Element>(
    g: &NormGeom,
    x: &[T],
    j0: usize,
    acc: &mut [f64],
    f: impl Fn(usize, T) -> f64,
) {
    let span = j0 * g.inner..(j0 + acc.len()) * g.inner;
    for row in x.chunks_exact(g.d).take(g.rows) {
        let row = &row[span.clone()];
        if g.inner == 1 {
            for (j, (a, &v)) in acc.iter_mut().zip(row).enumerate() {
                *a += f(j, v);
            }
        } else {
            for (j, (a, run)) in acc.iter_mut().zip(row.chunks_exact(g.inner)).enumerate() {
                *a += lanes(run, |v| f(j, v));
            }
        }
    }
}

/// `out[e] = h(j, x[e], y[e], z[e])` for every element, `j` its statistic (`y`, `z` may
/// be `x`).
#[inline(always)]
fn map3<T: Element>(
    g: &NormGeom,
    (x, y, z): (&[T], &[T], &[T]),
    out: &mut [T],
    h: impl Fn(usize, T, T, T, &mut T),
) {
    let d = g.d;
    for (((xr, yr), zr), or) in x
        .chunks_exact(d)
        .zip(y.chunks_exact(d))
        .zip(z.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
    {
        for (j, (((xs, ys), zs), os)) in xr
            .chunks_exact(g.inner)
            .zip(yr.chunks_exact(g.inner))
            .zip(zr.chunks_exact(g.inner))
            .zip(or.chunks_exact_mut(g.inner))
            .enumerate()
        {
            for (((&a, &b), &c), o) in xs.iter().zip(ys).zip(zs).zip(os) {
                h(j, a, b, c, o);
            }
        }
    }
}

/// The gradient reaching the normalization's output: `dy`, or with a ReLU folded in
/// (`RELU`, `y` its output) the ReLU's gradient `0 + dy` where `y > 0`, else 0 — the
/// values the ReLU node's backward would have accumulated into a zeroed buffer.
#[inline(always)]
fn through_relu<T: Element, const RELU: bool>(dy: T, y: T) -> T {
    if !RELU {
        dy
    } else if y > T::zero() {
        T::zero() + dy
    } else {
        T::zero()
    }
}

/// Minibatch mean per statistic (`mu`) and the sum of squared deviations (`s2`).
pub(super) fn moments<T: Element>(g: &NormGeom, x: &[T], mu: &mut [f64], s2: &mut [f64], par: Par) {
    let one = |j0: usize, mu: &mut [f64], s2: &mut [f64]| {
        super::wide(
            #[inline(always)]
            || moments_body(g, x, j0, mu, s2),
        )
    };
    match stat_blocks(g, par) {
        None => one(0, mu, s2),
        Some(c) => mu
            .par_chunks_mut(c)
            .zip(s2.par_chunks_mut(c))
            .enumerate()
            .for_each(|(b, (mu, s2))| one(b * c, mu, s2)),
    }
}

/// [`moments`] of the statistics `j0 .. j0 + mu.len()`.
#[inline(always)]
fn moments_body<T: Element>(g: &NormGeom, x: &[T], j0: usize, mu: &mut [f64], s2: &mut [f64]) {
    let k = (g.rows * g.inner).max(1) as f64;
    mu.fill(0.0);
    per_stat(g, x, j0, mu, |_, v| v.as_f64());
    mu.iter_mut().for_each(|m| *m /= k);
    s2.fill(0.0);
    per_stat(g, x, j0, s2, |j, v| {
        let dv = v.as_f64() - mu[j];
        dv * dv
    });
}

/// `out = (x − mean)·invstd·scale + bias`, in `T`.
pub(super) fn normalize<T: Element>(
    g: &NormGeom,
    x: &[T],
    (mean, invstd): (&[T], &[T]),
    (scale, bias): (&[T], &[T]),
    out: &mut [T],
    par: Par,
) {
    let one = |g: &NormGeom, x: &[T], out: &mut [T]| {
        let ms = ((mean, invstd), (scale, bias));
        super::wide(
            #[inline(always)]
            || match g.relu {
                false => normalize_body::<T, false>(g, x, ms, out),
                true => normalize_body::<T, true>(g, x, ms, out),
            },
        )
    };
    let n = g.rows * g.d;
    match row_blocks(par, g.rows, g.d) {
        None => one(g, x, out),
        Some(r) => out[..n]
            .par_chunks_mut(r * g.d)
            .zip(x[..n].par_chunks(r * g.d))
            .for_each(|(o, x)| one(&with_rows(g, o.len() / g.d), x, o)),
    }
}

/// The statistics (mean, invstd) and parameters (scale, bias) of a normalization.
type Affine<'a, T> = ((&'a [T], &'a [T]), (&'a [T], &'a [T]));

/// [`normalize`], and with `RELU` the ReLU's `max(v, 0)` (as the ReLU node computes it).
#[inline(always)]
fn normalize_body<T: Element, const RELU: bool>(
    g: &NormGeom,
    x: &[T],
    ((mean, invstd), (scale, bias)): Affine<'_, T>,
    out: &mut [T],
) {
    let n = g.rows * g.d;
    let x = &x[..n];
    map3(g, (x, x, x), &mut out[..n], |j, v, _, _, o| {
        let r = (v - mean[j]) * invstd[j] * scale[j] + bias[j];
        *o = if !RELU || r > T::zero() { r } else { T::zero() };
    });
}

/// Σ dy per statistic (the bias gradient alone).
pub(super) fn dy_sums<T: Element>(g: &NormGeom, dy: &[T], sdy: &mut [f64], par: Par) {
    let one = |j0: usize, sdy: &mut [f64]| {
        super::wide(
            #[inline(always)]
            || dy_sums_body(g, dy, j0, sdy),
        )
    };
    match stat_blocks(g, par) {
        None => one(0, sdy),
        Some(c) => sdy
            .par_chunks_mut(c)
            .enumerate()
            .for_each(|(b, sdy)| one(b * c, sdy)),
    }
}

#[inline(always)]
fn dy_sums_body<T: Element>(g: &NormGeom, dy: &[T], j0: usize, sdy: &mut [f64]) {
    sdy.fill(0.0);
    per_stat(g, dy, j0, sdy, |_, v| v.as_f64());
}

/// Σ dy and Σ dy·x̂ per statistic, x̂ = (x − mean)·invstd in `T`, in one pass over `x` and
/// `dy` (Σ dy in the order `dy_sums` takes: the same value to the bit); with a ReLU
/// folded in (`g.relu`), `dy` is the ReLU's and `y` its output (else `y` is not read).
pub(super) fn grad_sums<T: Element>(
    g: &NormGeom,
    (x, dy, y): (&[T], &[T], &[T]),
    (mean, invstd): (&[T], &[T]),
    (sdy, sdyx): (&mut [f64], &mut [f64]),
    par: Par,
) {
    let one = |j0: usize, sdy: &mut [f64], sdyx: &mut [f64]| {
        let js = j0..j0 + sdy.len();
        let ms = (&mean[js.clone()], &invstd[js]);
        super::wide(
            #[inline(always)]
            || match g.relu {
                false => grad_sums_body::<T, false>(g, (x, dy, dy), j0, ms, (sdy, sdyx)),
                true => grad_sums_body::<T, true>(g, (x, dy, y), j0, ms, (sdy, sdyx)),
            },
        )
    };
    match stat_blocks(g, par) {
        None => one(0, sdy, sdyx),
        Some(c) => sdy
            .par_chunks_mut(c)
            .zip(sdyx.par_chunks_mut(c))
            .enumerate()
            .for_each(|(b, (sdy, sdyx))| one(b * c, sdy, sdyx)),
    }
}

/// [`grad_sums`] of the statistics `j0 .. j0 + sdy.len()` (`mean`, `invstd` theirs).
#[inline(always)]
fn grad_sums_body<T: Element, const RELU: bool>(
    g: &NormGeom,
    (x, dy, y): (&[T], &[T], &[T]),
    j0: usize,
    (mean, invstd): (&[T], &[T]),
    (sdy, sdyx): (&mut [f64], &mut [f64]),
) {
    sdy.fill(0.0);
    sdyx.fill(0.0);
    let d = g.d;
    let span = j0 * g.inner..(j0 + sdy.len()) * g.inner;
    let dys = dy.chunks_exact(d).zip(y.chunks_exact(d));
    for (xr, (dr, yr)) in x.chunks_exact(d).zip(dys).take(g.rows) {
        let (xr, dr, yr) = (&xr[span.clone()], &dr[span.clone()], &yr[span.clone()]);
        if g.inner == 1 {
            for (j, ((&a, &b), &c)) in xr.iter().zip(dr).zip(yr).enumerate() {
                let b = through_relu::<T, RELU>(b, c);
                sdy[j] += b.as_f64();
                sdyx[j] += b.as_f64() * ((a - mean[j]) * invstd[j]).as_f64();
            }
            continue;
        }
        for (j, ((xs, ds), ys)) in xr
            .chunks_exact(g.inner)
            .zip(dr.chunks_exact(g.inner))
            .zip(yr.chunks_exact(g.inner))
            .enumerate()
        {
            let (m, s) = (mean[j], invstd[j]);
            let (mut acc, mut acc1) = ([0.0f64; 8], [0.0f64; 8]);
            let (xc, dc, yc) = (xs.chunks_exact(8), ds.chunks_exact(8), ys.chunks_exact(8));
            let (xt, dt, yt) = (xc.remainder(), dc.remainder(), yc.remainder());
            for ((a, b), c) in xc.zip(dc).zip(yc) {
                for l in 0..8 {
                    let b = through_relu::<T, RELU>(b[l], c[l]);
                    acc1[l] += b.as_f64();
                    acc[l] += b.as_f64() * ((a[l] - m) * s).as_f64();
                }
            }
            for (l, ((&a, &b), &c)) in xt.iter().zip(dt).zip(yt).enumerate() {
                let b = through_relu::<T, RELU>(b, c);
                acc1[l] += b.as_f64();
                acc[l] += b.as_f64() * ((a - m) * s).as_f64();
            }
            sdy[j] += acc1.iter().sum::<f64>();
            sdyx[j] += acc.iter().sum::<f64>();
        }
    }
}

/// `dx += scale·invstd·(dy − Σdy/k − x̂·Σdy·x̂/k)` (trained) or `scale·invstd·dy`; with a
/// ReLU folded in, `dy` is the ReLU's and `y` its output (else `y` is not read). With
/// `assign`, `dx` holds no values yet: `dx = 0 + …` (the bits of adding into zeros).
#[allow(clippy::too_many_arguments)]
pub(super) fn input_grad<T: Element>(
    g: &NormGeom,
    trained: bool,
    (x, dy, y): (&[T], &[T], &[T]),
    (mean, invstd, scale): (&[T], &[T], &[T]),
    (sdy, sdyx): (&[f64], &[f64]),
    (dx, assign): (&mut [T], bool),
    par: Par,
) {
    // k of the whole minibatch: a block of rows divides by it too
    let kf = (g.rows * g.inner).max(1) as f64;
    let sums = (sdy, sdyx, kf);
    let stats = (mean, invstd, scale);
    let one = |g: &NormGeom, x: &[T], dy: &[T], y: &[T], dx: &mut [T]| {
        super::wide(
            #[inline(always)]
            || match (g.relu, assign) {
                (false, false) => {
                    input_grad_body::<T, false, false>(g, trained, (x, dy, dy), stats, sums, dx)
                }
                (false, true) => {
                    input_grad_body::<T, false, true>(g, trained, (x, dy, dy), stats, sums, dx)
                }
                (true, false) => {
                    input_grad_body::<T, true, false>(g, trained, (x, dy, y), stats, sums, dx)
                }
                (true, true) => {
                    input_grad_body::<T, true, true>(g, trained, (x, dy, y), stats, sums, dx)
                }
            },
        )
    };
    let n = g.rows * g.d;
    let y = if g.relu { y } else { dy };
    match row_blocks(par, g.rows, g.d) {
        None => one(g, x, dy, y, dx),
        Some(r) => {
            let c = r * g.d;
            let ins = x[..n].par_chunks(c).zip(dy[..n].par_chunks(c));
            dx[..n]
                .par_chunks_mut(c)
                .zip(ins.zip(y[..n].par_chunks(c)))
                .for_each(|(o, ((x, dy), y))| one(&with_rows(g, o.len() / g.d), x, dy, y, o))
        }
    }
}

#[inline(always)]
fn input_grad_body<T: Element, const RELU: bool, const ASSIGN: bool>(
    g: &NormGeom,
    trained: bool,
    (x, dy, y): (&[T], &[T], &[T]),
    (mean, invstd, scale): (&[T], &[T], &[T]),
    (sdy, sdyx, kf): (&[f64], &[f64], f64),
    dx: &mut [T],
) {
    let n = g.rows * g.d;
    map3(
        g,
        (&x[..n], &dy[..n], &y[..n]),
        &mut dx[..n],
        |j, xv, dyv, yv, o| {
            let dyv = through_relu::<T, RELU>(dyv, yv);
            let s = scale[j].as_f64() * invstd[j].as_f64();
            let v = if trained {
                let xhat = ((xv - mean[j]) * invstd[j]).as_f64();
                s * (dyv.as_f64() - sdy[j] / kf - xhat * sdyx[j] / kf)
            } else {
                s * dyv.as_f64()
            };
            let v = T::from_f64(v);
            *o = if ASSIGN { T::zero() + v } else { *o + v };
        },
    );
}

#[cfg(test)]
mod tests {
    //! The kernels above against the plain element-by-element loops (the CPU backend's
    //! batch normalization before it ran over runs), f32 and f64, spatial and not.
    use super::*;

    fn geoms() -> Vec<NormGeom> {
        let g = |rows, d, groups| NormGeom {
            rows,
            d,
            groups,
            inner: d / groups,
            epsilon: 1e-5,
            time_constant: 0.0,
            relu: false,
        };
        vec![
            g(3, 2 * 37, 2),
            g(5, 7, 7),
            g(2, 4 * 16, 4),
            g(1, 3 * 9, 3),
            g(4, 13, 1),
        ]
    }

    fn data(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i * 37 + seed * 11) % 101) as f64 - 50.0) / 17.0)
            .collect()
    }

    /// The scalar loops: moments, output, gradient sums and input gradient.
    #[allow(clippy::type_complexity)]
    fn reference<T: Element>(
        g: &NormGeom,
        x: &[T],
        dy: &[T],
        (scale, bias): (&[T], &[T]),
    ) -> (Vec<f64>, Vec<f64>, Vec<T>, Vec<f64>, Vec<f64>, Vec<T>) {
        let c = g.groups;
        let group = |e: usize| e / g.inner;
        let k = (g.rows * g.inner) as f64;
        let (mut s1, mut s2) = (vec![0.0; c], vec![0.0; c]);
        for r in 0..g.rows {
            for e in 0..g.d {
                s1[group(e)] += x[r * g.d + e].as_f64();
            }
        }
        let mu: Vec<f64> = s1.iter().map(|s| s / k).collect();
        for r in 0..g.rows {
            for e in 0..g.d {
                let dv = x[r * g.d + e].as_f64() - mu[group(e)];
                s2[group(e)] += dv * dv;
            }
        }
        let mean: Vec<T> = mu.iter().map(|&m| T::from_f64(m)).collect();
        let inv: Vec<T> = s2
            .iter()
            .map(|&s| T::from_f64(1.0 / (s / k + g.epsilon).sqrt()))
            .collect();
        let mut out = vec![T::zero(); g.rows * g.d];
        let (mut sdy, mut sdyx) = (vec![0.0; c], vec![0.0; c]);
        for i in 0..g.rows * g.d {
            let j = group(i % g.d);
            out[i] = (x[i] - mean[j]) * inv[j] * scale[j] + bias[j];
            sdy[j] += dy[i].as_f64();
            sdyx[j] += dy[i].as_f64() * ((x[i] - mean[j]) * inv[j]).as_f64();
        }
        let mut dx = vec![T::one(); g.rows * g.d];
        for i in 0..g.rows * g.d {
            let j = group(i % g.d);
            let s = scale[j].as_f64() * inv[j].as_f64();
            let xhat = ((x[i] - mean[j]) * inv[j]).as_f64();
            dx[i] += T::from_f64(s * (dy[i].as_f64() - sdy[j] / k - xhat * sdyx[j] / k));
        }
        (mu, s2, out, sdy, sdyx, dx)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    /// What the kernels compute on `par`: moments, output, gradient sums, input gradient
    /// (from ones) and Σ dy alone.
    #[allow(clippy::type_complexity)]
    fn kernels<T: Element>(
        g: &NormGeom,
        (x, dy): (&[T], &[T]),
        (scale, bias): (&[T], &[T]),
        par: Par,
    ) -> (
        Vec<f64>,
        Vec<f64>,
        Vec<T>,
        Vec<f64>,
        Vec<f64>,
        Vec<T>,
        Vec<f64>,
    ) {
        let c = g.groups;
        let (mut mu, mut s2) = (vec![0.0; c], vec![0.0; c]);
        moments(g, x, &mut mu, &mut s2, par);
        let k = (g.rows * g.inner) as f64;
        let mean: Vec<T> = mu.iter().map(|&m| T::from_f64(m)).collect();
        let inv: Vec<T> = s2
            .iter()
            .map(|&s| T::from_f64(1.0 / (s / k + g.epsilon).sqrt()))
            .collect();
        let mut out = vec![T::zero(); g.rows * g.d];
        normalize(g, x, (&mean, &inv), (scale, bias), &mut out, par);
        // with a ReLU folded in, its output masks the gradient
        let y = if g.relu { &out[..] } else { dy };
        let (mut sdy, mut sdyx) = (vec![0.0; c], vec![0.0; c]);
        grad_sums(g, (x, dy, y), (&mean, &inv), (&mut sdy, &mut sdyx), par);
        let mut dx = vec![T::one(); g.rows * g.d];
        let ms = (&mean[..], &inv[..], scale);
        input_grad(
            g,
            true,
            (x, dy, y),
            ms,
            (&sdy, &sdyx),
            (&mut dx, false),
            par,
        );
        // written into a buffer of garbage: the bits of adding into zeros
        let mut dx0 = vec![T::from_f64(f64::NAN); g.rows * g.d];
        input_grad(
            g,
            true,
            (x, dy, y),
            ms,
            (&sdy, &sdyx),
            (&mut dx0, true),
            par,
        );
        let mut dz = vec![T::zero(); g.rows * g.d];
        input_grad(
            g,
            true,
            (x, dy, y),
            ms,
            (&sdy, &sdyx),
            (&mut dz, false),
            par,
        );
        assert_eq!(bits(&dx0), bits(&dz), "assigned dx");
        let mut sdy_only = vec![0.0; c];
        dy_sums(g, dy, &mut sdy_only, par);
        (mu, s2, out, sdy, sdyx, dx, sdy_only)
    }

    fn inputs<T: Element>(g: &NormGeom) -> [Vec<T>; 4] {
        let conv = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
        let n = g.rows * g.d;
        [
            conv(data(n, 1)),
            conv(data(n, 2)),
            conv(data(g.groups, 3)),
            conv(data(g.groups, 4)),
        ]
    }

    fn check<T: Element>(tol: f64) {
        for g in geoms() {
            let c = g.groups;
            let [x, dy, scale, bias] = inputs::<T>(&g);
            let (mu0, s20, out0, sdy0, sdyx0, dx0) = reference(&g, &x, &dy, (&scale, &bias));
            let (mu, s2, out, sdy, sdyx, dx, sdy_only) =
                kernels(&g, (&x, &dy), (&scale, &bias), Par::Seq);
            assert_eq!(sdy_only, sdy, "dy_sums and grad_sums take the same order");
            for j in 0..c {
                assert!(close(mu[j], mu0[j], 1e-12) && close(s2[j], s20[j], 1e-12));
                assert!(close(sdy[j], sdy0[j], 1e-12) && close(sdyx[j], sdyx0[j], 1e-12));
            }
            for i in 0..g.rows * g.d {
                assert!(close(out[i].as_f64(), out0[i].as_f64(), tol), "out {i}");
                assert!(close(dx[i].as_f64(), dx0[i].as_f64(), tol), "dx {i}");
            }
        }
    }

    fn bits<T: Element>(v: &[T]) -> Vec<u64> {
        v.iter().map(|x| x.as_f64().to_bits()).collect()
    }

    /// On 2 and 3 threads (blocks of statistics and of rows, uneven ones too) every
    /// kernel gives the bits of the one-thread run; the sizes are above the split
    /// threshold, spatial (5 statistics of 701 values per row) and per element.
    fn same_bits_on_threads<T: Element>() {
        let g = |rows, d, groups| NormGeom {
            rows,
            d,
            groups,
            inner: d / groups,
            epsilon: 1e-5,
            time_constant: 0.0,
            relu: false,
        };
        for g in [g(40, 5 * 701, 5), g(301, 503, 503)] {
            assert!(g.rows * g.d >= super::super::par::SPLIT_ELEMS);
            let [x, dy, scale, bias] = inputs::<T>(&g);
            let one = kernels(&g, (&x, &dy), (&scale, &bias), Par::Seq);
            for t in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("a test pool");
                let par = Par::Rayon(std::num::NonZeroUsize::new(t).expect("t > 0"));
                assert!(stat_blocks(&g, par).is_some() && row_blocks(par, g.rows, g.d).is_some());
                let many = pool.install(|| kernels(&g, (&x, &dy), (&scale, &bias), par));
                assert_eq!(bits(&one.0), bits(&many.0), "mean, {t} threads");
                assert_eq!(bits(&one.1), bits(&many.1), "variance, {t} threads");
                assert_eq!(bits(&one.2), bits(&many.2), "output, {t} threads");
                assert_eq!(bits(&one.3), bits(&many.3), "Σ dy, {t} threads");
                assert_eq!(bits(&one.4), bits(&many.4), "Σ dy·x̂, {t} threads");
                assert_eq!(bits(&one.5), bits(&many.5), "dx, {t} threads");
                assert_eq!(bits(&one.6), bits(&many.6), "Σ dy alone, {t} threads");
            }
        }
    }

    /// A ReLU folded in gives, bit for bit, the plain kernels followed by the ReLU node's
    /// loops: output `max(v, 0)`, and the sums and input gradient of the plain kernels
    /// fed the ReLU's backward (`0 + dy` where the output is > 0, else 0, into zeros).
    fn relu_folded_equals_the_plain_path<T: Element>() {
        let big = NormGeom {
            rows: 40,
            d: 5 * 701,
            groups: 5,
            inner: 701,
            epsilon: 1e-5,
            time_constant: 0.0,
            relu: false,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a test pool");
        let two = Par::Rayon(std::num::NonZeroUsize::new(2).expect("2 > 0"));
        let cases = geoms().into_iter().map(|g| (g, Par::Seq));
        for (g, par) in cases.chain([(big, Par::Seq), (big, two)]) {
            let [x, dy, scale, bias] = inputs::<T>(&g);
            let run = |g: &NormGeom, dy: &[T]| {
                pool.install(|| kernels(g, (&x, dy), (&scale, &bias), par))
            };
            let plain = run(&g, &dy);
            let zero = T::zero();
            let relu: Vec<T> = plain
                .2
                .iter()
                .map(|&v| if v > zero { v } else { zero })
                .collect();
            let masked: Vec<T> = plain
                .2
                .iter()
                .zip(&dy)
                .map(|(&v, &d)| zero + if v > zero { d } else { zero })
                .collect();
            let want = run(&g, &masked);
            let folded = run(&NormGeom { relu: true, ..g }, &dy);
            assert!(relu.contains(&zero) && relu.iter().any(|&v| v > zero));
            assert_eq!(bits(&folded.0), bits(&plain.0), "mean");
            assert_eq!(bits(&folded.1), bits(&plain.1), "variance");
            assert_eq!(bits(&folded.2), bits(&relu), "output");
            assert_eq!(bits(&folded.3), bits(&want.3), "Σ dy");
            assert_eq!(bits(&folded.4), bits(&want.4), "Σ dy·x̂");
            assert_eq!(bits(&folded.5), bits(&want.5), "dx");
        }
    }

    #[test]
    fn relu_folded_equals_the_plain_path_f32() {
        relu_folded_equals_the_plain_path::<f32>();
    }

    #[test]
    fn relu_folded_equals_the_plain_path_f64() {
        relu_folded_equals_the_plain_path::<f64>();
    }

    #[test]
    fn threads_give_the_same_bits_f32() {
        same_bits_on_threads::<f32>();
    }

    #[test]
    fn threads_give_the_same_bits_f64() {
        same_bits_on_threads::<f64>();
    }

    #[test]
    fn run_kernels_equal_the_scalar_loops_f64() {
        check::<f64>(1e-12);
    }

    #[test]
    fn run_kernels_equal_the_scalar_loops_f32() {
        check::<f32>(1e-5);
    }
}
