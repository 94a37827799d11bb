//! `Embedding(shape)`: y = x·E, E of shape (input_dim,) + shape; x usually sparse one-hot,
//! which makes this a sparse × dense product that never densifies x.

use super::defaults::lookup;
use super::{as_block, first, layer_err, Layer};
use crate::error::Result;
use crate::functions::times_with;
use crate::graph::{constant, parameter, Variable};
use crate::initializer::Initializer;
use crate::tensor::{Shape, Tensor};
use std::sync::Mutex;

/// CNTK's `Embedding(shape)` (learned) or `Embedding(weights=…)` (fixed): a lookup table.
pub struct Embedding {
    shape: Option<Shape>,
    init: Initializer,
    weights: Option<Tensor>,
    name: String,
    table: Mutex<Option<Variable>>,
    /// E's automatic seed, when taken ahead of creation by `reserve_seeds`.
    seed: Mutex<Option<u64>>,
}

impl Embedding {
    /// A learned table with output shape `shape` (init from `default_options`, else glorot).
    pub fn new(shape: impl Into<Shape>) -> Self {
        Embedding {
            shape: Some(shape.into()),
            init: lookup("Embedding", |o| o.init.clone())
                .unwrap_or_else(Initializer::glorot_uniform),
            weights: None,
            name: String::new(),
            table: Mutex::new(None),
            seed: Mutex::new(None),
        }
    }
    /// Take E's automatic seed now, as CNTK's `Embedding(...)` call does (otherwise it
    /// is taken when the layer is first applied; see [`crate::random`]).
    pub fn reserve_seeds(&self) {
        let created = self.table.lock().map(|t| t.is_some()).unwrap_or(true);
        let mut s = self.seed.lock().unwrap_or_else(|e| e.into_inner());
        let learned = self.weights.is_none();
        if learned && !created && s.is_none() && self.init.is_random() && self.init.seed().is_none()
        {
            *s = Some(crate::random::generate_random_seed());
        }
    }
    /// A fixed table (a constant, not trained): rows are input indices.
    pub fn from_weights(weights: Tensor) -> Self {
        Embedding {
            shape: None,
            init: Initializer::glorot_uniform(),
            weights: Some(weights),
            name: String::new(),
            table: Mutex::new(None),
            seed: Mutex::new(None),
        }
    }
    pub fn init(mut self, i: Initializer) -> Self {
        self.init = i;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// The table `E`, once applied.
    pub fn e(&self) -> Option<Variable> {
        self.table.lock().ok()?.clone()
    }

    fn table_for(&self, x: &Variable) -> Result<Variable> {
        let mut g = self
            .table
            .lock()
            .map_err(|_| layer_err("Embedding", &self.name, "lock poisoned"))?;
        let xs = x.shape();
        if let Some(t) = g.as_ref() {
            // The table's first axis is the input dimension it was built for.
            if t.shape().dims().first() != xs.dims().first() || xs.rank() != 1 {
                return Err(layer_err(
                    "Embedding",
                    &self.name,
                    format!(
                        "table of shape {} was built for inputs of shape ({},) and is now applied to {xs}",
                        t.shape(),
                        t.shape().dims().first().copied().unwrap_or(0)
                    ),
                ));
            }
            return Ok(t.clone());
        }
        if xs.rank() != 1 {
            return Err(layer_err(
                "Embedding",
                &self.name,
                format!("input must be a vector (one-hot of the vocabulary), got shape {xs}"),
            ));
        }
        let t = match (&self.weights, &self.shape) {
            (Some(w), _) => {
                if w.shape().dims().first() != Some(&xs.dims()[0]) {
                    return Err(layer_err(
                        "Embedding",
                        &self.name,
                        format!(
                            "weights of shape {} do not start with the input dimension {}",
                            w.shape(),
                            xs.dims()[0]
                        ),
                    ));
                }
                constant(w.cast(x.dtype()), "E")
            }
            (None, Some(s)) => {
                let mut shape = vec![xs.dims()[0]];
                shape.extend_from_slice(s.dims());
                let mut init = self.init.clone().with_output_rank(s.rank());
                if let Some(seed) = *self.seed.lock().unwrap_or_else(|e| e.into_inner()) {
                    init = init.with_seed(seed);
                }
                parameter(shape, x.dtype(), init, "E")?
            }
            (None, None) => {
                return Err(layer_err(
                    "Embedding",
                    &self.name,
                    "needs a shape or weights",
                ))
            }
        };
        *g = Some(t.clone());
        Ok(t)
    }
}

impl Layer for Embedding {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if super::probe::probing() {
            let out = match (&self.shape, &self.weights) {
                (Some(s), _) => s.clone(),
                (None, Some(w)) => Shape::new(w.shape().dims()[1..].to_vec()),
                (None, None) => Shape::scalar(),
            };
            return super::probe::stand_in(out, x, x.info().axes);
        }
        let e = self.table_for(x)?;
        let out_rank = e.shape().rank() - 1;
        first(as_block(x, "Embedding", &self.name, |x| {
            Ok(vec![times_with(x, &e, out_rank.max(1), 0)?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.e().filter(|e| e.is_parameter()).into_iter().collect()
    }
    fn name(&self) -> &str {
        &self.name
    }
}
