//! The fused LSTM scan (`Recurrence(LSTM)` as one op) against the step-by-step loop
//! it replaces: the same values and gradients bit for bit, in f32 and f64, both
//! directions, ragged batches wide enough for the large-GEMM path; finite-difference
//! checks of the op itself, scalar learnable initial states included; shape errors.

use crate::common;

use common::*;
use rntk::functions::{lstm_scan, splice};
use rntk::graph::InputOptions;
use rntk::layers::*;
use rntk::{sequence, DType, DynamicAxes, Executor, Tensor, Value, Variable};

fn seq_input(dim: usize, dtype: DType) -> Variable {
    sequence::input_variable_with(
        vec![dim],
        InputOptions {
            dtype,
            needs_gradient: true,
            name: "x".into(),
            ..Default::default()
        },
    )
}

/// Lengths with ties, length-1 sequences and 24 sequences at step 0 (so the
/// recurrent product at the first steps is large enough for the gemm crate).
fn lengths() -> Vec<usize> {
    (0..24).map(|i| 1 + (i * 7) % 9).collect()
}

/// Values and gradients (x, then W, H, b, then learnable initial states) of
/// Σ(out · r) for `Recurrence(LSTM(4))` over a ragged batch.
fn run<T: rntk::tensor::Element>(
    hidden: usize,
    fused: bool,
    back: bool,
    init: Option<(&Variable, &Variable)>,
    dtype: DType,
) -> (Vec<T>, Vec<Vec<T>>) {
    let x = seq_input(3, dtype);
    let mut r = Recurrence::new(Lstm::new(hidden).fused(fused)).go_backwards(back);
    if let Some((h0, c0)) = init {
        r = r.initial_state(InitialState::PerState(vec![
            InitialState::Variable(h0.clone()),
            InitialState::Variable(c0.clone()),
        ]));
    }
    let hc = r.apply_full(&x).unwrap();
    let y = splice(&[&hc[0], &hc[1]], -1).unwrap();
    // The same parameter values for both builds (the initializer's stream moves on).
    for p in r.parameters() {
        let n = p.shape().numel();
        let vals: Vec<f64> = (0..n)
            .map(|i| ((i * 37 + p.name().len() * 11) % 23) as f64 / 23.0 - 0.5)
            .collect();
        if ["W", "H", "b"].contains(&p.name().as_str()) {
            let t = match dtype {
                DType::F32 => Tensor::from_vec(
                    p.shape().clone(),
                    vals.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                ),
                DType::F64 => Tensor::from_vec(p.shape().clone(), vals),
            };
            p.set_value(t.unwrap()).unwrap();
        }
    }
    let seqs: Vec<Vec<f64>> = ragged(&lengths(), 3, 5);
    let xv = match dtype {
        DType::F32 => {
            let s: Vec<Vec<f32>> = seqs
                .iter()
                .map(|v| v.iter().map(|&a| a as f32).collect())
                .collect();
            Value::from_sequences(vec![3], &s).unwrap()
        }
        DType::F64 => Value::from_sequences(vec![3], &seqs).unwrap(),
    };
    let mut ex = Executor::<T>::new(std::slice::from_ref(&y)).unwrap();
    ex.forward(&[(&x, &xv)], true).unwrap();
    let out = ex.value(&y).unwrap();
    let seed = seed_like(&out);
    let mut wrt = vec![x.clone()];
    let mut params = r.parameters();
    params.sort_by_key(|p| p.name());
    wrt.extend(params);
    let wr: Vec<&Variable> = wrt.iter().collect();
    let grads = ex.backward(&[(&y, Some(&seed))], &wr).unwrap();
    // A second backward pass after the same forward gives the same gradients.
    let again = ex.backward(&[(&y, Some(&seed))], &wr).unwrap();
    for (a, b) in grads.iter().zip(&again) {
        assert_eq!(a.dense_rows::<T>(), b.dense_rows::<T>());
    }
    (
        out.dense_rows::<T>(),
        grads.iter().map(|g| g.dense_rows::<T>()).collect(),
    )
}

/// The op names of every function `v` depends on, blocks opened, loops followed once.
fn ops_of(v: &Variable) -> String {
    fn visit(f: rntk::Function, seen: &mut Vec<String>, names: &mut Vec<String>) {
        if seen.iter().any(|u| u == f.uid()) {
            return;
        }
        seen.push(f.uid().to_string());
        names.push(f.op_name());
        if let Some(root) = f.block_root() {
            visit(root, seen, names);
        }
        for i in f.inputs().iter().chain(&f.outputs()) {
            if let Some(o) = i.owner() {
                visit(o, seen, names);
            }
        }
    }
    let (mut seen, mut names) = (Vec::new(), Vec::new());
    if let Some(f) = v.owner() {
        visit(f, &mut seen, &mut names);
    }
    names.join(" ")
}

