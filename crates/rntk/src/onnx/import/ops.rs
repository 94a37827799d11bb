//! Standard ONNX nodes → rntk ops: element-wise math with ONNX broadcasting (the
//! dynamic dimensions lined up, the sample's broadcast as rntk does), MatMul / Gemm,
//! softmax, reductions, shape ops, gather, batch normalization, and constant folding
//! of the shape arithmetic exporters write (Shape → Gather → Concat → Reshape).

use super::super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use super::model::{ConstT, Data};
use super::value::{const_f64, const_i64, tensor_of, Av, SDim, Tv};
use super::Imp;
use crate::error::{Error, Result};
use crate::functions as f;
use crate::graph::{constant, parameter_from, DynamicAxes, Variable};
use crate::ops::{BinaryOp, Op, PoolingType, ReduceOp, UnaryOp};
use crate::tensor::Shape;
use std::rc::Rc;

pub(crate) fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}
pub(crate) fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}
pub(crate) fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}
pub(crate) fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
pub(crate) fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).and_then(|a| {
        a.s.as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    })
}
pub(crate) fn attr_strings(n: &NodeProto, name: &str) -> Vec<String> {
    attr(n, name)
        .map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported(what.into())
}

impl<'a> Imp<'a> {
    /// An abstract value as an rntk variable with ONNX dims.
    pub fn tv(&mut self, v: &Av, _hint: Option<()>) -> Result<Tv> {
        match v {
            Av::T(t) => Ok(t.clone()),
            Av::C(c, learnable) => {
                let t = tensor_of(c, self.dtype)?;
                let var = if *learnable {
                    parameter_from(t, "")
                } else {
                    constant(t, "")
                };
                Ok(Tv {
                    var,
                    dims: c.dims.iter().map(|&d| SDim::N(d)).collect(),
                })
            }
            Av::Fill(x, dims) => {
                let var = crate::graph::scalar(*x, self.dtype);
                // a constant broadcast along the dims (unit sizes where they are dynamic)
                Ok(Tv {
                    var,
                    dims: dims.clone(),
                })
            }
            Av::S(..) => Err(unsupported(
                "a shape computed from a dynamic tensor used as data",
            )),
            Av::Lens => Err(unsupported(
                "the lengths of a sequence axis used as data (rntk keeps lengths with the values)",
            )),
            Av::Mask(_) => Err(unsupported("the mask of a sequence axis used as data")),
            Av::PoolIndices(_) => Err(unsupported(
                "MaxPool's indices used other than by MaxUnpool (rntk's unpooling recomputes them)",
            )),
        }
    }

    /// A named initializer as one parameter, shared by every node that reads it.
    pub fn tv_of(&mut self, n: &NodeProto, i: usize) -> Result<Tv> {
        let v = self.need(n, i)?;
        if let Av::C(c, true) = &v {
            let name = n.input[i].clone();
            let var = match self.params.get(&name) {
                Some(p) => p.clone(),
                None => {
                    let p = parameter_from(tensor_of(c, self.dtype)?, &name);
                    self.params.insert(name, p.clone());
                    p
                }
            };
            return Ok(Tv {
                var,
                dims: c.dims.iter().map(|&d| SDim::N(d)).collect(),
            });
        }
        self.tv(&v, None)
    }

    /// The variable with exactly the sample shape of `t`'s dims.
    pub fn exact(&mut self, t: &Tv) -> Result<Variable> {
        let s = t.sample();
        if t.var.shape().dims() == s.as_slice() {
            return Ok(t.var.clone());
        }
        if t.var.shape().numel() == 1 && t.var.dynamic_axes().is_none() {
            // a broadcast scalar made whole: + zeros of the shape
            let z = constant(
                crate::tensor::Tensor::zeros(Shape::new(s.clone()), t.var.dtype()),
                "",
            );
            let one = f::reshape(&t.var, Shape::scalar())?;
            return f::plus(&one, &z);
        }
        if t.var.shape().numel() != s.iter().product::<usize>() {
            return Err(unsupported(format!(
                "a broadcast constant of shape {} used where shape {:?} is needed",
                t.var.shape(),
                s
            )));
        }
        f::reshape(&t.var, Shape::new(s))
    }

    /// A constant operand, if known now.
    pub fn konst(&self, n: &NodeProto, i: usize) -> Result<Option<Rc<ConstT>>> {
        Ok(match self.input(n, i)? {
            Some(Av::C(c, _)) => Some(c),
            _ => None,
        })
    }

