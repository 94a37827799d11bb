//! f64 finite-difference gradient checks of every row-local op family (unary, binary,
//! times, softmax, reductions, slice/splice/reshape/transpose, clip/select/dropout/
//! one_hot/gather) and of reduce_all, on a ragged sequence batch of lengths
//! [3, 1, 5, 2] (one sequence of length 1), with per-row and static (parameter)
//! operands, in three settings:
//!
//! * `plain`: `out = g(x)` over the whole minibatch at once;
//! * `past`:  `h = g(x + s(past_value(h)))`, a recurrent loop run step by step;
//! * `future`: the same with `future_value` (a loop running backward in time);
//!
//! where `s(v) = reshape(times(reshape(v, (n,)), Wk), (2, 3))` maps the state back to
//! x's sample shape whatever shape `g` gives. Whole ops (reduce_all over a dynamic
//! operand) cannot sit in a loop and run plain only.
//!
//! Dropout is the identity in inference (what the finite differences see); its
//! training mask is checked separately: the same in and out of loops, backward
//! scaled by it.

use crate::common;

use common::*;
use rntk::functions::*;
use rntk::ops::ReduceOp;
use rntk::sequence::{future_value, past_value};
use rntk::{DType, DynamicAxes, Executor, Result, Tensor, Value, Variable};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

const LENGTHS: [usize; 4] = [3, 1, 5, 2];
const TOL: f64 = 1e-6;

/// Inputs and parameters an op case may use; `x` itself is passed separately (it is
/// `x + s(state)` inside loops).
struct Env {
    /// a second per-row input of shape (2, 3)
    y: Variable,
    /// per-row integer indices of shape (2,), values in {0, 1}
    idx: Variable,
    p: HashMap<&'static str, Variable>,
}

fn seq_input(shape: &[usize], name: &str) -> Variable {
    f64_input(shape, name, DynamicAxes::default_sequence())
}

fn fill(n: usize, key: usize, scale: f64, offset: f64) -> Vec<f64> {
    (0..n)
        .map(|k| scale * ((((7 * k + key) % 11) as f64) - 5.0) / 5.0 + offset + 0.003 * k as f64)
        .collect()
}

fn param(shape: &[usize], key: usize, scale: f64, offset: f64, name: &str) -> Variable {
    let n = shape.iter().product();
    rntk::parameter_from(
        Tensor::from_vec(shape.to_vec(), fill(n, key, scale, offset)).unwrap(),
        name,
    )
}

fn c(v: f64) -> Variable {
    rntk::scalar(v, DType::F64)
}

fn constant(shape: &[usize], data: Vec<f64>) -> Variable {
    rntk::constant(Tensor::from_vec(shape.to_vec(), data).unwrap(), "")
}

fn env() -> Env {
    let mut p = HashMap::new();
    for (name, shape, key, scale, offset) in [
        ("p3", vec![3], 1, 0.5, 0.0),
        ("p2x1", vec![2, 1], 2, 0.5, 0.0),
        ("pscalar", vec![], 3, 0.5, 0.2),
        ("ppos3", vec![3], 4, 0.3, 1.0),
        ("p23", vec![2, 3], 5, 0.5, 0.0),
        ("p33", vec![3, 3], 6, 0.5, 0.0),
        ("p13", vec![1, 3], 7, 0.5, 0.0),
        ("p32", vec![3, 2], 8, 0.5, 0.0),
        ("p22", vec![2, 2], 9, 0.5, 0.0),
        ("p6", vec![6], 10, 0.5, 0.0),
        ("w34", vec![3, 4], 1, 0.4, 0.0),
        ("w64", vec![6, 4], 2, 0.4, 0.0),
        ("w622", vec![6, 2, 2], 3, 0.4, 0.0),
        ("wt43", vec![4, 3], 4, 0.4, 0.0),
        ("a42", vec![4, 2], 5, 0.4, 0.0),
        ("a46", vec![4, 6], 6, 0.4, 0.0),
        ("r53", vec![5, 3], 7, 0.5, 0.0),
    ] {
        p.insert(name, param(&shape, key, scale, offset, name));
    }
    Env {
        y: seq_input(&[2, 3], "y"),
        idx: seq_input(&[2], "idx"),
        p,
    }
}

type OpFn = fn(&Variable, &Env) -> Result<Variable>;

