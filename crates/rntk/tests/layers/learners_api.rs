//! The learner API beyond the oracle trajectories: refusals of impossible
//! configurations with errors that name the learner, parameter and value; checkpoints;
//! schedule resets; and a user-written update rule.

use rntk::learners::{
    self, AdamOptions, FsAdaGradOptions, HostRule, Learner, LearnerOptions, RmsPropOptions,
    RuleState, RuleStep, Schedule, StandardLearner, StepContext, UpdateRule,
};
use rntk::{DType, Error, Tensor, Variable};

fn param(name: &str, data: Vec<f32>) -> Variable {
    let n = data.len();
    rntk::parameter_from(Tensor::from_vec([n], data).unwrap(), name)
}

fn grad(p: &Variable, data: Vec<f32>) -> (Variable, Tensor) {
    let n = data.len();
    (p.clone(), Tensor::from_vec([n], data).unwrap())
}

/// The error's message, which must mention every `needle`.
fn expect_err<T>(r: rntk::Result<T>, needles: &[&str]) -> Error {
    let e = match r {
        Ok(_) => panic!("expected an error mentioning {needles:?}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not mention {n:?}");
    }
    e
}

#[test]
fn negative_learning_rate_is_refused() {
    let p = param("w", vec![1.0, 2.0]);
    expect_err(
        learners::sgd(
            std::slice::from_ref(&p),
            Schedule::constant(-0.1),
            LearnerOptions::default(),
        ),
        &["sgd", "learning rate", "-0.1"],
    );
    let bad = Schedule::piecewise(&[0.1, -0.5], Some(10)).unwrap();
    expect_err(
        learners::adagrad(
            std::slice::from_ref(&p),
            bad,
            true,
            LearnerOptions::default(),
        ),
        &["adagrad", "-0.5"],
    );
    let mut l = learners::sgd(&[p], Schedule::constant(0.1), LearnerOptions::default()).unwrap();
    expect_err(
        l.reset_learning_rate(Schedule::constant(f64::NAN)),
        &["sgd", "NaN"],
    );
}

#[test]
fn momentum_outside_unit_interval_is_refused() {
    let p = param("w", vec![1.0, 2.0]);
    let lr = || Schedule::constant(0.1);
    let o = LearnerOptions::default;
    expect_err(
        learners::momentum_sgd(
            std::slice::from_ref(&p),
            lr(),
            Schedule::constant(1.0),
            true,
            o(),
        ),
        &["momentum_sgd", "momentum", "1 "],
    );
    expect_err(
        learners::nesterov(
            std::slice::from_ref(&p),
            lr(),
            Schedule::constant(-0.2),
            true,
            o(),
        ),
        &["nesterov", "-0.2"],
    );
    expect_err(
        learners::adam(
            std::slice::from_ref(&p),
            lr(),
            Schedule::constant(1.5),
            AdamOptions::default(),
        ),
        &["adam", "momentum", "1.5"],
    );
    let vm = AdamOptions {
        variance_momentum: Schedule::constant(1.0),
        ..Default::default()
    };
    expect_err(
        learners::adam(std::slice::from_ref(&p), lr(), Schedule::constant(0.9), vm),
        &["adam", "variance_momentum"],
    );
    let fo = FsAdaGradOptions {
        variance_momentum: Schedule::constant(2.0),
        ..Default::default()
    };
    expect_err(
        learners::fsadagrad(std::slice::from_ref(&p), lr(), Schedule::constant(0.9), fo),
        &["fsadagrad", "variance_momentum", "2"],
    );
    expect_err(
        Schedule::momentum_as_time_constant(-5.0),
        &["time constant", "-5"],
    );
    expect_err(
        learners::adadelta(std::slice::from_ref(&p), lr(), 1.0, 1e-8, o()),
        &["adadelta", "rho", "1"],
    );
    let r = RmsPropOptions {
        gamma: 0.9,
        inc: 1.2,
        dec: 0.7,
        max: 0.01,
        min: 0.1,
        need_ave_multiplier: true,
    };
    expect_err(
        learners::rmsprop(&[p], lr(), r, o()),
        &["rmsprop", "max", "min"],
    );
}

#[test]
fn zero_epoch_size_and_zero_counts_are_refused() {
    expect_err(
        Schedule::piecewise(&[0.1, 0.01], Some(0)),
        &["epoch_size", "None"],
    );
    expect_err(
        Schedule::piecewise_counts(&[(0, 0.1), (1, 0.01)], Some(10)),
        &["count of 0"],
    );
    expect_err(Schedule::piecewise(&[], None), &["empty"]);
}

