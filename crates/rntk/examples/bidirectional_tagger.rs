//! CNTK 202 — language understanding: slot tagging with a bidirectional recurrence,
//! in rntk. The tutorial's `BiRecurrence` model (with GRUs in place of its LSTMs):
//!
//! ```python
//! emb_dim    = 150
//! hidden_dim = 300
//! def BiRecurrence(fwd, bwd):
//!     F = C.layers.Recurrence(fwd)
//!     G = C.layers.Recurrence(bwd, go_backwards=True)
//!     x = C.placeholder()
//!     apply_x = C.splice(F(x), G(x))
//!     return apply_x
//! def create_model():
//!     with C.layers.default_options(initial_state=0.1):
//!         return C.layers.Sequential([
//!             C.layers.Embedding(emb_dim),
//!             BiRecurrence(C.layers.GRU(hidden_dim//2), C.layers.GRU(hidden_dim//2)),
//!             C.layers.Dense(num_labels)
//!         ])
//! train_test(create_reader(data['train']['file'], is_training=True),
//!            create_reader(data['test']['file'], is_training=False),
//!            create_model, max_epochs=4)
//! ```
//!
//! `create_reader` and `train_test` (CTFDeserializer + MinibatchSource over sparse
//! streams S0/S1/S2, `cross_entropy_with_softmax` + `classification_error`, Adam with
//! the tutorial's schedules, ProgressPrinter, TestConfig) are in
//! `examples/common/slots.rs`, shared with `gru_tagger.rs`. The data is a generated
//! ATIS-like corpus written as CTF into a temporary directory; some of its slots are
//! decided only by the words that follow (`boston arrivals` vs `boston departures`),
//! which the backward recurrence sees. rntk's [`Concat`] is `BiRecurrence`'s splice.
//!
//!     cargo run --release --example bidirectional_tagger [-- --epochs N]

#[path = "common/mod.rs"]
mod common;

use common::slots::{make_slot_corpus, train_test, Outcome, SlotCorpus, TrainConfig};
use rntk::layers::{
    default_options, Concat, DefaultOptions, Dense, Embedding, Gru, Recurrence, Sequential,
};
use rntk::Result;
use std::sync::Arc;

pub struct Config {
    pub emb_dim: usize,
    pub hidden_dim: usize,
    pub train_queries: usize,
    pub test_queries: usize,
    pub train: TrainConfig,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            emb_dim: 150,
            hidden_dim: 300,
            train_queries: 2000,
            test_queries: 300,
            train: TrainConfig {
                epoch_size: 5000,
                max_epochs: 4,
                minibatch_size: 70,
                progress_freq: 25,
            },
            seed: 0,
        }
    }
}

pub fn create_model(cfg: &Config, corpus: &SlotCorpus) -> Sequential {
    default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            let bi_recurrence = |fwd: Gru, bwd: Gru| {
                Concat::new(vec![
                    Arc::new(Recurrence::new(fwd)),
                    Arc::new(Recurrence::new(bwd).go_backwards(true)),
                ])
            };
            Sequential::default()
                .then(Embedding::new(cfg.emb_dim))
                .then(bi_recurrence(
                    Gru::new(cfg.hidden_dim / 2),
                    Gru::new(cfg.hidden_dim / 2),
                ))
                .then(Dense::new(corpus.num_labels))
        },
    )
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // np.random.seed(seed); C.cntk_py.set_fixed_random_seed(seed + 1)
    rntk::initializer::set_fixed_random_seed(cfg.seed + 1);
    let corpus = make_slot_corpus(cfg.train_queries, cfg.test_queries, cfg.seed)?;
    let model = create_model(cfg, &corpus);
    train_test(&corpus, &model, &cfg.train)
}

fn main() -> Result<()> {
    let mut cfg = Config::default();
    if let Some(n) = common::arg("epochs") {
        cfg.train.max_epochs = n;
    }
    let out = run(&cfg)?;
    println!(
        "test error: {:.2}% of words (tagging every word O: {:.2}%)",
        100.0 * out.test_error,
        100.0 * out.chance_error
    );
    Ok(())
}
