//! One CNTK primitive function → one rntk op (or a few): the op-code table with each
//! op's attributes, and the static axes, slices and reshape targets they name.

use super::Builder;
use crate::error::{Error, Result};
use crate::graph::{Function, Variable};
use crate::import::dict::Dict;
use crate::import::model::{FnDesc, ALL_STATIC_AXES};
use crate::import::op_codes::op_name;
use crate::import::proto::Axis as PbAxis;
use crate::ops::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::tensor::{Shape, INFERRED};

/// CNTK's `NDShape::InferredDimension` as stored in reshape targets.
const CNTK_INFERRED: u64 = u64::MAX;

/// One family of ops: the rebuilt function when the op code is of the family,
/// `None` when it is not.
type Family<'b> = fn(&Builder<'b>, &FnDesc, &Dict, &[Variable]) -> Result<Option<Variable>>;

impl Builder<'_> {
    /// Python axis of a stored static axis (CNTK counts from the last Python axis).
    fn static_axis(&self, fd: &FnDesc, a: &PbAxis, rank: usize) -> Result<isize> {
        let i = a.static_axis_idx;
        if i < 0 || i as usize >= rank {
            return Err(Error::Unsupported(format!(
                "{}: {}: axis '{}' (static index {i}) on an operand of rank {rank} (only \
                 static axes of the operand are supported)",
                self.file,
                Self::fn_label(fd),
                a.name
            )));
        }
        Ok((rank - 1 - i as usize) as isize)
    }

    fn need(&self, fd: &FnDesc, inputs: &[Variable], n: usize) -> Result<()> {
        if inputs.len() != n {
            return Err(self.err(format!(
                "{}: expects {n} operands, the file lists {}",
                Self::fn_label(fd),
                inputs.len()
            )));
        }
        Ok(())
    }

    /// One primitive function → one rntk op (or a few): each op family in turn
    /// claims the op code, or the code has no rntk equivalent.
    pub(super) fn primitive(&self, fd: &FnDesc, x: &[Variable]) -> Result<Variable> {
        let label = Self::fn_label(fd);
        let a = Dict::new(self.file, &label, &fd.attributes);
        let families: [Family<'_>; 7] = [
            Self::elementwise,
            Self::products,
            Self::normalizations,
            Self::axis_ops,
            Self::sequence_ops,
            Self::layer_ops,
            Self::conv_ops,
        ];
        for family in families {
            if let Some(v) = family(self, fd, &a, x)? {
                return Ok(v);
            }
        }
        Err(self.unsupported(
            fd,
            format!(
                "op code {} ({}) has no rntk equivalent",
                fd.op,
                op_name(fd.op)
            ),
        ))
    }

    fn unsupported(&self, fd: &FnDesc, detail: String) -> Error {
        Error::Unsupported(format!("{}: {}: {detail}", self.file, Self::fn_label(fd)))
    }

    /// `op` applied to `operands`, as the function `fd` names it.
    fn apply_op(&self, fd: &FnDesc, op: Op, operands: &[Variable]) -> Result<Option<Variable>> {
        Function::primitive(op, operands, &fd.name)
            .and_then(|f| f.output())
            .map(Some)
            .map_err(self.wrap(fd))
    }

    /// Unary and binary element-wise ops: no attributes.
    fn elementwise(&self, fd: &FnDesc, _: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        let (op, arity) = match fd.op {
            0 => (Op::Unary(UnaryOp::Negate), 1),
            1 | 75 => (Op::Unary(UnaryOp::Sigmoid), 1),
            2 => (Op::Unary(UnaryOp::Tanh), 1),
            3 => (Op::Unary(UnaryOp::Relu), 1),
            4 => (Op::Unary(UnaryOp::Exp), 1),
            5 => (Op::Unary(UnaryOp::Log), 1),
            6 => (Op::Unary(UnaryOp::Sqrt), 1),
            8 => (Op::Unary(UnaryOp::Abs), 1),
            9 => (Op::Unary(UnaryOp::Reciprocal), 1),
            65 => (Op::Unary(UnaryOp::Elu), 1),
            7 => (Op::Unary(UnaryOp::Floor), 1),
            54 => (Op::Unary(UnaryOp::Sin), 1),
            55 => (Op::Unary(UnaryOp::Cos), 1),
            64 => (Op::Unary(UnaryOp::StopGradient), 1),
            56 | 62 => (Op::Unary(UnaryOp::Alias), 1),
            19 => (Op::Binary(BinaryOp::Plus), 2),
            20 => (Op::Binary(BinaryOp::Minus), 2),
            21 => (Op::Binary(BinaryOp::ElementTimes), 2),
            22 => (Op::Binary(BinaryOp::Equal), 2),
            23 => (Op::Binary(BinaryOp::NotEqual), 2),
            24 => (Op::Binary(BinaryOp::Less), 2),
            25 => (Op::Binary(BinaryOp::LessEqual), 2),
            26 => (Op::Binary(BinaryOp::Greater), 2),
            27 => (Op::Binary(BinaryOp::GreaterEqual), 2),
            69 => (Op::Binary(BinaryOp::Pow), 2),
            52 => (Op::Binary(BinaryOp::LogPlus), 2),
            _ => return Ok(None),
        };
        self.need(fd, x, arity)?;
        self.apply_op(fd, op, x)
    }

    /// Times and TransposeTimes. Stored as Times(W, x) in CNTK's column-major
    /// view; rntk's times(x, W) is the same product in Python order.
    fn products(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        if !matches!(fd.op, 31 | 32) {
            return Ok(None);
        }
        self.need(fd, x, 2)?;
        let output_rank = if a.has("outputRank") {
            a.size_t("outputRank")? as usize
        } else {
            1
        };
        let op = if fd.op == 31 {
            let infer = if a.has("inferInputRankToMap") {
                a.int("inferInputRankToMap")?
            } else {
                -1
            };
            let infer = i32::try_from(infer).map_err(|_| {
                self.err(format!(
                    "{}: inferInputRankToMap {infer} is out of range",
                    Self::fn_label(fd)
                ))
            })?;
            Op::Times {
                output_rank,
                infer_input_rank_to_map: infer,
            }
        } else {
            Op::TransposeTimes { output_rank }
        };
        self.apply_op(fd, op, &[x[1].clone(), x[0].clone()])
    }

    /// Softmax, LogSoftmax (along one static axis) and Hardmax.
    fn normalizations(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        let op = match fd.op {
            10 | 51 => {
                self.need(fd, x, 1)?;
                let rank0 = x[0].shape().rank();
                let axis = if a.has("axis") {
                    self.static_axis(fd, a.axis("axis")?, rank0)?
                } else if rank0 <= 1 {
                    -1
                } else {
                    return Err(self.unsupported(
                        fd,
                        format!("normalizing over all {rank0} static axes at once"),
                    ));
                };
                if fd.op == 10 {
                    Op::Softmax { axis }
                } else {
                    Op::LogSoftmax { axis }
                }
            }
            11 => {
                self.need(fd, x, 1)?;
                Op::Hardmax
            }
            _ => return Ok(None),
        };
        self.apply_op(fd, op, x)
    }

    /// Ops on static axes: TransposeAxes, Slice, Reshape, Splice, reductions.
    fn axis_ops(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        let rank0 = x.first().map(|v| v.shape().rank()).unwrap_or(0);
        let op = match fd.op {
            12 => {
                self.need(fd, x, 1)?;
                Op::Transpose {
                    perm: self.permutation(fd, a, rank0)?,
                }
            }
            14 => {
                self.need(fd, x, 1)?;
                return self.slice(fd, a, &x[0]).map(Some);
            }
            16 => {
                self.need(fd, x, 1)?;
                let shape = self.reshape_target(fd, a, &x[0].shape())?;
                Op::Reshape { shape }
            }
            43 => {
                if x.is_empty() {
                    return Err(self.err(format!("{}: no operands", Self::fn_label(fd))));
                }
                let axis = self.static_axis(fd, a.axis("axis")?, rank0)?;
                Op::Splice { axis }
            }
            39 => {
                self.need(fd, x, 1)?;
                self.reduction(fd, a, rank0)?
            }
            _ => return Ok(None),
        };
        self.apply_op(fd, op, x)
    }

    /// The Python-order permutation of a TransposeAxes: two axes swapped, or
    /// CNTK's full `axisVec`.
    fn permutation(&self, fd: &FnDesc, a: &Dict, rank0: usize) -> Result<Vec<usize>> {
        let label = Self::fn_label(fd);
        let mut perm: Vec<usize> = (0..rank0).collect();
        if a.has("axis1") && a.has("axis2") {
            let i = self.static_axis(fd, a.axis("axis1")?, rank0)? as usize;
            let j = self.static_axis(fd, a.axis("axis2")?, rank0)? as usize;
            perm.swap(i, j);
        } else if a.has("axisVec") {
            // Output static axis k (CNTK order) is input axis axisVec[k].
            let v = a.axes("axisVec")?;
            if v.len() != rank0 {
                return Err(self.err(format!(
                    "{label}: a permutation of {} axes for an operand of rank {rank0}",
                    v.len()
                )));
            }
            for (k, ax) in v.iter().enumerate() {
                let from = self.static_axis(fd, ax, rank0)? as usize;
                perm[rank0 - 1 - k] = from;
            }
            let mut seen = vec![false; rank0];
            if perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
                return Err(self.err(format!("{label}: axisVec is not a permutation")));
            }
        } else {
            return Err(self.err(format!(
                "{label}: expected the attributes axis1 and axis2, or axisVec"
            )));
        }
        Ok(perm)
    }

    /// A Reduce op: its reduction, static axes (or all) and keepdims.
    fn reduction(&self, fd: &FnDesc, a: &Dict, rank0: usize) -> Result<Op> {
        let rop = match a.string("reductionOpName")? {
            "Sum" => ReduceOp::Sum,
            "Mean" => ReduceOp::Mean,
            "Max" => ReduceOp::Max,
            "Min" => ReduceOp::Min,
            "LogSum" => ReduceOp::LogSumExp,
            other => return Err(self.unsupported(fd, format!("reduction '{other}'"))),
        };
        let list: Vec<&PbAxis> = if a.has("axisVec") {
            a.axes("axisVec")?
        } else {
            vec![a.axis("axis")?]
        };
        let keepdims = !a.has("reductionKeepDimensions") || a.bool("reductionKeepDimensions")?;
        let axes = if list.iter().any(|ax| ax.static_axis_idx == ALL_STATIC_AXES) {
            None
        } else {
            Some(
                list.iter()
                    .map(|ax| self.static_axis(fd, ax, rank0))
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        Ok(Op::Reduce {
            op: rop,
            axes,
            keepdims,
        })
    }

    /// Ops along the sequence axis: sequence.where, PastValue, FutureValue.
    fn sequence_ops(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        match fd.op {
            // sequence.where(cond): a new sequence axis of the selected step indices.
            13 => {
                self.need(fd, x, 1)?;
                if a.axes("newDynamicAxes")?.len() != 2
                    || a.has("newSequenceAxisLengthScalingFactor")
                {
                    return Err(self.unsupported(
                        fd,
                        "Where with a fixed or scaled output length (only sequence.where)".into(),
                    ));
                }
                // CNTK's step indices are scalars; rntk's keep the condition's shape
                // (one element).
                Function::primitive(Op::SeqWhere, x, &fd.name)
                    .and_then(|f| f.output())
                    .and_then(|w| {
                        Function::primitive(
                            Op::Reshape {
                                shape: Shape::scalar(),
                            },
                            &[w],
                            "",
                        )
                    })
                    .and_then(|f| f.output())
                    .map(Some)
                    .map_err(self.wrap(fd))
            }
            37 | 38 => {
                self.need(fd, x, 2)?;
                let offset = if a.has("offset") {
                    a.size_t("offset")? as usize
                } else {
                    1
                };
                let op = if fd.op == 37 {
                    Op::PastValue { offset }
                } else {
                    Op::FutureValue { offset }
                };
                self.apply_op(fd, op, x)
            }
            _ => Ok(None),
        }
    }

    /// Ops that layers and losses are made of: Dropout, BatchNormalization, Clip,
    /// Select, Logistic, OneHot.
    fn layer_ops(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        let op = match fd.op {
            15 => {
                self.need(fd, x, 1)?;
                let rate = a.real("dropoutRate")?;
                let seed = if a.has("rngSeed") {
                    a.size_t("rngSeed")?
                } else {
                    0
                };
                Op::Dropout { rate, seed }
            }
            40 => {
                self.need(fd, x, 6)?;
                Op::BatchNorm {
                    spatial: a.bool("spatial")?,
                    epsilon: a.real("epsilon")?,
                    normalization_time_constant: a.real("normalizationTimeConstant")?,
                }
            }
            41 => {
                self.need(fd, x, 3)?;
                Op::Clip
            }
            42 => {
                self.need(fd, x, 3)?;
                Op::Select
            }
            48 => match x.len() {
                2 => {
                    return crate::losses::binary_cross_entropy(&x[0], &x[1])
                        .map(Some)
                        .map_err(self.wrap(fd))
                }
                3 => Op::WeightedLogistic,
                n => {
                    return Err(self.err(format!(
                        "{}: expects 2 or 3 operands, got {n}",
                        Self::fn_label(fd)
                    )))
                }
            },
            68 => {
                self.need(fd, x, 1)?;
                self.one_hot(fd, a)?
            }
            _ => return Ok(None),
        };
        self.apply_op(fd, op, x)
    }

    fn one_hot(&self, fd: &FnDesc, a: &Dict) -> Result<Op> {
        if a.has("onehotAxis") {
            let ax = a.axis("onehotAxis")?;
            if ax.static_axis_idx != ALL_STATIC_AXES && ax.static_axis_idx != 0 {
                return Err(self.unsupported(
                    fd,
                    format!(
                        "one-hot along axis '{}' (rntk appends the class axis last)",
                        ax.name
                    ),
                ));
            }
        }
        let n = a.size_t("numClass")?;
        // the op's shape rule checks the count against limits.max_one_hot_classes
        let num_classes = usize::try_from(n)
            .map_err(|_| self.err(format!("{}: numClass {n} is absurd", Self::fn_label(fd))))?;
        Ok(Op::OneHot { num_classes })
    }

    /// Pooling, Convolution, Unpooling, ROIPooling (attributes in `import/conv.rs`).
    fn conv_ops(&self, fd: &FnDesc, a: &Dict, x: &[Variable]) -> Result<Option<Variable>> {
        use crate::import::conv;
        let (make, arity): (fn(&Dict) -> Result<Op>, usize) = match fd.op {
            17 => (conv::pooling, 1),
            33 => (conv::convolution, 2),
            58 => (conv::unpooling, 2),
            47 => (conv::roi_pooling, 2),
            _ => return Ok(None),
        };
        self.need(fd, x, arity)?;
        self.apply_op(fd, make(a)?, x)
    }

    fn slice(&self, fd: &FnDesc, a: &Dict, x: &Variable) -> Result<Variable> {
        let rank = x.shape().rank();
        let (axes, begins, ends, strides) = if a.has("axisVec") {
            let axes = a.axes("axisVec")?;
            let b = int_vec(a, "beginIndexVec")?;
            let e = int_vec(a, "endIndexVec")?;
            let s = if a.has("sliceStridesVec") {
                int_vec(a, "sliceStridesVec")?
            } else {
                vec![1; axes.len()]
            };
            if b.len() != axes.len() || e.len() != axes.len() || s.len() != axes.len() {
                return Err(self.err(format!(
                    "{}: slice lists of different lengths",
                    Self::fn_label(fd)
                )));
            }
            (axes, b, e, s)
        } else {
            let s = if a.has("sliceStrides") {
                a.int("sliceStrides")?
            } else {
                1
            };
            (
                vec![a.axis("axis")?],
                vec![a.int("beginIndex")?],
                vec![a.int("endIndex")?],
                vec![s],
            )
        };
        let mut y = x.clone();
        for k in 0..axes.len() {
            let axis = self.static_axis(fd, axes[k], rank)?;
            let to_isize = |v: i64| {
                isize::try_from(v).map_err(|_| {
                    self.err(format!("{}: index {v} out of range", Self::fn_label(fd)))
                })
            };
            let op = Op::Slice {
                axis,
                begin: to_isize(begins[k])?,
                end: to_isize(ends[k])?,
                stride: to_isize(strides[k])?,
            };
            y = Function::primitive(op, &[y], &fd.name)
                .and_then(|f| f.output())
                .map_err(self.wrap(fd))?;
        }
        Ok(y)
    }

    /// The full Python-order target shape of a reshape (CNTK may reshape a range of
    /// axes `[beginAxis, endAxis)` only).
    fn reshape_target(&self, fd: &FnDesc, a: &Dict, in_shape: &Shape) -> Result<Shape> {
        let label = Self::fn_label(fd);
        let new: Vec<usize> = a
            .shape("newShape")?
            .shape_dim
            .iter()
            .rev()
            .map(|&d| {
                if d == CNTK_INFERRED {
                    Ok(INFERRED)
                } else if d > crate::limits::current().max_sample_elements as u64 {
                    Err(self.err(format!(
                        "{label}: reshape dimension {d} is more than the limit of {} elements \
                         per sample ({})",
                        crate::limits::current().max_sample_elements,
                        crate::limits::how_to_raise("max_sample_elements")
                    )))
                } else {
                    Ok(d as usize)
                }
            })
            .collect::<Result<_>>()?;
        let rank = in_shape.rank();
        let idx = |key: &str, default: usize| -> Result<usize> {
            if !a.has(key) {
                return Ok(default);
            }
            let i = a.axis(key)?.static_axis_idx;
            if i < 0 || i as usize > rank {
                return Ok(default);
            }
            Ok(i as usize)
        };
        let begin = idx("beginAxis", 0)?;
        let end = idx("endAxis", rank)?;
        if begin > end {
            return Err(self.err(format!(
                "{label}: reshape of axes {begin}..{end} (as stored) is empty"
            )));
        }
        // CNTK axes [begin, end) are Python axes [rank-end, rank-begin).
        let d = in_shape.dims();
        let mut dims = d[..rank - end].to_vec();
        dims.extend(new);
        dims.extend_from_slice(&d[rank - begin..]);
        Ok(Shape::new(dims))
    }
}

fn int_vec(a: &Dict, key: &str) -> Result<Vec<i64>> {
    use crate::import::proto::dictionary_value::Value as V;
    let d = a.d.data.get(key).and_then(|v| v.value.as_ref());
    match d {
        Some(V::VectorValue(v)) => v
            .value
            .iter()
            .map(|x| match x.value {
                Some(V::IntValue(n)) => Ok(i64::from(n)),
                Some(V::SizeTValue(n)) => i64::try_from(n).map_err(|_| a.err("index too large")),
                _ => Err(a.err(format!("key '{key}' must hold a Vector of Int"))),
            })
            .collect(),
        _ => Err(a.err(format!("key '{key}' must hold a Vector of Int"))),
    }
}
