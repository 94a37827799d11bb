//! Regression with a small multi-layer perceptron, in rntk: the CNTK 102 network with a
//! real-valued output and `squared_error` (the criterion of CNTK 106's time-series
//! model), learning a smooth function of two inputs from noisy in-memory samples. As
//! a CNTK 2.x program:
//!
//! ```python
//! input_dim = 2
//! np.random.seed(0)
//! X = np.random.uniform(-2, 2, size=(num_samples, input_dim)).astype(np.float32)
//! Y = np.sin(X[:, :1]) * np.cos(X[:, 1:]) + 0.1 * X[:, :1]**2 + 0.05 * np.random.randn(num_samples, 1)
//! x = C.input_variable(input_dim)
//! y = C.input_variable(1)
//! with C.layers.default_options(init=C.glorot_uniform()):
//!     z = C.layers.Sequential([C.layers.Dense(50, activation=C.tanh),
//!                              C.layers.Dense(50, activation=C.tanh),
//!                              C.layers.Dense(1)])(x)
//! loss = C.squared_error(z, y)
//! metric = C.squared_error(z, y)
//! learner = C.adam(z.parameters, lr=0.01, momentum=0.9)
//! source = C.io.MinibatchSourceFromData(dict(x=X, y=Y))
//! (loss, metric).train(source, minibatch_size=32, epoch_size=num_samples, max_epochs=5,
//!     model_inputs_to_streams={x: source.streams.x, y: source.streams.y},
//!     parameter_learners=[learner],
//!     callbacks=[C.logging.ProgressPrinter(tag='Training', num_epochs=5, metric_is_pct=False),
//!                C.train.TestConfig(test_source)])
//! ```
//!
//! The metric is a mean squared error (printed as a plain number, not a percentage);
//! it is compared with the error of always predicting the mean of the test targets.
//!
//!     cargo run --release --example regression [-- --epochs N]

#[path = "common/mod.rs"]
mod common;

use common::Rng;
use rntk::io::{InMemoryStream, MinibatchSourceFromData, FULL_DATA_SWEEP, INFINITELY_REPEAT};
use rntk::layers::{default_options, Activation, DefaultOptions, Dense, Layer, Sequential};
use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{initializer::Initializer, input_variable, losses, Executor, Result, Value};

pub const INPUT_DIM: usize = 2;

pub struct Config {
    pub num_samples: usize,
    pub test_samples: usize,
    pub max_epochs: u64,
    pub minibatch_size: usize,
    pub hidden_dim: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            num_samples: 8000,
            test_samples: 1000,
            max_epochs: 5,
            minibatch_size: 32,
            hidden_dim: 50,
            learning_rate: 0.01,
            seed: 0,
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    /// Mean squared error on the test data.
    pub test_mse: f64,
    /// Mean squared error of predicting the mean test target (the targets' variance).
    pub baseline_mse: f64,
    /// (input, target, prediction) for a few test points.
    pub samples: Vec<([f32; 2], f32, f32)>,
}

fn target(x1: f64, x2: f64) -> f64 {
    x1.sin() * x2.cos() + 0.1 * x1 * x1
}

/// Inputs uniform in [-2, 2]², targets with N(0, 0.05²) noise.
fn data(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = Vec::with_capacity(n * INPUT_DIM);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b) = (rng.range(-2.0, 2.0), rng.range(-2.0, 2.0));
        x.extend([a as f32, b as f32]);
        y.push((target(a, b) + 0.05 * rng.normal()) as f32);
    }
    (x, y)
}

fn source(x: &[f32], y: &[f32], max_samples: u64) -> Result<MinibatchSourceFromData> {
    MinibatchSourceFromData::new(
        vec![
            InMemoryStream::samples("x", [INPUT_DIM], x)?,
            InMemoryStream::samples("y", [1], y)?,
        ],
        max_samples,
    )
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // np.random.seed(seed); C.cntk_py.set_fixed_random_seed(seed + 1)
    rntk::initializer::set_fixed_random_seed(cfg.seed + 1);
    let mut rng = Rng::new(cfg.seed);
    let x = input_variable(INPUT_DIM);
    let y = input_variable(1);
    let model = default_options(
        DefaultOptions {
            init: Some(Initializer::glorot_uniform()),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Dense::new(cfg.hidden_dim).activation(Activation::Tanh))
                .then(Dense::new(cfg.hidden_dim).activation(Activation::Tanh))
                .then(Dense::new(1))
        },
    );
    let z = model.apply(&x)?;
    let loss = losses::squared_error(&z, &y)?;
    let metric = losses::squared_error(&z, &y)?;
    let learner = adam(
        &model.parameters(),
        Schedule::constant(cfg.learning_rate),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?;

    let (train_x, train_y) = data(&mut rng, cfg.num_samples);
    let (test_x, test_y) = data(&mut rng, cfg.test_samples);
    let mean = test_y.iter().map(|&v| v as f64).sum::<f64>() / test_y.len() as f64;
    let baseline_mse = test_y
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / test_y.len() as f64;

    let mut train_source = source(&train_x, &train_y, INFINITELY_REPEAT)?.shuffled(cfg.seed);
    let test = TestConfig::new(Box::new(source(&test_x, &test_y, FULL_DATA_SWEEP)?));
    let history = train::<f32>(
        &Criterion::new(loss, Some(metric)),
        &mut train_source,
        &[(x.clone(), "x".into()), (y, "y".into())],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size)
            .epoch_size(cfg.num_samples as u64)
            .max_epochs(cfg.max_epochs),
        Callbacks {
            progress_writers: vec![Box::new(
                ProgressPrinter::new(None)
                    .tag("Training")
                    .num_epochs(cfg.max_epochs)
                    .metric_is_pct(false),
            )],
            test: Some(test),
            ..Default::default()
        },
    )?;
    let (test_mse, _) = history.test_summary.expect("a TestConfig was given");

    // z.eval on a few test points
    let k = 5.min(cfg.test_samples);
    let mut eval = Executor::<f32>::new_inference(std::slice::from_ref(&z))?;
    let input = Value::batch([INPUT_DIM], test_x[..k * INPUT_DIM].to_vec())?;
    eval.forward(&[(&x, &input)], false)?;
    let pred = eval.value(&z)?.to_vec::<f32>();
    let samples = (0..k)
        .map(|i| ([test_x[2 * i], test_x[2 * i + 1]], test_y[i], pred[i]))
        .collect();
    Ok(Outcome {
        test_mse,
        baseline_mse,
        samples,
    })
}

fn main() -> Result<()> {
    let cfg = Config {
        max_epochs: common::arg("epochs").unwrap_or(Config::default().max_epochs),
        ..Config::default()
    };
    let out = run(&cfg)?;
    for (x, t, p) in &out.samples {
        println!(
            "x = [{:+.3}, {:+.3}]  target {:+.4}  prediction {:+.4}",
            x[0], x[1], t, p
        );
    }
    println!(
        "test MSE: {:.5} (predicting the mean: {:.5}; R² = {:.3})",
        out.test_mse,
        out.baseline_mse,
        1.0 - out.test_mse / out.baseline_mse
    );
    Ok(())
}
