//! CNTK's `AttentionModel` layer: the Rust layer (`rntk::layers::AttentionModel`, the
//! fused additive-attention op) applied to `(encoder, decoder)`.

use crate::errors::IntoPy;
use crate::graph::Var;
use crate::layers::PyInit;
use pyo3::prelude::*;
use rntk::layers::AttentionModel;

/// `AttentionModel(attention_dim, init, enable_self_stabilization, name)`; its
/// parameters' automatic seeds are taken when it is made, as CNTK's factory does.
#[pyclass(module = "rntk._rntk", name = "AttentionModel", frozen)]
pub struct PyAttentionModel(AttentionModel);

#[pymethods]
impl PyAttentionModel {
    #[new]
    #[pyo3(signature = (attention_dim, init, enable_self_stabilization, name))]
    fn new(
        attention_dim: usize,
        init: &PyInit,
        enable_self_stabilization: bool,
        name: &str,
    ) -> Self {
        let a = AttentionModel::new(attention_dim)
            .init(init.0.clone())
            .enable_self_stabilization(enable_self_stabilization)
            .name(name);
        a.reserve_seeds();
        PyAttentionModel(a)
    }
    /// The attention of every decoder step over its encoder sequence.
    fn apply(&self, encoder: &Var, decoder: &Var) -> PyResult<Var> {
        Ok(Var(self.0.apply2(&encoder.0, &decoder.0).py()?))
    }
    /// The parameters created so far, in CNTK's order.
    fn parameters(&self) -> Vec<Var> {
        self.0.parameters().into_iter().map(Var).collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAttentionModel>()
}
