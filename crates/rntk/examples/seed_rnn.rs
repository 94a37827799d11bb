//! The seed tutorial's model on its built-in data: Fold(LSTM(15)) → Dense(1) regressing a
//! day's solar output from a prefix of its cumulative readings.
//!
//! The model is written with engine primitives (times, slice, sigmoid, tanh, past_value,
//! sequence.last) and trained with CNTK's `adam(lr=0.005, momentum=0.9)`; the training
//! issue replaces the loop with `Function::train` and CNTK's progress output.
//!
//!     cargo run --release --example seed_rnn

use rntk::datasets::Solar;
use rntk::functions::*;
use rntk::initializer::Initializer;
use rntk::learners::{adam, AdamOptions, Learner, Schedule};
use rntk::{
    input_variable, parameter, placeholder, sequence, DType, Executor, Result, Value, Variable,
};

const HIDDEN: usize = 15;
const BATCH_SIZE: usize = 14 * 10;
const EPOCHS: usize = 10;

struct Model {
    features: Variable,
    target: Variable,
    prediction: Variable,
    loss: Variable,
    params: Vec<Variable>,
}

fn glorot(shape: [usize; 2], seed: u64, name: &str) -> Result<Variable> {
    let init = Initializer::GlorotUniform {
        scale: 1.0,
        output_rank: 1,
        seed: Some(seed),
    };
    parameter(shape, DType::F32, init, name)
}

/// One LSTM step loop over `x` (gates packed [i, g, f, o] as in CNTK), initial state 0.1.
fn lstm(x: &Variable, params: &mut Vec<Variable>) -> Result<Variable> {
    let n = HIDDEN;
    let w = glorot([1, 4 * n], 1, "W")?;
    let h = glorot([n, 4 * n], 2, "H")?;
    let b = parameter([4 * n], DType::F32, Initializer::Constant(0.0), "b")?;
    params.extend([w.clone(), h.clone(), b.clone()]);
    let h_ph = placeholder([n], DType::F32, x.dynamic_axes(), "h_prev")?;
    let c_ph = placeholder([n], DType::F32, x.dynamic_axes(), "c_prev")?;
    let dh = sequence::past_value_scalar(&h_ph, 0.1, 1)?;
    let dc = sequence::past_value_scalar(&c_ph, 0.1, 1)?;
    let a = plus(&plus(&b, &times(x, &w)?)?, &times(&dh, &h)?)?;
    let gate = |j: usize| slice(&a, 0, (j * n) as isize, ((j + 1) * n) as isize);
    let (i, g, f, o) = (gate(0)?, gate(1)?, gate(2)?, gate(3)?);
    let c = plus(
        &element_times(&sigmoid(&f)?, &dc)?,
        &element_times(&sigmoid(&i)?, &tanh(&g)?)?,
    )?;
    let hh = element_times(&sigmoid(&o)?, &tanh(&c)?)?;
    if let Some(f) = hh.owner() {
        f.replace_placeholders(&[(h_ph, hh.clone()), (c_ph, c)])?;
    }
    Ok(hh)
}

fn build() -> Result<Model> {
    let features = sequence::input_variable([1]);
    let mut params = Vec::new();
    let last = sequence::last(&lstm(&features, &mut params)?)?; // Fold
    let wd = glorot([HIDDEN, 1], 3, "W_dense")?;
    let bd = parameter([1], DType::F32, Initializer::Constant(0.0), "b_dense")?;
    params.extend([wd.clone(), bd.clone()]);
    let prediction = plus(&times(&last, &wd)?, &bd)?;
    let target = input_variable([1]);
    let loss = square(&minus(&prediction, &target)?)?; // squared_error of a 1-dim output
    Ok(Model {
        features,
        target,
        prediction,
        loss,
        params,
    })
}

/// Minibatches of whole sequences, at most `BATCH_SIZE` samples each (at least one sequence).
fn minibatches(lengths: &[usize], order: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    let mut samples = 0;
    for &i in order {
        if samples + lengths[i] > BATCH_SIZE
            && !out.last().is_some_and(|b: &Vec<usize>| b.is_empty())
        {
            out.push(Vec::new());
            samples = 0;
        }
        samples += lengths[i];
        out.last_mut().expect("one batch").push(i);
    }
    out
}

fn feed(data: &Solar, batch: &[usize]) -> Result<(Value, Value)> {
    let xs: Vec<Vec<f32>> = batch.iter().map(|&i| data.features[i].clone()).collect();
    let ys: Vec<f32> = batch.iter().map(|&i| data.targets[i]).collect();
    Ok((Value::from_sequences([1], &xs)?, Value::batch([1], ys)?))
}

fn main() -> Result<()> {
    let train = Solar::generate(true, 1);
    let test = Solar::generate(false, 1);
    let m = build()?;
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&m.loss))?;
    let wrt: Vec<&Variable> = m.params.iter().collect();
    let lengths: Vec<usize> = train.features.iter().map(|s| s.len()).collect();
    let mut learner = adam(
        &m.params,
        Schedule::constant(0.005),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    let mut shuffle = 0x9e37_79b9_7f4a_7c15u64;
    println!(" epoch   sequences   avg loss (per sequence)");
    for epoch in 1..=EPOCHS {
        // Fisher–Yates with a fixed-seed LCG: every run sees the same order.
        for i in (1..order.len()).rev() {
            shuffle = shuffle
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (shuffle >> 33) as usize % (i + 1));
        }
        let (mut total, mut count) = (0.0f64, 0usize);
        for batch in minibatches(&lengths, &order) {
            let (x, y) = feed(&train, &batch)?;
            ex.forward(&[(&m.features, &x), (&m.target, &y)], true)?;
            total += ex
                .value(&m.loss)?
                .dense_rows::<f32>()
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
            count += batch.len();
            let grads = ex.backward(&[(&m.loss, None)], &wrt)?;
            let pairs = m
                .params
                .iter()
                .zip(&grads)
                .map(|(p, g)| Ok((p.clone(), g.to_tensor()?)))
                .collect::<Result<Vec<_>>>()?;
            learner.update(&pairs, batch.len(), false)?;
        }
        println!("{epoch:>6} {count:>11} {:>12.6}", total / count as f64);
    }
    let mut eval = Executor::<f32>::new_inference(std::slice::from_ref(&m.prediction))?;
    let all: Vec<usize> = (0..test.features.len()).collect();
    let (x, _) = feed(&test, &all)?;
    eval.forward(&[(&m.features, &x)], false)?;
    let pred = eval.value(&m.prediction)?.dense_rows::<f32>();
    let mse: f64 = pred
        .iter()
        .zip(&test.targets)
        .map(|(p, y)| ((p - y) as f64).powi(2))
        .sum::<f64>()
        / test.targets.len() as f64;
    println!(
        "test: {} sequences, mean squared error {mse:.6}",
        test.targets.len()
    );
    Ok(())
}