/// A case run on the loop path too: `case!(name, |z, e| graph)`.
macro_rules! case {
    ($name:expr, |$z:ident, $e:ident| $body:expr) => {
        (
            $name,
            (|$z: &Variable, $e: &Env| -> Result<Variable> { $body }) as OpFn,
            false,
        )
    };
}

/// `(name, g, whole)`: `whole` cases contain a whole op on the loop path and run
/// plain only.
fn cases() -> Vec<(&'static str, OpFn, bool)> {
    let mut v = elementwise_cases();
    v.extend(product_and_shape_cases());
    v.extend(selection_cases());
    // every reduction over every kind of axis set
    macro_rules! reductions {
        ($($f:ident),*) => {$(
            v.push(case!(concat!(stringify!($f), "_axis0"), |z, _e| $f(z, Some(&[0]), true)));
            v.push(case!(concat!(stringify!($f), "_axis1"), |z, _e| $f(z, Some(&[1]), true)));
            v.push(case!(concat!(stringify!($f), "_none"), |z, _e| $f(z, None, true)));
            v.push(case!(concat!(stringify!($f), "_01_drop"), |z, _e| $f(z, Some(&[0, 1]), false)));
            v.push(case!(concat!(stringify!($f), "_m1_drop"), |z, _e| $f(z, Some(&[-1]), false)));
        )*};
    }
    reductions!(
        reduce_sum,
        reduce_mean,
        reduce_max,
        reduce_min,
        reduce_log_sum_exp
    );
    let whole: [(&'static str, OpFn); 5] = [
        ("reduce_all_sum", |z, _e| reduce_all(ReduceOp::Sum, z)),
        ("reduce_all_mean", |z, _e| reduce_all(ReduceOp::Mean, z)),
        ("reduce_all_max", |z, _e| reduce_all(ReduceOp::Max, z)),
        ("reduce_all_min", |z, _e| reduce_all(ReduceOp::Min, z)),
        ("reduce_all_lse", |z, e| {
            reduce_all(ReduceOp::LogSumExp, &plus(z, &e.y)?)
        }),
    ];
    v.extend(whole.into_iter().map(|(n, f)| (n, f, true)));
    v
}

/// Unary and binary element-wise ops, per-row and static operands.
fn elementwise_cases() -> Vec<(&'static str, OpFn, bool)> {
    vec![
        // unary
        case!("negate", |z, _e| negate(z)),
        case!("sigmoid", |z, _e| sigmoid(z)),
        case!("tanh", |z, _e| tanh(z)),
        case!("relu", |z, _e| relu(z)),
        case!("leaky_relu", |z, _e| leaky_relu(z, 0.2)),
        case!("elu", |z, _e| elu(z)),
        case!("softplus", |z, _e| softplus(z)),
        case!("exp", |z, _e| exp(z)),
        case!("log", |z, _e| log(&sigmoid(z)?)),
        case!("sqrt", |z, _e| sqrt(&sigmoid(z)?)),
        case!("square", |z, _e| square(z)),
        case!("abs", |z, _e| abs(z)),
        case!("reciprocal", |z, _e| reciprocal(&exp(z)?)),
        case!("alias", |z, _e| alias(z, "a")),
        case!("sin", |z, _e| sin(z)),
        case!("cos", |z, _e| cos(z)),
        case!("tanh_static", |z, e| plus(z, &tanh(&e.p["p23"])?)),
        case!("exp_static_row", |z, e| element_times(z, &exp(&e.p["p3"])?)),
        // binary, static operand broadcast
        case!("plus_p3", |z, e| plus(z, &e.p["p3"])),
        case!("plus_p3_first", |z, e| plus(&e.p["p3"], z)),
        case!("minus_p2x1", |z, e| minus(z, &e.p["p2x1"])),
        case!("minus_p3_first", |z, e| minus(&e.p["p3"], z)),
        case!("times_pscalar", |z, e| element_times(z, &e.p["pscalar"])),
        case!("times_p2x1", |z, e| element_times(&e.p["p2x1"], z)),
        case!("divide_ppos3", |z, e| element_divide(z, &e.p["ppos3"])),
        case!("log_add_exp_p3", |z, e| log_add_exp(z, &e.p["p3"])),
        case!("log_add_exp_rows", |z, e| log_add_exp(
            &e.p["p2x1"],
            &tanh(z)?
        )),
        case!("divide_by_row", |z, e| element_divide(
            &e.p["p23"],
            &plus(&exp(z)?, &c(0.5))?
        )),
        case!("pow_param", |z, e| pow(&exp(z)?, &e.p["p3"])),
        case!("pow_row_exponent", |z, e| pow(&e.p["ppos3"], z)),
        case!("max_p3", |z, e| element_max(z, &e.p["p3"])),
        case!("min_p2x1", |z, e| element_min(&e.p["p2x1"], z)),
        case!("less_gate", |z, e| element_times(z, &less(z, &e.p["p3"])?)),
        case!("greater_equal_gate", |z, e| element_times(
            &greater_equal(z, &e.p["p2x1"])?,
            z
        )),
        case!("equal_gate", |z, e| plus(z, &equal(z, &e.p["p3"])?)),
        case!("not_equal_gate", |z, _e| element_times(
            z,
            &not_equal(z, &c(0.0))?
        )),
        case!("less_equal_greater", |z, e| element_times(
            &less_equal(z, &e.p["p3"])?,
            &greater(z, &e.p["p2x1"])?
        )),
        // binary, per-row operands on both sides / static with static
        case!("plus_rows", |z, e| plus(z, &e.y)),
        case!("times_rows", |z, e| element_times(z, &e.y)),
        case!("divide_rows", |z, e| element_divide(
            z,
            &plus(&exp(&e.y)?, &c(0.1))?
        )),
        case!("max_rows", |z, e| element_max(&e.y, z)),
        case!("min_rows", |z, e| element_min(z, &e.y)),
        case!("static_static", |z, e| plus(
            z,
            &element_times(&e.p["p3"], &e.p["p2x1"])?
        )),
    ]
}

/// Products, softmax, reductions of a static operand, shape ops.
fn product_and_shape_cases() -> Vec<(&'static str, OpFn, bool)> {
    vec![
        // times
        case!("times_map", |z, e| times(z, &e.p["w34"])),
        case!("times_flat", |z, e| times(&reshape(z, [6])?, &e.p["w64"])),
        case!("times_out_rank2", |z, e| times_with(
            &reshape(z, [6])?,
            &e.p["w622"],
            2,
            -1
        )),
        case!("times_infer0", |z, e| times_with(z, &e.p["w34"], 1, 0)),
        case!("times_transpose", |z, e| times_transpose(z, &e.p["wt43"])),
        case!("times_static_left", |z, e| times(&e.p["a42"], z)),
        case!("times_static_left_matvec", |z, e| times(
            &e.p["a46"],
            &reshape(z, [6, 1])?
        )),
        case!("times_transpose_static_left", |z, e| times_transpose(
            &e.p["wt43"],
            z
        )),
        case!("times_rows_rows", |z, e| times(z, &reshape(&e.y, [3, 2])?)),
        case!("times_transpose_rows_rows", |z, e| times_transpose(z, &e.y)),
        case!("times_static_static", |z, e| plus(
            z,
            &times(&e.p["p22"], &e.p["p23"])?
        )),
        // softmax
        case!("softmax_0", |z, _e| softmax(z, 0)),
        case!("softmax_1", |z, _e| softmax(z, 1)),
        case!("softmax_all", |z, _e| reshape(
            &softmax(&reshape(z, [6])?, 0)?,
            [2, 3]
        )),
        case!("log_softmax_0", |z, _e| log_softmax(z, 0)),
        case!("log_softmax_m1", |z, _e| log_softmax(z, -1)),
        case!("softmax_static", |z, e| element_times(
            z,
            &softmax(&e.p["p23"], 1)?
        )),
        case!("log_softmax_static", |z, e| plus(
            z,
            &log_softmax(&e.p["p23"], 0)?
        )),
        // reductions of a static operand
        case!("reduce_sum_static", |z, e| plus(
            z,
            &reduce_sum(&e.p["p23"], Some(&[0]), true)?
        )),
        case!("reduce_max_static", |z, e| element_times(
            z,
            &reduce_max(&e.p["p23"], Some(&[1]), true)?
        )),
        case!("reduce_lse_static", |z, e| plus(
            z,
            &reduce_log_sum_exp(&e.p["p23"], None, true)?
        )),
        // shape ops
        case!("slice_1_0_2", |z, _e| slice(z, 1, 0, 2)),
        case!("slice_stride2", |z, _e| slice_strided(z, 1, 0, 3, 2)),
        case!("slice_m1", |z, _e| slice(z, 0, -1, 0)),
        case!("slice_static", |z, e| plus(
            z,
            &slice(&e.p["p33"], 0, 1, 3)?
        )),
        case!("splice_static_0", |z, e| splice(&[z, &e.p["p13"]], 0)),
        case!("splice_static_middle", |z, e| splice(
            &[&e.p["p13"], z, &e.p["p13"]],
            0
        )),
        case!("splice_rows_1", |z, e| splice(&[z, &e.y], 1)),
        case!("splice_new_axis", |z, e| splice(&[z, &e.y], 2)),
        case!("splice_static_static", |z, e| plus(
            z,
            &splice(&[&e.p["p13"], &e.p["p13"]], 0)?
        )),
        case!("reshape_3x2", |z, _e| reshape(z, [3, 2])),
        case!("reshape_static", |z, e| plus(
            z,
            &reshape(&e.p["p6"], [2, 3])?
        )),
        case!("transpose", |z, _e| transpose(z, &[1, 0])),
        case!("swapaxes", |z, _e| swapaxes(&reshape(z, [1, 2, 3])?, 0, 2)),
        case!("transpose_static", |z, e| plus(
            z,
            &transpose(&e.p["p32"], &[1, 0])?
        )),
    ]
}

/// Clip, select, dropout, one-hot, gather, and reduce_all of a static operand.
fn selection_cases() -> Vec<(&'static str, OpFn, bool)> {
    vec![
        // clip / select / dropout / one_hot / gather
        case!("clip_scalars", |z, _e| clip(z, &c(-0.2), &c(0.3))),
        case!("clip_broadcast_bounds", |z, _e| clip(
            z,
            &constant(&[3], vec![-0.3, -0.1, -0.2]),
            &constant(&[2, 1], vec![0.2, 0.35])
        )),
        case!("clip_static", |z, e| plus(
            z,
            &clip(&e.p["p23"], &c(-0.25), &c(0.25))?
        )),
        // per-row bounds that carry no gradient themselves (CNTK gives bounds none)
        case!("clip_row_bounds", |z, e| {
            let lo = minus(&element_times(&one_hot(&e.idx, 3)?, &c(0.2))?, &c(0.15))?;
            clip(z, &lo, &plus(&lo, &c(0.35))?)
        }),
        case!("select_static_else", |z, e| element_select(
            &greater(z, &c(0.0))?,
            z,
            &e.p["p3"]
        )),
        case!("select_rows", |z, e| element_select(
            &greater(&e.y, &c(0.0))?,
            z,
            &e.y
        )),
        case!("select_static_cond", |z, e| element_select(
            &constant(&[3], vec![1.0, 0.0, 2.0]),
            &e.p["p2x1"],
            z
        )),
        case!("dropout_inference", |z, _e| dropout(z, 0.3, 5)),
        case!("one_hot_mask", |z, e| element_times(
            z,
            &one_hot(&e.idx, 3)?
        )),
        case!("gather_static_ref", |z, e| plus(
            z,
            &gather(&e.p["r53"], &e.idx)?
        )),
        case!("gather_row_ref", |z, e| gather(z, &e.idx)),
        case!("gather_static_idx", |z, e| element_times(
            z,
            &gather(&e.p["r53"], &constant(&[2], vec![4.0, 1.0]))?
        )),
        // reduce_all over a static operand (a whole op off the loop path)
        case!("reduce_all_static", |z, e| plus(
            z,
            &reduce_all(ReduceOp::LogSumExp, &e.p["p23"])?
        )),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Past,
    Future,
}

/// `h = g(x + s(delay(h)))` closed over a placeholder.
fn looped(g: OpFn, x: &Variable, e: &Env, future: bool) -> Result<Variable> {
    let d = g(x, e)?.shape();
    let n = d.numel();
    let h_ph = rntk::placeholder(d, DType::F64, x.dynamic_axes(), "h")?;
    let init = c(0.1);
    let prev = if future {
        future_value(&h_ph, &init, 1)?
    } else {
        past_value(&h_ph, &init, 1)?
    };
    let wk = param(&[n, 6], 11, 0.08, 0.0, "wk");
    let s = reshape(&times(&reshape(&prev, [n])?, &wk)?, [2, 3])?;
    let h = g(&plus(x, &s)?, e)?;
    h.owner()
        .expect("op output")
        .replace_placeholders(&[(h_ph, h.clone())])?;
    Ok(h)
}

fn check(name: &str, g: OpFn, mode: Mode) {
    let e = env();
    let x = seq_input(&[2, 3], "x");
    let out = match mode {
        Mode::Plain => g(&x, &e),
        Mode::Past => looped(g, &x, &e, false),
        Mode::Future => looped(g, &x, &e, true),
    }
    .unwrap_or_else(|err| panic!("build: {err}"));
    let xv = Value::from_sequences([2, 3], &ragged(&LENGTHS, 6, 1)).unwrap();
    let yv = Value::from_sequences([2, 3], &ragged(&LENGTHS, 6, 5)).unwrap();
    let idx: Vec<Vec<f64>> = LENGTHS
        .iter()
        .scan(0usize, |k, &l| {
            Some(
                (0..2 * l)
                    .map(|_| {
                        *k += 1;
                        ((*k * 5 / 3) % 2) as f64
                    })
                    .collect(),
            )
        })
        .collect();
    let iv = Value::from_sequences([2], &idx).unwrap();
    let ex = Executor::<f64>::new(std::slice::from_ref(&out))
        .unwrap_or_else(|err| panic!("compile: {err}"));
    let args = ex.arguments();
    let feeds: Vec<(Variable, Value)> = [(&x, &xv), (&e.y, &yv), (&e.idx, &iv)]
        .into_iter()
        .filter(|(v, _)| args.contains(v))
        .map(|(v, val)| (v.clone(), val.clone()))
        .collect();
    let mut wrt: Vec<Variable> = args.into_iter().filter(|v| *v != e.idx).collect();
    wrt.extend(ex.parameters());
    assert!(!wrt.is_empty(), "{name}: nothing to differentiate");
    gradcheck(&out, &feeds, &wrt, TOL);
}

fn run_all(mode: Mode) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, g, whole) in cases() {
        if whole && !matches!(mode, Mode::Plain) {
            continue;
        }
        ran += 1;
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| check(name, g, mode))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name} ({mode:?}): {msg}"));
        }
    }
    eprintln!("{mode:?}: {ran} op cases gradient-checked");
    assert!(
        failures.is_empty(),
        "{} of {ran} gradient checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gradcheck_ops_plain() {
    run_all(Mode::Plain);
}

