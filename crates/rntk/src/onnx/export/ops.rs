//! rntk ops outside loops and sequence functions → ONNX nodes: element-wise math,
//! products, reductions, softmax, shape ops, gather / one-hot, batch normalization,
//! the fused LSTM cell, losses and metrics. Every op works on the padded form of its
//! operands: the dynamic dimensions lead, the sample's follow.

use super::super::builder::{attr_f, attr_i, attr_ints, INT64};
use super::{Ex, Lay, XV};
use crate::error::Result;
use crate::ops::{BinaryOp, ExecKind, Op, ReduceOp, UnaryOp};
use crate::tensor::{DType, Shape};

/// A sample axis (negative from the end) as an index, if in range.
fn norm_axis(axis: isize, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    (0..rank as isize).contains(&a).then_some(a as usize)
}

fn reduce_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "ReduceSum",
        ReduceOp::Mean => "ReduceMean",
        ReduceOp::Max => "ReduceMax",
        ReduceOp::Min => "ReduceMin",
        ReduceOp::LogSumExp => "ReduceLogSumExp",
    }
}

impl Ex<'_> {
    /// Store the emitted form of value `v` (in the loop body being built, if any).
    pub fn set(&mut self, v: usize, x: XV) {
        match self.local.last_mut() {
            Some(m) => {
                m.insert(v, x);
            }
            None => self.vals[v] = Some(x),
        }
    }

    /// Write node `n` (not part of a loop).
    pub fn emit_node(&mut self, n: usize) -> Result<()> {
        let ins = self.operands(n)?;
        let node = &self.flat.nodes[n];
        let out = node.out;
        let x = match &node.op {
            Op::PastValue { .. } | Op::FutureValue { .. } => self.shift(n, &ins)?,
            Op::LstmScan { reverse } => self.lstm_scan(n, &ins, *reverse)?,
            Op::ReduceAll { op } => self.reduce_all(*op, &ins[0], n)?,
            Op::BatchNorm {
                spatial, epsilon, ..
            } => self.batch_norm(*spatial, *epsilon, &ins)?,
            Op::WeightedLogistic => self.weighted_logistic(&ins, n)?,
            Op::ClassificationErrorTopN { top_n } => self.top_n_error(*top_n, &ins, n)?,
            Op::Ndcg1 | Op::LambdaRank => {
                return Err(self.err(
                    n,
                    "ranking criteria over the minibatch's query groups have no ONNX form; \
                     export the model without its criterion",
                ))
            }
            // (refused by name there)
            Op::Convolution(a) if a.sequential => self.row_local(n, &ins)?,
            op if op.exec_kind() == ExecKind::Whole => self.sequence_op(n, &ins)?,
            _ => self.row_local(n, &ins)?,
        };
        self.set(out, x);
        Ok(())
    }

    /// The output value of node `n` with layout `lay` and ONNX name `name`.
    pub fn out_of(&self, n: usize, name: String, lay: Lay) -> XV {
        let info = &self.flat.vals[self.flat.nodes[n].out].info;
        XV {
            name,
            lay,
            shape: info.shape.clone(),
            dtype: info.dtype,
        }
    }

    /// `x` with unit dimensions inserted after its dynamic ones, so that its sample
    /// has rank `rank` (static values broadcast from the right as they are).
    pub fn align(&mut self, x: &XV, rank: usize) -> String {
        let r = x.shape.rank();
        if x.lay == Lay::Static || r >= rank {
            return x.name.clone();
        }
        let nd = x.ndyn() as i64;
        let axes: Vec<i64> = (nd..nd + (rank - r) as i64).collect();
        self.g.unsqueeze(&x.name, &axes)
    }

    /// A static value broadcast to the dynamic dimensions of `like` (`[dyn…, sample]`).
    pub fn expand_like(&mut self, x: &XV, like: &XV) -> String {
        if x.lay != Lay::Static || like.ndyn() == 0 {
            return x.name.clone();
        }
        let lead = self.g.shape_part(&like.name, 0, like.ndyn() as i64);
        let dims = x.dims_i64();
        let rest = self.g.i64s(&dims);
        let shape = self
            .g
            .op("Concat", &[&lead, &rest], vec![attr_i("axis", 0)]);
        self.g.op("Expand", &[&x.name, &shape], vec![])
    }

    fn layout_of(ins: &[XV]) -> Lay {
        ins.iter().fold(Lay::Static, |l, x| l.join(x.lay))
    }

    /// Reshape `x` (of layout `lay`) to the sample dims `dims`.
    pub fn reshape_sample(&mut self, x: &str, lay: Lay, dims: &[usize]) -> String {
        let mut t: Vec<i64> = vec![0; lay.ndyn()];
        t.extend(dims.iter().map(|&d| d as i64));
        if t.is_empty() {
            // a scalar
            let e = self.g.i64s(&[]);
            return self.g.op("Reshape", &[x, &e], vec![]);
        }
        self.g.reshape(x, &t)
    }

    /// Row-local ops (they also run inside loop bodies).
    pub fn row_local(&mut self, n: usize, ins: &[XV]) -> Result<XV> {
        let op = self.flat.nodes[n].op.clone();
        let lay = Self::layout_of(ins);
        let out_rank = self.flat.vals[self.flat.nodes[n].out].info.shape.rank();
        let name = match &op {
            Op::Unary(u) => self.unary(*u, &ins[0]),
            Op::Binary(b) => {
                let a = self.align(&ins[0], out_rank);
                let c = self.align(&ins[1], out_rank);
                self.binary(*b, &a, &c, ins[0].dtype)
            }
            Op::Times { output_rank, .. } => self.times(&ins[0], &ins[1], *output_rank, n)?,
            Op::TransposeTimes { .. } => self.transpose_times(&ins[0], &ins[1], n)?,
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                let x = &ins[0];
                let a = norm_axis(*axis, x.shape.rank())
                    .ok_or_else(|| self.err(n, format!("axis {axis} out of range")))?;
                let ty = if matches!(op, Op::Softmax { .. }) {
                    "Softmax"
                } else {
                    "LogSoftmax"
                };
                self.g
                    .op(ty, &[&x.name], vec![attr_i("axis", (x.ndyn() + a) as i64)])
            }
            Op::Reduce { op, axes, keepdims } => {
                let x = &ins[0];
                let nd = x.ndyn() as i64;
                let r = x.shape.rank();
                if r == 0 {
                    self.g.op("Identity", &[&x.name], vec![])
                } else {
                    let (list, keep) = match axes {
                        None => ((0..r).collect::<Vec<_>>(), false),
                        Some(a) => {
                            let mut l = Vec::new();
                            for &ax in a {
                                l.push(norm_axis(ax, r).ok_or_else(|| {
                                    self.err(n, format!("axis {ax} out of range"))
                                })?);
                            }
                            l.sort_unstable();
                            l.dedup();
                            (l, *keepdims)
                        }
                    };
                    let list: Vec<i64> = list.iter().map(|&a| nd + a as i64).collect();
                    self.g.reduce(reduce_name(*op), &x.name, &list, keep)
                }
            }
            Op::Splice { axis } => self.splice(*axis, ins, n)?,
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => {
                let x = &ins[0];
                let r = x.shape.rank();
                let a = norm_axis(*axis, r)
                    .ok_or_else(|| self.err(n, format!("axis {axis} out of range")))?;
                let (b, s, count) =
                    crate::ops::shape_ops::slice_range(x.shape.dims()[a], *begin, *end, *stride)
                        .ok_or_else(|| self.err(n, "an empty slice"))?;
                let e = b + (count - 1) * s + 1;
                let ax = (x.ndyn() + a) as i64;
                self.g
                    .slice_steps(&x.name, &[b as i64], &[e as i64], &[ax], &[s as i64])
            }
            Op::Reshape { .. } => {
                let dims = self.flat.vals[self.flat.nodes[n].out].info.shape.clone();
                self.reshape_sample(&ins[0].name, ins[0].lay, dims.dims())
            }
            Op::Transpose { perm } => {
                let nd = ins[0].ndyn();
                let mut p: Vec<i64> = (0..nd as i64).collect();
                p.extend(perm.iter().map(|&q| (nd + q) as i64));
                self.g
                    .op("Transpose", &[&ins[0].name], vec![attr_ints("perm", &p)])
            }
            Op::Clip => {
                let v: Vec<String> = ins.iter().map(|x| self.align(x, out_rank)).collect();
                let lo = self.g.op("Max", &[&v[0], &v[1]], vec![]);
                self.g.op("Min", &[&lo, &v[2]], vec![])
            }
            Op::Select => {
                let v: Vec<String> = ins.iter().map(|x| self.align(x, out_rank)).collect();
                let z = self.g.scalar(0.0, ins[0].dtype);
                let eq = self.g.op("Equal", &[&v[0], &z], vec![]);
                let c = self.g.op("Not", &[&eq], vec![]);
                self.g.op("Where", &[&c, &v[1], &v[2]], vec![])
            }
            Op::Dropout { .. } => {
                // Inference form: the identity (no node at all).
                return Ok(XV {
                    lay,
                    ..ins[0].clone()
                });
            }
            Op::OneHot { num_classes } => {
                let idx = self.g.cast(&ins[0].name, INT64);
                self.one_hot(&idx, *num_classes, ins[0].dtype)
            }
            Op::Gather => self.gather(&ins[0], &ins[1])?,
            Op::Hardmax => {
                let x = &ins[0];
                let flat = self.reshape_sample(&x.name, x.lay, &[x.shape.numel()]);
                let idx = self.g.op(
                    "ArgMax",
                    &[&flat],
                    vec![attr_i("axis", -1), attr_i("keepdims", 0)],
                );
                let oh = self.one_hot(&idx, x.shape.numel(), x.dtype);
                self.reshape_sample(&oh, x.lay, x.shape.dims())
            }
            Op::LstmCell => self.lstm_cell(&ins[0], &ins[1]),
            Op::Convolution(a) => self.convolution(n, ins, a, false)?,
            Op::ConvolutionTranspose(a) => self.convolution(n, ins, a, true)?,
            Op::Pooling(a) => self.pooling(n, &ins[0], a)?,
            Op::Unpooling(a) => self.unpooling(n, ins, a)?,
            Op::CrossEntropyWithSoftmax => {
                let (o, t) = (&ins[0], &ins[1]);
                let ls = self
                    .g
                    .op("LogSoftmax", &[&o.name], vec![attr_i("axis", -1)]);
                let p = self.g.op("Mul", &[&t.name, &ls], vec![]);
                let s = self.g.reduce("ReduceSum", &p, &[-1], true);
                self.g.op("Neg", &[&s], vec![])
            }
            Op::ClassificationError => {
                let (o, t) = (&ins[0], &ins[1]);
                let h = self.g.op("Hardmax", &[&o.name], vec![attr_i("axis", -1)]);
                let p = self.g.op("Mul", &[&t.name, &h], vec![]);
                let s = self.g.reduce("ReduceSum", &p, &[-1], true);
                let one = self.g.scalar(1.0, o.dtype);
                self.g.op("Sub", &[&one, &s], vec![])
            }
            other => {
                return Err(self.err(
                    n,
                    format!("{} is not expected here (internal)", other.name()),
                ))
            }
        };
        Ok(self.out_of(n, name, lay))
    }

    /// One-hot vectors of `depth` along a new last axis for int64 indices `idx`
    /// (all zeros for an index out of range).
    pub fn one_hot(&mut self, idx: &str, depth: usize, d: DType) -> String {
        let u = self.g.unsqueeze(idx, &[-1]);
        let (z, n, o) = (
            self.g.i64_scalar(0),
            self.g.i64_scalar(depth as i64),
            self.g.i64_scalar(1),
        );
        let r = self.g.op("Range", &[&z, &n, &o], vec![]);
        let eq = self.g.op("Equal", &[&u, &r], vec![]);
        self.g.cast(&eq, super::super::builder::elem_type(d))
    }

    fn unary(&mut self, u: UnaryOp, x: &XV) -> String {
        let x = x.name.as_str();
        match u {
            UnaryOp::Negate => self.g.op("Neg", &[x], vec![]),
            UnaryOp::Sigmoid => self.g.op("Sigmoid", &[x], vec![]),
            UnaryOp::Tanh => self.g.op("Tanh", &[x], vec![]),
            UnaryOp::Relu => self.g.op("Relu", &[x], vec![]),
            UnaryOp::LeakyRelu(a) => self
                .g
                .op("LeakyRelu", &[x], vec![attr_f("alpha", a as f32)]),
            UnaryOp::Elu => self.g.op("Elu", &[x], vec![attr_f("alpha", 1.0)]),
            UnaryOp::Softplus => self.g.op("Softplus", &[x], vec![]),
            UnaryOp::Exp => self.g.op("Exp", &[x], vec![]),
            UnaryOp::Log => self.g.op("Log", &[x], vec![]),
            UnaryOp::Sqrt => self.g.op("Sqrt", &[x], vec![]),
            UnaryOp::Square => self.g.op("Mul", &[x, x], vec![]),
            UnaryOp::Abs => self.g.op("Abs", &[x], vec![]),
            UnaryOp::Reciprocal => self.g.op("Reciprocal", &[x], vec![]),
            UnaryOp::StopGradient | UnaryOp::Alias => self.g.op("Identity", &[x], vec![]),
            UnaryOp::Floor => self.g.op("Floor", &[x], vec![]),
            UnaryOp::Sin => self.g.op("Sin", &[x], vec![]),
            UnaryOp::Cos => self.g.op("Cos", &[x], vec![]),
        }
    }

    fn binary(&mut self, b: BinaryOp, x: &str, y: &str, d: DType) -> String {
        let elem = super::super::builder::elem_type(d);
        let cmp = |ex: &mut Self, ty: &str| {
            let c = ex.g.op(ty, &[x, y], vec![]);
            ex.g.cast(&c, elem)
        };
        match b {
            BinaryOp::Plus => self.g.op("Add", &[x, y], vec![]),
            BinaryOp::Minus => self.g.op("Sub", &[x, y], vec![]),
            BinaryOp::ElementTimes => self.g.op("Mul", &[x, y], vec![]),
            BinaryOp::ElementDivide => self.g.op("Div", &[x, y], vec![]),
            BinaryOp::Pow => self.g.op("Pow", &[x, y], vec![]),
            BinaryOp::ElementMax => self.g.op("Max", &[x, y], vec![]),
            BinaryOp::ElementMin => self.g.op("Min", &[x, y], vec![]),
            BinaryOp::Equal => cmp(self, "Equal"),
            BinaryOp::Less => cmp(self, "Less"),
            BinaryOp::LessEqual => cmp(self, "LessOrEqual"),
            BinaryOp::Greater => cmp(self, "Greater"),
            BinaryOp::GreaterEqual => cmp(self, "GreaterOrEqual"),
            BinaryOp::NotEqual => {
                let c = self.g.op("Equal", &[x, y], vec![]);
                let c = self.g.op("Not", &[&c], vec![]);
                self.g.cast(&c, elem)
            }
            BinaryOp::LogPlus => {
                // max(a, b) + log(1 + exp(−|a − b|))
                let m = self.g.op("Max", &[x, y], vec![]);
                let d = self.g.op("Sub", &[x, y], vec![]);
                let a = self.g.op("Abs", &[&d], vec![]);
                let na = self.g.op("Neg", &[&a], vec![]);
                let sp = self.g.op("Softplus", &[&na], vec![]);
                self.g.op("Add", &[&m, &sp], vec![])
            }
        }
    }

    /// `times(l, r)`: the trailing axes of `l` contracted with the leading axes of `r`,
    /// as one MatMul of `[dyn…, M, K]` by `[dyn…, K, O]`.
    fn times(&mut self, l: &XV, r: &XV, output_rank: usize, n: usize) -> Result<String> {
        let rd = r.shape.dims();
        if output_rank == 0 || output_rank > rd.len() {
            return Err(self.err(n, "output rank out of range"));
        }
        let kdims = &rd[..rd.len() - output_rank];
        let k: usize = kdims.iter().product();
        let o: usize = rd[rd.len() - output_rank..].iter().product();
        let ld = l.shape.dims();
        let m: usize = ld[..ld.len() - kdims.len()].iter().product();
        let mdims = ld.len() - kdims.len();
        let out = self.flat.vals[self.flat.nodes[n].out].info.shape.clone();
        let lay = l.lay.join(r.lay);
        // The common Dense case: a vector times a matrix.
        if mdims == 0 && kdims.len() == 1 && output_rank == 1 && r.lay == Lay::Static {
            return Ok(self.g.op("MatMul", &[&l.name, &r.name], vec![]));
        }
        let lhs = if r.lay == Lay::Static && mdims == 0 {
            self.reshape_sample(&l.name, l.lay, &[k])
        } else {
            self.reshape_sample(&l.name, l.lay, &[m, k])
        };
        let rhs = if r.lay == Lay::Static && rd.len() == 2 {
            r.name.clone()
        } else {
            self.reshape_sample(&r.name, r.lay, &[k, o])
        };
        let y = self.g.op("MatMul", &[&lhs, &rhs], vec![]);
        Ok(self.reshape_sample(&y, lay, out.dims()))
    }

    /// `times_transpose(l, r)`: `l · rᵀ` over the last axis.
    fn transpose_times(&mut self, l: &XV, r: &XV, n: usize) -> Result<String> {
        let out = self.flat.vals[self.flat.nodes[n].out].info.shape.clone();
        let lay = l.lay.join(r.lay);
        let k = *l.shape.dims().last().unwrap_or(&1);
        let m = l.shape.numel() / k.max(1);
        let lhs = self.reshape_sample(&l.name, l.lay, &[m, k]);
        let rhs = if r.shape.rank() == 1 {
            self.reshape_sample(&r.name, r.lay, &[k, 1])
        } else {
            let nd = r.ndyn() as i64;
            let mut p: Vec<i64> = (0..nd).collect();
            p.extend([nd + 1, nd]);
            self.g
                .op("Transpose", &[&r.name], vec![attr_ints("perm", &p)])
        };
        let y = self.g.op("MatMul", &[&lhs, &rhs], vec![]);
        Ok(self.reshape_sample(&y, lay, out.dims()))
    }

    fn splice(&mut self, axis: isize, ins: &[XV], n: usize) -> Result<String> {
        let rank = ins[0].shape.rank();
        let a = if axis < 0 { axis + rank as isize } else { axis };
        if a < 0 || a > rank as isize {
            return Err(self.err(n, format!("axis {axis} out of range")));
        }
        let a = a as usize;
        let dynamic = ins.iter().find(|x| x.lay != Lay::Static).cloned();
        let nd = dynamic.as_ref().map_or(0, |x| x.ndyn());
        let mut parts = Vec::new();
        for x in ins {
            let e = match &dynamic {
                Some(d) => self.expand_like(x, d),
                None => x.name.clone(),
            };
            parts.push(if a == rank {
                self.g.unsqueeze(&e, &[(nd + rank) as i64])
            } else {
                e
            });
        }
        let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
        Ok(self
            .g
            .op("Concat", &refs, vec![attr_i("axis", (nd + a) as i64)]))
    }

    fn gather(&mut self, r: &XV, i: &XV) -> Result<String> {
        let idx = self.g.cast(&i.name, INT64);
        if r.lay == Lay::Static {
            return Ok(self
                .g
                .op("Gather", &[&r.name, &idx], vec![attr_i("axis", 0)]));
        }
        // A per-sample reference: gather within each sample.
        let ix = XV {
            name: idx,
            dtype: i.dtype,
            ..i.clone()
        };
        let ix = self.expand_like(&ix, r);
        let last = (r.ndyn() + i.shape.rank()) as i64;
        let ix = self.g.unsqueeze(&ix, &[last]);
        Ok(self.g.op(
            "GatherND",
            &[&r.name, &ix],
            vec![attr_i("batch_dims", r.ndyn() as i64)],
        ))
    }

    /// CNTK's LSTM cell: gates [i, g, f, o] of `pre`, `[h | c]` out.
    pub fn lstm_cell(&mut self, pre: &XV, c_prev: &XV) -> String {
        let n = c_prev.shape.numel() as i64;
        let ax = (pre.ndyn() + pre.shape.rank() - 1) as i64;
        let gate = |ex: &mut Self, k: i64| ex.g.slice(&pre.name, &[k * n], &[(k + 1) * n], &[ax]);
        let (gi, gg, gf, go) = (gate(self, 0), gate(self, 1), gate(self, 2), gate(self, 3));
        let i = self.g.op("Sigmoid", &[&gi], vec![]);
        let g = self.g.op("Tanh", &[&gg], vec![]);
        let f = self.g.op("Sigmoid", &[&gf], vec![]);
        let o = self.g.op("Sigmoid", &[&go], vec![]);
        let fc = self.g.op("Mul", &[&f, &c_prev.name], vec![]);
        let ig = self.g.op("Mul", &[&i, &g], vec![]);
        let c = self.g.op("Add", &[&fc, &ig], vec![]);
        let tc = self.g.op("Tanh", &[&c], vec![]);
        let h = self.g.op("Mul", &[&tc, &o], vec![]);
        self.g.op("Concat", &[&h, &c], vec![attr_i("axis", -1)])
    }

    /// Every element summed over the dynamic axes too (a scalar); sequence padding is
    /// left out by the mask.
    fn reduce_all(&mut self, op: ReduceOp, x: &XV, n: usize) -> Result<XV> {
        let name = match x.lay {
            Lay::Seq(k) => {
                let lens = self.axes[k].lens.clone();
                let f = match op {
                    ReduceOp::Sum => "SequenceReduceAllSum",
                    ReduceOp::Mean => "SequenceReduceAllMean",
                    ReduceOp::Max => "SequenceReduceAllMax",
                    ReduceOp::Min => "SequenceReduceAllMin",
                    ReduceOp::LogSumExp => "SequenceReduceAllLogSumExp",
                };
                let c = self.fill_constants(op, x.dtype);
                let mut args = vec![x.name.as_str(), lens.as_str()];
                args.extend(c.iter().map(|s| s.as_str()));
                self.call(f, &args, 1, vec![]).remove(0)
            }
            _ => self.g.reduce(reduce_name(op), &x.name, &[], false),
        };
        Ok(self.out_of(n, name, Lay::Static))
    }

    /// The padding value a masked reduction uses (as an operand of the function).
    pub fn fill_constants(&mut self, op: ReduceOp, d: DType) -> Vec<String> {
        let v = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max | ReduceOp::LogSumExp => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        };
        let mut c = vec![self.g.scalar(v, d)];
        if op == ReduceOp::Mean {
            c.push(self.g.scalar(1.0, d));
        }
        c
    }

    /// Inference-form batch normalization with the running statistics.
    fn batch_norm(&mut self, spatial: bool, eps: f64, ins: &[XV]) -> Result<XV> {
        let x = &ins[0];
        let c = if spatial {
            x.shape.dims().first().copied().unwrap_or(1)
        } else {
            x.shape.numel()
        };
        let rest = x.shape.numel() / c.max(1);
        let flat = self.g.reshape(&x.name, &[-1, c as i64, rest as i64]);
        let y = self.g.op(
            "BatchNormalization",
            &[
                &flat,
                &ins[1].name,
                &ins[2].name,
                &ins[3].name,
                &ins[4].name,
            ],
            vec![attr_f("epsilon", eps as f32)],
        );
        // back to [dyn…, sample]
        let lead = self.g.shape_part(&x.name, 0, x.ndyn() as i64);
        let dims = self.g.i64s(&x.dims_i64());
        let shape = self
            .g
            .op("Concat", &[&lead, &dims], vec![attr_i("axis", 0)]);
        let name = self.g.op("Reshape", &[&y, &shape], vec![]);
        Ok(XV {
            name,
            lay: x.lay,
            shape: x.shape.clone(),
            dtype: x.dtype,
        })
    }

    /// `N · Σ w·ℓ(o, t) / Σ w` over every sample, ℓ the binary cross entropy.
    fn weighted_logistic(&mut self, ins: &[XV], n: usize) -> Result<XV> {
        let (o, t, w) = (&ins[0], &ins[1], &ins[2]);
        let d = o.dtype;
        let one = self.g.scalar(1.0, d);
        let lo = self.g.op("Log", &[&o.name], vec![]);
        let a = self.g.op("Mul", &[&t.name, &lo], vec![]);
        let omo = self.g.op("Sub", &[&one, &o.name], vec![]);
        let lomo = self.g.op("Log", &[&omo], vec![]);
        let omt = self.g.op("Sub", &[&one, &t.name], vec![]);
        let b = self.g.op("Mul", &[&omt, &lomo], vec![]);
        let s = self.g.op("Add", &[&a, &b], vec![]);
        let l = self.g.op("Neg", &[&s], vec![]);
        let wl = self.g.op("Mul", &[&w.name, &l], vec![]);
        // the weight of every sample (a static weight broadcast)
        let wx = XV {
            name: w.name.clone(),
            ..w.clone()
        };
        let wfull = if w.lay == Lay::Static {
            self.expand_like(&wx, o)
        } else {
            w.name.clone()
        };
        let shape = self.g.op("Shape", &[&o.name], vec![]);
        let ones = self.g.op("Expand", &[&one, &shape], vec![]);
        let sum = |ex: &mut Self, v: &str| -> Result<String> {
            let xv = XV {
                name: v.to_string(),
                ..o.clone()
            };
            Ok(ex.reduce_all(ReduceOp::Sum, &xv, n)?.name)
        };
        let swl = sum(self, &wl)?;
        let sw = sum(self, &wfull)?;
        let cnt = sum(self, &ones)?;
        let r = self.g.op("Div", &[&swl, &sw], vec![]);
        let name = self.g.op("Mul", &[&cnt, &r], vec![]);
        Ok(self.out_of(n, name, Lay::Static))
    }

    /// The number of samples whose target's index is not among the `top_n` largest
    /// outputs (earlier indices first among equal outputs).
    fn top_n_error(&mut self, top_n: usize, ins: &[XV], n: usize) -> Result<XV> {
        let (o, t) = (&ins[0], &ins[1]);
        let d = o.numel_sample();
        let of = self.reshape_sample(&o.name, o.lay, &[d]);
        let tf = self.reshape_sample(&t.name, t.lay, &[d]);
        let label = self.g.op(
            "ArgMax",
            &[&tf],
            vec![attr_i("axis", -1), attr_i("keepdims", 1)],
        );
        let v = self
            .g
            .op("GatherElements", &[&of, &label], vec![attr_i("axis", -1)]);
        let gt = self.g.op("Greater", &[&of, &v], vec![]);
        let eq = self.g.op("Equal", &[&of, &v], vec![]);
        let (zero, lim, one) = (
            self.g.i64_scalar(0),
            self.g.i64_scalar(d as i64),
            self.g.i64_scalar(1),
        );
        let pos = self.g.op("Range", &[&zero, &lim, &one], vec![]);
        let before = self.g.op("Less", &[&pos, &label], vec![]);
        let tie = self.g.op("And", &[&eq, &before], vec![]);
        let ahead = self.g.op("Or", &[&gt, &tie], vec![]);
        let cnt = self.g.cast(&ahead, INT64);
        let cnt = self.g.reduce("ReduceSum", &cnt, &[-1], false);
        let lim = self.g.i64_scalar(top_n as i64);
        let miss = self.g.op("GreaterOrEqual", &[&cnt, &lim], vec![]);
        let miss = self
            .g
            .cast(&miss, super::super::builder::elem_type(o.dtype));
        let mv = XV {
            name: miss,
            lay: o.lay,
            shape: Shape::scalar(),
            dtype: o.dtype,
        };
        let s = self.reduce_all(ReduceOp::Sum, &mv, n)?;
        Ok(self.out_of(n, s.name, Lay::Static))
    }
}

impl XV {
    pub fn numel_sample(&self) -> usize {
        self.shape.numel()
    }
}