    /// Int values of a constant operand (axes, shapes, indices).
    pub fn ints(&self, n: &NodeProto, i: usize) -> Result<Option<Vec<i64>>> {
        Ok(match self.input(n, i)? {
            Some(Av::C(c, _)) => Some(c.data.to_i64()),
            Some(Av::S(s, _)) => {
                let mut out = Vec::new();
                for d in s {
                    match d {
                        SDim::N(k) => out.push(k as i64),
                        _ => return Ok(None),
                    }
                }
                Some(out)
            }
            None => None,
            Some(_) => return Err(self.err(n, format!("input {i} must be a constant"))),
        })
    }

    /// Axes given as attribute (older opsets) or as a constant input.
    fn axes_of(&self, n: &NodeProto, input: usize) -> Result<Option<Vec<i64>>> {
        if let Some(a) = attr_ints(n, "axes") {
            return Ok(Some(a));
        }
        self.ints(n, input)
    }

    pub fn node(&mut self, n: &'a NodeProto) -> Result<Vec<Av>> {
        let ty = n.op_type.as_deref().unwrap_or("");
        let domain = n.domain.as_deref().unwrap_or("");
        if domain == super::super::RNTK_DOMAIN {
            return self.rntk_function(n, ty);
        }
        if !domain.is_empty() && domain != "ai.onnx" {
            return Err(unsupported(format!(
                "an op of domain '{domain}' (rntk reads the standard domain and rntk's own)"
            )));
        }
        match ty {
            "Identity" | "Dropout" => {
                let v = self.need(n, 0)?;
                let mut o = vec![v];
                if n.output.len() > 1 {
                    o.push(const_f64(vec![], vec![1.0]));
                }
                Ok(o)
            }
            "Neg" => self.unary(n, UnaryOp::Negate),
            "Sigmoid" => self.unary(n, UnaryOp::Sigmoid),
            "Tanh" => self.unary(n, UnaryOp::Tanh),
            "Relu" => self.unary(n, UnaryOp::Relu),
            "LeakyRelu" => self.unary(n, UnaryOp::LeakyRelu(attr_f(n, "alpha", 0.01) as f64)),
            "Elu" if attr_f(n, "alpha", 1.0) == 1.0 => self.unary(n, UnaryOp::Elu),
            "Softplus" => self.unary(n, UnaryOp::Softplus),
            "Exp" => self.unary(n, UnaryOp::Exp),
            "Log" => self.unary(n, UnaryOp::Log),
            "Sqrt" => self.unary(n, UnaryOp::Sqrt),
            "Abs" => self.unary(n, UnaryOp::Abs),
            "Reciprocal" => self.unary(n, UnaryOp::Reciprocal),
            "Floor" => self.unary(n, UnaryOp::Floor),
            "Sin" => self.unary(n, UnaryOp::Sin),
            "Cos" => self.unary(n, UnaryOp::Cos),
            "Add" | "Sum" => self.binary(n, BinaryOp::Plus),
            "Sub" => self.binary(n, BinaryOp::Minus),
            "Mul" => self.binary(n, BinaryOp::ElementTimes),
            "Div" => self.binary(n, BinaryOp::ElementDivide),
            "Pow" => self.binary(n, BinaryOp::Pow),
            "Max" => self.binary(n, BinaryOp::ElementMax),
            "Min" => self.binary(n, BinaryOp::ElementMin),
            "Equal" => self.binary(n, BinaryOp::Equal),
            "Less" => self.binary(n, BinaryOp::Less),
            "LessOrEqual" => self.binary(n, BinaryOp::LessEqual),
            "Greater" => self.binary(n, BinaryOp::Greater),
            "GreaterOrEqual" => self.binary(n, BinaryOp::GreaterEqual),
            "Not" => {
                let x = self.need(n, 0)?;
                let t = self.tv(&x, None)?;
                let one = crate::graph::scalar(1.0, self.dtype);
                one_tv(Tv {
                    var: f::minus(&one, &t.var)?,
                    dims: t.dims,
                })
            }
            "And" => self.binary(n, BinaryOp::ElementTimes),
            "Or" => self.binary(n, BinaryOp::ElementMax),
            "Where" => self.where_(n),
            "Cast" => self.cast(n),
            "MatMul" => self.matmul(n),
            "Gemm" => self.gemm(n),
            "Softmax" | "LogSoftmax" => self.softmax(n, ty == "LogSoftmax"),
            "ReduceSum" => self.reduce(n, ReduceOp::Sum),
            "ReduceMean" => self.reduce(n, ReduceOp::Mean),
            "ReduceMax" => self.reduce(n, ReduceOp::Max),
            "ReduceMin" => self.reduce(n, ReduceOp::Min),
            "ReduceLogSumExp" => self.reduce(n, ReduceOp::LogSumExp),
            "ArgMax" => self.arg_extreme(n, true),
            "ArgMin" => self.arg_extreme(n, false),
            "Concat" => self.concat(n),
            "Slice" => self.slice(n),
            "Reshape" => self.reshape(n),
            "Flatten" => self.flatten(n),
            "Transpose" => self.transpose(n),
            "Squeeze" => self.squeeze(n, true),
            "Unsqueeze" => self.squeeze(n, false),
            "Gather" => self.gather(n),
            "Clip" => self.clip(n),
            "Expand" => self.expand(n),
            "Shape" => self.shape(n),
            "Constant" => self.constant_node(n),
            "ConstantOfShape" => self.constant_of_shape(n),
            "Range" => self.range(n),
            "BatchNormalization" => self.batch_norm(n),
            "LSTM" | "GRU" | "RNN" => self.rnn(n, ty),
            "Scan" => self.scan(n),
            "Conv" => self.conv(n, false),
            "ConvTranspose" => self.conv(n, true),
            "MaxPool" => self.pool(n, PoolingType::Max),
            "AveragePool" => self.pool(n, PoolingType::Average),
            "MaxUnpool" => self.max_unpool(n),
            "GlobalMaxPool" => self.global_pool(n, PoolingType::Max),
            "GlobalAveragePool" => self.global_pool(n, PoolingType::Average),
            _ => Err(unsupported(format!("rntk has no op for ONNX {ty}"))),
        }
    }

