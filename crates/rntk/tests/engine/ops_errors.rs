//! Refusals: shape mismatches name the op, the function and both shapes; illegal
//! attributes are refused when the function is built; bad index data is refused when
//! the minibatch runs.

use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::ops::{BinaryOp, Op, ReduceOp};
use rntk::{DType, DynamicAxes, Error, Executor, Tensor, Value, Variable};

fn batch(shape: &[usize], name: &str) -> Variable {
    input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: DynamicAxes::Batch,
            name: name.into(),
            ..Default::default()
        },
    )
}

fn param(shape: &[usize], name: &str) -> Variable {
    let n = shape.iter().product();
    rntk::parameter_from(
        Tensor::from_vec(shape.to_vec(), vec![0.5f64; n]).unwrap(),
        name,
    )
}

/// The error must be `Error::Shape` and its message must mention every `needle`.
fn assert_shape_error(r: rntk::Result<Variable>, needles: &[&str]) {
    let e = r.expect_err("must be refused");
    assert!(matches!(e, Error::Shape { .. }), "not a shape error: {e:?}");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} does not mention {n:?}");
    }
}

#[test]
fn plus_mismatch_names_op_function_and_shapes() {
    let x = batch(&[2, 3], "x");
    let p = param(&[2], "p");
    assert_shape_error(
        named(Op::Binary(BinaryOp::Plus), &[&x, &p], "my_plus"),
        &["Plus", "my_plus", "(2, 3)", "(2,)"],
    );
    // the anonymous constructor refuses the same
    assert!(matches!(plus(&x, &p), Err(Error::Shape { .. })));
}

