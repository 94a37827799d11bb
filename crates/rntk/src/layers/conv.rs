//! CNTK's convolutional layers: `Convolution` (1D/2D/3D), `ConvolutionTranspose`
//! (1D/2D/3D), `MaxPooling`, `AveragePooling`, `GlobalMaxPooling`,
//! `GlobalAveragePooling`, `MaxUnpooling`.
//!
//! As in CNTK 2.7's Layers library: per-axis arguments (`pad`, `strides`, `dilation`) are
//! filled up to the filter's rank by repeating their first entry; the filter is
//! `(num_filters, C, filter_shape…)` with `C` the operand's channels (`(C, num_filters,
//! filter_shape…)` for a transposed convolution), the bias `(num_filters, 1, …)`;
//! `reduction_rank=0` treats the operand as one channel; without `num_filters` the output
//! has no channel axis. The filter's initializer uses CNTK's fan rules for kernels
//! (`filter_rank` = the filter's rank, output rank −1).
//!
//! Convolution along the sequence axis (text CNNs, video) comes in CNTK's two forms, both
//! computed by the sequential convolution op (`ops/conv_seq.rs`), whose first filter axis
//! runs along the sequence: `Convolution(…, sequential=True)` (CNTK's Layers splice
//! past/future values of each step with zeros outside the sequence, so its sequence axis
//! is padded like the op's (`(k−1)/2` steps before), a stride along it is refused as
//! CNTK refuses it, and its bias keeps a 1 for the sequence axis: `(num_filters, 1, 1, …)`
//! of rank 1 + filter rank) and `SequentialConvolution` (the op itself, strides along the
//! sequence allowed; bias `(num_filters, 1, …)` of rank filter rank).

use super::defaults::lookup;
use super::{as_block, as_block_n, first, layer_err, Activation, Layer};
use crate::error::Result;
use crate::functions::{
    convolution, convolution_transpose, global_pooling, plus, pooling, reshape, unpooling,
};
use crate::graph::{parameter, Variable};
use crate::initializer::Initializer;
use crate::ops::{ConvAttrs, PoolAttrs, PoolingType};
use crate::tensor::Shape;
use std::sync::Mutex;

/// `param` filled up to `rank` entries by repeating its first (CNTK's `_pad_to_shape`).
fn pad_to<T: Copy>(param: &[T], rank: usize) -> Vec<T> {
    let mut v = param.to_vec();
    while v.len() < rank {
        v.insert(0, param[0]);
    }
    v
}

/// How a convolution treats the sequence axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeqMode {
    /// Every step on its own.
    None,
    /// `Convolution(…, sequential=True)`: CNTK's window of past/future values.
    Spliced,
    /// `SequentialConvolution`.
    Op,
}

struct Params {
    w: Variable,
    b: Option<Variable>,
    input: Shape,
}

/// CNTK's `Convolution` and `ConvolutionTranspose` layers.
pub struct Convolution {
    filter_shape: Vec<usize>,
    num_filters: Option<usize>,
    activation: Activation,
    init: Initializer,
    pad: Vec<bool>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    bias: bool,
    init_bias: f64,
    reduction_rank: usize,
    groups: usize,
    transpose: bool,
    seq: SeqMode,
    output_shape: Option<Vec<usize>>,
    op_name: &'static str,
    name: String,
    params: Mutex<Option<Params>>,
}

