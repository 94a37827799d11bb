//! `LayerNormalization` (per sample, over its static axes) and `BatchNormalization`
//! (over the minibatch, with running estimates for inference), as CNTK 2.7 defines them.

use super::defaults::lookup;
use super::{as_block, first, layer_err, Layer};
use crate::error::{Error, Result};
use crate::functions::{element_divide, element_times, minus, named, plus, reduce_mean, sqrt};
use crate::graph::{constant, parameter, scalar, Variable};
use crate::initializer::Initializer;
use crate::ops::batchnorm::stat_shape;
use crate::ops::Op;
use crate::tensor::{Shape, Tensor};
use std::sync::Mutex;

/// CNTK's `LayerNormalization(initial_scale=1, initial_bias=0, epsilon=1e-5)`:
/// `y = (x − mean(x)) / (std(x) + ε) · scale + bias`, mean and (biased) std over all
/// static elements of each sample; ε is added to the standard deviation, not the
/// variance. `scale` and `bias` are vectors along the input's last axis (CNTK infers
/// a rank-1 parameter there), broadcast over the other axes.
pub struct LayerNormalization {
    initial_scale: f64,
    initial_bias: f64,
    epsilon: f64,
    name: String,
    params: Mutex<Option<(Variable, Variable, Shape)>>,
}

impl LayerNormalization {
    /// ε from `default_options` (else 1e-5).
    pub fn new() -> Self {
        LayerNormalization {
            initial_scale: 1.0,
            initial_bias: 0.0,
            epsilon: lookup("LayerNormalization", |o| o.epsilon).unwrap_or(1e-5),
            name: String::new(),
            params: Mutex::new(None),
        }
    }
    pub fn initial_scale(mut self, v: f64) -> Self {
        self.initial_scale = v;
        self
    }
    pub fn initial_bias(mut self, v: f64) -> Self {
        self.initial_bias = v;
        self
    }
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// `scale`, once applied.
    pub fn scale(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().map(|p| p.0.clone())
    }
    /// `bias`, once applied.
    pub fn bias(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().map(|p| p.1.clone())
    }

