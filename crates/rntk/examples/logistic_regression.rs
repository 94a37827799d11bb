//! CNTK 101 — logistic regression, in rntk. The tutorial's program:
//!
//! ```python
//! input_dim = 2
//! num_output_classes = 2
//! np.random.seed(0)
//! def generate_random_data_sample(sample_size, feature_dim, num_classes):
//!     Y = np.random.randint(size=(sample_size, 1), low=0, high=num_classes)
//!     X = (np.random.randn(sample_size, feature_dim)+3) * (Y+1)
//!     ...
//! feature = C.input_variable(input_dim, np.float32)
//! def create_model(features):
//!     with C.layers.default_options(init=C.glorot_uniform()):
//!         r = C.layers.Dense(num_output_classes, activation=None)(features)
//!         return r
//! z = create_model(feature)
//! label = C.input_variable(num_output_classes, np.float32)
//! loss = C.cross_entropy_with_softmax(z, label)
//! eval_error = C.classification_error(z, label)
//! learning_rate = 0.5
//! lr_schedule = C.learning_parameter_schedule(learning_rate)
//! learner = C.sgd(z.parameters, lr_schedule)
//! minibatch_size = 25
//! num_samples_to_train = 20000
//! # the tutorial draws a fresh sample per minibatch and calls trainer.train_minibatch;
//! # with CNTK's training API the same run reads:
//! source = C.io.MinibatchSourceFromData(dict(features=X, labels=Y))
//! (loss, eval_error).train(source, minibatch_size=25, epoch_size=20000,
//!     model_inputs_to_streams={feature: source.streams.features, label: source.streams.labels},
//!     parameter_learners=[learner],
//!     callbacks=[C.logging.ProgressPrinter(50),
//!                C.train.TestConfig(test_source, minibatch_size=25)])
//! ```
//!
//! Run it with
//!
//!     cargo run --release --example logistic_regression

#[path = "common/mod.rs"]
mod common;

use common::{generate_random_data_sample, Rng};
use rntk::io::{InMemoryStream, MinibatchSourceFromData, FULL_DATA_SWEEP, INFINITELY_REPEAT};
use rntk::layers::{default_options, DefaultOptions, Dense, Layer};
use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{initializer::Initializer, input_variable, losses, metrics, Result};

pub const INPUT_DIM: usize = 2;
pub const NUM_OUTPUT_CLASSES: usize = 2;

/// The tutorial's sizes.
pub struct Config {
    pub num_samples_to_train: usize,
    pub minibatch_size: usize,
    pub learning_rate: f64,
    pub test_samples: usize,
    /// ProgressPrinter frequency in minibatches.
    pub progress_freq: u64,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            num_samples_to_train: 20000,
            minibatch_size: 25,
            learning_rate: 0.5,
            test_samples: 2000,
            progress_freq: 50,
            seed: 0,
        }
    }
}

/// What a run ends with.
#[derive(Debug)]
pub struct Outcome {
    pub test_error: f64,
    /// Error of always answering the most frequent class of the test data.
    pub chance_error: f64,
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

fn source(rng: &mut Rng, n: usize, max_samples: u64) -> Result<(MinibatchSourceFromData, f64)> {
    let (x, y, classes) = generate_random_data_sample(rng, n, INPUT_DIM, NUM_OUTPUT_CLASSES);
    let src = MinibatchSourceFromData::new(
        vec![
            InMemoryStream::samples("features", [INPUT_DIM], &x)?,
            InMemoryStream::samples("labels", [NUM_OUTPUT_CLASSES], &y)?,
        ],
        max_samples,
    )?;
    Ok((src, common::majority_error(&classes, NUM_OUTPUT_CLASSES)))
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // np.random.seed(seed); C.cntk_py.set_fixed_random_seed(seed + 1)
    rntk::initializer::set_fixed_random_seed(cfg.seed + 1);
    let mut rng = Rng::new(cfg.seed);
    let feature = input_variable(INPUT_DIM);
    let model = default_options(
        DefaultOptions {
            init: Some(Initializer::glorot_uniform()),
            ..Default::default()
        },
        || Dense::new(NUM_OUTPUT_CLASSES),
    );
    let z = model.apply(&feature)?;
    let label = input_variable(NUM_OUTPUT_CLASSES);
    let loss = losses::cross_entropy_with_softmax(&z, &label, -1)?;
    let eval_error = metrics::classification_error(&z, &label, -1, 1)?;

    let lr_schedule = Schedule::constant(cfg.learning_rate);
    let learner = sgd(&model.parameters(), lr_schedule, LearnerOptions::default())?;

    let (mut train_source, _) = source(&mut rng, cfg.num_samples_to_train, INFINITELY_REPEAT)?;
    let (test_source, chance_error) = source(&mut rng, cfg.test_samples, FULL_DATA_SWEEP)?;
    let mut test = TestConfig::new(Box::new(test_source));
    test.minibatch_size = cfg.minibatch_size;

    let history = train::<f32>(
        &Criterion::new(loss, Some(eval_error)),
        &mut train_source,
        &[
            (feature.clone(), "features".into()),
            (label.clone(), "labels".into()),
        ],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size).epoch_size(cfg.num_samples_to_train as u64),
        Callbacks {
            progress_writers: vec![Box::new(ProgressPrinter::new(Some(cfg.progress_freq)))],
            test: Some(test),
            ..Default::default()
        },
    )?;
    let (test_error, _) = history.test_summary.expect("a TestConfig was given");
    let value = |v: Option<rntk::Variable>| -> Result<Vec<f64>> {
        match v {
            Some(p) => Ok(p.value()?.to_f64_vec()),
            None => Ok(Vec::new()),
        }
    };
    Ok(Outcome {
        test_error,
        chance_error,
        weights: value(model.w())?,
        bias: value(model.b())?,
    })
}

fn main() -> Result<()> {
    let out = run(&Config::default())?;
    println!("weights: {:?}", out.weights);
    println!("bias:    {:?}", out.bias);
    println!(
        "test error: {:.2}% (chance: {:.2}%)",
        100.0 * out.test_error,
        100.0 * out.chance_error
    );
    Ok(())
}
