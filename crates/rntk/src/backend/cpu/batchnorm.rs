//! Batch normalization on the CPU, forward and backward, over runs of contiguous values:
//! a statistic `j` covers elements `j·inner .. (j+1)·inner` of every row (spatial: one
//! channel's plane; per element: `inner = 1`, then a row is one run per statistic).
//! Sums are taken in f64 over eight interleaved lanes (vectorizable; fixed order, so the
//! result depends only on the data), the per-element arithmetic of the output and of the
//! input gradient is CNTK's in the element type. `reference` (tests) keeps the plain
//! element-by-element loops the kernels are checked against.

use crate::backend::reduce::NormGeom;
use crate::tensor::Element;

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

/// `acc[j] += Σ f(j, v)` over the values of statistic `j` in every row of `x`.
#[inline(always)]
fn per_stat<T: Element>(g: &NormGeom, x: &[T], acc: &mut [f64], f: impl Fn(usize, T) -> f64) {
    for row in x.chunks_exact(g.d).take(g.rows) {
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

/// `out[e] = h(j, x[e], y[e])` for every element, `j` its statistic (`y` may be `x`).
#[inline(always)]
fn map_pairs<T: Element>(
    g: &NormGeom,
    (x, y): (&[T], &[T]),
    out: &mut [T],
    h: impl Fn(usize, T, T, &mut T),
) {
    let d = g.d;
    for ((xr, yr), or) in x
        .chunks_exact(d)
        .zip(y.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
    {
        for (j, ((xs, ys), os)) in xr
            .chunks_exact(g.inner)
            .zip(yr.chunks_exact(g.inner))
            .zip(or.chunks_exact_mut(g.inner))
            .enumerate()
        {
            for ((&a, &b), o) in xs.iter().zip(ys).zip(os) {
                h(j, a, b, o);
            }
        }
    }
}

/// Minibatch mean and biased variance per statistic (`mu`, `var`) and the unbiased one.
pub(super) fn moments<T: Element>(g: &NormGeom, x: &[T], mu: &mut [f64], s2: &mut [f64]) {
    super::wide(
        #[inline(always)]
        || moments_body(g, x, mu, s2),
    )
}

#[inline(always)]
fn moments_body<T: Element>(g: &NormGeom, x: &[T], mu: &mut [f64], s2: &mut [f64]) {
    let k = (g.rows * g.inner).max(1) as f64;
    mu.fill(0.0);
    per_stat(g, x, mu, |_, v| v.as_f64());
    mu.iter_mut().for_each(|m| *m /= k);
    s2.fill(0.0);
    per_stat(g, x, s2, |j, v| {
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
) {
    super::wide(
        #[inline(always)]
        || normalize_body(g, x, (mean, invstd), (scale, bias), out),
    )
}

#[inline(always)]
fn normalize_body<T: Element>(
    g: &NormGeom,
    x: &[T],
    (mean, invstd): (&[T], &[T]),
    (scale, bias): (&[T], &[T]),
    out: &mut [T],
) {
    let n = g.rows * g.d;
    map_pairs(g, (&x[..n], &x[..n]), &mut out[..n], |j, v, _, o| {
        *o = (v - mean[j]) * invstd[j] * scale[j] + bias[j];
    });
}

/// Σ dy per statistic (the bias gradient alone).
pub(super) fn dy_sums<T: Element>(g: &NormGeom, dy: &[T], sdy: &mut [f64]) {
    super::wide(
        #[inline(always)]
        || dy_sums_body(g, dy, sdy),
    )
}

#[inline(always)]
fn dy_sums_body<T: Element>(g: &NormGeom, dy: &[T], sdy: &mut [f64]) {
    sdy.fill(0.0);
    per_stat(g, dy, sdy, |_, v| v.as_f64());
}

/// Σ dy and Σ dy·x̂ per statistic, x̂ = (x − mean)·invstd in `T`, in one pass over `x` and
/// `dy` (Σ dy in the order `dy_sums` takes: the same value to the bit).
pub(super) fn grad_sums<T: Element>(
    g: &NormGeom,
    (x, dy): (&[T], &[T]),
    (mean, invstd): (&[T], &[T]),
    (sdy, sdyx): (&mut [f64], &mut [f64]),
) {
    super::wide(
        #[inline(always)]
        || grad_sums_body(g, (x, dy), (mean, invstd), (sdy, sdyx)),
    )
}

#[inline(always)]
fn grad_sums_body<T: Element>(
    g: &NormGeom,
    (x, dy): (&[T], &[T]),
    (mean, invstd): (&[T], &[T]),
    (sdy, sdyx): (&mut [f64], &mut [f64]),
) {
    sdy.fill(0.0);
    sdyx.fill(0.0);
    let d = g.d;
    for (xr, yr) in x.chunks_exact(d).zip(dy.chunks_exact(d)).take(g.rows) {
        if g.inner == 1 {
            for (j, (&a, &b)) in xr.iter().zip(yr).enumerate() {
                sdy[j] += b.as_f64();
                sdyx[j] += b.as_f64() * ((a - mean[j]) * invstd[j]).as_f64();
            }
            continue;
        }
        for (j, (xs, ys)) in xr
            .chunks_exact(g.inner)
            .zip(yr.chunks_exact(g.inner))
            .enumerate()
        {
            let (m, s) = (mean[j], invstd[j]);
            let (mut acc, mut acc1) = ([0.0f64; 8], [0.0f64; 8]);
            let (xc, yc) = (xs.chunks_exact(8), ys.chunks_exact(8));
            let (xt, yt) = (xc.remainder(), yc.remainder());
            for (a, b) in xc.zip(yc) {
                for l in 0..8 {
                    acc1[l] += b[l].as_f64();
                    acc[l] += b[l].as_f64() * ((a[l] - m) * s).as_f64();
                }
            }
            for (l, (&a, &b)) in xt.iter().zip(yt).enumerate() {
                acc1[l] += b.as_f64();
                acc[l] += b.as_f64() * ((a - m) * s).as_f64();
            }
            sdy[j] += acc1.iter().sum::<f64>();
            sdyx[j] += acc.iter().sum::<f64>();
        }
    }
}

/// `dx += scale·invstd·(dy − Σdy/k − x̂·Σdy·x̂/k)` (trained) or `scale·invstd·dy`.
#[allow(clippy::too_many_arguments)]
pub(super) fn input_grad<T: Element>(
    g: &NormGeom,
    trained: bool,
    (x, dy): (&[T], &[T]),
    (mean, invstd, scale): (&[T], &[T], &[T]),
    (sdy, sdyx): (&[f64], &[f64]),
    dx: &mut [T],
) {
    super::wide(
        #[inline(always)]
        || input_grad_body(g, trained, (x, dy), (mean, invstd, scale), (sdy, sdyx), dx),
    )
}

#[inline(always)]
fn input_grad_body<T: Element>(
    g: &NormGeom,
    trained: bool,
    (x, dy): (&[T], &[T]),
    (mean, invstd, scale): (&[T], &[T], &[T]),
    (sdy, sdyx): (&[f64], &[f64]),
    dx: &mut [T],
) {
    let kf = (g.rows * g.inner).max(1) as f64;
    let n = g.rows * g.d;
    map_pairs(g, (&x[..n], &dy[..n]), &mut dx[..n], |j, xv, dyv, o| {
        let s = scale[j].as_f64() * invstd[j].as_f64();
        let v = if trained {
            let xhat = ((xv - mean[j]) * invstd[j]).as_f64();
            s * (dyv.as_f64() - sdy[j] / kf - xhat * sdyx[j] / kf)
        } else {
            s * dyv.as_f64()
        };
        *o += T::from_f64(v);
    });
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

    fn check<T: Element>(tol: f64) {
        for g in geoms() {
            let c = g.groups;
            let conv = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
            let x = conv(data(g.rows * g.d, 1));
            let dy = conv(data(g.rows * g.d, 2));
            let scale = conv(data(c, 3));
            let bias = conv(data(c, 4));
            let (mu0, s20, out0, sdy0, sdyx0, dx0) = reference(&g, &x, &dy, (&scale, &bias));
            let (mut mu, mut s2) = (vec![0.0; c], vec![0.0; c]);
            moments(&g, &x, &mut mu, &mut s2);
            let k = (g.rows * g.inner) as f64;
            let mean: Vec<T> = mu.iter().map(|&m| T::from_f64(m)).collect();
            let inv: Vec<T> = s2
                .iter()
                .map(|&s| T::from_f64(1.0 / (s / k + g.epsilon).sqrt()))
                .collect();
            let mut out = vec![T::zero(); g.rows * g.d];
            normalize(&g, &x, (&mean, &inv), (&scale, &bias), &mut out);
            let (mut sdy, mut sdyx) = (vec![0.0; c], vec![0.0; c]);
            grad_sums(&g, (&x, &dy), (&mean, &inv), (&mut sdy, &mut sdyx));
            let mut dx = vec![T::one(); g.rows * g.d];
            input_grad(
                &g,
                true,
                (&x, &dy),
                (&mean, &inv, &scale),
                (&sdy, &sdyx),
                &mut dx,
            );
            let mut sdy_only = vec![0.0; c];
            dy_sums(&g, &dy, &mut sdy_only);
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

    #[test]
    fn run_kernels_equal_the_scalar_loops_f64() {
        check::<f64>(1e-12);
    }

    #[test]
    fn run_kernels_equal_the_scalar_loops_f32() {
        check::<f32>(1e-5);
    }
}
