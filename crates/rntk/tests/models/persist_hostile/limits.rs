//! Hostile sizes in model files: absurd dimensions, delay offsets and op
//! attributes beyond the limits, and graphs deep enough to overflow a naive
//! recursive load or drop.

use super::*;

#[test]
fn absurd_sizes() {
    let batch = |s: &[usize]| info(s, AxesDesc::Batch);
    let one = |s: &[usize]| {
        desc(
            vec![leaf(LeafKind::Input, "x", batch(s), None)],
            vec![FunctionDesc {
                uid: "Neg".into(),
                name: String::new(),
                kind: FnKindDesc::Primitive(rntk::ops::Op::Unary(rntk::ops::UnaryOp::Negate)),
                inputs: vec![VarRef::Leaf(0)],
                outputs: vec![batch(s)],
            }],
            0,
            vec![VarRef::Output(0, 0)],
        )
    };
    model_from_bytes(&file_of(&one(&[3, 4]), &[])).unwrap();
    refused(&file_of(&one(&[1 << 40, 1 << 40]), &[]), &["more than"]);
    refused(&file_of(&one(&[1 << 62]), &[]), &["more than"]);
    refused(
        &file_of(&one(&[rntk::tensor::INFERRED]), &[]),
        &["fully known"],
    );
    // issue 13: a zero dimension no longer hides the others, and one sample is
    // within limits.max_sample_elements (2^30 by default)
    model_from_bytes(&file_of(&one(&[0, 5]), &[])).unwrap();
    refused(
        &file_of(&one(&[0, 1 << 62, 1 << 62]), &[]),
        &[
            "variable #0",
            "(0, 4611686018427387904, 4611686018427387904)",
            "overflows",
        ],
    );
    refused(
        &file_of(&one(&[0, 1 << 40]), &[]),
        &["limit of 1073741824", "RNTK_MAX_SAMPLE_ELEMENTS"],
    );
    // an input of 2^40 elements loads no more (eval would allocate terabytes)
    refused(
        &file_of(&one(&[1 << 40]), &[]),
        &[
            "variable #0 (input x 'x')",
            "(1099511627776,)",
            "more than the limit of 1073741824",
        ],
    );
    model_from_bytes(&file_of(&one(&[1 << 30]), &[])).unwrap();
}

/// Issue 13: delay offsets of 0 (would read a step not computed yet), 2^62 and
/// 2^64 - 1 (`t + offset` wraps) are refused; 1 and 7 load.
#[test]
fn delay_offsets_beyond_the_limits() {
    use rntk::ops::Op;
    let seq = || info(&[2], AxesDesc::Sequence(0));
    let with = |op: Op| {
        desc(
            vec![
                leaf(LeafKind::Input, "x", seq(), None),
                leaf(LeafKind::Input, "s", info(&[2], AxesDesc::Batch), None),
            ],
            vec![FunctionDesc {
                uid: "D".into(),
                name: "delayed".into(),
                kind: FnKindDesc::Primitive(op),
                inputs: vec![VarRef::Leaf(0), VarRef::Leaf(1)],
                outputs: vec![seq()],
            }],
            0,
            vec![VarRef::Output(0, 0)],
        )
    };
    for offset in [1, 7, 1 << 20] {
        model_from_bytes(&file_of(&with(Op::PastValue { offset }), &[])).unwrap();
        model_from_bytes(&file_of(&with(Op::FutureValue { offset }), &[])).unwrap();
    }
    refused(
        &file_of(&with(Op::PastValue { offset: 0 }), &[]),
        &["function #0 (D 'delayed')", "time step (offset) 0"],
    );
    for offset in [(1 << 20) + 1, 1 << 62, usize::MAX] {
        for op in [Op::PastValue { offset }, Op::FutureValue { offset }] {
            refused(
                &file_of(&with(op), &[]),
                &[
                    "function #0 (D 'delayed')",
                    &format!("time step (offset) {offset} is more than the limit of 1048576"),
                    "RNTK_MAX_DELAY_OFFSET",
                ],
            );
        }
    }
}

