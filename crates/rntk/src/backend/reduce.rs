//! Reductions: over static axes per sample, over everything, and the minibatch
//! statistics of batch normalization.

use super::elementwise::MAX_RANK;
use super::memory::{Memory, Operand, Par};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

/// The reduction applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    LogSumExp,
}

/// Which axes of a shape of rank `rank` are reduced (`None` = all). Errors name the
/// offending axis.
pub fn reduced_mask(
    rank: usize,
    axes: Option<&[isize]>,
) -> std::result::Result<[bool; MAX_RANK], String> {
    if rank > MAX_RANK {
        return Err(format!("reductions support static ranks up to {MAX_RANK}"));
    }
    let mut mask = [false; MAX_RANK];
    match axes {
        None => mask[..rank].iter_mut().for_each(|m| *m = true),
        Some(list) => {
            for &a in list {
                let r = rank as isize;
                let k = if a < 0 { a + r } else { a };
                if !(0..r).contains(&k) {
                    return Err(format!("axis {a} is out of range for rank {rank}"));
                }
                if std::mem::replace(&mut mask[k as usize], true) {
                    return Err(format!("axis {a} is listed twice"));
                }
            }
        }
    }
    Ok(mask)
}

/// The two odometers of one sample: kept axes (outer) and reduced axes (inner), each
/// with its dims and input strides. Every output element owns the input elements that
/// share its kept indices.
#[derive(Clone, Debug)]
pub struct ReduceGeom {
    kept: usize,
    kdims: [usize; MAX_RANK],
    kstr: [usize; MAX_RANK],
    red: usize,
    rdims: [usize; MAX_RANK],
    rstr: [usize; MAX_RANK],
    /// Input elements reduced into one output element.
    pub count: usize,
    /// Elements of one input sample.
    pub numel: usize,
}

impl ReduceGeom {
    pub fn new(shape: &Shape, axes: Option<&[isize]>) -> Result<Self> {
        let rank = shape.rank();
        let mask = reduced_mask(rank, axes)
            .map_err(|d| Error::shape("ReduceElements", "", format!("{d} (shape {shape})")))?;
        let mut g = ReduceGeom {
            kept: 0,
            kdims: [1; MAX_RANK],
            kstr: [0; MAX_RANK],
            red: 0,
            rdims: [1; MAX_RANK],
            rstr: [0; MAX_RANK],
            count: 1,
            numel: shape.numel(),
        };
        let mut stride = 1;
        let mut strides = [0usize; MAX_RANK];
        for k in (0..rank).rev() {
            strides[k] = stride;
            stride *= shape.dims()[k];
        }
        for k in 0..rank {
            let d = shape.dims()[k];
            if mask[k] {
                g.rdims[g.red] = d;
                g.rstr[g.red] = strides[k];
                g.red += 1;
                g.count *= d;
            } else {
                g.kdims[g.kept] = d;
                g.kstr[g.kept] = strides[k];
                g.kept += 1;
            }
        }
        Ok(g)
    }

    /// Elements of one output sample.
    pub fn out_numel(&self) -> usize {
        self.kdims[..self.kept].iter().product()
    }

    /// Call `f(out_index, input_base)` for every output element, in row-major order.
    #[inline]
    pub fn for_each_out(&self, f: impl FnMut(usize, usize)) {
        odometer(&self.kdims[..self.kept], &self.kstr[..self.kept], f);
    }

    /// Call `f(input_offset)` for every input element reduced into one output.
    #[inline]
    pub fn for_each_in(&self, base: usize, mut f: impl FnMut(usize)) {
        odometer(&self.rdims[..self.red], &self.rstr[..self.red], |_, off| {
            f(base + off)
        });
    }
}

/// Row-major walk over `dims`, calling `f(linear_index, Σ idx·stride)`.
#[inline]
fn odometer(dims: &[usize], strides: &[usize], mut f: impl FnMut(usize, usize)) {
    let total: usize = dims.iter().product();
    let r = dims.len();
    let mut idx = [0usize; MAX_RANK];
    let mut off = 0usize;
    for e in 0..total {
        f(e, off);
        let mut k = r;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            off += strides[k];
            if idx[k] < dims[k] {
                break;
            }
            off -= strides[k] * dims[k];
            idx[k] = 0;
        }
    }
}

