//! The learner-step kernels on the host (clip, L2, each rule, L1).

use super::{close, library, vals, M, P};
use rntk::backend::updates::{LearnerStep, UpdateKernel};
use rntk::backend::{Cpu, Par, Updates};

#[test]
fn learner_step_kernels_agree() {
    let Some(lib) = library() else { return };
    let n = 50;
    let g = vals(n, 2);
    // Adam
    let k = UpdateKernel::Adam {
        mu: 0.9,
        beta2: 0.999,
        step: 0.01,
        epsilon: 1e-8,
        unit_gain: true,
        adamax: false,
    };
    let step = LearnerStep {
        samples: 4,
        clip_per_sample: f64::INFINITY,
        clip_truncation: true,
        l2_per_sample: 0.0,
        l1_per_sample: 0.0,
        eta: 0.01,
        rule: k,
    };
    let (mut p, mut m, mut v) = (
        vals(n, 1),
        vals(n, 3),
        vals(n, 4).iter().map(|x| x.abs()).collect::<Vec<_>>(),
    );
    let mut pc = p.clone();
    let mut state = vec![m.clone(), v.clone()];
    k!(
        lib,
        "adam",
        fn(M, P, M, M, u64, f64, f64, f64, f64, i32, i32),
        p.as_mut_ptr(),
        g.as_ptr(),
        m.as_mut_ptr(),
        v.as_mut_ptr(),
        n as u64,
        0.9,
        0.999,
        0.01,
        1e-8,
        1,
        0
    );
    Cpu.learner_step(&step, &mut pc, &g, &mut state, &mut Vec::new(), Par::Seq);
    close("adam p", &p, &pc, 1e-15);
    close("adam m", &m, &state[0], 1e-15);
    close("adam v", &v, &state[1], 1e-15);
    // Nesterov momentum
    let k = UpdateKernel::Momentum {
        mu: 0.9,
        eta: 0.1,
        unit_gain: true,
        nesterov: true,
    };
    let step = LearnerStep { rule: k, ..step };
    let (mut p, mut v) = (vals(n, 1), vals(n, 6));
    let (mut pc, mut state) = (p.clone(), vec![v.clone()]);
    k!(
        lib,
        "momentum",
        fn(M, P, M, u64, f64, f64, i32, i32),
        p.as_mut_ptr(),
        g.as_ptr(),
        v.as_mut_ptr(),
        n as u64,
        0.9,
        0.1,
        1,
        1
    );
    Cpu.learner_step(&step, &mut pc, &g, &mut state, &mut Vec::new(), Par::Seq);
    close("nesterov p", &p, &pc, 1e-15);
    close("nesterov v", &v, &state[0], 1e-15);
    // clipping by truncation, then L1's shrink
    let mut clipped = vec![0.0; n];
    k!(
        lib,
        "clip_truncate",
        fn(P, M, u64, f64),
        g.as_ptr(),
        clipped.as_mut_ptr(),
        n as u64,
        0.5
    );
    assert!(clipped
        .iter()
        .zip(&g)
        .all(|(c, g)| *c == g.clamp(-0.5, 0.5)));
    let mut p = vals(n, 8);
    let want: Vec<f64> = p
        .iter()
        .map(|x| {
            if *x > 0.2 {
                x - 0.2
            } else if *x < -0.2 {
                x + 0.2
            } else {
                0.0
            }
        })
        .collect();
    k!(
        lib,
        "l1_shrink",
        fn(M, u64, f64),
        p.as_mut_ptr(),
        n as u64,
        0.2
    );
    assert_eq!(p, want);
}
