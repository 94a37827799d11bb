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

    pub(super) fn primitive(&self, fd: &FnDesc, x: &[Variable]) -> Result<Variable> {
        let label = Self::fn_label(fd);
        let a = Dict::new(self.file, &label, &fd.attributes);
        let unsupported = |detail: String| -> Error {
            Error::Unsupported(format!("{}: {label}: {detail}", self.file))
        };
        let rank0 = x.first().map(|v| v.shape().rank()).unwrap_or(0);
        let unary = |u: UnaryOp| -> Result<(Op, Vec<Variable>)> {
            self.need(fd, x, 1)?;
            Ok((Op::Unary(u), x.to_vec()))
        };
        let binary = |b: BinaryOp| -> Result<(Op, Vec<Variable>)> {
            self.need(fd, x, 2)?;
            Ok((Op::Binary(b), x.to_vec()))
        };
        let (op, operands) = match fd.op {
            0 => unary(UnaryOp::Negate)?,
            1 | 75 => unary(UnaryOp::Sigmoid)?,
            2 => unary(UnaryOp::Tanh)?,
            3 => unary(UnaryOp::Relu)?,
            4 => unary(UnaryOp::Exp)?,
            5 => unary(UnaryOp::Log)?,
            6 => unary(UnaryOp::Sqrt)?,
            8 => unary(UnaryOp::Abs)?,
            9 => unary(UnaryOp::Reciprocal)?,
            65 => unary(UnaryOp::Elu)?,
            7 => unary(UnaryOp::Floor)?,
            54 => unary(UnaryOp::Sin)?,
            55 => unary(UnaryOp::Cos)?,
            64 => unary(UnaryOp::StopGradient)?,
            56 | 62 => unary(UnaryOp::Alias)?,
            19 => binary(BinaryOp::Plus)?,
            20 => binary(BinaryOp::Minus)?,
            21 => binary(BinaryOp::ElementTimes)?,
            22 => binary(BinaryOp::Equal)?,
            23 => binary(BinaryOp::NotEqual)?,
            24 => binary(BinaryOp::Less)?,
            25 => binary(BinaryOp::LessEqual)?,
            26 => binary(BinaryOp::Greater)?,
            27 => binary(BinaryOp::GreaterEqual)?,
            69 => binary(BinaryOp::Pow)?,
            52 => binary(BinaryOp::LogPlus)?,
            // Stored as Times(W, x) in CNTK's column-major view; rntk's times(x, W)
            // is the same product in Python order.
            31 => {
                self.need(fd, x, 2)?;
                let output_rank = if a.has("outputRank") {
                    a.size_t("outputRank")? as usize
                } else {
                    1
                };
                let infer = if a.has("inferInputRankToMap") {
                    a.int("inferInputRankToMap")?
                } else {
                    -1
                };
                let infer = i32::try_from(infer).map_err(|_| {
                    self.err(format!(
                        "{label}: inferInputRankToMap {infer} is out of range"
                    ))
                })?;
                (
                    Op::Times {
                        output_rank,
                        infer_input_rank_to_map: infer,
                    },
                    vec![x[1].clone(), x[0].clone()],
                )
            }
            32 => {
                self.need(fd, x, 2)?;
                let output_rank = if a.has("outputRank") {
                    a.size_t("outputRank")? as usize
                } else {
                    1
                };
                (
                    Op::TransposeTimes { output_rank },
                    vec![x[1].clone(), x[0].clone()],
                )
            }
            10 | 51 => {
                self.need(fd, x, 1)?;
                let axis = if a.has("axis") {
                    self.static_axis(fd, a.axis("axis")?, rank0)?
                } else if rank0 <= 1 {
                    -1
                } else {
                    return Err(unsupported(format!(
                        "normalizing over all {rank0} static axes at once"
                    )));
                };
                let op = if fd.op == 10 {
                    Op::Softmax { axis }
                } else {
                    Op::LogSoftmax { axis }
                };
                (op, x.to_vec())
            }
            11 => {
                self.need(fd, x, 1)?;
                (Op::Hardmax, x.to_vec())
            }
            // sequence.where(cond): a new sequence axis of the selected step indices.
            13 => {
                self.need(fd, x, 1)?;
                if a.axes("newDynamicAxes")?.len() != 2
                    || a.has("newSequenceAxisLengthScalingFactor")
                {
                    return Err(unsupported(
                        "Where with a fixed or scaled output length (only sequence.where)".into(),
                    ));
                }
                // CNTK's step indices are scalars; rntk's keep the condition's shape
                // (one element).
                return Function::primitive(Op::SeqWhere, x, &fd.name)
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
                    .map_err(self.wrap(fd));
            }
            12 => {
                self.need(fd, x, 1)?;
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
                (Op::Transpose { perm }, x.to_vec())
            }
            14 => {
                self.need(fd, x, 1)?;
                return self.slice(fd, &a, &x[0]);
            }
            15 => {
                self.need(fd, x, 1)?;
                let rate = a.real("dropoutRate")?;
                let seed = if a.has("rngSeed") {
                    a.size_t("rngSeed")?
                } else {
                    0
                };
                (Op::Dropout { rate, seed }, x.to_vec())
            }
            16 => {
                self.need(fd, x, 1)?;
                let shape = self.reshape_target(fd, &a, &x[0].shape())?;
                (Op::Reshape { shape }, x.to_vec())
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
                (op, x.to_vec())
            }
            39 => {
                self.need(fd, x, 1)?;
                let rop = match a.string("reductionOpName")? {
                    "Sum" => ReduceOp::Sum,
                    "Mean" => ReduceOp::Mean,
                    "Max" => ReduceOp::Max,
                    "Min" => ReduceOp::Min,
                    "LogSum" => ReduceOp::LogSumExp,
                    other => return Err(unsupported(format!("reduction '{other}'"))),
                };
                let list: Vec<&PbAxis> = if a.has("axisVec") {
                    a.axes("axisVec")?
                } else {
                    vec![a.axis("axis")?]
                };
                let keepdims =
                    !a.has("reductionKeepDimensions") || a.bool("reductionKeepDimensions")?;
                let axes = if list.iter().any(|ax| ax.static_axis_idx == ALL_STATIC_AXES) {
                    None
                } else {
                    Some(
                        list.iter()
                            .map(|ax| self.static_axis(fd, ax, rank0))
                            .collect::<Result<Vec<_>>>()?,
                    )
                };
                (
                    Op::Reduce {
                        op: rop,
                        axes,
                        keepdims,
                    },
                    x.to_vec(),
                )
            }
            40 => {
                self.need(fd, x, 6)?;
                (
                    Op::BatchNorm {
                        spatial: a.bool("spatial")?,
                        epsilon: a.real("epsilon")?,
                        normalization_time_constant: a.real("normalizationTimeConstant")?,
                    },
                    x.to_vec(),
                )
            }
            41 => {
                self.need(fd, x, 3)?;
                (Op::Clip, x.to_vec())
            }
            42 => {
                self.need(fd, x, 3)?;
                (Op::Select, x.to_vec())
            }
            43 => {
                if x.is_empty() {
                    return Err(self.err(format!("{label}: no operands")));
                }
                let axis = self.static_axis(fd, a.axis("axis")?, rank0)?;
                (Op::Splice { axis }, x.to_vec())
            }
            48 => match x.len() {
                2 => {
                    return crate::losses::binary_cross_entropy(&x[0], &x[1]).map_err(self.wrap(fd))
                }
                3 => (Op::WeightedLogistic, x.to_vec()),
                n => return Err(self.err(format!("{label}: expects 2 or 3 operands, got {n}"))),
            },
            17 => {
                self.need(fd, x, 1)?;
                (crate::import::conv::pooling(&a)?, x.to_vec())
            }
            33 => {
                self.need(fd, x, 2)?;
                (crate::import::conv::convolution(&a)?, x.to_vec())
            }
            58 => {
                self.need(fd, x, 2)?;
                (crate::import::conv::unpooling(&a)?, x.to_vec())
            }
            47 => {
                self.need(fd, x, 2)?;
                (crate::import::conv::roi_pooling(&a)?, x.to_vec())
            }
            68 => {
                self.need(fd, x, 1)?;
                if a.has("onehotAxis") {
                    let ax = a.axis("onehotAxis")?;
                    if ax.static_axis_idx != ALL_STATIC_AXES && ax.static_axis_idx != 0 {
                        return Err(unsupported(format!(
                            "one-hot along axis '{}' (rntk appends the class axis last)",
                            ax.name
                        )));
                    }
                }
                let n = a.size_t("numClass")?;
                // the op's shape rule checks the count against limits.max_one_hot_classes
                let num_classes = usize::try_from(n)
                    .map_err(|_| self.err(format!("{label}: numClass {n} is absurd")))?;
                (Op::OneHot { num_classes }, x.to_vec())
            }
            code => {
                return Err(unsupported(format!(
                    "op code {code} ({}) has no rntk equivalent",
                    op_name(code)
                )))
            }
        };
        Function::primitive(op, &operands, &fd.name)
            .and_then(|f| f.output())
            .map_err(self.wrap(fd))
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
