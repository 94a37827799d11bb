//! f64 finite-difference gradient checks of every differentiable loss and metric,
//! on a ragged sequence batch of lengths [3, 1, 5, 2] (one sequence of length 1)
//! and on batch inputs, w.r.t. outputs and targets alike.
//!
//! Two criteria have a backward that is *not* the derivative of their value (as in
//! CNTK): weighted_binary_cross_entropy (its backward is the gradient of Σ w·ℓ,
//! checked here against that composite, itself checked by finite differences) and
//! lambda_rank (LambdaRank gradients of a piecewise-constant value; checked against
//! CNTK in losses_fixtures.rs and by hand in the unit tests of ops::metrics_ops).

use crate::common;

use common::*;
use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::losses::*;
use rntk::metrics::*;
use rntk::ops::ReduceOp;
use rntk::{DType, DynamicAxes, Executor, Value, Variable};

const LENGTHS: [usize; 4] = [3, 1, 5, 2];
const TOL: f64 = 1e-6;

fn input(shape: &[usize], axes: DynamicAxes, name: &str) -> Variable {
    input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: axes,
            needs_gradient: true,
            name: name.into(),
            ..Default::default()
        },
    )
}

/// A ragged sequence input and its value; `f` maps the standard fill.
fn seq(shape: &[usize], key: usize, name: &str, f: fn(f64) -> f64) -> (Variable, Value) {
    let numel: usize = shape.iter().product();
    let data: Vec<Vec<f64>> = ragged(&LENGTHS, numel, key)
        .into_iter()
        .map(|s| s.into_iter().map(f).collect())
        .collect();
    (
        input(shape, DynamicAxes::default_sequence(), name),
        Value::from_sequences(shape.to_vec(), &data).unwrap(),
    )
}

/// A batch input of `n` samples.
fn bat(shape: &[usize], n: usize, key: usize, name: &str, f: fn(f64) -> f64) -> (Variable, Value) {
    let numel: usize = shape.iter().product();
    let data: Vec<f64> = ragged(&[n], numel, key)
        .concat()
        .into_iter()
        .map(f)
        .collect();
    (
        input(shape, DynamicAxes::Batch, name),
        Value::batch(shape.to_vec(), data).unwrap(),
    )
}

fn id(x: f64) -> f64 {
    x
}
fn prob(x: f64) -> f64 {
    1.0 / (1.0 + (-3.0 * x).exp())
}
fn pos(x: f64) -> f64 {
    0.2 + (x + 1.0).abs()
}

fn check(out: Variable, ins: &[(Variable, Value)]) {
    let wrt: Vec<Variable> = ins.iter().map(|(v, _)| v.clone()).collect();
    gradcheck(&out, ins, &wrt, TOL);
}

#[test]
fn squared_error_seq_and_broadcast() {
    let (o, t) = (seq(&[2, 3], 1, "o", id), seq(&[2, 3], 2, "t", id));
    check(squared_error(&o.0, &t.0).unwrap(), &[o, t]);
    let (o, t) = (bat(&[3], 4, 1, "o", id), bat(&[1], 4, 2, "t", id));
    check(squared_error(&o.0, &t.0).unwrap(), &[o, t]);
}

#[test]
fn cross_entropy_seq_and_axes() {
    let (o, t) = (seq(&[4], 1, "o", id), seq(&[4], 2, "t", pos));
    check(cross_entropy_with_softmax(&o.0, &t.0, -1).unwrap(), &[o, t]);
    for axis in [0, 1, -1] {
        let (o, t) = (bat(&[2, 3], 3, 3, "o", id), bat(&[2, 3], 3, 4, "t", pos));
        check(
            cross_entropy_with_softmax(&o.0, &t.0, axis).unwrap(),
            &[o, t],
        );
    }
}

#[test]
fn binary_cross_entropy_seq() {
    let (o, t) = (seq(&[2], 1, "o", prob), seq(&[2], 2, "t", prob));
    check(binary_cross_entropy(&o.0, &t.0).unwrap(), &[o, t]);
    let (o, t) = (bat(&[2, 2], 3, 5, "o", prob), bat(&[2, 2], 3, 6, "t", prob));
    check(binary_cross_entropy(&o.0, &t.0).unwrap(), &[o, t]);
}

#[test]
fn cosine_distance_seq() {
    let (x, y) = (seq(&[3], 1, "x", id), seq(&[3], 2, "y", id));
    check(cosine_distance(&x.0, &y.0).unwrap(), &[x, y]);
    let (x, y) = (bat(&[2, 3], 3, 3, "x", id), bat(&[2, 3], 3, 4, "y", id));
    check(cosine_distance(&x.0, &y.0).unwrap(), &[x, y]);
}

