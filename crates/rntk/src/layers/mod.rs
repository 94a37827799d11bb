//! CNTK's Layers library: layer objects that create their parameters when first applied
//! (inferring input sizes) and share them on every later application, each application
//! wrapped in a named block.
//!
//! | rntk | CNTK 2.7 (`cntk.layers`) |
//! |---|---|
//! | [`Dense`] | `Dense(shape, activation, init, input_rank, map_rank, bias, init_bias)` |
//! | [`Embedding`] | `Embedding(shape, init)`; [`Embedding::from_weights`] = `Embedding(weights=…)` (a constant table) |
//! | [`Lstm`], [`Gru`], [`RnnStep`] | the step blocks `LSTM`, `GRU`, `RNNStep` (peepholes, `cell_shape` projection, self-stabilization) |
//! | [`Recurrence`] | `Recurrence(step, go_backwards, initial_state)`; [`Recurrence::apply_full`] = `return_full_state=True` |
//! | [`RecurrenceFrom`] | `RecurrenceFrom(step, go_backwards)` (initial states as data inputs) |
//! | [`Fold`] | `Fold(step, go_backwards, initial_state, return_full_state)` |
//! | [`UnfoldFrom`] | `UnfoldFrom(generator_function, until_predicate, length_increase)` |
//! | [`Delay`] | `Delay(T, initial_state)` |
//! | [`AttentionModel`] | `AttentionModel(attention_dim, init, enable_self_stabilization)` applied to `(encoder, decoder)` (the windowed `attention_span`/`attention_axis` mode is not supported) |
//! | [`Stabilizer`] | `Stabilizer(steepness, enable_self_stabilization)` |
//! | [`Dropout`] | `Dropout(dropout_rate)`; [`Dropout::keep_prob`] = `Dropout(keep_prob=…)` |
//! | [`LayerNormalization`] | `LayerNormalization(initial_scale, initial_bias, epsilon)` |
//! | [`BatchNormalization`] | `BatchNormalization(map_rank, init_scale, normalization_time_constant, blend_time_constant=0, epsilon)` |
//! | [`Convolution`] | `Convolution(filter_shape, num_filters, sequential, activation, init, pad, strides, bias, init_bias, reduction_rank, dilation, groups)` ([`Convolution::sequential`]); [`Convolution::d1`]/[`d2`](Convolution::d2)/[`d3`](Convolution::d3) = `Convolution1D/2D/3D` |
//! | [`Convolution::sequential_convolution`] | `SequentialConvolution(filter_shape, num_filters, …)`: the first filter axis along the sequence |
//! | [`Convolution::transpose`] | `ConvolutionTranspose(filter_shape, num_filters, …, output_shape)` and `ConvolutionTranspose1D/2D/3D` |
//! | [`Pooling`] | `MaxPooling`, `AveragePooling` ([`Pooling::max`], [`Pooling::average`]: `filter_shape, strides, pad`), `GlobalMaxPooling`, `GlobalAveragePooling` |
//! | [`MaxUnpooling`] | `MaxUnpooling(filter_shape, strides, pad)` applied to `(u, x)` |
//! | [`Sequential`] | `Sequential([...])` (nest a `Sequential` for CNTK's nested lists) |
//! | [`Concat`] | `Sequential([(f, g), splice])`: a tuple of layers, spliced (e.g. a bidirectional recurrence) |
//! | [`For`] | `For(range, constructor)` |
//! | [`ResNetBlock`] | `ResNetBlock(f)` = `f(x) + x` |
//! | [`Activation`] | `Activation(act)`, and the `activation=` argument of the other layers |
//! | [`Label`] | `Label(name)` |
//! | [`Identity`] | `identity` |
//! | [`default_options`], [`default_options_for`] | `with default_options(...)`, `default_options_for(...)` |
//!
//! Every layer is checked against the real CNTK 2.7 (tests/layers/layers_fixtures.rs) and by
//! finite differences (tests/engine/gradcheck_layers.rs).

mod activation;
mod attention;
mod conv;
mod defaults;
mod delay;
mod dense;
mod dropout;
mod embedding;
mod normalization;
pub mod probe;
mod recurrence;
mod recurrent_steps;
mod sequential;
mod stabilizer;
mod unfold;