#[test]
fn absurd_op_attributes() {
    use rntk::ops::{Op, ReduceOp};
    let x = || info(&[2, 3], AxesDesc::Batch);
    let ops = vec![
        Op::Slice {
            axis: 0,
            begin: isize::MIN,
            end: isize::MAX,
            stride: isize::MIN,
        },
        Op::Slice {
            axis: isize::MIN,
            begin: 0,
            end: 1,
            stride: 1,
        },
        Op::Slice {
            axis: 1,
            begin: 0,
            end: 3,
            stride: 0,
        },
        Op::Slice {
            axis: 1,
            begin: isize::MAX,
            end: isize::MIN,
            stride: -1,
        },
        Op::Transpose { perm: vec![7, 0] },
        Op::Transpose { perm: vec![0, 0] },
        Op::Transpose {
            perm: vec![usize::MAX, 1],
        },
        Op::Splice { axis: isize::MIN },
        Op::Splice { axis: isize::MAX },
        Op::Softmax { axis: isize::MIN },
        Op::LogSoftmax { axis: 99 },
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: Some(vec![isize::MIN, isize::MAX]),
            keepdims: true,
        },
        Op::Reshape {
            shape: Shape::from([1 << 40, 1 << 40]),
        },
        Op::Reshape {
            shape: Shape::from([usize::MAX - 1]),
        },
        Op::Reshape {
            shape: Shape::from([rntk::tensor::INFERRED, rntk::tensor::INFERRED]),
        },
        Op::Reshape {
            shape: Shape::from([0, rntk::tensor::INFERRED]),
        },
        Op::OneHot {
            num_classes: 1 << 62,
        },
        Op::OneHot { num_classes: 0 },
        Op::Dropout {
            rate: 7.5,
            seed: u64::MAX,
        },
        Op::Dropout {
            rate: -1.0,
            seed: 0,
        },
        Op::Times {
            output_rank: usize::MAX,
            infer_input_rank_to_map: i32::MIN,
        },
        Op::Times {
            output_rank: 0,
            infer_input_rank_to_map: i32::MAX,
        },
        Op::TransposeTimes {
            output_rank: 1 << 40,
        },
        Op::SeqSlice {
            begin: isize::MIN,
            end: isize::MAX,
        },
        Op::PastValue { offset: 0 },
        Op::Gather,
        Op::Clip,
    ];
    for op in ops {
        // one operand, then the operand twice: wrong arities must be refused too
        for n in [1, 2] {
            let d = desc(
                vec![leaf(LeafKind::Input, "x", x(), None)],
                vec![FunctionDesc {
                    uid: "F".into(),
                    name: String::new(),
                    kind: FnKindDesc::Primitive(op.clone()),
                    inputs: vec![VarRef::Leaf(0); n],
                    outputs: vec![x()],
                }],
                0,
                vec![VarRef::Output(0, 0)],
            );
            // refused, or (if the op happens to accept it) the stored output disagrees
            refused(&file_of(&d, &[]), &[]);
        }
    }
}

/// A chain of `n` negations of an input.
fn chain(n: usize) -> Function {
    let x = input_variable([2]);
    let mut y = x;
    for _ in 0..n {
        y = negate(&y).unwrap();
    }
    y.owner().unwrap()
}

#[test]
fn deep_graphs_load_and_drop_on_a_small_stack() {
    let bytes = model_to_bytes(&chain(30_000)).unwrap();
    // the valid deep graph loads; a broken one (last function refers nowhere) is
    // refused after 30 000 functions were built — and both are dropped — on a thread
    // with a 1 MiB stack
    let mut g = graph_of(&bytes);
    let n = g["functions"].as_array().unwrap().len();
    g["functions"][n - 1]["inputs"][0] = json!({"leaf": 5});
    let broken = with_graph(&bytes, &g.to_string());
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let f = model_from_bytes(&bytes).unwrap();
            assert_eq!(f.op_name(), "Negate");
            drop(f);
            refused(&broken, &["variable #5"]);
        })
        .unwrap()
        .join()
        .unwrap();
}
