//! CNTK 102 — feed-forward classification, in rntk: the same data as CNTK 101, now
//! through two hidden layers, for two classes (the tutorial) and for three. The
//! tutorial's program, with CNTK's `Sequential` model and training API:
//!
//! ```python
//! input_dim = 2
//! num_output_classes = 2          # 3 for the multiclass run
//! num_hidden_layers = 2
//! hidden_layers_dim = 50
//! input = C.input_variable(input_dim)
//! label = C.input_variable(num_output_classes)
//! def create_model(features):
//!     with C.layers.default_options(init=C.layers.glorot_uniform()):
//!         return C.layers.Sequential([
//!             C.layers.Dense(hidden_layers_dim, activation=C.relu),
//!             C.layers.Dense(hidden_layers_dim, activation=C.relu),
//!             C.layers.Dense(num_output_classes)])(features)
//! z = create_model(input)
//! loss = C.cross_entropy_with_softmax(z, label)
//! eval_error = C.classification_error(z, label)
//! learner = C.sgd(z.parameters, C.learning_parameter_schedule(0.1))
//! minibatch_size = 25
//! num_samples = 20000
//! source = C.io.MinibatchSourceFromData(dict(features=X, labels=Y))
//! (loss, eval_error).train(source, minibatch_size=25, epoch_size=num_samples,
//!     model_inputs_to_streams={input: source.streams.features, label: source.streams.labels},
//!     parameter_learners=[learner],
//!     callbacks=[C.logging.ProgressPrinter(100, tag='Training'),
//!                C.train.TestConfig(test_source, minibatch_size=25)])
//! ```
//!
//! The tutorial uses sigmoid hidden layers and a learning rate of 0.5; with relu
//! (as here) 0.1 per minibatch keeps the first updates on these unscaled features
//! (values up to ~20) from overshooting.
//!
//! Run both (binary, then three classes), or one with `--classes N`:
//!
//!     cargo run --release --example feedforward_classification [-- --classes 3]

#[path = "common/mod.rs"]
mod common;

use common::{generate_random_data_sample, Rng};
use rntk::io::{InMemoryStream, MinibatchSourceFromData, FULL_DATA_SWEEP, INFINITELY_REPEAT};
use rntk::layers::{default_options, Activation, DefaultOptions, Dense, Layer, Sequential};
use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{initializer::Initializer, input_variable, losses, metrics, Result};

pub const INPUT_DIM: usize = 2;

pub struct Config {
    pub num_output_classes: usize,
    pub num_hidden_layers: usize,
    pub hidden_layers_dim: usize,
    pub num_samples: usize,
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
            num_output_classes: 2,
            num_hidden_layers: 2,
            hidden_layers_dim: 50,
            num_samples: 20000,
            minibatch_size: 25,
            learning_rate: 0.1,
            test_samples: 2000,
            progress_freq: 100,
            seed: 0,
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub test_error: f64,
    /// Error of always answering the most frequent class of the test data.
    pub chance_error: f64,
}

fn source(
    rng: &mut Rng,
    n: usize,
    classes: usize,
    max_samples: u64,
) -> Result<(MinibatchSourceFromData, f64)> {
    let (x, y, ids) = generate_random_data_sample(rng, n, INPUT_DIM, classes);
    let src = MinibatchSourceFromData::new(
        vec![
            InMemoryStream::samples("features", [INPUT_DIM], &x)?,
            InMemoryStream::samples("labels", [classes], &y)?,
        ],
        max_samples,
    )?;
    Ok((src, common::majority_error(&ids, classes)))
}

fn create_model(cfg: &Config) -> Sequential {
    default_options(
        DefaultOptions {
            init: Some(Initializer::glorot_uniform()),
            ..Default::default()
        },
        || {
            let mut model = Sequential::default();
            for _ in 0..cfg.num_hidden_layers {
                model = model.then(Dense::new(cfg.hidden_layers_dim).activation(Activation::Relu));
            }
            model.then(Dense::new(cfg.num_output_classes))
        },
    )
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // np.random.seed(seed); C.cntk_py.set_fixed_random_seed(seed + 1)
    rntk::initializer::set_fixed_random_seed(cfg.seed + 1);
    let mut rng = Rng::new(cfg.seed);
    let classes = cfg.num_output_classes;
    let input = input_variable(INPUT_DIM);
    let label = input_variable(classes);
    let model = create_model(cfg);
    let z = model.apply(&input)?;
    let loss = losses::cross_entropy_with_softmax(&z, &label, -1)?;
    let eval_error = metrics::classification_error(&z, &label, -1, 1)?;
    let learner = sgd(
        &model.parameters(),
        Schedule::constant(cfg.learning_rate),
        LearnerOptions::default(),
    )?;

    let (mut train_source, _) = source(&mut rng, cfg.num_samples, classes, INFINITELY_REPEAT)?;
    let (test_source, chance_error) = source(&mut rng, cfg.test_samples, classes, FULL_DATA_SWEEP)?;
    let mut test = TestConfig::new(Box::new(test_source));
    test.minibatch_size = cfg.minibatch_size;

    let history = train::<f32>(
        &Criterion::new(loss, Some(eval_error)),
        &mut train_source,
        &[(input, "features".into()), (label, "labels".into())],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size).epoch_size(cfg.num_samples as u64),
        Callbacks {
            progress_writers: vec![Box::new(
                ProgressPrinter::new(Some(cfg.progress_freq)).tag("Training"),
            )],
            test: Some(test),
            ..Default::default()
        },
    )?;
    let (test_error, _) = history.test_summary.expect("a TestConfig was given");
    Ok(Outcome {
        test_error,
        chance_error,
    })
}

fn main() -> Result<()> {
    let runs: Vec<usize> = match common::arg::<usize>("classes") {
        Some(c) if c >= 2 => vec![c],
        Some(_) => {
            eprintln!("--classes must be at least 2");
            std::process::exit(2);
        }
        None => vec![2, 3],
    };
    for classes in runs {
        println!("== {classes} classes ==");
        let out = run(&Config {
            num_output_classes: classes,
            ..Config::default()
        })?;
        println!(
            "{classes} classes: test error {:.2}% (chance: {:.2}%)\n",
            100.0 * out.test_error,
            100.0 * out.chance_error
        );
    }
    Ok(())
}
