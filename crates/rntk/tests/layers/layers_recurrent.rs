//! Recurrent layers against the CNTK 2.7 test vectors of spec recurrence.md §9
//! (deterministic weights `v[n] = (((7n + k) mod 11) − 5)/10`, float32).

use rntk::layers::*;
use rntk::{sequence, Tensor, Value, Variable};

const X: [f32; 8] = [1.0, 0.5, -0.5, 0.25, 0.0, -1.0, 2.0, 1.0];

fn fill(p: &Variable, key: usize) {
    let shape = p.shape();
    let v: Vec<f32> = (0..shape.numel())
        .map(|n| ((((7 * n + key) % 11) as f32) - 5.0) / 10.0)
        .collect();
    p.set_value(Tensor::from_vec(shape, v).unwrap()).unwrap();
}

fn key(name: &str) -> usize {
    match name {
        "W" => 1,
        "H" => 2,
        "b" => 3,
        "H1" => 4,
        "Ci" => 5,
        "Cf" => 6,
        "Co" => 7,
        "P" => 8,
        other => panic!("unexpected parameter {other}"),
    }
}

fn run(outputs: &[Variable], x: &Variable) -> Vec<Vec<f32>> {
    let v = Value::from_sequences([2], &[X.to_vec()]).unwrap();
    let f = rntk::Function::combine(outputs, "").unwrap();
    f.eval(&[(x, &v)])
        .unwrap()
        .iter()
        .map(|o| o.to_vec::<f32>())
        .collect()
}

fn check(got: &[f32], want: &[[f32; 3]]) {
    let flat: Vec<f32> = want.iter().flatten().copied().collect();
    check_flat(got, &flat);
}

fn check_flat(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1.5e-6,
            "element {i}: {g} vs CNTK {w}\n got {got:?}"
        );
    }
}

fn set_weights(params: Vec<Variable>) {
    for p in params {
        let n = p.name();
        if n != "alpha" {
            fill(&p, key(&n));
        }
    }
}

#[test]
fn lstm_full_state_and_backwards() {
    let x = sequence::input_variable([2]);
    let r = Recurrence::new(Lstm::new(3));
    let hc = r.apply_full(&x).unwrap();
    set_weights(r.parameters());
    let out = run(&hc, &x);
    check(
        &out[0],
        &[
            [-0.109762, 0.151972, 0.008515],
            [-0.012454, 0.138640, 0.049251],
            [-0.067909, 0.297472, -0.109145],
            [-0.220478, 0.239788, -0.055155],
        ],
    );
    check(
        &out[1],
        &[
            [-0.235317, 0.313860, 0.021873],
            [-0.038636, 0.277873, 0.091107],
            [-0.182678, 0.503097, -0.286330],
            [-0.399145, 0.657315, -0.152956],
        ],
    );
    let back = Recurrence::new(Lstm::new(3)).go_backwards(true);
    let h = back.apply(&x).unwrap();
    set_weights(back.parameters());
    check(
        &run(&[h], &x)[0],
        &[
            [-0.113403, 0.241849, -0.040712],
            [-0.006004, 0.195606, -0.085925],
            [-0.091507, 0.318851, -0.121213],
            [-0.149091, 0.168187, 0.011714],
        ],
    );
}

#[test]
fn lstm_with_projection_and_peepholes() {
    let x = sequence::input_variable([2]);
    let r = Recurrence::new(Lstm::new(2).cell_shape(3).use_peepholes(true));
    let h = r.apply(&x).unwrap();
    let params = r.parameters();
    let names: Vec<String> = params.iter().map(|p| p.name()).collect();
    for n in ["W", "H", "b", "Ci", "Cf", "Co", "P"] {
        assert!(names.contains(&n.to_string()), "missing {n} in {names:?}");
    }
    assert_eq!(
        params
            .iter()
            .find(|p| p.name() == "H")
            .unwrap()
            .shape()
            .dims(),
        &[2, 12]
    );
    set_weights(params);
    check_flat(
        &run(&[h], &x)[0],
        &[
            -0.107433, 0.044432, -0.085578, 0.060799, -0.140038, 0.015930, -0.165559, 0.052075,
        ],
    );
}

