//! A hand-built LSTM step loop (past_value / future_value through placeholders),
//! forward and BPTT gradients against CNTK 2.7 (tests/fixtures/cntk/lstm_loop*.json).

mod common;

use common::*;
use rntk::functions::*;
use rntk::sequence;
use rntk::{placeholder, Variable};
use std::collections::HashMap;

fn lstm(v: &HashMap<String, Variable>, k: usize, future: bool) -> Variable {
    let x = &v["x"];
    let dt = x.dtype();
    let h_ph = placeholder([3], dt, x.dynamic_axes(), "h_ph").unwrap();
    let c_ph = placeholder([3], dt, x.dynamic_axes(), "c_ph").unwrap();
    let init = rntk::scalar(0.1, dt);
    let delay = |p: &Variable| {
        if future {
            sequence::future_value(p, &init, k).unwrap()
        } else {
            sequence::past_value(p, &init, k).unwrap()
        }
    };
    let (dh, dc) = (delay(&h_ph), delay(&c_ph));
    let a = plus(
        &plus(&v["b"], &times(x, &v["W"]).unwrap()).unwrap(),
        &times(&dh, &v["H"]).unwrap(),
    )
    .unwrap();
    let gate = |j: isize| slice(&a, 0, j * 3, (j + 1) * 3).unwrap();
    let (i, g, f, o) = (gate(0), gate(1), gate(2), gate(3));
    let c = plus(
        &element_times(&sigmoid(&f).unwrap(), &dc).unwrap(),
        &element_times(&sigmoid(&i).unwrap(), &tanh(&g).unwrap()).unwrap(),
    )
    .unwrap();
    let h = element_times(&sigmoid(&o).unwrap(), &tanh(&c).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(h_ph, h.clone()), (c_ph, c)])
        .unwrap();
    h
}

#[test]
fn lstm_loop_matches_cntk_f64() {
    let cases = load_cases("cntk/lstm_loop.json");
    run_case(case(&cases, "lstm_loop_past_k1"), 1e-6, |v| {
        lstm(v, 1, false)
    });
    run_case(case(&cases, "lstm_loop_future_k1"), 1e-6, |v| {
        lstm(v, 1, true)
    });
    run_case(case(&cases, "lstm_loop_past_k2"), 1e-6, |v| {
        lstm(v, 2, false)
    });
}

#[test]
fn lstm_loop_gradcheck_ragged() {
    let cases = load_cases("cntk/lstm_loop.json");
    for (name, k, future) in [
        ("lstm_loop_past_k1", 1, false),
        ("lstm_loop_future_k1", 1, true),
    ] {
        let c = case(&cases, name);
        let vars = case_vars(c);
        let by: HashMap<String, Variable> = vars
            .iter()
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect();
        let out = lstm(&by, k, future);
        let feeds: Vec<(Variable, rntk::Value)> = vars
            .iter()
            .filter_map(|(_, v, val)| val.clone().map(|x| (v.clone(), x)))
            .collect();
        let wrt: Vec<Variable> = ["x", "W", "H", "b"]
            .iter()
            .map(|n| by[*n].clone())
            .collect();
        gradcheck(&out, &feeds, &wrt, 1e-6);
    }
}
