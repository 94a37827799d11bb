//! Sequence classification with stacked LSTMs, in rntk — CNTK's
//! `Examples/SequenceClassification/SimpleExample/Python/SequenceClassification.py`
//! with a second LSTM folded over the first one's outputs, on synthetic data: each
//! sequence of word ids is labelled with how many times the two-word pattern
//! `w1 w2` occurs in it (0–4, five classes). The CNTK 2.x program it mirrors:
//!
//! ```python
//! input_dim = 40            # the example: 2000 (a word-hashed corpus)
//! embedding_dim = 50
//! LSTM_dim = 25
//! num_output_classes = 5
//! features = C.sequence.input_variable(shape=input_dim, is_sparse=True)
//! label = C.input_variable(num_output_classes)
//! classifier_output = C.layers.Sequential([
//!     C.layers.Embedding(embedding_dim),
//!     C.layers.Recurrence(C.layers.LSTM(LSTM_dim)),
//!     C.layers.Fold(C.layers.LSTM(LSTM_dim)),      # the example: sequence.last
//!     C.layers.Dense(num_output_classes)])(features)
//! ce = C.cross_entropy_with_softmax(classifier_output, label)
//! pe = C.classification_error(classifier_output, label)
//! source = C.io.MinibatchSourceFromData(dict(features=Xs, labels=Ys))   # Xs sparse one-hot
//! learner = C.adam(classifier_output.parameters, lr=0.01, momentum=0.9)
//! (ce, pe).train(source, minibatch_size=200, epoch_size=num_sequences, max_epochs=4,
//!     model_inputs_to_streams={features: source.streams.features, label: source.streams.labels},
//!     parameter_learners=[learner],
//!     callbacks=[C.logging.ProgressPrinter(0, tag='Training', num_epochs=4),
//!                C.train.TestConfig(test_source)])
//! ```
//!
//! (The example trains with `sgd(lr=0.0005 per sample)` for 251 minibatches of a
//! real corpus; Adam learns this small synthetic task in a few seconds.) The
//! minibatch size counts word samples; an epoch counts the trainer's samples, which
//! for a sequence-level loss are sequences.
//!
//!     cargo run --release --example sequence_classification [-- --epochs N]

#[path = "common/mod.rs"]
mod common;

use common::Rng;
use rntk::io::{InMemoryStream, MinibatchSourceFromData, FULL_DATA_SWEEP, INFINITELY_REPEAT};
use rntk::layers::{Dense, Embedding, Fold, Layer, Lstm, Recurrence, Sequential};
use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{input_variable, losses, metrics, sequence, InputOptions, Result};

pub struct Config {
    pub input_dim: usize,
    pub embedding_dim: usize,
    pub lstm_dim: usize,
    pub num_output_classes: usize,
    pub train_sequences: usize,
    pub test_sequences: usize,
    pub min_len: usize,
    pub max_len: usize,
    pub max_epochs: u64,
    pub minibatch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            input_dim: 40,
            embedding_dim: 50,
            lstm_dim: 25,
            num_output_classes: 5,
            train_sequences: 3000,
            test_sequences: 500,
            min_len: 6,
            max_len: 20,
            max_epochs: 4,
            minibatch_size: 200,
            learning_rate: 0.01,
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

/// The pattern counted: word 1 followed by word 2.
const PATTERN: [usize; 2] = [1, 2];

/// `n` sequences of word ids; sequence i holds PATTERN exactly `label[i]` times
/// (class chosen uniformly), every other word drawn so that it cannot complete it.
fn data(rng: &mut Rng, cfg: &Config, n: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    let classes = cfg.num_output_classes;
    let mut seqs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let k = rng.below(classes);
        let min = cfg.min_len.max(2 * k);
        let len = min + rng.below(cfg.max_len.max(min) - min + 1);
        // k non-overlapping pattern starts: k distinct positions among the len - k
        // of the sequence with each pattern shrunk to one word, sorted, spread out
        let mut starts: Vec<usize> = Vec::new();
        while starts.len() < k {
            let s = rng.below(len - k);
            if !starts.contains(&s) {
                starts.push(s);
            }
        }
        starts.sort_unstable();
        for (i, s) in starts.iter_mut().enumerate() {
            *s += i;
        }
        let mut s = vec![usize::MAX; len];
        for &t in &starts {
            s[t] = PATTERN[0];
            s[t + 1] = PATTERN[1];
        }
        for t in 0..len {
            if s[t] == usize::MAX {
                // any word, but never PATTERN[1] right after PATTERN[0]
                loop {
                    let w = rng.below(cfg.input_dim);
                    let completes = t > 0 && s[t - 1] == PATTERN[0] && w == PATTERN[1];
                    let starts_one = t + 1 < len && s[t + 1] == PATTERN[1] && w == PATTERN[0];
                    if !completes && !starts_one {
                        s[t] = w;
                        break;
                    }
                }
            }
        }
        seqs.push(s);
        labels.push(k);
    }
    (seqs, labels)
}