#[test]
fn lstm_self_stabilized() {
    let x = sequence::input_variable([2]);
    let lstm = Lstm::new(3).enable_self_stabilization(true);
    let r = Recurrence::new(lstm);
    let h = r.apply(&x).unwrap();
    let params = r.parameters();
    let alphas: Vec<&Variable> = params.iter().filter(|p| p.name() == "alpha").collect();
    assert_eq!(
        alphas.len(),
        1,
        "only the h_prev stabilizer is used without peepholes/projection"
    );
    // initial α makes β = 1
    let a0 = alphas[0].value().unwrap().to_f64_vec()[0];
    assert!(((1.0 + (4.0 * a0).exp()).ln() / 4.0 - 1.0).abs() < 1e-6);
    alphas[0]
        .set_value(Tensor::from_vec(rntk::Shape::scalar(), vec![0.5f32]).unwrap())
        .unwrap();
    set_weights(params);
    check(
        &run(&[h], &x)[0],
        &[
            [-0.109762, 0.151972, 0.008515],
            [-0.019397, 0.148113, 0.056239],
            [-0.071797, 0.308282, -0.101967],
            [-0.220507, 0.252978, -0.040710],
        ],
    );
}

#[test]
fn gru_and_fold() {
    let x = sequence::input_variable([2]);
    let r = Recurrence::new(Gru::new(3));
    let h = r.apply(&x).unwrap();
    let params = r.parameters();
    assert_eq!(params.len(), 4);
    set_weights(params);
    let want = [
        [0.118166, 0.090314, -0.081862],
        [-0.213152, 0.125423, 0.049543],
        [-0.427957, 0.284498, -0.180641],
        [0.295733, 0.319574, -0.196426],
    ];
    check(&run(&[h], &x)[0], &want);
    let fold = Fold::new(Gru::new(3));
    let last = fold.apply(&x).unwrap();
    set_weights(fold.parameters());
    assert_eq!(last.dynamic_axes(), rntk::DynamicAxes::Batch);
    check(&run(&[last], &x)[0], &want[3..]);
}

#[test]
fn rnn_step_sigmoid_default_and_tanh_with_initial_state() {
    let x = sequence::input_variable([2]);
    let r = Recurrence::new(RnnStep::new(3));
    let h = r.apply(&x).unwrap();
    set_weights(r.parameters());
    check(
        &run(&[h], &x)[0],
        &[
            [0.299433, 0.710949, 0.475021],
            [0.323722, 0.695945, 0.483481],
            [0.421350, 0.675895, 0.533378],
            [0.103081, 0.855448, 0.383607],
        ],
    );
    let r = Recurrence::new(RnnStep::new(3).activation(Activation::Tanh))
        .initial_state(InitialState::Scalar(0.5));
    let h = r.apply(&x).unwrap();
    set_weights(r.parameters());
    check(
        &run(&[h], &x)[0],
        &[
            [-0.895693, 0.874053, -0.244919],
            [-0.083261, 0.249571, 0.061501],
            [0.191987, 0.339801, 0.256859],
            [-0.949032, 0.910443, -0.367346],
        ],
    );
}

#[test]
fn default_options_reach_the_factories_and_explicit_arguments_win() {
    let x = sequence::input_variable([2]);
    // initial_state from default_options (the seed program's 0.1) vs explicit 0.5
    let (a, b) = default_options(
        DefaultOptions {
            initial_state: Some(0.5),
            ..Default::default()
        },
        || {
            (
                Recurrence::new(RnnStep::new(3).activation(Activation::Tanh)),
                Recurrence::new(RnnStep::new(3)),
            )
        },
    );
    let ha = a.apply(&x).unwrap();
    set_weights(a.parameters());
    check(&run(&[ha], &x)[0][..3], &[[-0.895693, 0.874053, -0.244919]]);
    // activation=relu silently turns an LSTM into a ReLU cell (CNTK's trap)
    let relu_lstm = default_options(
        DefaultOptions {
            activation: Some(Activation::Relu),
            ..Default::default()
        },
        || Recurrence::new(Lstm::new(3)),
    );
    let hr = relu_lstm.apply(&x).unwrap();
    set_weights(relu_lstm.parameters());
    let out = run(&[hr], &x);
    assert!(
        out[0].iter().all(|v| *v >= 0.0),
        "ReLU cell output must be non-negative: {:?}",
        out[0]
    );
    drop(b);
    // default_options_for only reaches the listed layers
    let (d, l) = default_options_for(
        &["Dense"],
        DefaultOptions {
            init: Some(rntk::initializer::Initializer::Constant(0.25)),
            ..Default::default()
        },
        || (Dense::new(2), Recurrence::new(Lstm::new(2))),
    );
    let yd = d.apply(&x).unwrap();
    let _ = l.apply(&x).unwrap();
    assert!(d
        .w()
        .unwrap()
        .value()
        .unwrap()
        .to_f64_vec()
        .iter()
        .all(|v| *v == 0.25));
    assert!(l
        .parameters()
        .iter()
        .find(|p| p.name() == "W")
        .unwrap()
        .value()
        .unwrap()
        .to_f64_vec()
        .iter()
        .any(|v| *v != 0.25));
    assert_eq!(yd.shape().dims(), &[2]);
}
