//! Training: the `Trainer`, progress writers with CNTK's exact text, a TensorBoard event
//! writer, and the `train`/`test` loops with test, cross-validation and checkpoint configs.

mod checkpoint;
mod config;
mod progress;
pub mod pyfmt;
mod session;
mod source;
pub mod tensorboard;
mod trainer;

pub use checkpoint::checkpoint_samples;
pub use config::{
    Callbacks, CheckpointConfig, Criterion, CrossValidationConfig, CvCallback, CvResult,
    MinibatchSize, Record, TestConfig, TrainHistory, TrainOptions,
};
pub use progress::{ProgressPrinter, ProgressWriter, Totals};
pub use session::{test, test_on, train, train_on};
pub use source::{feeds_for, MinibatchProvider};
pub use tensorboard::TensorBoardProgressWriter;
pub use trainer::{sample_count, Trainer};