#[test]
fn gradcheck_ops_in_past_value_loop() {
    run_all(Mode::Past);
}

#[test]
fn gradcheck_ops_in_future_value_loop() {
    run_all(Mode::Future);
}

// ---- dropout in training ----

fn forward_training(out: &Variable, feeds: &[(&Variable, &Value)]) -> Vec<Vec<f64>> {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(out)).unwrap();
    ex.forward(feeds, true).unwrap();
    ex.value(out).unwrap().to_sequences::<f64>()
}

/// The dropout mask of the first training pass over the ragged layout, per sequence.
fn mask(rate: f64, seed: u64) -> Vec<Vec<f64>> {
    let ones = seq_input(&[2, 3], "ones");
    let v = Value::from_sequences(
        [2, 3],
        &LENGTHS
            .iter()
            .map(|&l| vec![1.0; 6 * l])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    forward_training(&dropout(&ones, rate, seed).unwrap(), &[(&ones, &v)])
}

#[test]
fn dropout_training_mask_is_scaled_and_seeded() {
    let m = mask(0.4, 11);
    let all: Vec<f64> = m.iter().flatten().copied().collect();
    let scale = 1.0 / 0.6;
    assert!(all.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-15));
    let dropped = all.iter().filter(|&&v| v == 0.0).count();
    assert!(
        (15..=50).contains(&dropped),
        "dropped {dropped} of {}",
        all.len()
    );
    assert_eq!(m, mask(0.4, 11), "same seed, same first pass, same mask");
    assert_ne!(m, mask(0.4, 12), "another seed, another mask");
    // rate 0: identity even in training
    assert!(mask(0.0, 3).iter().flatten().all(|&v| v == 1.0));
}

