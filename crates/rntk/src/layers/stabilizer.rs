//! Self-stabilizer: x·β with β = ln(1 + e^{s·α})/s, α learnable (one scalar), s = 4, and α
//! starting at ln(e^s − 1)/s so that β = 1.

use super::defaults::lookup;
use super::{as_block, first, layer_err, Layer};
use crate::error::Result;
use crate::functions::{element_times, softplus};
use crate::graph::{parameter, scalar, Variable};
use crate::initializer::Initializer;
use crate::tensor::{DType, Shape};
use std::sync::Mutex;

/// CNTK's `Stabilizer(steepness=4)`.
pub struct Stabilizer {
    steepness: f64,
    enabled: bool,
    name: String,
    alpha: Mutex<Option<Variable>>,
}

impl Stabilizer {
    pub fn new() -> Self {
        Stabilizer {
            steepness: 4.0,
            enabled: lookup("Stabilizer", |o| o.enable_self_stabilization).unwrap_or(true),
            name: String::new(),
            alpha: Mutex::new(None),
        }
    }
    pub fn steepness(mut self, s: f64) -> Self {
        self.steepness = s;
        self
    }
    /// `false` makes the layer the identity (no parameter).
    pub fn enabled(mut self, e: bool) -> Self {
        self.enabled = e;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    pub fn alpha(&self) -> Option<Variable> {
        self.alpha.lock().ok()?.clone()
    }

    /// β·x with this stabilizer's α (created on first use, in x's dtype).
    pub(crate) fn scale(&self, x: &Variable) -> Result<Variable> {
        if !self.enabled {
            return Ok(x.clone());
        }
        let alpha = self.alpha_for(x.dtype())?;
        let s = self.steepness;
        let beta = element_times(
            &softplus(&element_times(&alpha, &scalar(s, x.dtype()))?)?,
            &scalar(1.0 / s, x.dtype()),
        )?;
        element_times(x, &beta)
    }

    fn alpha_for(&self, dtype: DType) -> Result<Variable> {
        let mut g = self
            .alpha
            .lock()
            .map_err(|_| layer_err("Stabilizer", &self.name, "lock poisoned"))?;
        if let Some(a) = g.as_ref() {
            return Ok(a.clone());
        }
        let s = self.steepness;
        let init = ((s).exp() - 1.0).ln() / s;
        let a = parameter(Shape::scalar(), dtype, Initializer::Constant(init), "alpha")?;
        *g = Some(a.clone());
        Ok(a)
    }
}

impl Default for Stabilizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Stabilizer {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if !self.enabled || super::probe::probing() {
            return Ok(x.clone());
        }
        first(as_block(x, "Stabilizer", &self.name, |x| {
            Ok(vec![self.scale(x)?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.alpha().into_iter().collect()
    }
    fn name(&self) -> &str {
        &self.name
    }
}
