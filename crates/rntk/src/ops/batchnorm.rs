//! Batch normalization (CNTK's `BatchNormalization` node): statistics over every sample
//! of the minibatch (batch and sequence axes) in training, the running estimates in
//! inference, and the running estimates' update rule with `normalization_time_constant`.
//!
//! Operands: `[x, scale, bias, running_mean, running_variance, running_count]`. The
//! statistics are per element of the sample shape, or per leading-axis channel when
//! `spatial` (CNTK's `map_rank=1`); scale, bias and the estimates are vectors of one
//! entry per statistic. A whole op: it needs every row of the minibatch.
//!
//! Verified against CNTK 2.7 (tests/fixtures/cntk_layers): the output uses the *biased*
//! minibatch variance, `y = (x − μ)/√(σ² + ε)·scale + bias`; the running variance
//! accumulates the *unbiased* one (k/(k−1), k values per statistic); the first training
//! minibatch (running count 0) replaces the estimates outright; afterwards they move by
//! `1 − exp(−m/τ)` (m samples in the minibatch), `τ = 0` keeps only the last minibatch,
//! `τ = ∞` freezes them, `τ < 0` averages over everything seen (`m/(m + count)`). The
//! count grows by m on each training forward. Inference with a never-trained layer
//! simply uses the initial estimates (mean 0, variance 0), as CNTK does.

use super::{dense_info, expect_arity, Arg, Inferred, NodeState, WholeArg};
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, Shape};

/// Layout of `NodeState::aux` after a forward: `[trained, count_after, mean.., invstd..,
/// new_mean.., new_var..]` (one entry per statistic).
const HDR: usize = 2;

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo], spatial: bool) -> Result<Inferred> {
    expect_arity(op, name, infos, 6)?;
    let x = &infos[0];
    if x.is_sparse {
        return Err(Error::shape(op, name, "cannot normalize a sparse operand"));
    }
    if x.axes == DynamicAxes::None {
        return Err(Error::axes(
            op,
            name,
            "batch normalization needs an operand with a batch axis (its statistics are over the minibatch)",
        ));
    }
    let stat_shape = stat_shape(&x.shape, spatial).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!(
                "spatial normalization needs an operand of rank ≥ 1, got {}",
                x.shape
            ),
        )
    })?;
    for (k, what) in [
        (1, "scale"),
        (2, "bias"),
        (3, "running mean"),
        (4, "running variance"),
    ] {
        let i = &infos[k];
        if i.axes != DynamicAxes::None {
            return Err(Error::axes(
                op,
                name,
                format!("{what} must be a static tensor"),
            ));
        }
        if i.shape != stat_shape {
            return Err(Error::shape(
                op,
                name,
                format!(
                    "{what} has shape {} but an operand of shape {} needs {stat_shape}",
                    i.shape, x.shape
                ),
            ));
        }
    }
    if infos[5].shape.numel() != 1 || infos[5].axes != DynamicAxes::None {
        return Err(Error::shape(
            op,
            name,
            format!(
                "the running count must be a static scalar, got shape {}",
                infos[5].shape
            ),
        ));
    }
    Ok(Inferred::one(dense_info(
        x.shape.clone(),
        x,
        x.axes.clone(),
    )))
}

/// Shape of the statistics: one per sample element, as a flat vector (CNTK infers
/// `(prod(shape),)` for its parameters), or one per leading-axis channel when spatial.
pub(crate) fn stat_shape(x: &Shape, spatial: bool) -> Option<Shape> {
    if spatial {
        x.dims().first().map(|&c| Shape::from([c]))
    } else {
        Some(Shape::from([x.numel()]))
    }
}

/// Geometry of one forward: `rows` samples of `d` elements; statistic of element e is
/// `e / inner` (inner = 1 unless spatial).
struct Geom {
    rows: usize,
    d: usize,
    groups: usize,
    inner: usize,
}

impl Geom {
    fn new(shape: &Shape, spatial: bool, rows: usize) -> Self {
        let d = shape.numel();
        let groups = if spatial {
            shape.dims().first().copied().unwrap_or(1).max(1)
        } else {
            d
        };
        Geom {
            rows,
            d,
            groups,
            inner: d / groups,
        }
    }
    /// Values per statistic.
    fn k(&self) -> usize {
        self.rows * self.inner
    }
    fn group(&self, e: usize) -> usize {
        e / self.inner
    }
}