fn source(
    seqs: &[Vec<usize>],
    labels: &[usize],
    cfg: &Config,
    max_samples: u64,
) -> Result<MinibatchSourceFromData> {
    MinibatchSourceFromData::new(
        vec![
            InMemoryStream::one_hot_sequences::<f32>("features", cfg.input_dim, seqs)?,
            InMemoryStream::samples(
                "labels",
                [cfg.num_output_classes],
                &common::one_hot(labels, cfg.num_output_classes),
            )?,
        ],
        max_samples,
    )
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // np.random.seed(seed); C.cntk_py.set_fixed_random_seed(seed + 1)
    rntk::initializer::set_fixed_random_seed(cfg.seed + 1);
    let mut rng = Rng::new(cfg.seed);
    let features = sequence::input_variable_with(
        cfg.input_dim,
        InputOptions {
            is_sparse: true,
            name: "features".into(),
            ..Default::default()
        },
    );
    let label = input_variable(cfg.num_output_classes);
    let classifier = Sequential::default()
        .then(Embedding::new(cfg.embedding_dim))
        .then(Recurrence::new(Lstm::new(cfg.lstm_dim)))
        .then(Fold::new(Lstm::new(cfg.lstm_dim)))
        .then(Dense::new(cfg.num_output_classes));
    let classifier_output = classifier.apply(&features)?;
    let ce = losses::cross_entropy_with_softmax(&classifier_output, &label, -1)?;
    let pe = metrics::classification_error(&classifier_output, &label, -1, 1)?;
    let learner = adam(
        &classifier.parameters(),
        Schedule::constant(cfg.learning_rate),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?;

    let (train_x, train_y) = data(&mut rng, cfg, cfg.train_sequences);
    let (test_x, test_y) = data(&mut rng, cfg, cfg.test_sequences);
    let chance_error = common::majority_error(&test_y, cfg.num_output_classes);
    let mut train_source = source(&train_x, &train_y, cfg, INFINITELY_REPEAT)?.shuffled(cfg.seed);
    let test = TestConfig::new(Box::new(source(&test_x, &test_y, cfg, FULL_DATA_SWEEP)?));

    let history = train::<f32>(
        &Criterion::new(ce, Some(pe)),
        &mut train_source,
        &[(features, "features".into()), (label, "labels".into())],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size)
            .epoch_size(cfg.train_sequences as u64)
            .max_epochs(cfg.max_epochs),
        Callbacks {
            progress_writers: vec![Box::new(
                ProgressPrinter::new(Some(0))
                    .tag("Training")
                    .num_epochs(cfg.max_epochs),
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
    let cfg = Config {
        max_epochs: common::arg("epochs").unwrap_or(Config::default().max_epochs),
        ..Config::default()
    };
    let out = run(&cfg)?;
    println!(
        "test error: {:.2}% (chance: {:.2}%)",
        100.0 * out.test_error,
        100.0 * out.chance_error
    );
    Ok(())
}
