//! Composition: `Sequential`, `Concat` (CNTK's tuple-then-splice, e.g. a bidirectional
//! recurrence), `Label` (a named alias) and `Identity`.

use super::{Layer, LayerRef};
use crate::error::Result;
use crate::functions::{alias, splice};
use crate::graph::Variable;
use std::sync::Arc;

/// CNTK's `Sequential([f, g, h])`: `(x) = h(g(f(x)))`; empty = identity.
#[derive(Clone, Default)]
pub struct Sequential {
    layers: Vec<LayerRef>,
}

impl Sequential {
    pub fn new(layers: Vec<LayerRef>) -> Self {
        Sequential { layers }
    }
    /// Append a layer.
    pub fn then(mut self, l: impl Layer + 'static) -> Self {
        self.layers.push(Arc::new(l));
        self
    }
    pub fn layers(&self) -> &[LayerRef] {
        &self.layers
    }
}

impl Layer for Sequential {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.apply(&y)?;
        }
        Ok(y)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }
}

/// Applies each layer to the same input and splices the results along the last axis
/// (CNTK: `Sequential([(f, g), splice])`).
pub struct Concat {
    layers: Vec<LayerRef>,
}

impl Concat {
    pub fn new(layers: Vec<LayerRef>) -> Self {
        Concat { layers }
    }
}

impl Layer for Concat {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        let ys = self
            .layers
            .iter()
            .map(|l| l.apply(x))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Variable> = ys.iter().collect();
        splice(&refs, -1)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }
}

/// A named alias of its input (CNTK's `Label`).
pub struct Label(pub String);

impl Layer for Label {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        alias(x, &self.0)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
    fn name(&self) -> &str {
        &self.0
    }
}

/// The identity layer (CNTK's `identity`).
pub struct Identity;

impl Layer for Identity {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        Ok(x.clone())
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
}

/// CNTK's `For(range, constructor)`: `Sequential` of `constructor(i)` for each i.
pub struct For(Sequential);

impl For {
    pub fn new(
        range: impl IntoIterator<Item = usize>,
        mut ctor: impl FnMut(usize) -> LayerRef,
    ) -> Self {
        For(Sequential::new(range.into_iter().map(&mut ctor).collect()))
    }
    pub fn layers(&self) -> &[LayerRef] {
        self.0.layers()
    }
}

impl Layer for For {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        self.0.apply(x)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.0.parameters()
    }
}

/// CNTK's `ResNetBlock(f)`: `f(x) + x` (f must keep the shape).
pub struct ResNetBlock(pub LayerRef);

impl Layer for ResNetBlock {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        let y = self.0.apply(x)?;
        if y.shape() != x.shape() {
            return Err(super::layer_err(
                "ResNetBlock",
                self.0.name(),
                format!(
                    "the inner layer maps shape {} to {}; the skip connection needs them equal",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        crate::functions::plus(&y, x)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.0.parameters()
    }
}