#[test]
fn dropout_passes_draw_new_masks_and_inference_is_identity() {
    let x = seq_input(&[2, 3], "x");
    let y = dropout(&x, 0.5, 1).unwrap();
    let xv = Value::from_sequences([2, 3], &ragged(&LENGTHS, 6, 1)).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    ex.forward(&[(&x, &xv)], true).unwrap();
    let a = ex.value(&y).unwrap().to_vec::<f64>();
    ex.forward(&[(&x, &xv)], true).unwrap();
    let b = ex.value(&y).unwrap().to_vec::<f64>();
    assert_ne!(a, b, "a second training pass draws a new mask");
    ex.forward(&[(&x, &xv)], false).unwrap();
    assert_eq!(ex.value(&y).unwrap().to_vec::<f64>(), xv.to_vec::<f64>());
}

#[test]
fn dropout_backward_uses_the_forward_mask() {
    let x = seq_input(&[2, 3], "x");
    let y = dropout(&x, 0.4, 11).unwrap();
    let xv = Value::from_sequences([2, 3], &ragged(&LENGTHS, 6, 1)).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    ex.forward(&[(&x, &xv)], true).unwrap();
    let out = ex.value(&y).unwrap();
    let r = seed_like(&out);
    let g = ex.backward(&[(&y, Some(&r))], &[&x]).unwrap();
    let m: Vec<f64> = mask(0.4, 11).into_iter().flatten().collect();
    let want: Vec<f64> = r
        .to_vec::<f64>()
        .iter()
        .zip(&m)
        .map(|(a, b)| a * b)
        .collect();
    assert_close("dropout grad", &g[0].to_vec::<f64>(), &want, 1e-15, 0.0);
    let want_y: Vec<f64> = xv
        .to_vec::<f64>()
        .iter()
        .zip(&m)
        .map(|(a, b)| a * b)
        .collect();
    assert_close("dropout out", &out.to_vec::<f64>(), &want_y, 1e-15, 0.0);
}

