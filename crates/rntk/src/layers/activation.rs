//! Activation functions as layer options (CNTK passes plain functions).

use crate::error::Result;
use crate::functions as f;
use crate::graph::Variable;
use std::fmt;
use std::sync::Arc;

/// A user-supplied activation function.
pub type ActivationFn = Arc<dyn Fn(&Variable) -> Result<Variable> + Send + Sync>;

/// An element-wise (or per-sample) activation: the `activation=` argument of CNTK's layers,
/// and as a `Layer` CNTK's `Activation(act)`.
#[derive(Clone)]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    Softplus,
    Elu,
    LeakyRelu(f64),
    /// Softmax over the last axis.
    Softmax,
    /// Any function of one variable.
    Custom(ActivationFn),
}

impl Activation {
    pub fn apply(&self, x: &Variable) -> Result<Variable> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Sigmoid => f::sigmoid(x),
            Activation::Tanh => f::tanh(x),
            Activation::Relu => f::relu(x),
            Activation::Softplus => f::softplus(x),
            Activation::Elu => f::elu(x),
            Activation::LeakyRelu(a) => f::leaky_relu(x, *a),
            Activation::Softmax => f::softmax(x, -1),
            Activation::Custom(g) => g(x),
        }
    }
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => f.write_str("identity"),
            Activation::Sigmoid => f.write_str("sigmoid"),
            Activation::Tanh => f.write_str("tanh"),
            Activation::Relu => f.write_str("relu"),
            Activation::Softplus => f.write_str("softplus"),
            Activation::Elu => f.write_str("elu"),
            Activation::LeakyRelu(a) => write!(f, "leaky_relu({a})"),
            Activation::Softmax => f.write_str("softmax"),
            Activation::Custom(_) => f.write_str("custom"),
        }
    }
}

/// CNTK's `Activation(act)` layer: the activation applied to its input.
impl super::Layer for Activation {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        Activation::apply(self, x)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
}