#[test]
fn times_mismatch_names_op_function_and_shapes() {
    let x = batch(&[2, 3], "x");
    let w = param(&[4, 5], "W");
    assert_shape_error(
        named(
            Op::Times {
                output_rank: 1,
                infer_input_rank_to_map: -1,
            },
            &[&x, &w],
            "my_times",
        ),
        &["Times", "my_times", "(2, 3)", "(4, 5)"],
    );
    assert_shape_error(
        named(Op::TransposeTimes { output_rank: 1 }, &[&x, &w], "my_tt"),
        &["TransposeTimes", "my_tt", "(2, 3)", "(4, 5)"],
    );
    // CNTK: "Times: Output rank (0) must be > 0."
    assert!(matches!(
        times_with(&x, &param(&[3, 4], "W"), 0, -1),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn splice_mismatch_names_op_function_and_shapes() {
    let a = batch(&[2, 3], "a");
    let b = batch(&[2, 4], "b");
    assert_shape_error(
        named(Op::Splice { axis: 0 }, &[&a, &b], "my_splice"),
        &["Splice", "my_splice", "(2, 3)", "(2, 4)"],
    );
    // along axis 1 they fit
    assert_eq!(
        splice(&[&a, &b], 1).unwrap().shape(),
        rntk::Shape::from([2, 7])
    );
}

#[test]
fn other_shape_refusals() {
    let x = batch(&[2, 3], "x");
    assert_shape_error(
        named(
            Op::Reshape {
                shape: rntk::Shape::from([4]),
            },
            &[&x],
            "my_reshape",
        ),
        &["Reshape", "my_reshape", "(2, 3)", "(4,)"],
    );
    assert!(matches!(reshape(&x, [5, 2]), Err(Error::Shape { .. })));
    assert_shape_error(
        named(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: Some(vec![2]),
                keepdims: true,
            },
            &[&x],
            "my_sum",
        ),
        &["ReduceElements", "my_sum", "(2, 3)", "axis 2"],
    );
    assert!(
        reduce_sum(&x, Some(&[0, -2]), true).is_err(),
        "axis listed twice"
    );
    assert_shape_error(
        named(Op::Softmax { axis: -3 }, &[&x], "my_softmax"),
        &["Softmax", "my_softmax", "(2, 3)"],
    );
    let y = batch(&[4], "y");
    assert_shape_error(
        named(Op::Clip, &[&x, &y, &y], "my_clip"),
        &["Clip", "my_clip", "(2, 3)", "(4,)"],
    );
    assert_shape_error(
        named(Op::Select, &[&y, &x, &x], "my_select"),
        &["Select", "my_select", "(2, 3)", "(4,)"],
    );
    let s = param(&[], "s");
    assert_shape_error(
        named(Op::Gather, &[&s, &y], "my_gather"),
        &["Gather", "my_gather", "()"],
    );
}

#[test]
fn dropout_rate_outside_0_1_is_refused() {
    let x = batch(&[3], "x");
    for rate in [1.0, -0.1, 1.5, f64::NAN] {
        let e = named(Op::Dropout { rate, seed: 1 }, &[&x], "my_dropout")
            .expect_err("rate must be refused");
        let msg = e.to_string();
        assert!(
            msg.contains("Dropout") && msg.contains("my_dropout"),
            "{msg}"
        );
        assert!(dropout(&x, rate, 1).is_err());
    }
    assert!(dropout(&x, 0.0, 1).is_ok());
    assert!(dropout(&x, 0.999, 1).is_ok());
}

fn run(out: &Variable, x: &Variable, v: Value) -> rntk::Result<()> {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(out))?;
    ex.forward(&[(x, &v)], false)
}

#[test]
fn one_hot_index_out_of_range_is_refused_at_run_time() {
    let i = batch(&[1], "i");
    let y = one_hot(&i, 5).unwrap();
    assert_eq!(y.shape(), rntk::Shape::from([1, 5]));
    assert!(run(&y, &i, Value::batch([1], vec![0.0f64, 4.0]).unwrap()).is_ok());
    for bad in [5.0, -1.0, 1.5, f64::NAN] {
        let e = run(&y, &i, Value::batch([1], vec![1.0f64, bad]).unwrap())
            .expect_err("bad index must be refused");
        let msg = e.to_string();
        assert!(msg.contains("OneHot") && msg.contains("[0, 5)"), "{msg}");
    }
    assert!(one_hot(&i, 0).is_err(), "zero classes");
}

#[test]
fn gather_index_out_of_range_is_refused_at_run_time() {
    let i = batch(&[2], "i");
    let y = gather(&param(&[5, 2], "ref"), &i).unwrap();
    assert_eq!(y.shape(), rntk::Shape::from([2, 2]));
    assert!(run(&y, &i, Value::batch([2], vec![0.0f64, 4.0]).unwrap()).is_ok());
    let e = run(&y, &i, Value::batch([2], vec![0.0f64, 5.0]).unwrap()).expect_err("index 5");
    assert!(e.to_string().contains("Gather"), "{e}");
}

#[test]
fn reduce_all_cannot_sit_in_a_loop() {
    // A whole op on a recurrence's cycle is refused (it needs every time step).
    let x = input_variable_with(
        [2],
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: DynamicAxes::default_sequence(),
            name: "x".into(),
            ..Default::default()
        },
    );
    let h_ph = rntk::placeholder([2], DType::F64, x.dynamic_axes(), "h").unwrap();
    let prev = rntk::sequence::past_value(&h_ph, &rntk::scalar(0.0, DType::F64), 1).unwrap();
    let s = reduce_all(ReduceOp::Sum, &prev).unwrap();
    let h = plus(&x, &s).unwrap();
    let r = h
        .owner()
        .unwrap()
        .replace_placeholders(&[(h_ph, h.clone())])
        .and_then(|_| Executor::<f64>::new(std::slice::from_ref(&h)).map(|_| ()));
    match r {
        Err(e @ Error::Unsupported(_)) => assert!(e.to_string().contains("ReduceElements"), "{e}"),
        other => panic!("a whole op inside a recurrent loop must be refused: {other:?}"),
    }
}
