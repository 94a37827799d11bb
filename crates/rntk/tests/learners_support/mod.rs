//! Shared by the learner tests: building rntk learners from the oracle fixtures'
//! JSON configs, and the relative-error measure used against CNTK.
#![allow(dead_code)]

use rntk::learners::{
    self, AdamOptions, FsAdaGradOptions, LearnerOptions, RmsPropOptions, Schedule, StandardLearner,
};
use rntk::Variable;
use serde_json::Value as Json;

/// Values of a schedule description: a number, a list of numbers, or a list of pairs.
fn pairs(v: &Json) -> Vec<(u64, f64)> {
    match v {
        Json::Number(n) => vec![(1, n.as_f64().unwrap())],
        Json::Array(a) => a
            .iter()
            .map(|x| match x {
                Json::Array(p) => (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()),
                n => (1, n.as_f64().unwrap()),
            })
            .collect(),
        _ => panic!("bad schedule values {v}"),
    }
}

/// A Schedule from the fixture's description (see make_learner_fixtures.py `sched`).
pub fn schedule(spec: &Json) -> Schedule {
    let kind = spec["kind"].as_str().unwrap();
    let epoch = spec.get("epoch_size").and_then(|e| e.as_u64());
    let mb = spec
        .get("minibatch_size")
        .and_then(|e| e.as_u64())
        .map(|m| m as usize);
    let p = pairs(&spec["values"]);
    let base = || Schedule::piecewise_counts(&p, epoch).unwrap();
    match kind {
        "float" => Schedule::constant(p[0].1),
        "schedule" | "momentum" => match mb {
            Some(m) => base().with_minibatch_size(m),
            None => base(),
        },
        "per_sample" | "momentum_per_sample" | "legacy_sample" => base().per_sample(),
        "legacy_minibatch" => base().with_minibatch_size(learners::IGNORE),
        "time_constant" => Schedule::momentum_as_time_constant_counts(&p, epoch).unwrap(),
        k => panic!("unknown schedule kind {k}"),
    }
}

fn f(cfg: &Json, key: &str) -> Option<f64> {
    cfg.get(key).and_then(|v| v.as_f64())
}
fn b(cfg: &Json, key: &str) -> Option<bool> {
    cfg.get(key).and_then(|v| v.as_bool())
}

pub fn common_options(cfg: &Json) -> LearnerOptions {
    let d = LearnerOptions::default();
    LearnerOptions {
        l1_regularization_weight: f(cfg, "l1").unwrap_or(0.0),
        l2_regularization_weight: f(cfg, "l2").unwrap_or(0.0),
        gradient_clipping_threshold_per_sample: f(cfg, "clip").unwrap_or(f64::INFINITY),
        gradient_clipping_with_truncation: b(cfg, "clip_trunc").unwrap_or(true),
        minibatch_size: cfg
            .get("minibatch_size")
            .and_then(|m| m.as_u64())
            .map(|m| m as usize),
        ..d
    }
}

/// The rntk learner a fixture config describes.
pub fn build(params: &[Variable], cfg: &Json) -> StandardLearner {
    let common = common_options(cfg);
    let name = cfg["learner"].as_str().unwrap();
    let lr = cfg.get("lr").map(schedule);
    let mom = || schedule(&cfg["momentum"]);
    let unit_gain = b(cfg, "unit_gain").unwrap_or(true);
    let r = match name {
        "sgd" => learners::sgd(params, lr.unwrap(), common),
        "momentum_sgd" => learners::momentum_sgd(params, lr.unwrap(), mom(), unit_gain, common),
        "nesterov" => learners::nesterov(params, lr.unwrap(), mom(), unit_gain, common),
        "adam" | "adamax" => {
            let mut o = AdamOptions {
                unit_gain,
                adamax: name == "adamax",
                common,
                ..Default::default()
            };
            if let Some(v) = cfg.get("variance_momentum") {
                o.variance_momentum = schedule(v);
            }
            if let Some(e) = f(cfg, "epsilon") {
                o.epsilon = e;
            }
            learners::adam(params, lr.unwrap(), mom(), o)
        }
        "adagrad" => learners::adagrad(
            params,
            lr.unwrap(),
            b(cfg, "need_ave_multiplier").unwrap_or(true),
            common,
        ),
        "rmsprop" => {
            let r = &cfg["rmsprop"];
            let o = RmsPropOptions {
                gamma: f(r, "gamma").unwrap(),
                inc: f(r, "inc").unwrap(),
                dec: f(r, "dec").unwrap(),
                max: f(r, "max").unwrap(),
                min: f(r, "min").unwrap(),
                need_ave_multiplier: b(cfg, "need_ave_multiplier").unwrap_or(true),
            };
            learners::rmsprop(params, lr.unwrap(), o, common)
        }
        "fsadagrad" => {
            let mut o = FsAdaGradOptions {
                unit_gain,
                common,
                ..Default::default()
            };
            if let Some(v) = cfg.get("variance_momentum") {
                o.variance_momentum = schedule(v);
            }
            learners::fsadagrad(params, lr.unwrap(), mom(), o)
        }
        "adadelta" => learners::adadelta(
            params,
            lr.unwrap_or_else(|| Schedule::constant(1.0).per_sample()),
            f(cfg, "rho").unwrap_or(0.95),
            f(cfg, "epsilon").unwrap_or(1e-8),
            common,
        ),
        n => panic!("unknown learner {n}"),
    };
    r.unwrap_or_else(|e| panic!("building {name}: {e}"))
}

/// Relative error of `got` against CNTK's `want`, with a floor on the denominator so
/// that values CNTK drives to (near) zero, e.g. by L1, are compared absolutely.
pub fn rel_err(got: f64, want: f64, floor: f64) -> f64 {
    (got - want).abs() / want.abs().max(floor)
}