fn same_bits<T: rntk::tensor::Element + std::fmt::Debug>(
    hidden: usize,
    dtype: DType,
    learnable_init: bool,
) {
    agree::<T>(hidden, dtype, learnable_init, 0.0)
}

/// The fused scan against the step loop: values and every gradient, both directions;
/// `tol` 0 asks for the same bits (initial states' sums aside), else agreement within
/// `tol` relative to each output's largest magnitude.
fn agree<T: rntk::tensor::Element + std::fmt::Debug>(
    hidden: usize,
    dtype: DType,
    learnable_init: bool,
    tol: f64,
) {
    for back in [false, true] {
        let init = learnable_init.then(|| {
            let mk = |name: &str, v: Vec<f64>| match dtype {
                DType::F32 => rntk::parameter_from(
                    Tensor::from_vec(
                        vec![v.len()],
                        v.iter().map(|&a| a as f32).collect::<Vec<_>>(),
                    )
                    .unwrap(),
                    name,
                ),
                DType::F64 => {
                    rntk::parameter_from(Tensor::from_vec(vec![v.len()], v).unwrap(), name)
                }
            };
            (
                mk("h0", (0..hidden).map(|i| 0.1 - 0.07 * i as f64).collect()),
                mk("c0", (0..hidden).map(|i| -0.4 + 0.13 * i as f64).collect()),
            )
        });
        let i = init.as_ref().map(|(a, b)| (a, b));
        let (yf, gf) = run::<T>(hidden, true, back, i, dtype);
        let (yl, gl) = run::<T>(hidden, false, back, i, dtype);
        if tol > 0.0 {
            // Inside a two-thread pool the wide steps split their units between the
            // threads: the same bits as on one.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let (yp, gp) = pool.install(|| run::<T>(hidden, true, back, i, dtype));
            assert_eq!(yp, yf, "values in a pool, go_backwards={back}");
            assert_eq!(gp, gf, "gradients in a pool, go_backwards={back}");
            let close = |a: &[T], b: &[T], what: &str| {
                assert_eq!(a.len(), b.len());
                let scale = b.iter().fold(1f64, |m, v| m.max(v.as_f64().abs()));
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    let (p, q) = (p.as_f64(), q.as_f64());
                    assert!(
                        (p - q).abs() <= tol * scale,
                        "{what}[{i}]: {p} vs {q}, go_backwards={back}"
                    );
                }
            };
            close(&yf, &yl, "values");
            assert_eq!(gf.len(), gl.len());
            for (k, (a, b)) in gf.iter().zip(&gl).enumerate() {
                close(a, b, &format!("gradient {k}"));
            }
            continue;
        }
        assert_eq!(yf, yl, "values, go_backwards={back}");
        assert_eq!(gf.len(), gl.len());
        for (k, (a, b)) in gf.iter().zip(&gl).enumerate() {
            if learnable_init && k >= gf.len() - 2 {
                // The initial states' sums may be added in another order.
                for (p, q) in a.iter().zip(b) {
                    let (p, q) = (p.as_f64(), q.as_f64());
                    assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "d init {p} vs {q}");
                }
            } else {
                assert_eq!(a, b, "gradient {k}, go_backwards={back}");
            }
        }
    }
}

#[test]
fn fused_scan_equals_the_step_loop_bit_for_bit_f32() {
    same_bits::<f32>(4, DType::F32, false);
}

#[test]
fn fused_scan_equals_the_step_loop_bit_for_bit_f64() {
    same_bits::<f64>(4, DType::F64, false);
}

#[test]
fn fused_scan_with_learnable_initial_states_matches_the_loop() {
    same_bits::<f32>(4, DType::F32, true);
    same_bits::<f64>(4, DType::F64, true);
}

/// A cell wide enough that every recurrent product takes the large-GEMM path; in f64
/// the scan's products are the loop's, bit for bit.
#[test]
fn fused_scan_equals_the_step_loop_for_a_wide_cell_f64() {
    same_bits::<f64>(70, DType::F64, false);
}

/// In f32 on AVX-512 CPUs a wide cell's steps run on H packed once per time loop
/// (`packed_gemm`), the units split between threads, summed in another order than the
/// step loop's GEMM: the two agree to f32 rounding, values and every gradient, both
/// directions, with default and with learnable vector initial states.
#[test]
fn fused_scan_agrees_with_the_step_loop_for_a_wide_cell_f32() {
    agree::<f32>(70, DType::F32, false, 2e-5);
    agree::<f32>(70, DType::F32, true, 2e-5);
}