fn dense<'a, T>(a: &Arg<'a, T>, what: &str) -> Result<&'a [T]> {
    a.dense()
        .ok_or_else(|| Error::Unsupported(format!("BatchNormalization: sparse {what}")))
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

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    spatial: bool,
    epsilon: f64,
    time_constant: f64,
    args: &[WholeArg<T>],
    out: &mut [T],
    training: bool,
    st: &mut NodeState<T>,
) -> Result<()> {
    let x = dense(&args[0].data, "operand")?;
    let scale = dense(&args[1].data, "scale")?;
    let bias = dense(&args[2].data, "bias")?;
    let rmean = dense(&args[3].data, "running mean")?;
    let rvar = dense(&args[4].data, "running variance")?;
    let count = dense(&args[5].data, "running count")?
        .first()
        .map(|c| c.as_f64())
        .unwrap_or(0.0);
    let g = Geom::new(args[0].shape, spatial, args[0].layout.rows());
    let c = g.groups;
    st.aux.clear();
    st.aux.resize(HDR + 4 * c, T::zero());
    let (hdr, rest) = st.aux.split_at_mut(HDR);
    let (mean, rest) = rest.split_at_mut(c);
    let (invstd, rest) = rest.split_at_mut(c);
    let (new_mean, new_var) = rest.split_at_mut(c);
    if training {
        // Sums in f64: a float32 minibatch of thousands of rows would lose digits.
        let mut s1 = vec![0.0f64; c];
        for r in 0..g.rows {
            for e in 0..g.d {
                s1[g.group(e)] += x[r * g.d + e].as_f64();
            }
        }
        let k = g.k().max(1) as f64;
        let mu: Vec<f64> = s1.iter().map(|s| s / k).collect();
        let mut s2 = vec![0.0f64; c];
        for r in 0..g.rows {
            for e in 0..g.d {
                let dv = x[r * g.d + e].as_f64() - mu[g.group(e)];
                s2[g.group(e)] += dv * dv;
            }
        }
        let m = g.rows as f64;
        let f = exp_avg_factor(time_constant, count, m);
        for j in 0..c {
            let var = s2[j] / k;
            let unbiased = if g.k() > 1 { s2[j] / (k - 1.0) } else { 0.0 };
            mean[j] = T::from_f64(mu[j]);
            invstd[j] = T::from_f64(1.0 / (var + epsilon).sqrt());
            new_mean[j] = T::from_f64((1.0 - f) * rmean[j].as_f64() + f * mu[j]);
            new_var[j] = T::from_f64((1.0 - f) * rvar[j].as_f64() + f * unbiased);
        }
        hdr[0] = T::one();
        hdr[1] = T::from_f64(count + m);
    } else {
        for j in 0..c {
            mean[j] = rmean[j];
            invstd[j] = T::from_f64(1.0 / (rvar[j].as_f64() + epsilon).sqrt());
        }
    }
    for r in 0..g.rows {
        for e in 0..g.d {
            let j = g.group(e);
            let i = r * g.d + e;
            out[i] = (x[i] - mean[j]) * invstd[j] * scale[j] + bias[j];
        }
    }
    Ok(())
}

/// Gradient for operand `i` (0 = x, 1 = scale, 2 = bias), accumulated into `din`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    spatial: bool,
    i: usize,
    args: &[WholeArg<T>],
    dout: &[T],
    din: &mut [T],
    st: &NodeState<T>,
) -> Result<()> {
    let x = dense(&args[0].data, "operand")?;
    let scale = dense(&args[1].data, "scale")?;
    let g = Geom::new(args[0].shape, spatial, args[0].layout.rows());
    let c = g.groups;
    if st.aux.len() != HDR + 4 * c {
        return Err(Error::Runtime {
            op: "BatchNormalization".into(),
            name: String::new(),
            detail: "backward without a matching forward".into(),
        });
    }
    let trained = st.aux[0] == T::one();
    let mean = &st.aux[HDR..HDR + c];
    let invstd = &st.aux[HDR + c..HDR + 2 * c];
    // Σ dy and Σ dy·x̂ per statistic: the parameter gradients, and (in training) the
    // terms through which the batch mean and variance depend on x.
    let mut sdy = vec![0.0f64; c];
    let mut sdyx = vec![0.0f64; c];
    for r in 0..g.rows {
        for e in 0..g.d {
            let j = g.group(e);
            let k = r * g.d + e;
            let xhat = ((x[k] - mean[j]) * invstd[j]).as_f64();
            sdy[j] += dout[k].as_f64();
            sdyx[j] += dout[k].as_f64() * xhat;
        }
    }
    match i {
        0 => {
            let kf = g.k().max(1) as f64;
            for r in 0..g.rows {
                for e in 0..g.d {
                    let j = g.group(e);
                    let k = r * g.d + e;
                    let s = scale[j].as_f64() * invstd[j].as_f64();
                    let dy = dout[k].as_f64();
                    let v = if trained {
                        let xhat = ((x[k] - mean[j]) * invstd[j]).as_f64();
                        s * (dy - sdy[j] / kf - xhat * sdyx[j] / kf)
                    } else {
                        s * dy
                    };
                    din[k] += T::from_f64(v);
                }
            }
        }
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
    Ok(())
}

/// The running estimates a training forward computed: (mean, variance, count), to be
/// written into the node's operands 3, 4 and 5 once the forward has finished.
pub(crate) fn pending_update<T: Element>(st: &NodeState<T>) -> Option<(&[T], &[T], T)> {
    if st.aux.len() < HDR || st.aux[0] != T::one() {
        return None;
    }
    let c = (st.aux.len() - HDR) / 4;
    Some((
        &st.aux[HDR + 2 * c..HDR + 3 * c],
        &st.aux[HDR + 3 * c..HDR + 4 * c],
        st.aux[1],
    ))
}
