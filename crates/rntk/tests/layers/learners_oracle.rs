//! Every learner against CNTK 2.7: 20-step parameter trajectories from fixed gradient
//! sequences (tests/fixtures/cntk_learners/trajectories.json), per-minibatch and
//! per-sample schedules, minibatches of varying N, and every pipeline option. Every case
//! runs again with parameters, gradients and learner state on the arena backend: the
//! same trajectory bit for bit, and no host transfer inside an update.

use crate::common;
use crate::learners_support;

use learners_support::{build, rel_err};
use rntk::backend::{Arena, Memory};
use rntk::learners::Learner;
use rntk::{DType, Tensor};
use serde_json::Value as Json;

/// Relative tolerance against CNTK (f32 and f64 alike), measured per parameter tensor
/// and step: `|rntk − CNTK| / max|CNTK|` over the tensor's elements. Elements that
/// cross zero cannot be compared element-wise in f32 without bit-exact kernels (one
/// ulp of the 0.5-sized terms that cancel is 6e-8), so the tensor's scale is the yard
/// stick; the element-wise error is reported alongside.
const TOL: f64 = 1e-5;
/// Floor of the reported element-wise relative error.
const FLOOR: f64 = 1e-3;

struct Outcome {
    name: String,
    max_rel: f64,
    max_elem: f64,
    failures: Vec<String>,
    /// Every parameter after every step, as f64 bits.
    trajectory: Vec<Vec<u64>>,
}

/// `t` on `arena` (a counted upload), or unchanged without one.
fn onto(arena: Option<&Arena>, t: Tensor) -> Tensor {
    match arena {
        Some(a) => {
            let s = a.make_resident(t.storage());
            Tensor::from_storage_checked(t.shape().clone(), s).expect("same length")
        }
        None => t,
    }
}

fn run_case(case: &Json, arena: Option<&Arena>) -> Outcome {
    let name = case["name"].as_str().unwrap().to_string();
    let dtype = if case["dtype"] == "float64" {
        DType::F64
    } else {
        DType::F32
    };
    let shapes: Vec<Vec<usize>> = case["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::shape_of)
        .collect();
    let params: Vec<_> = shapes
        .iter()
        .zip(case["init"].as_array().unwrap())
        .enumerate()
        .map(|(i, (s, v))| {
            let t = Tensor::from_f64(s.clone(), dtype, &common::flat(v)).unwrap();
            rntk::parameter_from(onto(arena, t), &format!("p{i}"))
        })
        .collect();
    let cfg = &case["config"];
    let mut learner = build(&params, cfg);
    let mut out = Outcome {
        name: name.clone(),
        max_rel: 0.0,
        max_elem: 0.0,
        failures: vec![],
        trajectory: vec![],
    };
    for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        if let Some(r) = cfg.get("reset_at") {
            if r["step"].as_u64() == Some(s as u64) {
                learner
                    .reset_learning_rate(learners_support::schedule(&r["lr"]))
                    .unwrap();
            }
        }
        let lr = step["lr"].as_f64().unwrap();
        if learner.learning_rate() != lr {
            out.failures.push(format!(
                "step {s}: learning_rate() {} vs CNTK {lr}",
                learner.learning_rate()
            ));
        }
        let grads: Vec<_> = params
            .iter()
            .zip(step["grads"].as_array().unwrap())
            .zip(&shapes)
            .map(|((p, g), s)| {
                let t = Tensor::from_f64(s.clone(), dtype, &common::flat(g)).unwrap();
                (p.clone(), onto(arena, t))
            })
            .collect();
        let n = step["n"].as_u64().unwrap() as usize;
        let before = arena.map(|a| a.transfers());
        let updated = learner
            .update(&grads, n, step["sweep_end"].as_bool().unwrap())
            .unwrap();
        if let (Some(a), Some(b)) = (arena, before) {
            let t = a.transfers().since(&b);
            if t != Default::default() {
                out.failures
                    .push(format!("step {s}: host transfers in an update {t:?}"));
            }
        }
        if updated != step["updated"].as_bool().unwrap() {
            out.failures
                .push(format!("step {s}: update returned {updated}"));
        }
        for (j, (p, want)) in params
            .iter()
            .zip(step["params"].as_array().unwrap())
            .enumerate()
        {
            let got = p.value().unwrap().to_f64_vec();
            out.trajectory
                .push(got.iter().map(|x| x.to_bits()).collect());
            let want = common::flat(want);
            let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                out.max_elem = out.max_elem.max(rel_err(*g, *w, FLOOR));
                let e = rel_err(*g, *w, scale);
                out.max_rel = out.max_rel.max(e);
                if e > TOL {
                    out.failures.push(format!(
                        "step {s} p{j}[{k}]: rntk {g} vs CNTK {w} (rel {e:.2e})"
                    ));
                }
            }
        }
    }
    if learner.total_samples_seen() != case["total_samples"].as_u64().unwrap() {
        out.failures.push(format!(
            "total_samples_seen {}",
            learner.total_samples_seen()
        ));
    }
    out
}

/// Run every fixture case whose name starts with `prefix` and report its worst error.
fn check(prefix: &str) {
    let cases = common::load_cases("cntk_learners/trajectories.json");
    let mut n = 0;
    let mut bad = vec![];
    for c in cases
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with(prefix))
    {
        let o = run_case(c, None);
        let on_arena = run_case(c, Some(&Arena::new()));
        if on_arena.trajectory != o.trajectory {
            bad.push(format!(
                "{}: the arena's trajectory differs from the CPU's",
                o.name
            ));
        }
        bad.extend(
            on_arena
                .failures
                .iter()
                .filter(|f| f.contains("host transfers"))
                .cloned(),
        );
        println!(
            "{:<36} {} tensor-rel {:.1e}  element-rel (floor {FLOOR:.0e}) {:.1e}",
            o.name, c["dtype"], o.max_rel, o.max_elem
        );
        if !o.failures.is_empty() {
            bad.push(format!(
                "{}: {} failures, first: {}",
                o.name,
                o.failures.len(),
                o.failures[..3.min(o.failures.len())].join("; ")
            ));
        }
        n += 1;
    }
    assert!(n > 0, "no fixture case starts with {prefix}");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn sgd_matches_cntk() {
    check("sgd_");
}
#[test]
fn momentum_sgd_matches_cntk() {
    check("momentum_sgd_");
}
#[test]
fn nesterov_matches_cntk() {
    check("nesterov_");
}
#[test]
fn adam_matches_cntk() {
    check("adam_");
}
#[test]
fn adamax_matches_cntk() {
    check("adamax_");
}
#[test]
fn adagrad_matches_cntk() {
    check("adagrad_");
}
#[test]
fn rmsprop_matches_cntk() {
    check("rmsprop_");
}
#[test]
fn fsadagrad_matches_cntk() {
    check("fsadagrad_");
}
#[test]
fn adadelta_matches_cntk() {
    check("adadelta_");
}
