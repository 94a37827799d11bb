//! Standard ONNX nodes → rntk ops: the dispatch of every node type to its module
//! (`math.rs` products and reductions, `shape.rs` shape ops, `consts.rs` values known
//! at import, `conv.rs` convolution and pooling, `rnn.rs` recurrences), attribute
//! reads, abstract values as variables, and here the element-wise ops with ONNX
//! broadcasting (the dynamic dimensions lined up, the sample's broadcast as rntk
//! does), `Where`, `Cast`, `Clip`.
use super::super::proto::{AttributeProto, NodeProto};
use super::model::{ConstT, Data};
use super::value::{const_f64, tensor_of, Av, SDim, Tv};
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

pub(crate) fn unsupported(what: impl Into<String>) -> Error {
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
            Some(Av::S(s)) => {
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
    pub(crate) fn axes_of(&self, n: &NodeProto, input: usize) -> Result<Option<Vec<i64>>> {
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

    pub(crate) fn tv_of_av(&mut self, n: &NodeProto, i: usize, v: &Av) -> Result<Tv> {
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
}

pub(crate) fn one_tv(t: Tv) -> Result<Vec<Av>> {
    Ok(vec![Av::T(t)])
}
