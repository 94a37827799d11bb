//! Training: the `Trainer`, progress writers with CNTK's exact text, a TensorBoard event
//! writer, and (next) the `train`/`test` loops with test, cross-validation and checkpoint configs.

mod progress;
pub mod pyfmt;
pub mod tensorboard;
mod trainer;

pub use progress::{ProgressPrinter, ProgressWriter, Totals};
pub use tensorboard::TensorBoardProgressWriter;
pub use trainer::{sample_count, Trainer};
