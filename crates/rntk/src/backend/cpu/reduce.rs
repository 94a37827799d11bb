//! `Reductions` on the CPU: each output value finished before the next starts (no
//! scratch), and batch normalization with its statistics summed in f64.

use super::batchnorm;
use super::Cpu;
use crate::backend::reduce::{NormArgs, NormGeom, ReduceGeom, ReduceOp, Reductions};
use crate::backend::{Operand, Par};
use crate::tensor::Element;

/// Reduce the values that `visit` feeds (it may be called twice: max, then sum).
#[inline]
fn reduce_one<T: Element>(
    op: ReduceOp,
    count: usize,
    mut visit: impl FnMut(&mut dyn FnMut(T)),
) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let mut s = T::zero();
            visit(&mut |v| s += v);
            if op == ReduceOp::Mean {
                s / T::from_f64(count as f64)
            } else {
                s
            }
        }
        ReduceOp::Max => {
            let mut m = T::neg_infinity();
            visit(&mut |v| {
                if v > m {
                    m = v
                }
            });
            m
        }
        ReduceOp::Min => {
            let mut m = T::infinity();
            visit(&mut |v| {
                if v < m {
                    m = v
                }
            });
            m
        }
        ReduceOp::LogSumExp => {
            let mut m = T::neg_infinity();
            visit(&mut |v| {
                if v > m {
                    m = v
                }
            });
            if !m.is_finite() {
                return m;
            }
            let mut s = T::zero();
            visit(&mut |v| s += (v - m).exp());
            m + s.ln()
        }
    }
}

/// ∂out/∂x for one input element `x` of an output `o`.
#[inline(always)]
fn partial<T: Element>(op: ReduceOp, count: usize, x: T, o: T) -> T {
    match op {
        ReduceOp::Sum => T::one(),
        ReduceOp::Mean => T::one() / T::from_f64(count as f64),
        // every tied element gets the full gradient (as CNTK)
        ReduceOp::Max | ReduceOp::Min => {
            if x == o {
                T::one()
            } else {
                T::zero()
            }
        }
        ReduceOp::LogSumExp => (x - o).exp(),
    }
}

/// `c` zeros: per-statistic f64 sums.
fn zeros_f64(c: usize) -> Vec<f64> {
    vec![0.0; c]
}

/// The weight of the new minibatch in the running estimates.
fn exp_avg_factor(time_constant: f64, count: f64, m: f64) -> f64 {
    if count <= 0.0 {
        1.0
    } else if time_constant < 0.0 {
        m / (m + count)
    } else if time_constant == 0.0 {
        1.0
    } else if time_constant.is_infinite() {
        0.0
    } else {
        1.0 - (-m / time_constant).exp()
    }
}