    fn unary(&mut self, n: &NodeProto, u: UnaryOp) -> Result<Vec<Av>> {
        let x = self.need(n, 0)?;
        let t = self.tv(&x, None)?;
        let var = crate::functions::named(Op::Unary(u), &[&t.var], "")?;
        one_tv(Tv { var, dims: t.dims })
    }

    /// Line up operands the ONNX way (right-aligned), return their variables with
    /// equal-rank sample shapes and the result's dims.
    pub fn align(&mut self, ts: &[Tv]) -> Result<(Vec<Variable>, Vec<SDim>)> {
        let r = ts.iter().map(|t| t.dims.len()).max().unwrap_or(0);
        let mut out: Vec<SDim> = vec![SDim::N(1); r];
        for t in ts {
            let off = r - t.dims.len();
            for (i, d) in t.dims.iter().enumerate() {
                let o = &mut out[off + i];
                *o = match (o.clone(), d) {
                    (SDim::N(1), x) => x.clone(),
                    (x, SDim::N(1)) => x,
                    (SDim::N(a), SDim::N(b)) if a == *b => SDim::N(a),
                    (SDim::T, SDim::T) => SDim::T,
                    (SDim::B, SDim::B) => SDim::B,
                    (a, b) => {
                        return Err(unsupported(format!(
                            "operands whose dimensions {a:?} and {b:?} cannot be lined up"
                        )))
                    }
                };
            }
        }
        let has_t = out.contains(&SDim::T);
        let like_seq = ts
            .iter()
            .find(|t| t.var.dynamic_axes().has_sequence())
            .map(|t| t.var.clone());
        let mut vars = Vec::new();
        for t in ts {
            let off = r - t.dims.len();
            let mut s = Vec::new();
            for (i, d) in out.iter().enumerate() {
                if let SDim::N(_) = d {
                    s.push(match i.checked_sub(off).and_then(|k| t.dims.get(k)) {
                        Some(SDim::N(k)) => *k,
                        _ => 1,
                    });
                }
            }
            // drop leading unit dims the variable does not need (rntk broadcasts)
            let want = Shape::new(s.clone());
            let mut v = t.var.clone();
            if v.shape() != want {
                let trimmed: Vec<usize> = {
                    let k = s.iter().take_while(|&&d| d == 1).count();
                    s[k..].to_vec()
                };
                if v.shape().dims() != trimmed.as_slice() {
                    v = f::reshape(&v, want)?;
                }
            }
            // a batch-only value read at every step of a sequence
            if has_t && v.dynamic_axes() == DynamicAxes::Batch {
                if let Some(like) = &like_seq {
                    v = crate::sequence::broadcast_as(&v, like)?;
                }
            }
            vars.push(v);
        }
        Ok((vars, out))
    }