#[test]
fn bad_options_are_refused() {
    let p = param("w", vec![1.0]);
    let lr = || Schedule::constant(0.1);
    let o = LearnerOptions {
        l2_regularization_weight: -1.0,
        ..Default::default()
    };
    expect_err(
        learners::sgd(std::slice::from_ref(&p), lr(), o),
        &["sgd", "l2_regularization_weight", "-1"],
    );
    let o = LearnerOptions {
        gradient_clipping_threshold_per_sample: 0.0,
        ..Default::default()
    };
    expect_err(
        learners::sgd(std::slice::from_ref(&p), lr(), o),
        &["gradient_clipping_threshold_per_sample"],
    );
    let o = LearnerOptions {
        gaussian_noise_injection_std_dev: 0.1,
        ..Default::default()
    };
    assert!(matches!(
        learners::sgd(std::slice::from_ref(&p), lr(), o),
        Err(Error::Unsupported(_))
    ));
    expect_err(
        learners::sgd(&[p.clone(), p.clone()], lr(), LearnerOptions::default()),
        &["w", "twice"],
    );
    expect_err(
        learners::sgd(&[], lr(), LearnerOptions::default()),
        &["no parameters"],
    );
    let x = rntk::input_variable([2]);
    expect_err(
        learners::sgd(&[x], lr(), LearnerOptions::default()),
        &["not a parameter"],
    );
}

#[test]
fn gradients_must_match_the_owned_parameters() {
    let w = param("w", vec![1.0, 2.0]);
    let other = param("stranger", vec![1.0, 2.0]);
    let mut l = learners::sgd(
        std::slice::from_ref(&w),
        Schedule::constant(0.1),
        LearnerOptions::default(),
    )
    .unwrap();
    expect_err(
        l.update(
            &[grad(&w, vec![1.0, 1.0]), grad(&other, vec![1.0, 1.0])],
            2,
            false,
        ),
        &["stranger", "does not own"],
    );
    expect_err(l.update(&[], 2, false), &["no gradient", "w"]);
    expect_err(
        l.update(&[grad(&w, vec![1.0, 1.0, 1.0])], 2, false),
        &["w", "shape", "(3,)", "(2,)"],
    );
    let g64 = (
        w.clone(),
        Tensor::from_f64([2], DType::F64, &[1.0, 1.0]).unwrap(),
    );
    assert!(matches!(
        l.update(&[g64], 2, false),
        Err(Error::DType { .. })
    ));
    expect_err(
        l.update(&[grad(&w, vec![1.0, 1.0])], 0, false),
        &["empty minibatch"],
    );
    // nothing above touched the parameter or the counters
    assert_eq!(w.value().unwrap().as_slice::<f32>().unwrap(), &[1.0, 2.0]);
    assert_eq!(l.total_samples_seen(), 0);
}

#[test]
fn checkpoint_round_trip_resumes_the_same_trajectory() {
    let run = |resume_at: Option<usize>| {
        let w = param("w", vec![0.5, -0.3, 0.8]);
        let mk = |w: &Variable| {
            learners::adam(
                std::slice::from_ref(w),
                Schedule::piecewise(&[0.01, 0.02], Some(7)).unwrap(),
                Schedule::constant(0.9),
                AdamOptions::default(),
            )
            .unwrap()
        };
        let mut l = mk(&w);
        for s in 0..10usize {
            if Some(s) == resume_at {
                // a fresh learner restored from the old one's state continues identically
                let st = l.state();
                l = mk(&w);
                l.restore_state(&st).unwrap();
            }
            let g: Vec<f32> = (0..3).map(|k| ((s * 3 + k) as f32 * 0.7).sin()).collect();
            l.update(&[grad(&w, g)], 1 + s % 3, s % 4 == 3).unwrap();
        }
        w.value().unwrap()
    };
    assert_eq!(run(None), run(Some(5)));
}

