//! Sequence ops and past_value / future_value / delay against CNTK 2.7
//! (tests/fixtures/cntk/sequence_ops.json and delay.json): every result case, forward
//! and gradients in f64 to rtol 1e-6, and every error case refused; plus the build-
//! and run-time refusals of mismatched dynamic axes.

use crate::common;

use common::*;
use rntk::functions::{element_times, plus};
use rntk::sequence;
use rntk::{DType, DynamicAxes, Error, Executor, Value, Variable};
use serde_json::Value as Json;
use std::collections::HashMap;

fn f64_scalar(v: f64) -> Variable {
    rntk::scalar(v, DType::F64)
}

/// Build a sequence_ops case's expression from its name.
fn build_seq_op(name: &str, v: &HashMap<String, Variable>) -> rntk::Result<Variable> {
    let x = || &v["x"];
    Ok(match name {
        "seq_first" => sequence::first(x())?,
        "seq_last" => sequence::last(x())?,
        "seq_reduce_sum" => sequence::reduce_sum(x())?,
        "seq_reduce_max" | "seq_reduce_max_tie" => sequence::reduce_max(x())?,
        "seq_broadcast_as" => sequence::broadcast_as(&v["v"], x())?,
        "seq_broadcast_as_times_x" => element_times(&sequence::broadcast_as(&v["v"], x())?, x())?,
        "seq_slice_1_3" | "seq_slice_1_3_len_ge2" => sequence::slice(x(), 1, 3)?,
        "seq_slice_m2_0" | "seq_slice_m2_0_len_ge2" => sequence::slice(x(), -2, 0)?,
        "seq_slice_0_m1" | "seq_slice_0_m1_len_ge2" => sequence::slice(x(), 0, -1)?,
        "seq_slice_1_0" | "seq_slice_1_0_len_ge2" => sequence::slice(x(), 1, 0)?,
        "seq_is_first" => sequence::is_first(x())?,
        "seq_is_last" => sequence::is_last(x())?,
        "seq_where_01" | "seq_where_20" => sequence::where_(&v["cond"])?,
        "seq_gather" | "seq_gather_cond2" => sequence::gather(x(), &v["cond"])?,
        "seq_scatter_of_gather" => {
            let g = sequence::gather(x(), &v["cond"])?;
            sequence::scatter(&element_times(&g, &f64_scalar(2.0))?, &v["cond"])?
        }
        "seq_softmax" => sequence::softmax(x())?,
        "seq_last_of_past_value" => {
            sequence::last(&sequence::past_value(x(), &f64_scalar(0.0), 1)?)?
        }
        "seq_reduce_sum_of_past_value_scalar_init" => {
            sequence::reduce_sum(&sequence::past_value(x(), &f64_scalar(0.5), 1)?)?
        }
        other => panic!("sequence_ops.json case {other} has no builder: add one"),
    })
}

/// Parse a delay case's Python expression:
/// `C.sequence.{past_value,future_value,delay}(x, initial_state=..., time_step=k)`.
fn build_delay(expr: &str, v: &HashMap<String, Variable>) -> Variable {
    let (func, rest) = expr
        .strip_prefix("C.sequence.")
        .and_then(|e| e.split_once('('))
        .unwrap_or_else(|| panic!("unexpected delay expression {expr}"));
    let args = rest.trim_end_matches(')');
    let mut init = f64_scalar(0.0);
    let mut k: isize = 1;
    for a in args.split(',').map(str::trim).skip(1) {
        let (key, val) = a.split_once('=').expect("keyword argument");
        match key {
            "initial_state" => {
                init = match val.parse::<f64>() {
                    Ok(s) => f64_scalar(s),
                    Err(_) => v[val].clone(),
                }
            }
            "time_step" => k = val.parse().expect("time_step"),
            other => panic!("unknown keyword {other} in {expr}"),
        }
    }
    let x = &v["x"];
    match func {
        "past_value" => sequence::past_value(x, &init, k as usize).unwrap(),
        "future_value" => sequence::future_value(x, &init, k as usize).unwrap(),
        "delay" => sequence::delay(x, &init, k).unwrap(),
        f => panic!("unknown function {f}"),
    }
}

fn is_error_case(c: &Json) -> bool {
    c.get("error").is_some()
}

#[test]
fn sequence_ops_match_cntk_f64() {
    let cases = load_cases("cntk/sequence_ops.json");
    let mut n = 0;
    for c in cases.iter().filter(|c| !is_error_case(c)) {
        let name = c["name"].as_str().unwrap();
        run_case(c, 1e-6, |v| build_seq_op(name, v).unwrap());
        n += 1;
    }
    assert_eq!(n, 22, "result cases of sequence_ops.json");
}

#[test]
fn delay_matches_cntk_f64() {
    let cases = load_cases("cntk/delay.json");
    let mut n = 0;
    for c in cases.iter().filter(|c| !is_error_case(c)) {
        let expr = c["expr"].as_str().unwrap().to_string();
        run_case(c, 1e-6, |v| build_delay(&expr, v));
        n += 1;
    }
    assert_eq!(n, 38, "result cases of delay.json");
}

