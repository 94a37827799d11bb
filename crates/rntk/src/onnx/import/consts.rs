//! Values known at import: `Shape` (a shape vector whose dynamic entries stand for
//! the batch / sequence axes), `Constant`, `ConstantOfShape` (a fill, sized against
//! rntk's limits before any allocation), `Range`.

use super::super::proto::{attribute_proto::AttributeType, NodeProto};
use super::ops::{attr, attr_i, unsupported};
use super::value::{const_f64, const_i64, Av, SDim};
use super::Imp;
use crate::error::Result;
use crate::tensor::Shape;
use std::rc::Rc;

impl Imp<'_> {
    pub(crate) fn shape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let dims: Vec<SDim> = match &v {
            Av::T(t) => t.dims.clone(),
            Av::C(c, _) => c.dims.iter().map(|&d| SDim::N(d)).collect(),
            Av::Fill(_, d) => d.clone(),
            Av::Mask(_) => vec![SDim::T, SDim::B],
            _ => return Err(unsupported("Shape of a non-tensor")),
        };
        let r = dims.len() as i64;
        let clamp = |x: i64| if x < 0 { (x + r).max(0) } else { x.min(r) } as usize;
        let start = clamp(attr_i(n, "start", 0));
        let end = clamp(attr_i(n, "end", r));
        Ok(vec![Av::S(dims[start..end.max(start)].to_vec())])
    }

    pub(crate) fn constant_node(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        if let Some(t) = attr(n, "value").and_then(|a| a.t.as_ref()) {
            let c = super::model::tensor(self.file, t, self.dir)?;
            return Ok(vec![Av::C(Rc::new(c), false)]);
        }
        if let Some(a) = attr(n, "value_float") {
            return Ok(vec![const_f64(vec![], vec![a.f.unwrap_or(0.0) as f64])]);
        }
        if let Some(a) = attr(n, "value_floats") {
            return Ok(vec![const_f64(
                vec![a.floats.len()],
                a.floats.iter().map(|&x| x as f64).collect(),
            )]);
        }
        if let Some(a) = attr(n, "value_int") {
            return Ok(vec![const_i64(vec![], vec![a.i.unwrap_or(0)])]);
        }
        if let Some(a) = attr(n, "value_ints") {
            return Ok(vec![const_i64(vec![a.ints.len()], a.ints.clone())]);
        }
        let _ = AttributeType::Tensor;
        Err(unsupported(
            "a Constant without a tensor, float(s) or int(s) value",
        ))
    }

    pub(crate) fn constant_of_shape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let dims: Vec<SDim> = match self.need(n, 0)? {
            Av::S(s) => s,
            Av::C(c, _) => c
                .data
                .to_i64()
                .iter()
                .map(|&k| SDim::N(k.max(0) as usize))
                .collect(),
            _ => return Err(unsupported("ConstantOfShape of a shape computed from data")),
        };
        let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
            Some(t) => super::model::tensor(self.file, t, self.dir)?
                .data
                .to_f64()
                .first()
                .copied()
                .unwrap_or(0.0),
            None => 0.0,
        };
        if dims.iter().all(|d| matches!(d, SDim::N(_))) {
            let s: Vec<usize> = dims
                .iter()
                .map(|d| if let SDim::N(k) = d { *k } else { 1 })
                .collect();
            // checked against rntk's limit before anything is allocated
            let shape = Shape::new(s.clone());
            crate::limits::check_sample_shape(&shape)
                .map_err(|e| self.err(n, format!("a constant of {e}")))?;
            let count: usize = s.iter().product();
            return Ok(vec![const_f64(s, vec![value; count])]);
        }
        Ok(vec![Av::Fill(value, dims)])
    }

    pub(crate) fn range(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let get = |s: &Self, i: usize| -> Result<f64> {
            s.konst(n, i)?
                .and_then(|c| c.data.to_f64().first().copied())
                .ok_or_else(|| unsupported("Range with dynamic bounds"))
        };
        let (a, b, d) = (get(self, 0)?, get(self, 1)?, get(self, 2)?);
        if d == 0.0 {
            return Err(self.err(n, "a zero step"));
        }
        let count = ((b - a) / d).ceil().max(0.0);
        let limit = crate::limits::current().max_sample_elements;
        if !count.is_finite() || count > limit as f64 {
            return Err(self.err(
                n,
                format!(
                    "a range of {count} elements, more than the limit of {limit} ({})",
                    crate::limits::how_to_raise("max_sample_elements")
                ),
            ));
        }
        let v: Vec<f64> = (0..count as usize).map(|i| a + d * i as f64).collect();
        Ok(vec![const_f64(vec![v.len()], v)])
    }
}