    fn params_for(&self, x: &Variable) -> Result<(Variable, Variable)> {
        let shape = x.shape();
        let mut g = self
            .params
            .lock()
            .map_err(|_| layer_err("LayerNormalization", &self.name, "lock poisoned"))?;
        if let Some((s, b, first)) = g.as_ref() {
            if *first != shape {
                return Err(layer_err(
                    "LayerNormalization",
                    &self.name,
                    format!("was first applied to inputs of shape {first} and now to {shape}"),
                ));
            }
            return Ok((s.clone(), b.clone()));
        }
        let pshape = match shape.dims().last() {
            Some(&d) => Shape::from([d]),
            None => Shape::scalar(),
        };
        let s = parameter(
            pshape.clone(),
            x.dtype(),
            Initializer::Constant(self.initial_scale),
            "scale",
        )?;
        let b = parameter(
            pshape,
            x.dtype(),
            Initializer::Constant(self.initial_bias),
            "bias",
        )?;
        *g = Some((s.clone(), b.clone(), shape));
        Ok((s, b))
    }
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for LayerNormalization {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if super::probe::probing() {
            return Ok(x.clone());
        }
        let (scale, bias) = self.params_for(x)?;
        let eps = self.epsilon;
        first(as_block(x, "LayerNormalization", &self.name, |x| {
            let mean = reduce_mean(x, None, true)?;
            let x0 = minus(x, &mean)?;
            let mut std = sqrt(&reduce_mean(&element_times(&x0, &x0)?, None, true)?)?;
            if eps != 0.0 {
                std = plus(&std, &scalar(eps, x.dtype()))?;
            }
            let xhat = element_divide(&x0, &std)?;
            Ok(vec![plus(&element_times(&xhat, &scale)?, &bias)?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.scale().into_iter().chain(self.bias()).collect()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

struct BnParams {
    scale: Variable,
    bias: Variable,
    mean: Variable,
    var: Variable,
    count: Variable,
    input: Shape,
}

/// CNTK's `BatchNormalization(map_rank=None, init_scale=1,
/// normalization_time_constant=5000, blend_time_constant=0, epsilon=1e-5)`.
///
/// Training forwards (`Executor::forward(.., true)`) normalize with the minibatch's
/// mean and biased variance over every sample (batch and sequence steps) and update the
/// running estimates `aggregate_mean`, `aggregate_variance` (unbiased) and
/// `aggregate_count`, which the layer owns as constants; inference forwards use the
/// estimates. `map_rank(1)` normalizes per channel (the leading axis) over all other
/// axes, with `scale`/`bias` of shape `(C,)`. Only `blend_time_constant = 0` is
/// supported. Note: CNTK also counts the padding gaps of a ragged sequence batch in the
/// statistics; rntk uses the real steps only (they agree for equal-length sequences).
pub struct BatchNormalization {
    map_rank: Option<usize>,
    init_scale: f64,
    time_constant: f64,
    blend_time_constant: f64,
    epsilon: f64,
    name: String,
    params: Mutex<Option<BnParams>>,
}

impl BatchNormalization {
    /// map_rank, normalization_time_constant and epsilon come from `default_options`.
    pub fn new() -> Self {
        const L: &str = "BatchNormalization";
        BatchNormalization {
            map_rank: lookup(L, |o| o.map_rank),
            init_scale: 1.0,
            time_constant: lookup(L, |o| o.normalization_time_constant).unwrap_or(5000.0),
            blend_time_constant: 0.0,
            epsilon: lookup(L, |o| o.epsilon).unwrap_or(1e-5),
            name: String::new(),
            params: Mutex::new(None),
        }
    }
    /// `Some(1)`: per-channel (spatial) statistics; `None`: per element.
    pub fn map_rank(mut self, m: Option<usize>) -> Self {
        self.map_rank = m;
        self
    }
    pub fn init_scale(mut self, v: f64) -> Self {
        self.init_scale = v;
        self
    }
    /// Samples over which the running estimates forget (0 = last minibatch only,
    /// infinity = frozen after the first minibatch, negative = average of all).
    pub fn normalization_time_constant(mut self, t: f64) -> Self {
        self.time_constant = t;
        self
    }
    pub fn blend_time_constant(mut self, t: f64) -> Self {
        self.blend_time_constant = t;
        self
    }
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    fn get(&self, f: impl Fn(&BnParams) -> &Variable) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().map(|p| f(p).clone())
    }
    pub fn scale(&self) -> Option<Variable> {
        self.get(|p| &p.scale)
    }
    pub fn bias(&self) -> Option<Variable> {
        self.get(|p| &p.bias)
    }
    pub fn aggregate_mean(&self) -> Option<Variable> {
        self.get(|p| &p.mean)
    }
    pub fn aggregate_variance(&self) -> Option<Variable> {
        self.get(|p| &p.var)
    }
    pub fn aggregate_count(&self) -> Option<Variable> {
        self.get(|p| &p.count)
    }

    fn spatial(&self) -> Result<bool> {
        match self.map_rank {
            None => Ok(false),
            Some(1) => Ok(true),
            Some(m) => Err(layer_err(
                "BatchNormalization",
                &self.name,
                format!("map_rank must be 1 or None, got {m}"),
            )),
        }
    }

    fn params_for(&self, x: &Variable) -> Result<BnParams> {
        let shape = x.shape();
        let mut g = self
            .params
            .lock()
            .map_err(|_| layer_err("BatchNormalization", &self.name, "lock poisoned"))?;
        if let Some(p) = g.as_ref() {
            if p.input != shape {
                return Err(layer_err(
                    "BatchNormalization",
                    &self.name,
                    format!(
                        "was first applied to inputs of shape {} and now to {shape}",
                        p.input
                    ),
                ));
            }
        } else {
            let spatial = self.spatial()?;
            let ss = stat_shape(&shape, spatial).ok_or_else(|| {
                layer_err(
                    "BatchNormalization",
                    &self.name,
                    format!("map_rank=1 needs an input of rank ≥ 1, got shape {shape}"),
                )
            })?;
            let dt = x.dtype();
            let zeros = |s: &Shape| Tensor::zeros(s.clone(), dt);
            *g = Some(BnParams {
                scale: parameter(
                    ss.clone(),
                    dt,
                    Initializer::Constant(self.init_scale),
                    "scale",
                )?,
                bias: parameter(ss.clone(), dt, Initializer::Constant(0.0), "bias")?,
                mean: constant(zeros(&ss), "aggregate_mean"),
                var: constant(zeros(&ss), "aggregate_variance"),
                count: constant(zeros(&Shape::scalar()), "aggregate_count"),
                input: shape,
            });
        }
        let p = g
            .as_ref()
            .ok_or_else(|| Error::Argument("BatchNormalization: parameters missing".into()))?;
        Ok(BnParams {
            scale: p.scale.clone(),
            bias: p.bias.clone(),
            mean: p.mean.clone(),
            var: p.var.clone(),
            count: p.count.clone(),
            input: p.input.clone(),
        })
    }
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for BatchNormalization {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if super::probe::probing() {
            return Ok(x.clone());
        }
        if self.blend_time_constant != 0.0 {
            return Err(Error::Unsupported(format!(
                "BatchNormalization{}: blend_time_constant {} (only 0, statistics of the \
                 current minibatch in training, is implemented)",
                if self.name.is_empty() {
                    String::new()
                } else {
                    format!(" '{}'", self.name)
                },
                self.blend_time_constant
            )));
        }
        if self.epsilon.is_nan() || self.epsilon < 0.0 {
            return Err(layer_err(
                "BatchNormalization",
                &self.name,
                format!("epsilon must be ≥ 0, got {}", self.epsilon),
            ));
        }
        let spatial = self.spatial()?;
        let p = self.params_for(x)?;
        let op = Op::BatchNorm {
            spatial,
            epsilon: self.epsilon,
            normalization_time_constant: self.time_constant,
        };
        first(as_block(x, "BatchNormalization", &self.name, |x| {
            Ok(vec![named(
                op,
                &[x, &p.scale, &p.bias, &p.mean, &p.var, &p.count],
                "",
            )?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.scale().into_iter().chain(self.bias()).collect()
    }
    fn name(&self) -> &str {
        &self.name
    }
}
