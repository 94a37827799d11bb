//! `Function::eval`: a forward-only executor on the CPU, built for one call.

use super::Executor;
use crate::error::Result;
use crate::graph::{Function, Variable};
use crate::tensor::{DType, Value};

impl Function {
    /// Evaluate on the given feeds (forward only, inference mode, on the CPU).
    pub fn eval(&self, feeds: &[(&Variable, &Value)]) -> Result<Vec<Value>> {
        let outs = self.outputs();
        let dtype = outs.first().map(|v| v.dtype()).unwrap_or(DType::F32);
        match dtype {
            DType::F32 => {
                let mut ex = Executor::<f32>::new_inference(&outs)?;
                ex.forward(feeds, false)?;
                outs.iter().map(|o| ex.value(o)).collect()
            }
            DType::F64 => {
                let mut ex = Executor::<f64>::new_inference(&outs)?;
                ex.forward(feeds, false)?;
                outs.iter().map(|o| ex.value(o)).collect()
            }
        }
    }
}
