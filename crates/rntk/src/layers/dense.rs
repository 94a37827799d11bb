//! `Dense(shape)`: y = activation(x·W + b), contracting all (or the last `input_rank`, or
//! all but the first `map_rank`) axes of x.

use super::defaults::lookup;
use super::{as_block, first, layer_err, Activation, Layer};
use crate::error::Result;
use crate::functions::{plus, times_with};
use crate::graph::{parameter, Variable};
use crate::initializer::Initializer;
use crate::tensor::Shape;
use std::sync::Mutex;

struct Params {
    w: Variable,
    b: Option<Variable>,
    input: Shape,
}

/// CNTK's `Dense(shape)`: a fully connected layer.
pub struct Dense {
    shape: Shape,
    activation: Activation,
    init: Initializer,
    bias: bool,
    init_bias: f64,
    input_rank: Option<usize>,
    map_rank: Option<usize>,
    name: String,
    params: Mutex<Option<Params>>,
    /// W's automatic seed, when taken ahead of creation by `reserve_seeds`.
    seed: Mutex<Option<u64>>,
}

impl Dense {
    /// Output shape `shape`; init, activation, bias and init_bias come from the
    /// current `default_options` (else glorot_uniform, identity, true, 0).
    pub fn new(shape: impl Into<Shape>) -> Self {
        const L: &str = "Dense";
        Dense {
            shape: shape.into(),
            activation: lookup(L, |o| o.activation.clone()).unwrap_or(Activation::Identity),
            init: lookup(L, |o| o.init.clone()).unwrap_or_else(Initializer::glorot_uniform),
            bias: lookup(L, |o| o.bias).unwrap_or(true),
            init_bias: lookup(L, |o| o.init_bias).unwrap_or(0.0),
            input_rank: None,
            map_rank: None,
            name: String::new(),
            params: Mutex::new(None),
            seed: Mutex::new(None),
        }
    }
    /// Take W's automatic seed now, as CNTK's `Dense(...)` call does (otherwise it is
    /// taken when the layer is first applied; see [`crate::random`]).
    pub fn reserve_seeds(&self) {
        let created = self.params.lock().map(|p| p.is_some()).unwrap_or(true);
        let mut s = self.seed.lock().unwrap_or_else(|e| e.into_inner());
        if !created && s.is_none() && self.init.is_random() && self.init.seed().is_none() {
            *s = Some(crate::random::generate_random_seed());
        }
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn init(mut self, i: Initializer) -> Self {
        self.init = i;
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
    /// Contract only the last `k` input axes; the leading ones are mapped over.
    pub fn input_rank(mut self, k: usize) -> Self {
        self.input_rank = Some(k);
        self
    }
    /// Contract all but the first `m` input axes.
    pub fn map_rank(mut self, m: usize) -> Self {
        self.map_rank = Some(m);
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// The weight `W` (input axes ++ output shape), once applied.
    pub fn w(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().map(|p| p.w.clone())
    }
    /// The bias `b`, once applied (None with `bias(false)`).
    pub fn b(&self) -> Option<Variable> {
        self.params.lock().ok()?.as_ref().and_then(|p| p.b.clone())
    }

    fn params_for(&self, x: &Variable) -> Result<(Variable, Option<Variable>)> {
        let shape = x.shape();
        let mut guard = self
            .params
            .lock()
            .map_err(|_| layer_err("Dense", &self.name, "parameter lock poisoned"))?;
        if let Some(p) = guard.as_ref() {
            if p.input != shape {
                return Err(layer_err(
                    "Dense",
                    &self.name,
                    format!(
                        "was first applied to inputs of shape {} and now to {shape}",
                        p.input
                    ),
                ));
            }
            return Ok((p.w.clone(), p.b.clone()));
        }
        let contracted: Vec<usize> = match (self.input_rank, self.map_rank) {
            (Some(_), Some(_)) => {
                return Err(layer_err(
                    "Dense",
                    &self.name,
                    "input_rank and map_rank cannot both be given",
                ))
            }
            (Some(k), None) if k <= shape.rank() => shape.dims()[shape.rank() - k..].to_vec(),
            (None, Some(m)) if m <= shape.rank() => shape.dims()[m..].to_vec(),
            (None, None) => shape.dims().to_vec(),
            _ => {
                return Err(layer_err(
                    "Dense",
                    &self.name,
                    format!("input_rank/map_rank exceed the rank of the input shape {shape}"),
                ))
            }
        };
        let mut wshape = contracted;
        wshape.extend_from_slice(self.shape.dims());
        let mut init = self.init.clone().with_output_rank(self.shape.rank());
        if let Some(s) = *self.seed.lock().unwrap_or_else(|e| e.into_inner()) {
            init = init.with_seed(s);
        }
        let w = parameter(wshape, x.dtype(), init, "W")?;
        let b = if self.bias {
            Some(parameter(
                self.shape.clone(),
                x.dtype(),
                Initializer::Constant(self.init_bias),
                "b",
            )?)
        } else {
            None
        };
        *guard = Some(Params {
            w: w.clone(),
            b: b.clone(),
            input: shape,
        });
        Ok((w, b))
    }
}

impl Layer for Dense {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if super::probe::probing() {
            // the axes kept from the input (input_rank / map_rank) ++ the output shape
            let d = x.shape();
            let keep = match (self.input_rank, self.map_rank) {
                (Some(k), None) => d.rank().saturating_sub(k),
                (None, Some(m)) => m.min(d.rank()),
                _ => 0,
            };
            let mut out = d.dims()[..keep].to_vec();
            out.extend_from_slice(self.shape.dims());
            return super::probe::stand_in(out, x, x.info().axes);
        }
        let (w, b) = self.params_for(x)?;
        let out_rank = self.shape.rank().max(1);
        first(as_block(x, "Dense", &self.name, |x| {
            let mut y = times_with(x, &w, out_rank, 0)?;
            if let Some(b) = &b {
                y = plus(&y, b)?;
            }
            Ok(vec![self.activation.apply(&y)?])
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