#[test]
fn fmeasure_ranks_1_2_3_and_seq() {
    let (o, t) = (seq(&[3], 1, "o", prob), seq(&[3], 2, "t", prob));
    check(fmeasure(&o.0, &t.0, 1.0).unwrap(), &[o, t]);
    let (o, t) = (bat(&[2, 3], 3, 3, "o", prob), bat(&[2, 3], 3, 4, "t", prob));
    check(fmeasure(&o.0, &t.0, 0.5).unwrap(), &[o, t]);
    let (o, t) = (
        bat(&[2, 2, 2], 2, 5, "o", prob),
        bat(&[2, 2, 2], 2, 6, "t", prob),
    );
    check(fmeasure(&o.0, &t.0, 2.0).unwrap(), &[o, t]);
}

#[test]
fn classification_error_target_gradient() {
    // −hardmax(o) for t, zero for o (no ties in this data, so the numeric
    // derivative w.r.t. o is 0 too)
    let (o, t) = (seq(&[4], 1, "o", id), seq(&[4], 2, "t", id));
    check(classification_error(&o.0, &t.0, -1, 1).unwrap(), &[o, t]);
}

/// Σ over the minibatch of w·ℓ with ℓ the ε-free binary cross entropy.
fn weighted_sum(o: &Variable, t: &Variable, w: &Variable) -> Variable {
    let one = rntk::scalar(1.0, DType::F64);
    let l = negate(
        &plus(
            &element_times(t, &log(o).unwrap()).unwrap(),
            &element_times(
                &minus(&one, t).unwrap(),
                &log(&minus(&one, o).unwrap()).unwrap(),
            )
            .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    reduce_all(ReduceOp::Sum, &element_times(w, &l).unwrap()).unwrap()
}

#[test]
fn weighted_bce_backward_is_the_gradient_of_the_weighted_sum() {
    for (o, t, w) in [
        (
            seq(&[1], 1, "o", prob),
            seq(&[1], 2, "t", prob),
            seq(&[1], 3, "w", pos),
        ),
        (
            bat(&[1], 5, 4, "o", prob),
            bat(&[1], 5, 5, "t", prob),
            bat(&[1], 5, 6, "w", pos),
        ),
    ] {
        let reference = weighted_sum(&o.0, &t.0, &w.0);
        check(reference.clone(), &[o.clone(), t.clone(), w.clone()]);
        let wbce = weighted_binary_cross_entropy(&o.0, &t.0, &w.0).unwrap();
        let grad = |out: &Variable| {
            let mut ex = Executor::<f64>::new(std::slice::from_ref(out)).unwrap();
            let feeds = [(&o.0, &o.1), (&t.0, &t.1), (&w.0, &w.1)];
            ex.forward(&feeds, false).unwrap();
            ex.backward(&[(out, None)], &[&o.0]).unwrap()[0].dense_rows::<f64>()
        };
        assert_close(
            "d wbce / d o",
            &grad(&wbce),
            &grad(&reference),
            1e-12,
            1e-12,
        );
    }
}

/// A sparse one-hot sequence target over `dim` classes on the standard lengths.
fn sparse_target(dim: usize) -> (Variable, Value) {
    let v = input_variable_with(
        [dim],
        InputOptions {
            dtype: DType::F64,
            is_sparse: true,
            dynamic_axes: DynamicAxes::default_sequence(),
            name: "t".into(),
            ..Default::default()
        },
    );
    let idx: Vec<Vec<usize>> = LENGTHS
        .iter()
        .enumerate()
        .map(|(s, &n)| (0..n).map(|k| (3 * s + 2 * k + 1) % dim).collect())
        .collect();
    (v, Value::one_hot_sequences::<f64>(dim, &idx).unwrap())
}

#[test]
fn fused_cross_entropy_with_a_sparse_target() {
    // the fused op reads the sparse rows in place; its gradient w.r.t. o is checked here
    let o = seq(&[5], 3, "o", id);
    let t = sparse_target(5);
    let wrt = [o.0.clone()];
    gradcheck(
        &cross_entropy_with_softmax(&o.0, &t.0, -1).unwrap(),
        &[o, t],
        &wrt,
        TOL,
    );
}

#[test]
fn fused_classification_error_sparse_equals_dense() {
    let (o, t) = (seq(&[5], 3, "o", id), sparse_target(5));
    let td = input(&[5], DynamicAxes::default_sequence(), "td");
    let dense = Value::from_sequences([5], &t.1.to_sequences::<f64>()).unwrap();
    let es = classification_error(&o.0, &t.0, -1, 1).unwrap();
    let ed = classification_error(&o.0, &td, -1, 1).unwrap();
    let mut xs = Executor::<f64>::new(std::slice::from_ref(&es)).unwrap();
    xs.forward(&[(&o.0, &o.1), (&t.0, &t.1)], false).unwrap();
    let mut xd = Executor::<f64>::new(std::slice::from_ref(&ed)).unwrap();
    xd.forward(&[(&o.0, &o.1), (&td, &dense)], false).unwrap();
    let (vs, vd) = (
        xs.value(&es).unwrap().to_vec::<f64>(),
        xd.value(&ed).unwrap().to_vec::<f64>(),
    );
    assert_eq!(vs, vd);
    // some hits and some misses in this data, so both branches ran
    assert!(vs.contains(&0.0) && vs.contains(&1.0), "{vs:?}");
}