impl Reductions for Cpu {
    fn reduce<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Cpu, T>,
        out: &mut [T],
        n: usize,
    ) {
        let (nx, no) = (g.numel, g.out_numel());
        let rows = if x.per_row { n } else { 1 };
        for r in 0..rows {
            let xr = &x.data[r * nx..(r + 1) * nx];
            let orow = &mut out[r * no..(r + 1) * no];
            g.for_each_out(|e, base| {
                orow[e] = reduce_one(op, g.count, |f| g.for_each_in(base, |i| f(xr[i])));
            });
        }
        // A static operand reduced for several rows repeats the sample.
        if !x.per_row {
            for r in 1..n {
                out.copy_within(0..no, r * no);
            }
        }
    }

    fn reduce_backward<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Cpu, T>,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        n: usize,
    ) {
        let (nx, no) = (g.numel, g.out_numel());
        for r in 0..n {
            let xr = if x.per_row {
                &x.data[r * nx..(r + 1) * nx]
            } else {
                &x.data[..nx]
            };
            let orow = &out[r * no..(r + 1) * no];
            let grow = &dout[r * no..(r + 1) * no];
            let dr = if x.per_row {
                &mut din[r * nx..(r + 1) * nx]
            } else {
                &mut din[..nx]
            };
            g.for_each_out(|e, base| {
                let (o, gv) = (orow[e], grow[e]);
                g.for_each_in(base, |i| dr[i] += gv * partial(op, g.count, xr[i], o));
            });
        }
    }

    fn reduce_all<T: Element>(&self, op: ReduceOp, x: &[T], out: &mut [T]) {
        out[0] = reduce_one(op, x.len(), |f| x.iter().for_each(|&v| f(v)));
    }

    fn reduce_all_backward<T: Element>(
        &self,
        op: ReduceOp,
        x: &[T],
        out: &[T],
        dout: &[T],
        din: &mut [T],
    ) {
        let (o, g) = (out[0], dout[0]);
        for (d, &v) in din.iter_mut().zip(x) {
            *d += g * partial(op, x.len(), v, o);
        }
    }

    fn batch_norm<T: Element>(
        &self,
        g: &NormGeom,
        [x, scale, bias, rmean, rvar, rcount]: NormArgs<'_, Cpu, T>,
        training: bool,
        out: &mut [T],
        stats: &mut [T],
        par: Par,
    ) {
        let c = g.groups;
        let count = rcount.first().map(|c| c.as_f64()).unwrap_or(0.0);
        let (hdr, rest) = stats.split_at_mut(1);
        let (mean, rest) = rest.split_at_mut(c);
        let (invstd, rest) = rest.split_at_mut(c);
        let (new_mean, new_var) = rest.split_at_mut(c);
        if training {
            // Sums in f64: a float32 minibatch of thousands of rows would lose digits.
            let (mu, s2) = (&mut zeros_f64(c), &mut zeros_f64(c));
            batchnorm::moments(g, x, mu, s2, par);
            let k = (g.rows * g.inner).max(1) as f64;
            let m = g.rows as f64;
            let f = exp_avg_factor(g.time_constant, count, m);
            for j in 0..c {
                let var = s2[j] / k;
                let unbiased = if g.rows * g.inner > 1 {
                    s2[j] / (k - 1.0)
                } else {
                    0.0
                };
                mean[j] = T::from_f64(mu[j]);
                invstd[j] = T::from_f64(1.0 / (var + g.epsilon).sqrt());
                new_mean[j] = T::from_f64((1.0 - f) * rmean[j].as_f64() + f * mu[j]);
                new_var[j] = T::from_f64((1.0 - f) * rvar[j].as_f64() + f * unbiased);
            }
            hdr[0] = T::from_f64(count + m);
        } else {
            for j in 0..c {
                mean[j] = rmean[j];
                invstd[j] = T::from_f64(1.0 / (rvar[j].as_f64() + g.epsilon).sqrt());
            }
        }
        batchnorm::normalize(g, x, (mean, invstd), (scale, bias), out, par);
    }

    fn batch_norm_backward<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        x: &[T],
        scale: &[T],
        stats: &[T],
        od: (&[T], &[T]),
        din: (&mut [T], bool),
        par: Par,
    ) {
        bn_backward(g, (i, trained), (x, scale, stats), od, din, None, par);
    }

    fn batch_norm_backward_keep<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        xss: (&[T], &[T], &[T]),
        od: (&[T], &[T]),
        din: (&mut [T], bool),
        params: &mut [T],
        par: Par,
    ) {
        bn_backward(g, (i, trained), xss, od, din, Some(params), par);
    }
}

/// Batch normalization's gradient for operand `i` (0 = x, 1 = scale, 2 = bias) into
/// `din`, and, given `params`, the scale and bias gradients into it (one pass of sums).
/// `out` masks `dout` when a ReLU is folded in (`g.relu`); `assign`: `din` (operand 0's)
/// holds no values yet.
fn bn_backward<T: Element>(
    g: &NormGeom,
    (i, trained): (usize, bool),
    (x, scale, stats): (&[T], &[T], &[T]),
    (out, dout): (&[T], &[T]),
    (din, assign): (&mut [T], bool),
    params: Option<&mut [T]>,
    par: Par,
) {
    let c = g.groups;
    let mean = &stats[1..1 + c];
    let invstd = &stats[1 + c..1 + 2 * c];
    // Σ dy and Σ dy·x̂ per statistic: the parameter gradients, and (in training) the
    // terms through which the batch mean and variance depend on x (the bias alone needs
    // only Σ dy).
    let (sdy, sdyx) = (&mut zeros_f64(c), &mut zeros_f64(c));
    if i == 2 && params.is_none() && !g.relu {
        batchnorm::dy_sums(g, dout, sdy, par);
    } else {
        batchnorm::grad_sums(g, (x, dout, out), (mean, invstd), (sdy, sdyx), par);
    }
    match i {
        0 => batchnorm::input_grad(
            g,
            trained,
            (x, dout, out),
            (mean, invstd, scale),
            (sdy, sdyx),
            (din, assign),
            par,
        ),
        1 => {
            for j in 0..c {
                din[j] += T::from_f64(sdyx[j]);
            }
        }
        2 => {
            for j in 0..c {
                din[j] += T::from_f64(sdy[j]);
            }
        }
        _ => {}
    }
    if let Some(p) = params {
        for j in 0..c {
            p[j] += T::from_f64(sdyx[j]);
            p[c + j] += T::from_f64(sdy[j]);
        }
    }
}
