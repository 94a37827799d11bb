//! Training: the `Trainer`, progress writers with CNTK's exact text, and (next) the
//! `train`/`test` loops with test, cross-validation and checkpoint configs.

mod progress;
pub mod pyfmt;
mod trainer;

pub use progress::{ProgressPrinter, ProgressWriter, Totals};
pub use trainer::{sample_count, Trainer};
