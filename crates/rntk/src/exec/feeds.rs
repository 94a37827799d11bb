//! What comes into an executor: the fed values of a minibatch (one upload each) and the
//! parameters, made resident on the executor's device the first time it reads them
//! (and again only if something else moved them: a `set_value`, another device).

use super::compile::{Plan, Source};
use super::Executor;
use crate::backend::{Backend, Memory};
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, Variable};
use crate::tensor::{Csr, Element, Layout, Tensor, Value, ValueData};
use std::sync::{RwLock, RwLockReadGuard};

impl<T: Element, B: Backend> Executor<T, B> {
    /// Check the feeds against the plan's inputs and upload them.
    pub(super) fn bind_feeds(&mut self, feeds: &[(&Variable, &Value)]) -> Result<()> {
        for (v, _) in feeds {
            if !matches!(
                self.plan
                    .var_slots
                    .get(&v.key())
                    .map(|&s| &self.plan.slots[s].source),
                Some(Source::Input(_))
            ) {
                return Err(Error::Argument(format!(
                    "{} is fed but is not an input of this function",
                    v.label()
                )));
            }
        }
        for s in 0..self.plan.slots.len() {
            let Source::Input(var) = &self.plan.slots[s].source else {
                continue;
            };
            let val = feeds
                .iter()
                .find(|(v, _)| v.key() == var.key())
                .map(|(_, val)| *val)
                .ok_or_else(|| Error::Argument(format!("input {} was not fed", var.label())))?;
            self.check_feed(s, var, val)?;
            self.arena.layouts[s] = val.layout().clone();
            self.upload_feed(s, val);
        }
        Ok(())
    }

    fn check_feed(&self, s: usize, var: &Variable, val: &Value) -> Result<()> {
        let info = &self.plan.slots[s];
        if val.shape() != &info.shape {
            return Err(Error::Argument(format!(
                "input {} has sample shape {} but was fed data of shape {}",
                var.label(),
                info.shape,
                val.shape()
            )));
        }
        if val.dtype() != T::DTYPE {
            return Err(Error::DType {
                context: format!("input {}", var.label()),
                expected: T::DTYPE.to_string(),
                got: val.dtype().to_string(),
            });
        }
        let ok = matches!(
            (&info.axes, val.layout()),
            (DynamicAxes::Sequence(_), Layout::Sequence(_))
                | (DynamicAxes::Batch, Layout::Batch(_))
                | (DynamicAxes::None, Layout::Static)
        );
        if !ok {
            return Err(Error::Argument(format!(
                "input {} has dynamic axes {} but was fed {}",
                var.label(),
                info.axes.notation(),
                val.layout().describe()
            )));
        }
        Ok(())
    }

    /// One fed value onto the device: dense rows, sparse rows kept sparse for the ops
    /// that read them in place, or densified once here for the others.
    fn upload_feed(&mut self, s: usize, val: &Value) {
        let (b, a) = (&self.backend, &mut self.arena);
        match val.data() {
            ValueData::Dense(st) => {
                match T::slice(st) {
                    Some(src) => b.upload(src, &mut a.data[s]),
                    // (a value that lives on a device: through the host)
                    None => b.upload(&val.dense_rows::<T>(), &mut a.data[s]),
                }
                a.sparse[s] = None;
            }
            ValueData::SparseF32(_) | ValueData::SparseF64(_)
                if !self.plan.slots[s].is_sparse || self.plan.densify[s] =>
            {
                b.upload(&val.dense_rows::<T>(), &mut a.data[s]);
                a.sparse[s] = None;
            }
            ValueData::SparseF32(c) => {
                a.sparse[s] = Some(b.upload_sparse(convert_csr::<f32, T>(c)));
                b.resize(&mut a.data[s], 0);
            }
            ValueData::SparseF64(c) => {
                a.sparse[s] = Some(b.upload_sparse(convert_csr::<f64, T>(c)));
                b.resize(&mut a.data[s], 0);
            }
        }
    }

    /// Parameters and constants not yet on this device are copied there (the
    /// parameter load of the first forward; afterwards they stay).
    pub(super) fn make_params_resident(&self) {
        for store in self.plan.stores.iter().flatten() {
            if self.is_resident(store) {
                continue;
            }
            let mut t = store.write().expect("parameter lock");
            if self.backend.resident::<T>(t.storage()).is_none() {
                let s = self.backend.make_resident(t.storage());
                *t.storage_mut() = s;
            }
        }
    }

    fn is_resident(&self, store: &RwLock<Tensor>) -> bool {
        let t = store.read().expect("parameter lock");
        self.backend.resident::<T>(t.storage()).is_some()
    }
}

/// Read guards on every parameter and constant of `plan` for the duration of one call.
pub(super) fn read_params(plan: &Plan) -> Vec<Option<RwLockReadGuard<'_, Tensor>>> {
    plan.stores
        .iter()
        .map(|s| s.as_ref().map(|a| a.read().expect("parameter lock")))
        .collect()
}

/// The parameter buffers behind `guards` (`None` for other slots).
pub(super) fn param_bufs<'a, T: Element, B: Backend>(
    b: &'a B,
    guards: &'a [Option<RwLockReadGuard<'_, Tensor>>],
) -> Vec<Option<&'a <B as Memory>::Buf<T>>> {
    guards
        .iter()
        .map(|g| g.as_ref().and_then(|g| b.resident::<T>(g.storage())))
        .collect()
}

fn convert_csr<S: Element, T: Element>(c: &Csr<S>) -> Csr<T> {
    Csr {
        rows: c.rows,
        cols: c.cols,
        indptr: c.indptr.clone(),
        indices: c.indices.clone(),
        values: c.values.iter().map(|v| T::from_f64(v.as_f64())).collect(),
    }
}