#[test]
fn the_fused_path_is_taken_and_the_loop_is_not() {
    let x = seq_input(3, DType::F32);
    let y = Recurrence::new(Lstm::new(4)).apply(&x).unwrap();
    let ops = ops_of(&y);
    assert!(ops.contains("LSTMScan"), "{ops}");
    assert!(!ops.contains("PastValue"), "{ops}");
    let y = Recurrence::new(Lstm::new(4).fused(false))
        .apply(&x)
        .unwrap();
    let ops = ops_of(&y);
    assert!(
        !ops.contains("LSTMScan") && ops.contains("PastValue"),
        "{ops}"
    );
    // Peepholes have no fused form: the loop is built.
    let y = Recurrence::new(Lstm::new(4).use_peepholes(true))
        .apply(&x)
        .unwrap();
    assert!(!ops_of(&y).contains("LSTMScan"));
}

/// Finite differences through the op itself, every operand: the pre-activations,
/// H, and scalar and vector initial states, both directions.
#[test]
fn lstm_scan_gradcheck_every_operand() {
    let n = 2;
    for back in [false, true] {
        for scalar_init in [true, false] {
            let pre = f64_input(&[4 * n], "pre", DynamicAxes::default_sequence());
            let hw = rntk::parameter_from(
                Tensor::from_vec(
                    vec![n, 4 * n],
                    (0..4 * n * n)
                        .map(|i| ((i * 5 % 7) as f64 - 3.0) / 5.0)
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
                "H",
            );
            let init = |name: &str, v: f64| {
                let vals: Vec<f64> = if scalar_init {
                    vec![v]
                } else {
                    (0..n).map(|i| v + 0.1 * i as f64).collect()
                };
                let shape = if scalar_init { vec![] } else { vec![n] };
                rntk::parameter_from(Tensor::from_vec(shape, vals).unwrap(), name)
            };
            let (h0, c0) = (init("h0", 0.2), init("c0", -0.3));
            let y = lstm_scan(&pre, &hw, &h0, &c0, back).unwrap();
            let feeds = vec![(
                pre.clone(),
                Value::from_sequences(vec![4 * n], &ragged(&[3, 1, 4, 2, 1], 4 * n, 2)).unwrap(),
            )];
            gradcheck(&y, &feeds, &[pre, hw, h0, c0], 1e-6);
        }
    }
}

#[test]
fn lstm_scan_refuses_mismatched_shapes_and_dynamic_states() {
    let pre = f64_input(&[8], "pre", DynamicAxes::default_sequence());
    let h = |shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        rntk::parameter_from(Tensor::from_vec(shape, vec![0.0f64; n]).unwrap(), "H")
    };
    let s = rntk::parameter_from(Tensor::from_vec(vec![], vec![0.0f64]).unwrap(), "s");
    let e = lstm_scan(&pre, &h(vec![3, 8]), &s, &s, false).unwrap_err();
    assert!(
        e.to_string().contains("(8,)") && e.to_string().contains("(3, 8)"),
        "{e}"
    );
    let e = lstm_scan(&pre, &h(vec![2, 8]), &h(vec![3]), &s, false).unwrap_err();
    assert!(e.to_string().contains("h0"), "{e}");
    let b = f64_input(&[2], "b0", DynamicAxes::Batch);
    let e = lstm_scan(&pre, &h(vec![2, 8]), &b, &s, false).unwrap_err();
    assert!(
        e.to_string().contains("h0") && e.to_string().contains("static"),
        "{e}"
    );
    let nb = f64_input(&[8], "nb", DynamicAxes::Batch);
    let e = lstm_scan(&nb, &h(vec![2, 8]), &s, &s, false).unwrap_err();
    assert!(e.to_string().contains("sequence axis"), "{e}");
}

/// The forward-only executor (reused buffers) computes what the training one does,
/// also for a batch of one length-1 sequence.
#[test]
fn inference_executor_and_tiny_batches_agree() {
    let x = seq_input(3, DType::F32);
    let y = Fold::new(Lstm::new(5)).apply(&x).unwrap();
    let mut train = Executor::<f32>::new(std::slice::from_ref(&y)).unwrap();
    let mut infer = Executor::<f32>::new_inference(std::slice::from_ref(&y)).unwrap();
    for lens in [vec![1], vec![4, 1, 3], lengths()] {
        let seqs: Vec<Vec<f32>> = ragged(&lens, 3, 9)
            .iter()
            .map(|s| s.iter().map(|&v| v as f32).collect())
            .collect();
        let xv = Value::from_sequences(vec![3], &seqs).unwrap();
        train.forward(&[(&x, &xv)], false).unwrap();
        infer.forward(&[(&x, &xv)], false).unwrap();
        let (a, b) = (train.value(&y).unwrap(), infer.value(&y).unwrap());
        assert_eq!(
            a.dense_rows::<f32>(),
            b.dense_rows::<f32>(),
            "lengths {lens:?}"
        );
        assert_eq!(a.num_samples(), lens.len());
    }
}
