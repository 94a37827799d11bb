//! `Dropout(rate)`: zero elements with probability `rate` in training, identity in
//! inference; `keep_prob` is the CNTK alternative spelling (rate = 1 − keep_prob).

use super::{as_block, first, layer_err, Layer};
use crate::error::Result;
use crate::functions::dropout;
use crate::graph::Variable;
use crate::random::generate_random_seed;

/// CNTK's `Dropout(dropout_rate)` / `Dropout(keep_prob=…)`.
pub struct Dropout {
    rate: f64,
    seed: u64,
    name: String,
}

impl Dropout {
    /// Dropout with `dropout_rate` in [0, 1).
    pub fn new(dropout_rate: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&dropout_rate) {
            return Err(layer_err(
                "Dropout",
                "",
                "dropout_rate must be in the interval [0,1)",
            ));
        }
        Ok(Dropout {
            rate: dropout_rate,
            seed: generate_random_seed(),
            name: String::new(),
        })
    }
    /// Dropout given the probability of keeping an element, in [0, 1) as CNTK requires.
    pub fn keep_prob(keep_prob: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&keep_prob) {
            return Err(layer_err(
                "Dropout",
                "",
                "keep_prob must be in the interval [0,1)",
            ));
        }
        Self::new(1.0 - keep_prob)
    }
    /// The seed of the mask stream (CNTK's `rngSeed`): the next automatic seed when the
    /// layer was made, unless [`Dropout::seed`] gave one.
    pub fn rng_seed(&self) -> u64 {
        self.seed
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
}

impl Layer for Dropout {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        first(as_block(x, "Dropout", &self.name, |x| {
            Ok(vec![dropout(x, self.rate, self.seed)?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
    fn name(&self) -> &str {
        &self.name
    }
}