fn seq_input(shape: &[usize], name: &str) -> Variable {
    f64_input(shape, name, DynamicAxes::default_sequence())
}

fn batch_input(shape: &[usize], name: &str) -> Variable {
    f64_input(shape, name, DynamicAxes::Batch)
}

fn forward_err(out: &Variable, feeds: &[(&Variable, &Value)]) -> Error {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(out)).expect("compile");
    ex.forward(feeds, false).expect_err("forward must fail")
}

/// The fixture's error cases (sequence.slice leaving a sequence empty on the ragged
/// batch [3, 1, 5, 2]) are refused at run time with CNTK's meaning.
#[test]
fn fixture_error_cases_are_refused() {
    let cases = load_cases("cntk/sequence_ops.json");
    let errs: Vec<&Json> = cases.iter().filter(|c| is_error_case(c)).collect();
    assert_eq!(errs.len(), 3);
    let x = seq_input(&[2], "x");
    let data = Value::from_sequences([2], &ragged(&[3, 1, 5, 2], 2, 1)).unwrap();
    for c in errs {
        let name = c["name"].as_str().unwrap();
        assert!(c["error"]
            .as_str()
            .unwrap()
            .contains("Sequences must be a least one frame long"));
        let by: HashMap<String, Variable> = [("x".to_string(), x.clone())].into();
        let out = build_seq_op(name, &by).unwrap();
        let e = forward_err(&out, &[(&x, &data)]);
        let msg = e.to_string();
        assert!(matches!(e, Error::Runtime { .. }), "{name}: {msg}");
        assert!(msg.contains("Sequence::Slice"), "{name}: {msg}");
        assert!(
            msg.contains("leaves sequence 1 (length 1) empty"),
            "{name}: {msg}"
        );
        assert!(msg.contains(&out.owner().unwrap().label()), "{name}: {msg}");
    }
}

#[test]
fn past_value_of_batch_only_variable_is_refused_at_build_time() {
    let b = batch_input(&[2], "b");
    for e in [
        sequence::past_value(&b, &f64_scalar(0.0), 1).unwrap_err(),
        sequence::future_value(&b, &f64_scalar(0.0), 1).unwrap_err(),
    ] {
        assert!(matches!(e, Error::DynamicAxes { .. }), "{e}");
        assert!(e.to_string().contains("sequence axis"), "{e}");
    }
    // Sequence reductions too.
    assert!(sequence::last(&b).is_err());
    assert!(sequence::slice(&b, 0, 1).is_err());
}

#[test]
fn broadcast_as_needs_a_batch_only_operand() {
    let x = seq_input(&[2], "x");
    let p = rntk::parameter_from(rntk::Tensor::from_vec([2], vec![1.0f64, 2.0]).unwrap(), "p");
    for operand in [&x, &p] {
        let e = sequence::broadcast_as(operand, &x).unwrap_err();
        assert!(matches!(e, Error::DynamicAxes { .. }), "{e}");
        assert!(e.to_string().contains("Sequence::BroadcastAs"), "{e}");
    }
    // The target must have a sequence axis.
    let b = batch_input(&[2], "b");
    assert!(sequence::broadcast_as(&b, &b).is_err());
}

#[test]
fn mismatched_sequence_counts_are_runtime_errors_naming_the_op() {
    let x = seq_input(&[2], "x");
    let y = seq_input(&[2], "y");
    let xv = Value::from_sequences([2], &ragged(&[3, 1, 2], 2, 1)).unwrap();
    let yv = Value::from_sequences([2], &ragged(&[3, 1], 2, 2)).unwrap();
    // Element-wise on the same axis.
    let e = forward_err(&plus(&x, &y).unwrap(), &[(&x, &xv), (&y, &yv)]);
    assert!(matches!(e, Error::Runtime { .. }), "{e}");
    assert!(e.to_string().contains("Plus"), "{e}");
    // gather: operand and condition on the same axis.
    let c = seq_input(&[], "c");
    let cv = Value::from_sequences([], &[vec![1.0, 0.0, 1.0], vec![1.0]]).unwrap();
    let g = sequence::gather(&x, &c).unwrap();
    let e = forward_err(&g, &[(&x, &xv), (&c, &cv)]);
    let msg = e.to_string();
    assert!(matches!(e, Error::Runtime { .. }), "{msg}");
    assert!(msg.contains("Sequence::Gather"), "{msg}");
    assert!(msg.contains(&g.owner().unwrap().label()), "{msg}");
    // broadcast_as: one sample per sequence.
    let b = batch_input(&[2], "b");
    let bv = Value::batch([2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let e = forward_err(
        &sequence::broadcast_as(&b, &x).unwrap(),
        &[(&b, &bv), (&x, &xv)],
    );
    assert!(e.to_string().contains("Sequence::BroadcastAs"), "{e}");
    // past_value with one initial state per sequence.
    let e = forward_err(
        &sequence::past_value(&x, &b, 1).unwrap(),
        &[(&b, &bv), (&x, &xv)],
    );
    assert!(e.to_string().contains("PastValue"), "{e}");
}