    fn binary(&mut self, n: &NodeProto, b: BinaryOp) -> Result<Vec<Av>> {
        let mut ts = Vec::new();
        for i in 0..n.input.len() {
            let v = self.need(n, i)?;
            ts.push(self.tv_of_av(n, i, &v)?);
        }
        if ts.is_empty() {
            return Err(self.err(n, "no operands"));
        }
        let (vars, dims) = self.align(&ts)?;
        let mut acc = vars[0].clone();
        for v in &vars[1..] {
            acc = crate::functions::named(Op::Binary(b), &[&acc, v], "")?;
        }
        one_tv(Tv { var: acc, dims })
    }

    fn tv_of_av(&mut self, n: &NodeProto, i: usize, v: &Av) -> Result<Tv> {
        match v {
            Av::C(_, true) => self.tv_of(n, i),
            _ => self.tv(v, None),
        }
    }

    fn where_(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let c = self.need(n, 0)?;
        if let Av::Mask(_) = c {
            // true on every real step: the value itself
            return Ok(vec![self.need(n, 1)?]);
        }
        let ts = vec![
            self.tv(&c, None)?,
            {
                let v = self.need(n, 1)?;
                self.tv_of_av(n, 1, &v)?
            },
            {
                let v = self.need(n, 2)?;
                self.tv_of_av(n, 2, &v)?
            },
        ];
        let (vars, dims) = self.align(&ts)?;
        let var = f::element_select(&vars[0], &vars[1], &vars[2])?;
        one_tv(Tv { var, dims })
    }

    fn cast(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        use super::super::builder::{BOOL, DOUBLE, FLOAT, INT32, INT64};
        let v = self.need(n, 0)?;
        let to = attr_i(n, "to", FLOAT as i64) as i32;
        Ok(vec![match v {
            Av::C(c, l) => {
                let data = match to {
                    FLOAT | DOUBLE => Data::F64(c.data.to_f64()),
                    INT32 | INT64 => Data::I64(c.data.to_i64()),
                    BOOL => Data::Bool(c.data.to_f64().iter().map(|&x| x != 0.0).collect()),
                    _ => return Err(unsupported(format!("Cast to type {to}"))),
                };
                Av::C(
                    Rc::new(ConstT {
                        dims: c.dims.clone(),
                        data,
                    }),
                    l && (to == FLOAT || to == DOUBLE),
                )
            }
            // floats, and comparisons' 0/1 values, are rntk floats already
            other => other,
        }])
    }

