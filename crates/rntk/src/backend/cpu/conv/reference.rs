//! Plain loops over every index (f64), the definition the fast kernels are tested against.

use crate::backend::conv::{ConvGeometry, PoolGeometry, PoolKind};

/// Calls `f(out_flat, in_flat_or_none, tap_flat)` for every output position and tap of
/// one channel plane.
fn each_tap(
    axes: &[crate::backend::conv::ConvAxis],
    mut f: impl FnMut(usize, Option<usize>, usize),
) {
    let pout: usize = axes.iter().map(|a| a.output).product();
    let k: usize = axes.iter().map(|a| a.kernel).product();
    for p in 0..pout {
        for t in 0..k {
            // decompose p and t, last axis fastest
            let (mut pr, mut tr) = (p, t);
            let mut idx = 0usize;
            let mut inside = true;
            let mut stride = 1usize;
            for a in axes.iter().rev() {
                let (o, j) = (pr % a.output, tr % a.kernel);
                pr /= a.output;
                tr /= a.kernel;
                let i = a.at(o, j);
                if i < 0 || i as usize >= a.input {
                    inside = false;
                } else {
                    idx += i as usize * stride;
                }
                stride *= a.input;
            }
            f(p, inside.then_some(idx), t);
        }
    }
}

pub(super) fn conv(g: &ConvGeometry, n: usize, x: &[f64], w: &[f64]) -> Vec<f64> {
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let mut y = vec![0.0; n * g.out_size()];
    for img in 0..n {
        for o in 0..g.out_channels {
            let grp = o / og;
            for c in 0..cg {
                let xc = &x[img * g.in_size() + (grp * cg + c) * pin..][..pin];
                let wk = &w[(o * cg + c) * k..][..k];
                each_tap(&g.axes, |p, i, t| {
                    if let Some(i) = i {
                        y[img * g.out_size() + o * pout + p] += wk[t] * xc[i];
                    }
                });
            }
        }
    }
    y
}

/// (dx, dw) of sum(conv(x, w) * dy).
pub(super) fn conv_grads(
    g: &ConvGeometry,
    n: usize,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for img in 0..n {
        for o in 0..g.out_channels {
            let grp = o / og;
            for c in 0..cg {
                let xo = img * g.in_size() + (grp * cg + c) * pin;
                let wo = (o * cg + c) * k;
                each_tap(&g.axes, |p, i, t| {
                    if let Some(i) = i {
                        let d = dy[img * g.out_size() + o * pout + p];
                        dx[xo + i] += w[wo + t] * d;
                        dw[wo + t] += x[xo + i] * d;
                    }
                });
            }
        }
    }
    (dx, dw)
}

pub(super) fn pool(g: &PoolGeometry, kind: PoolKind, n: usize, x: &[f64]) -> Vec<f64> {
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let k: usize = g.axes.iter().map(|a| a.kernel).product();
    let mut y = vec![0.0; n * g.planes * pout];
    for pl in 0..n * g.planes {
        let xp = &x[pl * pin..][..pin];
        let mut acc = vec![(f64::NEG_INFINITY, 0.0, 0usize); pout];
        each_tap(&g.axes, |p, i, _| {
            if let Some(i) = i {
                let a = &mut acc[p];
                a.0 = a.0.max(xp[i]);
                a.1 += xp[i];
                a.2 += 1;
            }
        });
        for (p, (mx, s, cnt)) in acc.into_iter().enumerate() {
            y[pl * pout + p] = match kind {
                PoolKind::Max => mx,
                PoolKind::Average { include_pad } => s / if include_pad { k } else { cnt } as f64,
            };
        }
    }
    y
}
