//! A hand-built LSTM step loop (past_value / future_value through placeholders),
//! forward and BPTT gradients against CNTK 2.7 (tests/fixtures/cntk/lstm_loop*.json).

use crate::common;

use common::*;
use rntk::Variable;
use std::collections::HashMap;

fn lstm(v: &HashMap<String, Variable>, k: usize, future: bool) -> Variable {
    hand_lstm(&v["x"], &v["W"], &v["H"], &v["b"], k, future)
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