    fn matmul(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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
            Some(d @ SDim::N(_)) => *d = SDim::N(bs[1]),
            _ => return Err(unsupported("MatMul over a dynamic dimension")),
        }
        one_tv(Tv { var, dims })
    }

    fn gemm(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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

    fn softmax(&mut self, n: &NodeProto, log: bool) -> Result<Vec<Av>> {
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
    fn arg_extreme(&mut self, n: &NodeProto, max: bool) -> Result<Vec<Av>> {
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

    fn reduce(&mut self, n: &NodeProto, op: ReduceOp) -> Result<Vec<Av>> {
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

    fn concat(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let vals: Vec<Av> = (0..n.input.len())
            .map(|i| self.need(n, i))
            .collect::<Result<_>>()?;
        // shape vectors and int constants: folded
        if vals.iter().all(|v| matches!(v, Av::S(..) | Av::C(..))) {
            let mut out = Vec::new();
            for v in &vals {
                match v {
                    Av::S(s, _) => out.extend(s.iter().cloned()),
                    Av::C(c, _) if !c.data.is_float() => {
                        out.extend(c.data.to_i64().iter().map(|&k| SDim::N(k.max(0) as usize)))
                    }
                    _ => return self.concat_tensors(n, &vals),
                }
            }
            if vals.iter().any(|v| matches!(v, Av::S(..))) {
                return Ok(vec![Av::S(out, false)]);
            }
            if vals
                .iter()
                .all(|v| matches!(v, Av::C(c, _) if !c.data.is_float()))
            {
                let all: Vec<i64> = vals
                    .iter()
                    .flat_map(|v| match v {
                        Av::C(c, _) => c.data.to_i64(),
                        _ => vec![],
                    })
                    .collect();
                return Ok(vec![const_i64(vec![all.len()], all)]);
            }
        }
        self.concat_tensors(n, &vals)
    }

    fn concat_tensors(&mut self, n: &NodeProto, vals: &[Av]) -> Result<Vec<Av>> {
        let mut ts = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            ts.push(self.tv_of_av(n, i, v)?);
        }
        let a = ts[0]
            .axis(attr_i(n, "axis", 0))
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        let sa = ts[0]
            .sample_axis(a)
            .ok_or_else(|| unsupported("Concat along a dynamic dimension"))?;
        let mut vars = Vec::new();
        for t in &ts {
            if t.dims.len() != ts[0].dims.len() {
                return Err(self.err(n, "operands of different ranks"));
            }
            vars.push(self.exact(t)?);
        }
        let refs: Vec<&Variable> = vars.iter().collect();
        let var = f::splice(&refs, sa as isize)?;
        let mut dims = ts[0].dims.clone();
        dims[a] = SDim::N(var.shape().dims()[sa]);
        one_tv(Tv { var, dims })
    }

    fn slice(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let (starts, ends, axes, steps) = if self.opset < 10 {
            (
                attr_ints(n, "starts").unwrap_or_default(),
                attr_ints(n, "ends").unwrap_or_default(),
                attr_ints(n, "axes"),
                None,
            )
        } else {
            (
                self.ints(n, 1)?.unwrap_or_default(),
                self.ints(n, 2)?.unwrap_or_default(),
                self.ints(n, 3)?,
                self.ints(n, 4)?,
            )
        };
        if let Av::S(s, _) = &v {
            // a slice of a shape vector
            let (b, e) = (
                starts.first().copied().unwrap_or(0),
                ends.first().copied().unwrap_or(0),
            );
            let r = s.len() as i64;
            let clamp = |x: i64| if x < 0 { (x + r).max(0) } else { x.min(r) } as usize;
            return Ok(vec![Av::S(
                s[clamp(b)..clamp(e).max(clamp(b))].to_vec(),
                false,
            )]);
        }
        let mut t = self.tv(&v, None)?;
        let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        for (k, &ax) in axes.iter().enumerate() {
            let a = t.axis(ax).ok_or_else(|| self.err(n, "axis out of range"))?;
            let step = steps.as_ref().and_then(|s| s.get(k)).copied().unwrap_or(1);
            let (b, e) = (starts[k], ends[k]);
            if Some(a) == t.t_pos() {
                // along the sequence: the last step, or the first
                let var = match (b, e, step) {
                    (-1, e, 1) if e >= i32::MAX as i64 => crate::sequence::last(&t.var)?,
                    (0, 1, 1) => crate::sequence::first(&t.var)?,
                    _ => {
                        return Err(unsupported(
                            "a slice along the sequence axis other than its first or last step",
                        ))
                    }
                };
                let mut dims = t.dims.clone();
                dims[a] = SDim::N(1);
                t = Tv { var, dims };
                continue;
            }
            let sa = t
                .sample_axis(a)
                .ok_or_else(|| unsupported("a slice along the batch axis"))?;
            let d = t.sample()[sa] as i64;
            if step <= 0 {
                return Err(unsupported("a slice with a negative step"));
            }
            let clamp = |x: i64| if x < 0 { (x + d).max(0) } else { x.min(d) };
            let (b, e) = (clamp(b), clamp(e));
            if e <= b {
                return Err(self.err(n, "an empty slice"));
            }
            let x = self.exact(&t)?;
            let var = f::slice_strided(&x, sa as isize, b as isize, e as isize, step as isize)?;
            let mut dims = t.dims.clone();
            dims[a] = SDim::N(var.shape().dims()[sa]);
            t = Tv { var, dims };
        }
        one_tv(t)
    }

    /// Target dims of a reshape in ONNX terms (0 copies, -1 is inferred), with the
    /// dynamic dims followed through.
    fn reshape_dims(
        &self,
        n: &NodeProto,
        t: &Tv,
        target: &[SDim],
        allow_zero: bool,
    ) -> Result<Vec<SDim>> {
        let mut out: Vec<Option<SDim>> = Vec::new();
        for (i, d) in target.iter().enumerate() {
            out.push(match d {
                SDim::N(0) if !allow_zero => Some(
                    t.dims
                        .get(i)
                        .cloned()
                        .ok_or_else(|| self.err(n, "a 0 in the shape beyond the input's rank"))?,
                ),
                SDim::N(k) if *k == usize::MAX => None,
                x => Some(x.clone()),
            });
        }
        let known_in: usize = t.sample().iter().product();
        let known_out: usize = out
            .iter()
            .flatten()
            .map(|d| match d {
                SDim::N(k) => *k,
                _ => 1,
            })
            .product();
        let dyn_in: Vec<SDim> = t
            .dims
            .iter()
            .filter(|d| !matches!(d, SDim::N(_)))
            .cloned()
            .collect();
        let dyn_out: Vec<SDim> = out
            .iter()
            .flatten()
            .filter(|d| !matches!(d, SDim::N(_)))
            .cloned()
            .collect();
        let missing: Vec<SDim> = dyn_in
            .iter()
            .filter(|d| !dyn_out.contains(d))
            .cloned()
            .collect();
        let mut res = Vec::new();
        for d in out {
            res.push(match d {
                Some(x) => x,
                None => match missing.as_slice() {
                    [] => SDim::N(known_in / known_out.max(1)),
                    [m] if known_in == known_out => m.clone(),
                    _ => {
                        return Err(unsupported(
                            "a reshape that merges the batch or sequence axis with others",
                        ))
                    }
                },
            });
        }
        let res_known: usize = res
            .iter()
            .map(|d| match d {
                SDim::N(k) => *k,
                _ => 1,
            })
            .product();
        // CNTK's files: the batch (fixed to 1) may disappear into a unit dim
        let lost: Vec<&SDim> = dyn_in.iter().filter(|d| !res.contains(d)).collect();
        if res_known != known_in || lost.iter().any(|d| **d == SDim::T) {
            return Err(unsupported(format!(
                "a reshape from {:?} to {:?} that moves elements across the batch or sequence axis",
                t.dims, res
            )));
        }
        Ok(res)
    }

    fn reshape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let target: Vec<SDim> = match self.input(n, 1)? {
            Some(Av::C(c, _)) => c
                .data
                .to_i64()
                .iter()
                .map(|&k| {
                    if k < 0 {
                        SDim::N(usize::MAX)
                    } else {
                        SDim::N(k as usize)
                    }
                })
                .collect(),
            Some(Av::S(s, _)) => s,
            None => attr_ints(n, "shape")
                .unwrap_or_default()
                .iter()
                .map(|&k| {
                    if k < 0 {
                        SDim::N(usize::MAX)
                    } else {
                        SDim::N(k as usize)
                    }
                })
                .collect(),
            _ => return Err(unsupported("Reshape to a shape computed from data")),
        };
        if let Av::C(c, l) = &v {
            let t = Tv {
                var: crate::graph::scalar(0.0, self.dtype),
                dims: c.dims.iter().map(|&d| SDim::N(d)).collect(),
            };
            let d = self.reshape_dims(n, &t, &target, attr_i(n, "allowzero", 0) == 1)?;
            let dims: Vec<usize> = d
                .iter()
                .map(|x| if let SDim::N(k) = x { *k } else { 1 })
                .collect();
            return Ok(vec![Av::C(
                Rc::new(ConstT {
                    dims,
                    data: c.data.clone(),
                }),
                *l,
            )]);
        }
        let t = self.tv(&v, None)?;
        let dims = self.reshape_dims(n, &t, &target, attr_i(n, "allowzero", 0) == 1)?;
        let s: Vec<usize> = dims
            .iter()
            .filter_map(|d| if let SDim::N(k) = d { Some(*k) } else { None })
            .collect();
        let var = if t.var.shape().numel() == s.iter().product::<usize>() {
            t.var.clone()
        } else {
            return Err(unsupported("a reshape of a broadcast constant"));
        };
        one_tv(Tv { var, dims })
    }

    fn flatten(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let a = attr_i(n, "axis", 1);
        let a = if a < 0 { a + t.dims.len() as i64 } else { a } as usize;
        if t.dims[..a.min(t.dims.len())]
            .iter()
            .filter(|d| !matches!(d, SDim::N(_)))
            .count()
            != t.dims.iter().filter(|d| !matches!(d, SDim::N(_))).count()
        {
            return Err(unsupported("Flatten across the batch or sequence axis"));
        }
        let mut dims: Vec<SDim> = t.dims[..a].to_vec();
        let rest: usize = t.dims[a..]
            .iter()
            .map(|d| if let SDim::N(k) = d { *k } else { 1 })
            .product();
        dims.push(SDim::N(rest));
        one_tv(Tv { var: t.var, dims })
    }

    fn transpose(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let r = t.dims.len();
        let perm: Vec<usize> = attr_ints(n, "perm")
            .map(|p| p.iter().map(|&x| x as usize).collect())
            .unwrap_or_else(|| (0..r).rev().collect());
        if perm.len() != r || perm.iter().any(|&p| p >= r) {
            return Err(self.err(n, "perm does not fit the input's rank"));
        }
        let dims: Vec<SDim> = perm.iter().map(|&p| t.dims[p].clone()).collect();
        // the sample dims in their new order
        let sample_perm: Vec<usize> = perm.iter().filter_map(|&p| t.sample_axis(p)).collect();
        let identity = sample_perm.iter().enumerate().all(|(i, &p)| i == p);
        let var = if identity {
            t.var.clone()
        } else {
            // unit dims the variable lacks do not move data
            let x = self.exact(&t)?;
            f::transpose(&x, &sample_perm)?
        };
        one_tv(Tv { var, dims })
    }

    fn squeeze(&mut self, n: &NodeProto, squeeze: bool) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let axes = self.axes_of(n, 1)?;
        if let Av::S(s, scalar) = &v {
            // shape arithmetic: a scalar ↔ a one-element vector
            return Ok(vec![Av::S(
                s.clone(),
                if squeeze {
                    s.len() == 1
                } else {
                    !*scalar && false
                },
            )]);
        }
        if let Av::Mask(k) = v {
            return Ok(vec![Av::Mask(k)]);
        }
        if let Av::C(c, l) = &v {
            let mut dims = c.dims.clone();
            if squeeze {
                match &axes {
                    Some(a) => {
                        let r = dims.len() as i64;
                        let mut idx: Vec<usize> = a
                            .iter()
                            .map(|&x| if x < 0 { x + r } else { x } as usize)
                            .collect();
                        idx.sort_unstable();
                        for i in idx.into_iter().rev() {
                            if i < dims.len() {
                                dims.remove(i);
                            }
                        }
                    }
                    None => dims.retain(|&d| d != 1),
                }
            } else {
                let a = axes.unwrap_or_default();
                let r = (dims.len() + a.len()) as i64;
                let mut idx: Vec<usize> = a
                    .iter()
                    .map(|&x| if x < 0 { x + r } else { x } as usize)
                    .collect();
                idx.sort_unstable();
                for i in idx {
                    dims.insert(i.min(dims.len()), 1);
                }
            }
            return Ok(vec![Av::C(
                Rc::new(ConstT {
                    dims,
                    data: c.data.clone(),
                }),
                *l,
            )]);
        }
        let t = self.tv(&v, None)?;
        let mut dims = t.dims.clone();
        if squeeze {
            let r = dims.len() as i64;
            let idx: Vec<usize> = match axes {
                Some(a) => a
                    .iter()
                    .map(|&x| if x < 0 { x + r } else { x } as usize)
                    .collect(),
                None => (0..dims.len()).filter(|&i| dims[i] == SDim::N(1)).collect(),
            };
            let mut idx = idx;
            idx.sort_unstable();
            for i in idx.into_iter().rev() {
                match dims.get(i) {
                    Some(SDim::N(1)) => {
                        dims.remove(i);
                    }
                    // CNTK's batch of 1 squeezed away: the batch stays, unnamed
                    Some(SDim::B) if self.producer == "CNTK" => {
                        dims.remove(i);
                    }
                    _ => return Err(self.err(n, "squeezes a dimension that is not 1")),
                }
            }
        } else {
            let a = axes.unwrap_or_default();
            let r = (dims.len() + a.len()) as i64;
            let mut idx: Vec<usize> = a
                .iter()
                .map(|&x| if x < 0 { x + r } else { x } as usize)
                .collect();
            idx.sort_unstable();
            for i in idx {
                dims.insert(i.min(dims.len()), SDim::N(1));
            }
        }
        one_tv(Tv { var: t.var, dims })
    }

    fn gather(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let data = self.need(n, 0)?;
        let axis = attr_i(n, "axis", 0);
        let idx = self.need(n, 1)?;
        if let Av::S(s, _) = &data {
            // one entry of a shape vector
            let k = self
                .ints(n, 1)?
                .ok_or_else(|| self.err(n, "a dynamic index into a shape"))?;
            let r = s.len() as i64;
            let pick: Vec<SDim> = k
                .iter()
                .map(|&i| {
                    s.get((if i < 0 { i + r } else { i }) as usize)
                        .cloned()
                        .ok_or_else(|| self.err(n, "index out of range"))
                })
                .collect::<Result<_>>()?;
            let scalar = matches!(&idx, Av::C(c, _) if c.dims.is_empty());
            return Ok(vec![Av::S(pick, scalar)]);
        }
        let t = self.tv_of_av(n, 0, &data)?;
        let a = t
            .axis(axis)
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        if Some(a) == t.t_pos() {
            // a step of every sequence: the first or the last
            let k = self
                .ints(n, 1)?
                .ok_or_else(|| unsupported("a dynamic index along the sequence axis"))?;
            let var = match k.as_slice() {
                [0] => crate::sequence::first(&t.var)?,
                [-1] => crate::sequence::last(&t.var)?,
                _ => {
                    return Err(unsupported(
                        "a step along the sequence axis other than the first or last",
                    ))
                }
            };
            let mut dims = t.dims.clone();
            dims.remove(a);
            return one_tv(Tv { var, dims });
        }
        // an embedding: rows of a static table picked by per-sample indices
        if a != 0 || t.dims.iter().any(|d| !matches!(d, SDim::N(_))) {
            return Err(unsupported("Gather other than rows of a static table"));
        }
        let it = self.tv(&idx, None)?;
        let reference = self.exact(&t)?;
        let ix = self.exact(&it)?;
        let var = f::gather(&reference, &ix)?;
        let mut dims = it.dims.clone();
        dims.extend(t.dims[1..].iter().cloned());
        one_tv(Tv { var, dims })
    }

    fn clip(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let x = {
            let v = self.need(n, 0)?;
            self.tv(&v, None)?
        };
        let (lo, hi) = if self.opset < 11 {
            (
                attr_f(n, "min", f32::MIN) as f64,
                attr_f(n, "max", f32::MAX) as f64,
            )
        } else {
            let get = |s: &Self, i: usize, d: f64| -> Result<f64> {
                Ok(match s.konst(n, i)? {
                    Some(c) => c.data.to_f64().first().copied().unwrap_or(d),
                    None if s.input(n, i)?.is_none() => d,
                    None => return Err(unsupported("Clip with dynamic bounds")),
                })
            };
            (get(self, 1, f64::MIN)?, get(self, 2, f64::MAX)?)
        };
        let var = f::clip(
            &x.var,
            &crate::graph::scalar(lo, self.dtype),
            &crate::graph::scalar(hi, self.dtype),
        )?;
        one_tv(Tv { var, dims: x.dims })
    }

    fn expand(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let shape: Vec<SDim> = match self.input(n, 1)? {
            Some(Av::S(s, _)) => s,
            Some(Av::C(c, _)) => c
                .data
                .to_i64()
                .iter()
                .map(|&k| SDim::N(k.max(0) as usize))
                .collect(),
            _ => return Err(unsupported("Expand to a shape computed from data")),
        };
        let t = self.tv(&v, None)?;
        // broadcast: the result's dims, the value's data (rntk broadcasts when used)
        let r = shape.len().max(t.dims.len());
        let mut dims = vec![SDim::N(1); r];
        for (i, d) in shape.iter().enumerate() {
            dims[r - shape.len() + i] = d.clone();
        }
        for (i, d) in t.dims.iter().enumerate() {
            let o = &mut dims[r - t.dims.len() + i];
            if *d != SDim::N(1) {
                *o = d.clone();
            }
        }
        // a static value broadcast over sample dims becomes that shape (the dynamic
        // dims stay broadcast marks)
        let want: Vec<usize> = dims
            .iter()
            .filter_map(|d| if let SDim::N(k) = d { Some(*k) } else { None })
            .collect();
        let var = if t.var.shape().numel() == want.iter().product::<usize>()
            || t.var.shape().numel() == 1 && want.iter().product::<usize>() == 1
        {
            t.var.clone()
        } else if t.var.dynamic_axes().is_none() && t.var.shape().numel() == 1 {
            // a scalar fill: kept a scalar (broadcast when used)
            return one_tv(Tv {
                var: t.var,
                dims: dims
                    .iter()
                    .map(|d| match d {
                        SDim::N(_) => SDim::N(1),
                        x => x.clone(),
                    })
                    .collect(),
            })
            .map(|mut v| {
                if let Some(Av::T(tv)) = v.first_mut() {
                    tv.dims = dims.clone();
                }
                v
            });
        } else {
            let ones = constant(
                crate::tensor::Tensor::from_f64(
                    Shape::new(want.clone()),
                    self.dtype,
                    &vec![0.0; want.iter().product()],
                )?,
                "",
            );
            f::plus(&t.var, &ones)?
        };
        one_tv(Tv { var, dims })
    }

    fn shape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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
        Ok(vec![Av::S(dims[start..end.max(start)].to_vec(), false)])
    }

    fn constant_node(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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

    fn constant_of_shape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let dims: Vec<SDim> = match self.need(n, 0)? {
            Av::S(s, _) => s,
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

    fn range(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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

    /// Inference batch normalization over ONNX axis 1 (rntk's op with the running
    /// statistics).
    fn batch_norm(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
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

pub(crate) fn one_tv(t: Tv) -> Result<Vec<Av>> {
    Ok(vec![Av::T(t)])
}