impl Convolution {
    fn with(op_name: &'static str, filter_shape: &[usize], transpose: bool) -> Self {
        Convolution {
            filter_shape: filter_shape.to_vec(),
            num_filters: None,
            activation: lookup(op_name, |o| o.activation.clone()).unwrap_or(Activation::Identity),
            init: lookup(op_name, |o| o.init.clone()).unwrap_or_else(Initializer::glorot_uniform),
            pad: vec![lookup(op_name, |o| o.pad).unwrap_or(false)],
            strides: vec![1],
            dilation: vec![1],
            bias: lookup(op_name, |o| o.bias).unwrap_or(true),
            init_bias: lookup(op_name, |o| o.init_bias).unwrap_or(0.0),
            reduction_rank: 1,
            groups: 1,
            transpose,
            seq: SeqMode::None,
            output_shape: None,
            op_name,
            name: String::new(),
            params: Mutex::new(None),
        }
    }
    /// `Convolution(filter_shape)`: `num_filters`, `pad`, … by the builder methods;
    /// `activation`, `init`, `pad`, `bias`, `init_bias` from `default_options`.
    pub fn new(filter_shape: &[usize]) -> Self {
        Self::with("Convolution", filter_shape, false)
    }
    /// `Convolution1D(filter_shape)`.
    pub fn d1(k: usize) -> Self {
        Self::with("Convolution1D", &[k], false)
    }
    /// `Convolution2D(filter_shape)`.
    pub fn d2(k: [usize; 2]) -> Self {
        Self::with("Convolution2D", &k, false)
    }
    /// `Convolution3D(filter_shape)`.
    pub fn d3(k: [usize; 3]) -> Self {
        Self::with("Convolution3D", &k, false)
    }
    /// `SequentialConvolution(filter_shape)`: `filter_shape[0]` runs along the sequence
    /// axis (`pad`, `strides`, `dilation` per axis, the sequence's first).
    pub fn sequential_convolution(filter_shape: &[usize]) -> Self {
        let mut c = Self::with("SequentialConvolution", filter_shape, false);
        c.seq = SeqMode::Op;
        c
    }
    /// `Convolution(…, sequential=True)`: `filter_shape[0]` runs along the sequence axis,
    /// the other axes over each step's sample.
    pub fn sequential(mut self, s: bool) -> Self {
        self.seq = match (s, self.seq) {
            (false, SeqMode::Spliced) => SeqMode::None,
            (true, SeqMode::None) => SeqMode::Spliced,
            (_, m) => m,
        };
        self
    }
    /// `ConvolutionTranspose(filter_shape)`.
    pub fn transpose(filter_shape: &[usize]) -> Self {
        Self::with("ConvolutionTranspose", filter_shape, true)
    }
    /// `ConvolutionTranspose1D(filter_shape)`.
    pub fn transpose1d(k: usize) -> Self {
        Self::with("ConvolutionTranspose1D", &[k], true)
    }
    /// `ConvolutionTranspose2D(filter_shape)`.
    pub fn transpose2d(k: [usize; 2]) -> Self {
        Self::with("ConvolutionTranspose2D", &k, true)
    }
    /// `ConvolutionTranspose3D(filter_shape)`.
    pub fn transpose3d(k: [usize; 3]) -> Self {
        Self::with("ConvolutionTranspose3D", &k, true)
    }
    pub fn num_filters(mut self, n: usize) -> Self {
        self.num_filters = Some(n);
        self
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn init(mut self, i: Initializer) -> Self {
        self.init = i;
        self
    }
    /// CNTK's automatic padding on every filter axis.
    pub fn pad(mut self, p: bool) -> Self {
        self.pad = vec![p];
        self
    }
    /// Automatic padding per filter axis.
    pub fn pad_axes(mut self, p: &[bool]) -> Self {
        self.pad = p.to_vec();
        self
    }
    pub fn strides(mut self, s: &[usize]) -> Self {
        self.strides = s.to_vec();
        self
    }
    pub fn dilation(mut self, d: &[usize]) -> Self {
        self.dilation = d.to_vec();
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn init_bias(mut self, v: f64) -> Self {
        self.init_bias = v;
        self
    }
    /// 0: the operand has no channel axis (it is treated as one channel).
    pub fn reduction_rank(mut self, r: usize) -> Self {
        self.reduction_rank = r;
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Transposed convolutions: the output's spatial shape.
    pub fn output_shape(mut self, s: &[usize]) -> Self {
        self.output_shape = Some(s.to_vec());
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// The filter, once applied.
    pub fn w(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().map(|p| p.w.clone())
    }
    /// The bias, once applied (None with `bias(false)`).
    pub fn b(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().and_then(|p| p.b.clone())
    }

    fn err(&self, detail: impl Into<String>) -> crate::error::Error {
        layer_err(self.op_name, &self.name, detail)
    }

    /// The operand's channels: its first axis, or 1 without a channel axis.
    fn channels(&self, shape: &Shape) -> Result<usize> {
        let rank = self.filter_shape.len();
        if self.filter_shape.is_empty() || rank > 3 {
            return Err(self.err(format!(
                "filter_shape {:?} must have 1 to 3 axes",
                self.filter_shape
            )));
        }
        if self.reduction_rank > 1 {
            return Err(self.err("reduction_rank must be 0 or 1"));
        }
        let along_seq = usize::from(self.seq != SeqMode::None);
        let want = rank - along_seq + self.reduction_rank;
        if shape.rank() != want {
            return Err(self.err(format!(
                "an operand of shape {shape} for a filter of rank {rank}{} with reduction_rank \
                 {} (expected rank {want})",
                if along_seq == 1 {
                    " (its first axis along the sequence)"
                } else {
                    ""
                },
                self.reduction_rank,
            )));
        }
        Ok(if self.reduction_rank == 1 {
            shape.dims()[0]
        } else {
            1
        })
    }

    /// The shapes of `W` and `b` (if any) for inputs of sample shape `shape`.
    fn param_shapes(&self, shape: &Shape) -> Result<(Vec<usize>, Option<Vec<usize>>)> {
        let c = self.channels(shape)?;
        let o = self.num_filters.unwrap_or(1);
        let (groups, rank) = (self.groups.max(1), self.filter_shape.len());
        if c % groups != 0 {
            return Err(self.err(format!(
                "{c} channels are not divisible into {groups} groups"
            )));
        }
        let mut wshape = if self.transpose {
            vec![c, o / groups]
        } else {
            vec![o, c / groups]
        };
        wshape.extend_from_slice(&self.filter_shape);
        let bshape = self.bias.then(|| {
            let ones = if self.seq == SeqMode::Op {
                rank - 1
            } else {
                rank
            };
            [vec![o], vec![1; ones]].concat()
        });
        Ok((wshape, bshape))
    }

    fn params_for(&self, x: &Variable) -> Result<(Variable, Option<Variable>)> {
        let shape = x.shape();
        let mut guard = self
            .params
            .lock()
            .map_err(|_| self.err("parameter lock poisoned"))?;
        if let Some(p) = guard.as_ref() {
            if p.input != shape {
                return Err(self.err(format!(
                    "was first applied to inputs of shape {} and now to {shape}",
                    p.input
                )));
            }
            return Ok((p.w.clone(), p.b.clone()));
        }
        let (wshape, bshape) = self.param_shapes(&shape)?;
        let init = self.init.clone().with_ranks(-1, self.filter_shape.len())?;
        let w = parameter(wshape, x.dtype(), init, "W")?;
        let b = match bshape {
            Some(bs) => Some(parameter(
                bs,
                x.dtype(),
                Initializer::Constant(self.init_bias),
                "b",
            )?),
            None => None,
        };
        *guard = Some(Params {
            w: w.clone(),
            b: b.clone(),
            input: shape,
        });
        Ok((w, b))
    }

    fn attrs(&self) -> ConvAttrs {
        let rank = self.filter_shape.len();
        ConvAttrs {
            strides: [vec![1], pad_to(&self.strides, rank)].concat(),
            auto_padding: [vec![false], pad_to(&self.pad, rank)].concat(),
            lower_pad: vec![0],
            upper_pad: vec![0],
            dilation: [vec![1], pad_to(&self.dilation, rank)].concat(),
            groups: self.groups.max(1),
            reduction_rank: 1,
            sequential: self.seq != SeqMode::None,
            output_shape: self.output_shape.clone(),
        }
    }

    /// What CNTK refuses of a sequential layer.
    fn check_sequential(&self) -> Result<()> {
        if self.seq == SeqMode::None {
            return Ok(());
        }
        if self.transpose {
            return Err(self.err("a transposed convolution cannot run along the sequence axis"));
        }
        let rank = self.filter_shape.len();
        let (s, d) = (pad_to(&self.strides, rank), pad_to(&self.dilation, rank));
        if self.seq == SeqMode::Spliced && (s.first() != Some(&1) || d.first() != Some(&1)) {
            return Err(self.err(format!(
                "sequential=True splices a window of steps: a stride ({:?}) or dilation ({:?}) \
                 along the sequence axis is not supported (use SequentialConvolution)",
                s.first(),
                d.first()
            )));
        }
        Ok(())
    }

    /// `Convolution(sequential=True)`'s bias `(O, 1, 1, …)` keeps a 1 for the sequence
    /// axis, which the op's per-step output lacks: the same values, one axis fewer.
    fn bias_for_output(&self, b: &Variable) -> Result<Variable> {
        if self.seq != SeqMode::Spliced {
            return Ok(b.clone());
        }
        let d = b.shape().dims().to_vec();
        reshape(b, [&d[..1], &d[2..]].concat())
    }

    fn body(&self, x: &Variable, w: &Variable, b: Option<&Variable>) -> Result<Variable> {
        let mut x = x.clone();
        if self.reduction_rank == 0 {
            let mut dims = vec![1];
            dims.extend_from_slice(x.shape().dims());
            x = reshape(&x, dims)?;
        }
        let mut y = if self.transpose {
            convolution_transpose(w, &x, self.attrs())?
        } else {
            convolution(w, &x, self.attrs())?
        };
        if let Some(b) = b {
            y = plus(&y, &self.bias_for_output(b)?)?;
        }
        if self.num_filters.is_none() {
            y = reshape(&y, y.shape().dims()[1..].to_vec())?;
        }
        self.activation.apply(&y)
    }
}

impl Layer for Convolution {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if self.num_filters.is_none() && self.groups > 1 {
            return Err(self.err("groups need num_filters"));
        }
        self.check_sequential()?;
        if super::probe::probing() {
            // a shape probe: the output's shape from stand-ins of W and b (none made)
            let (ws, bs) = self.param_shapes(&x.shape())?;
            let none = crate::tensor::DynamicAxes::None;
            let w = super::probe::stand_in(ws, x, none.clone())?;
            let b = bs.map(|s| super::probe::stand_in(s, x, none.clone()));
            return self.body(x, &w, b.transpose()?.as_ref());
        }
        let (w, b) = self.params_for(x)?;
        first(as_block(x, self.op_name, &self.name, |x| {
            Ok(vec![self.body(x, &w, b.as_ref())?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        let g = self.params.lock().ok();
        g.as_ref()
            .and_then(|g| g.as_ref())
            .map(|p| std::iter::once(p.w.clone()).chain(p.b.clone()).collect())
            .unwrap_or_default()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// CNTK's `MaxPooling`, `AveragePooling`, `GlobalMaxPooling` and `GlobalAveragePooling`.
pub struct Pooling {
    attrs: PoolAttrs,
    op_name: &'static str,
    name: String,
}

impl Pooling {
    fn windowed(kind: PoolingType, op_name: &'static str, window: &[usize]) -> Self {
        let mut attrs = PoolAttrs::new(kind, Some(window.to_vec()));
        attrs.auto_padding = vec![lookup(op_name, |o| o.pad).unwrap_or(false)];
        Pooling {
            attrs,
            op_name,
            name: String::new(),
        }
    }
    /// `MaxPooling(filter_shape)` (stride 1, `pad` from `default_options`, else False).
    pub fn max(window: &[usize]) -> Self {
        Self::windowed(PoolingType::Max, "MaxPooling", window)
    }
    /// `AveragePooling(filter_shape)`.
    pub fn average(window: &[usize]) -> Self {
        Self::windowed(PoolingType::Average, "AveragePooling", window)
    }
    /// `GlobalMaxPooling()`: `(C, spatial…)` → `(C, 1, …)`.
    pub fn global_max() -> Self {
        Pooling {
            attrs: PoolAttrs::new(PoolingType::Max, None),
            op_name: "GlobalMaxPooling",
            name: String::new(),
        }
    }
    /// `GlobalAveragePooling()`.
    pub fn global_average() -> Self {
        Pooling {
            attrs: PoolAttrs::new(PoolingType::Average, None),
            op_name: "GlobalAveragePooling",
            name: String::new(),
        }
    }
    pub fn strides(mut self, s: &[usize]) -> Self {
        self.attrs.strides = s.to_vec();
        self
    }
    pub fn pad(mut self, p: bool) -> Self {
        self.attrs.auto_padding = vec![p];
        self
    }
    pub fn pad_axes(mut self, p: &[bool]) -> Self {
        self.attrs.auto_padding = p.to_vec();
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// The per-axis lists filled up to the window's rank, as CNTK's `_Pooling` does.
    fn resolved(&self) -> PoolAttrs {
        let mut a = self.attrs.clone();
        if let Some(w) = &a.window {
            a.strides = pad_to(&a.strides, w.len());
            a.auto_padding = pad_to(&a.auto_padding, w.len());
        }
        a
    }
}

impl Layer for Pooling {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        let a = self.resolved();
        first(as_block(x, self.op_name, &self.name, |x| {
            Ok(vec![match a.window {
                None => global_pooling(x, a.kind)?,
                Some(_) => pooling(x, a.clone())?,
            }])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// CNTK's `MaxUnpooling(filter_shape, strides, pad)`, applied to `(u, x)`: `u` put at
/// the first maximum of each window of `x` (the input of the pooling it undoes).
pub struct MaxUnpooling {
    pool: Pooling,
}

impl MaxUnpooling {
    pub fn new(window: &[usize]) -> Self {
        MaxUnpooling {
            pool: Pooling::windowed(PoolingType::Max, "MaxUnpooling", window),
        }
    }
    pub fn strides(mut self, s: &[usize]) -> Self {
        self.pool = self.pool.strides(s);
        self
    }
    pub fn pad(mut self, p: bool) -> Self {
        self.pool = self.pool.pad(p);
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.pool = self.pool.name(n);
        self
    }
    /// Unpool `u` onto the windows of `x`.
    pub fn apply2(&self, u: &Variable, x: &Variable) -> Result<Variable> {
        let a = self.pool.resolved();
        first(as_block_n(
            &[u.clone(), x.clone()],
            "MaxUnpooling",
            &self.pool.name,
            |v| Ok(vec![unpooling(&v[0], &v[1], a.clone())?]),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::pad_to;

    #[test]
    fn per_axis_arguments_fill_from_their_first_entry() {
        assert_eq!(pad_to(&[2], 3), vec![2, 2, 2]);
        assert_eq!(pad_to(&[true, false], 3), vec![true, true, false]);
        assert_eq!(pad_to(&[1, 2], 2), vec![1, 2]);
    }
}