/// One batch normalization over `rows` samples of `d` elements: statistic `e / inner`
/// for element `e` (`inner = 1` unless spatial), `groups` statistics.
#[derive(Clone, Copy, Debug)]
pub struct NormGeom {
    pub rows: usize,
    pub d: usize,
    pub groups: usize,
    pub inner: usize,
    pub epsilon: f64,
    pub time_constant: f64,
    /// A ReLU folded in: the output is `max(·, 0)`, and the backward's `dout` is the
    /// ReLU's gradient, masked by the output (`out > 0`).
    pub relu: bool,
}

impl NormGeom {
    /// Values the statistics buffer holds: `[count_after, mean.., invstd.., new_mean..,
    /// new_var..]`.
    pub fn stats_len(&self) -> usize {
        1 + 4 * self.groups
    }
}

/// The operands of batch normalization: `[x, scale, bias, running_mean,
/// running_variance, running_count]`.
pub type NormArgs<'a, B, T> = [<B as Memory>::Ref<'a, T>; 6];

/// Reduction kernels.
pub trait Reductions: Memory {
    /// Per row, `out = reduce(x)` over the reduced axes of `g`.
    fn reduce<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Self, T>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din += dout · ∂out/∂x` per row.
    #[allow(clippy::too_many_arguments)]
    fn reduce_backward<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Self, T>,
        out: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
    );
    /// `out[0] = reduce(x)` over every element.
    fn reduce_all<T: Element>(&self, op: ReduceOp, x: Self::Ref<'_, T>, out: Self::Mut<'_, T>);
    /// `din += dout[0] · ∂out/∂x`.
    fn reduce_all_backward<T: Element>(
        &self,
        op: ReduceOp,
        x: Self::Ref<'_, T>,
        out: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
    );
    /// Batch normalization forward: minibatch statistics when `training` (the updated
    /// running estimates into `stats`), the running estimates otherwise. `par` may split
    /// the work over threads; every statistic is summed in the same order regardless.
    fn batch_norm<T: Element>(
        &self,
        g: &NormGeom,
        args: NormArgs<'_, Self, T>,
        training: bool,
        out: Self::Mut<'_, T>,
        stats: Self::Mut<'_, T>,
        par: Par,
    );
    /// `din +=` the gradient of operand `i` (0 = x, 1 = scale, 2 = bias) given `od` =
    /// (the forward's output, its gradient); the output is read only when `g.relu`.
    /// `din.1` (only for operand 0): `din.0` holds no values yet, write `0 + gradient`.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        x: Self::Ref<'_, T>,
        scale: Self::Ref<'_, T>,
        stats: Self::Ref<'_, T>,
        od: (Self::Ref<'_, T>, Self::Ref<'_, T>),
        din: (Self::Mut<'_, T>, bool),
        par: Par,
    );
    /// [`Reductions::batch_norm_backward`] for operand `i`, and the scale and bias
    /// gradients of the same pass added into `params` (`groups` values each: scale, then
    /// bias), so the calls for the other operands read them instead of the data. The
    /// default makes the three calls; a backend overrides it to sum over the data once.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward_keep<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        (x, scale, stats): (Self::Ref<'_, T>, Self::Ref<'_, T>, Self::Ref<'_, T>),
        od: (Self::Ref<'_, T>, Self::Ref<'_, T>),
        din: (Self::Mut<'_, T>, bool),
        params: Self::Mut<'_, T>,
        par: Par,
    ) {
        self.batch_norm_backward(g, i, trained, x, scale, stats, od, din, par);
        let (ps, pb) = Self::split_at(params, g.groups);
        self.batch_norm_backward(g, 1, trained, x, scale, stats, od, (ps, false), par);
        self.batch_norm_backward(g, 2, trained, x, scale, stats, od, (pb, false), par);
    }
}