pub use activation::Activation;
pub use attention::AttentionModel;
pub use conv::{Convolution, MaxUnpooling, Pooling};
pub use defaults::{default_options, default_options_for, DefaultOptions};
pub use delay::Delay;
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use normalization::{BatchNormalization, LayerNormalization};
pub use recurrence::{Fold, InitialState, Recurrence, RecurrenceFrom};
pub use recurrent_steps::{Gru, Lstm, RecurrentStep, RnnStep};
pub use sequential::{Concat, For, Identity, Label, ResNetBlock, Sequential};
pub use stabilizer::Stabilizer;
pub use unfold::{Generator, Predicate, UnfoldFrom};

use crate::error::{Error, Result};
use crate::graph::{placeholder, Function, Variable};
use std::sync::Arc;

/// A layer: a function of one variable with its own (shared) parameters.
pub trait Layer: Send + Sync {
    /// Apply to `x` (a sequence, batch-only or static variable).
    fn apply(&self, x: &Variable) -> Result<Variable>;
    /// The parameters created so far (empty before the first application).
    fn parameters(&self) -> Vec<Variable>;
    /// The layer's name (may be empty).
    fn name(&self) -> &str {
        ""
    }
}

/// A shareable layer handle.
pub type LayerRef = Arc<dyn Layer>;

/// Build `body(placeholder standing for x)` and wrap it in a block named like CNTK's
/// (`op_name` "Dense", "LSTM", …, `name` the user's), applied to `x`.
pub(crate) fn as_block(
    x: &Variable,
    op_name: &str,
    name: &str,
    body: impl FnOnce(&Variable) -> Result<Vec<Variable>>,
) -> Result<Vec<Variable>> {
    let info = x.info();
    let arg = placeholder(info.shape.clone(), info.dtype, info.axes.clone(), "x")?;
    let outs = body(&arg)?;
    let body_fn = Function::combine(&outs, op_name)?;
    let block = Function::block(&body_fn, &[(arg, x.clone())], op_name, name)?;
    Ok(block.outputs())
}

/// Several operands: like `as_block` for a step function `(states…, x)`.
pub(crate) fn as_block_n(
    operands: &[Variable],
    op_name: &str,
    name: &str,
    body: impl FnOnce(&[Variable]) -> Result<Vec<Variable>>,
) -> Result<Vec<Variable>> {
    as_block_hidden(operands, op_name, name, |a| Ok((body(a)?, Vec::new())))
}

/// `as_block_n` whose body also returns hidden values: kept in the block's body for
/// name lookup, computed only when asked for (see `Function::combine_with_hidden`).
pub(crate) fn as_block_hidden(
    operands: &[Variable],
    op_name: &str,
    name: &str,
    body: impl FnOnce(&[Variable]) -> Result<(Vec<Variable>, Vec<Variable>)>,
) -> Result<Vec<Variable>> {
    let mut args = Vec::with_capacity(operands.len());
    for (i, v) in operands.iter().enumerate() {
        let info = v.info();
        args.push(placeholder(
            info.shape.clone(),
            info.dtype,
            info.axes.clone(),
            &format!("arg{i}"),
        )?);
    }
    let (outs, hidden) = body(&args)?;
    let body_fn = Function::combine_with_hidden(&outs, &hidden, op_name)?;
    let pairs: Vec<(Variable, Variable)> = args.into_iter().zip(operands.iter().cloned()).collect();
    let block = Function::block(&body_fn, &pairs, op_name, name)?;
    Ok(block.outputs())
}

pub(crate) fn layer_err(layer: &str, name: &str, detail: impl Into<String>) -> Error {
    Error::InvalidArgument {
        context: if name.is_empty() {
            layer.to_string()
        } else {
            format!("{layer} '{name}'")
        },
        detail: detail.into(),
    }
}

pub(crate) fn first(v: Vec<Variable>) -> Result<Variable> {
    v.into_iter()
        .next()
        .ok_or_else(|| Error::Argument("layer produced no output".into()))
}