#[test]
fn restoring_a_foreign_state_is_refused() {
    let w = param("w", vec![0.5, -0.3]);
    let v = param("v", vec![0.5, -0.3, 1.0]);
    let a = learners::adagrad(
        std::slice::from_ref(&w),
        Schedule::constant(0.1),
        true,
        LearnerOptions::default(),
    )
    .unwrap();
    let mut s = learners::sgd(
        std::slice::from_ref(&w),
        Schedule::constant(0.1),
        LearnerOptions::default(),
    )
    .unwrap();
    expect_err(s.restore_state(&a.state()), &["sgd", "adagrad"]);
    let mut b = learners::adagrad(
        &[v],
        Schedule::constant(0.1),
        true,
        LearnerOptions::default(),
    )
    .unwrap();
    expect_err(
        b.restore_state(&a.state()),
        &["adagrad", "v", "(3,)", "(2,)"],
    );
}

#[test]
fn reset_learning_rate_keeps_the_reference_minibatch_size() {
    // CNTK 2.7: the new schedule's values apply from now on, but a learner built with a
    // per-minibatch rate keeps dividing by N even when reset to a per-sample schedule.
    let w = param("w", vec![1.0]);
    let mut l = learners::sgd(
        std::slice::from_ref(&w),
        Schedule::constant(0.1),
        LearnerOptions::default(),
    )
    .unwrap();
    l.update(&[grad(&w, vec![8.0])], 8, false).unwrap();
    l.reset_learning_rate(Schedule::constant(0.01).per_sample())
        .unwrap();
    assert_eq!(l.learning_rate(), 0.01);
    l.update(&[grad(&w, vec![8.0])], 8, false).unwrap();
    let got = w.value().unwrap().as_slice::<f32>().unwrap()[0];
    assert_eq!(got, 1.0f32 - 0.1 - 0.01);
}

/// A user-written rule: sign-SGD, `p -= η·sign(g)`, with the standard pipeline.
struct SignSgd;

impl SignSgd {
    fn update<T: rntk::tensor::Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T]) {
        for (pi, &gi) in p.iter_mut().zip(g) {
            // (Float::signum(0) is 1; a zero gradient must not move the parameter)
            let sign = if gi == T::zero() {
                T::zero()
            } else {
                gi.signum()
            };
            *pi -= T::from_f64(ctx.eta) * sign;
        }
    }
}

impl UpdateRule for SignSgd {
    fn name(&self) -> &str {
        "sign_sgd"
    }
    fn buffers(&self) -> usize {
        0
    }
    fn step(&mut self, _ctx: &StepContext, _scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Host(self)
    }
}

impl HostRule for SignSgd {
    fn apply_f32(&mut self, ctx: &StepContext, p: &mut [f32], g: &[f32], _s: &mut RuleState<f32>) {
        self.update(ctx, p, g)
    }
    fn apply_f64(&mut self, ctx: &StepContext, p: &mut [f64], g: &[f64], _s: &mut RuleState<f64>) {
        self.update(ctx, p, g)
    }
}

#[test]
fn a_user_rule_gets_schedules_and_regularization() {
    let w = param("w", vec![1.0, -1.0, 0.01]);
    let o = LearnerOptions {
        l1_regularization_weight: 0.1,
        ..Default::default()
    };
    let mut l = StandardLearner::new(
        std::slice::from_ref(&w),
        Schedule::constant(0.5).per_sample(),
        o,
        Box::new(SignSgd),
    )
    .unwrap();
    assert_eq!(l.name(), "sign_sgd");
    // N = 2: η = 0.5 (per sample); L1 threshold η·0.1·N = 0.1
    assert!(l
        .update(&[grad(&w, vec![3.0, -0.5, 0.0])], 2, false)
        .unwrap());
    let got = w.value().unwrap().as_slice::<f32>().unwrap().to_vec();
    assert_eq!(got, vec![0.4, -0.4, 0.0]);
    assert_eq!(l.total_samples_seen(), 2);
    let boxed: Box<dyn Learner> = Box::new(l);
    assert_eq!(boxed.parameters(), &[w]);
}

#[test]
fn zero_learning_rate_stops_without_counting() {
    let w = param("w", vec![1.0]);
    let lr = Schedule::piecewise(&[0.1, 0.0], Some(4)).unwrap();
    let mut l = learners::sgd(std::slice::from_ref(&w), lr, LearnerOptions::default()).unwrap();
    assert!(l.update(&[grad(&w, vec![1.0])], 4, false).unwrap());
    assert!(!l.update(&[grad(&w, vec![1.0])], 4, false).unwrap());
    assert!(!l.update(&[grad(&w, vec![1.0])], 4, false).unwrap());
    assert_eq!(l.total_samples_seen(), 4);
}