/// The mask a backward (future_value) loop draws: CNTK runs such a loop last slot first
/// and draws each slot's columns when it runs it (docs/random.md, checked against CNTK in
/// tests/random_oracle.rs), so it is not the mask the whole minibatch gets at once.
fn backward_loop_mask(rate: f64, seed: u64) -> Vec<Vec<f64>> {
    let pk = rntk::random::StreamPacking::new(&LENGTHS);
    let mut rng = rntk::random::DropoutRng::new(seed, 0);
    let mut m: Vec<Vec<f64>> = LENGTHS.iter().map(|&l| vec![0.0; 6 * l]).collect();
    for tau in (0..pk.slots()).rev() {
        for k in 0..pk.streams() {
            let mut cell = [0.0; 6];
            rng.fill(rate, 1.0 / (1.0 - rate), 0.0, &mut cell);
            if let Some((s, t)) = pk.occupant(tau, k) {
                m[s][t * 6..(t + 1) * 6].copy_from_slice(&cell);
            }
        }
    }
    m
}

/// Inside a loop the op runs one time step (a block of rows) at a time: a forward loop
/// gets the mask the whole minibatch gets at once, a backward loop the one it draws
/// last slot first (as CNTK).
#[test]
fn dropout_mask_in_loops_follows_the_loop_order() {
    let (rate, seed) = (0.4, 11);
    let whole = mask(rate, seed);
    let backward = backward_loop_mask(rate, seed);
    assert_ne!(whole, backward);
    for future in [false, true] {
        let m = if future { &backward } else { &whole };
        let x = seq_input(&[2, 3], "x");
        let h_ph = rntk::placeholder([2, 3], DType::F64, x.dynamic_axes(), "h").unwrap();
        let prev = if future {
            future_value(&h_ph, &c(0.0), 1).unwrap()
        } else {
            past_value(&h_ph, &c(0.0), 1).unwrap()
        };
        let h = dropout(&plus(&x, &prev).unwrap(), rate, seed).unwrap();
        h.owner()
            .unwrap()
            .replace_placeholders(&[(h_ph, h.clone())])
            .unwrap();
        let seqs = ragged(&LENGTHS, 6, 1);
        let xv = Value::from_sequences([2, 3], &seqs).unwrap();
        let got = forward_training(&h, &[(&x, &xv)]);
        for (s, (xs, ms)) in seqs.iter().zip(m).enumerate() {
            let l = LENGTHS[s];
            let mut want = vec![0.0; 6 * l];
            let steps: Vec<usize> = if future {
                (0..l).rev().collect()
            } else {
                (0..l).collect()
            };
            for (k, &t) in steps.iter().enumerate() {
                for j in 0..6 {
                    let prev = if k == 0 {
                        0.0
                    } else {
                        want[steps[k - 1] * 6 + j]
                    };
                    want[t * 6 + j] = ms[t * 6 + j] * (xs[t * 6 + j] + prev);
                }
            }
            assert_close(
                &format!("future={future} sequence {s}"),
                &got[s],
                &want,
                1e-14,
                1e-14,
            );
        }
    }
}
