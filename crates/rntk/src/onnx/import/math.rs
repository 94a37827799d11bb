//! ONNX products, softmax, arg-extremes, reductions and batch normalization → rntk:
//! `MatMul` / `Gemm` (a static matrix, or a matrix per sample), `Softmax` /
//! `LogSoftmax`, `ArgMax` / `ArgMin` (as float indices), `Reduce*` (along the sequence
//! axis: rntk's sequence reductions), `BatchNormalization` (inference form).

use super::super::proto::NodeProto;
use super::ops::{attr_f, attr_i, one_tv, unsupported};
use super::value::{Av, SDim, Tv};
use super::Imp;
use crate::error::Result;
use crate::functions as f;
use crate::graph::{parameter_from, Variable};
use crate::ops::{Op, ReduceOp};
use crate::tensor::Shape;

impl Imp<'_> {
    pub(crate) fn matmul(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let a = {
            let v = self.need(n, 0)?;
            self.tv_of_av(n, 0, &v)?
        };
        let b = {
            let v = self.need(n, 1)?;
            self.tv_of_av(n, 1, &v)?
        };
        let dynamic = |t: &Tv| -> Vec<SDim> {
            t.dims
                .iter()
                .filter(|d| !matches!(d, SDim::N(_)))
                .cloned()
                .collect()
        };
        let bs = b.sample();
        let static_matrix = dynamic(&b).is_empty() && b.dims.len() == 2;
        // a matrix per sample: the same leading dynamic dims on both sides
        let per_sample = !dynamic(&b).is_empty()
            && bs.len() == 2
            && b.dims.len() == a.dims.len()
            && a.dims.len() >= 2
            && a.dims[..a.dims.len() - 2] == b.dims[..b.dims.len() - 2]
            && a.dims[a.dims.len() - 2..]
                .iter()
                .all(|d| matches!(d, SDim::N(_)));
        if !static_matrix && !per_sample {
            return Err(unsupported(
                "MatMul whose right operand is neither a static matrix nor a matrix per \
                 sample with the left operand's batch and sequence axes",
            ));
        }
        let x = self.exact(&a)?;
        let w = self.exact(&b)?;
        let var = f::times(&x, &w)?;
        let mut dims = a.dims.clone();
        match dims.last_mut() {
            Some(d) if matches!(d, SDim::N(_)) => *d = SDim::N(bs[1]),
            _ => return Err(unsupported("MatMul over a dynamic dimension")),
        }
        one_tv(Tv { var, dims })
    }

    pub(crate) fn gemm(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        if attr_i(n, "transA", 0) != 0 {
            return Err(unsupported("Gemm with transA = 1 (the batch would move)"));
        }
        let a = {
            let v = self.need(n, 0)?;
            self.tv_of_av(n, 0, &v)?
        };
        let (alpha, beta) = (
            attr_f(n, "alpha", 1.0) as f64,
            attr_f(n, "beta", 1.0) as f64,
        );
        // B, transposed now when it is a constant
        let bconst = self.konst(n, 1)?;
        let w = match (bconst, attr_i(n, "transB", 0)) {
            (Some(c), 1) if c.dims.len() == 2 => {
                let (r, k) = (c.dims[0], c.dims[1]);
                let d = c.data.to_f64();
                let mut t = vec![0.0; r * k];
                for i in 0..r {
                    for j in 0..k {
                        t[j * r + i] = d[i * k + j];
                    }
                }
                let name = format!("{}_T", n.input[1]);
                let p = match self.params.get(&name) {
                    Some(p) => p.clone(),
                    None => {
                        let p = parameter_from(
                            crate::tensor::Tensor::from_f64(
                                Shape::new(vec![k, r]),
                                self.dtype,
                                &t,
                            )?,
                            &n.input[1],
                        );
                        self.params.insert(name, p.clone());
                        p
                    }
                };
                p
            }
            (_, 1) => {
                let b = self.tv_of(n, 1)?;
                f::transpose(&self.exact(&b)?, &[1, 0])?
            }
            _ => {
                let b = self.tv_of(n, 1)?;
                self.exact(&b)?
            }
        };
        let x = self.exact(&a)?;
        let mut y = f::times(&x, &w)?;
        if alpha != 1.0 {
            y = f::element_times(&y, &crate::graph::scalar(alpha, self.dtype))?;
        }
        let mut dims = a.dims.clone();
        if let Some(d) = dims.last_mut() {
            *d = SDim::N(w.shape().dims()[1]);
        }
        let mut out = Tv { var: y, dims };
        if n.input.len() > 2 && !n.input[2].is_empty() {
            let c = self.tv_of(n, 2)?;
            let c = if beta != 1.0 {
                Tv {
                    var: f::element_times(&c.var, &crate::graph::scalar(beta, self.dtype))?,
                    dims: c.dims,
                }
            } else {
                c
            };
            let (vars, dims) = self.align(&[out, c])?;
            out = Tv {
                var: f::plus(&vars[0], &vars[1])?,
                dims,
            };
        }
        one_tv(out)
    }

    pub(crate) fn softmax(&mut self, n: &NodeProto, log: bool) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let default = if self.opset >= 13 { -1 } else { 1 };
        let a = t
            .axis(attr_i(n, "axis", default))
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        // before opset 13: over all dims from the axis on (the same when it is the last)
        let last = t.dims.len() - 1;
        let sa = t
            .sample_axis(a)
            .ok_or_else(|| unsupported("softmax along a dynamic dimension"))?;
        let x = self.exact(&t)?;
        let var = if self.opset < 13 && a != last {
            let s = t.sample();
            let lead: Vec<usize> = s[..sa].to_vec();
            let mut flat = lead.clone();
            flat.push(s[sa..].iter().product());
            let r = f::reshape(&x, Shape::new(flat))?;
            let y = if log {
                f::log_softmax(&r, -1)?
            } else {
                f::softmax(&r, -1)?
            };
            f::reshape(&y, Shape::new(s))?
        } else if log {
            f::log_softmax(&x, sa as isize)?
        } else {
            f::softmax(&x, sa as isize)?
        };
        one_tv(Tv { var, dims: t.dims })
    }

    /// `ArgMax` / `ArgMin` along a sample axis, first index on ties, as floats:
    /// with `e` = 1 where x equals its extreme, `min(e·(i − n)) + n` is the first such `i`.
    pub(crate) fn arg_extreme(&mut self, n: &NodeProto, max: bool) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        if attr_i(n, "select_last_index", 0) != 0 {
            return Err(unsupported(
                "select_last_index = 1 (rntk takes the first extreme)",
            ));
        }
        let keep = attr_i(n, "keepdims", 1) != 0;
        let axis = t
            .axis(attr_i(n, "axis", 0))
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        let k = t
            .sample_axis(axis)
            .ok_or_else(|| unsupported("an arg-extreme along the batch or sequence axis"))?;
        let x = self.exact(&t)?;
        let sample = t.sample();
        let size = sample[k];
        let ax = [k as isize];
        let m = if max {
            f::reduce_max(&x, Some(&ax), true)?
        } else {
            f::reduce_min(&x, Some(&ax), true)?
        };
        let e = f::equal(&x, &m)?;
        let mut shape = vec![1; sample.len()];
        shape[k] = size;
        let iota: Vec<f64> = (0..size).map(|i| i as f64 - size as f64).collect();
        let iota = crate::graph::constant(
            crate::tensor::Tensor::from_f64(Shape::new(shape), self.dtype, &iota)?,
            "",
        );
        let first = f::reduce_min(&f::element_times(&e, &iota)?, Some(&ax), keep)?;
        let var = f::plus(&first, &crate::graph::scalar(size as f64, self.dtype))?;
        let mut dims = t.dims.clone();
        if keep {
            dims[axis] = SDim::N(1);
        } else {
            dims.remove(axis);
        }
        one_tv(Tv { var, dims })
    }

    pub(crate) fn reduce(&mut self, n: &NodeProto, op: ReduceOp) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let keep = attr_i(n, "keepdims", 1) != 0;
        let axes = self.axes_of(n, 1)?;
        let all: Vec<usize> = (0..t.dims.len()).collect();
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&x| t.axis(x).ok_or_else(|| self.err(n, "axis out of range")))
                .collect::<Result<_>>()?,
            _ if attr_i(n, "noop_with_empty_axes", 0) == 1 => return Ok(vec![Av::T(t)]),
            _ => all,
        };
        let x = self.exact(&t)?;
        // over the sequence axis: a sequence reduction
        if axes.len() == 1 && Some(axes[0]) == t.t_pos() {
            let var = match op {
                ReduceOp::Sum => crate::sequence::reduce_sum(&x)?,
                ReduceOp::Max => crate::sequence::reduce_max(&x)?,
                _ => return Err(unsupported("this reduction along the sequence axis")),
            };
            let mut dims = t.dims.clone();
            if keep {
                dims[axes[0]] = SDim::N(1);
            } else {
                dims.remove(axes[0]);
            }
            return one_tv(Tv { var, dims });
        }
        if axes.iter().any(|&a| t.sample_axis(a).is_none()) {
            if axes.len() == t.dims.len() && !keep {
                let var = f::reduce_all(op, &x)?;
                return one_tv(Tv { var, dims: vec![] });
            }
            return Err(unsupported("a reduction over the batch axis"));
        }
        let sa: Vec<isize> = axes
            .iter()
            .map(|&a| t.sample_axis(a).unwrap_or(0) as isize)
            .collect();
        let var = match op {
            ReduceOp::Sum => f::reduce_sum(&x, Some(&sa), keep)?,
            ReduceOp::Mean => f::reduce_mean(&x, Some(&sa), keep)?,
            ReduceOp::Max => f::reduce_max(&x, Some(&sa), keep)?,
            ReduceOp::Min => f::reduce_min(&x, Some(&sa), keep)?,
            ReduceOp::LogSumExp => f::reduce_log_sum_exp(&x, Some(&sa), keep)?,
        };
        let dims: Vec<SDim> = t
            .dims
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keep) {
                (false, _) => Some(d.clone()),
                (true, true) => Some(SDim::N(1)),
                (true, false) => None,
            })
            .collect();
        one_tv(Tv { var, dims })
    }

    /// Inference batch normalization over ONNX axis 1 (rntk's op with the running
    /// statistics).
    pub(crate) fn batch_norm(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let c = t
            .sample_axis(1)
            .ok_or_else(|| unsupported("BatchNormalization whose channel axis is dynamic"))?;
        if c != 0 {
            return Err(unsupported(
                "BatchNormalization with a dynamic axis after the channel",
            ));
        }
        let eps = attr_f(n, "epsilon", 1e-5) as f64;
        let x = self.exact(&t)?;
        let spatial = x.shape().rank() > 1;
        let mut ops = vec![x];
        for i in 1..5 {
            let p = self.tv_of(n, i)?;
            ops.push(self.exact(&p)?);
        }
        ops.push(crate::graph::scalar(0.0, self.dtype));
        // running count 1: the estimates are trained
        let refs: Vec<&Variable> = ops.iter().collect();
        let var = crate::functions::named(
            Op::BatchNorm {
                spatial,
                epsilon: eps,
                normalization_time_constant: f64::INFINITY,
            },
            &refs,
            "",
        )?;
        one_tv(Tv { var, dims: t.dims })
    }
}
