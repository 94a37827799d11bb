//! rntk: CNTK's computation model in Rust — Functions over Variables with dynamic
//! axes, compiled into plans that run recurrent loops over packed sequences.

pub mod backend;
pub mod datasets;
pub mod error;
pub mod exec;
pub mod files;
pub mod functions;
pub mod graph;
pub mod import;
pub mod initializer;
pub mod io;
pub mod layers;
pub mod learners;
pub mod limits;
pub mod losses;
pub mod metrics;
pub mod onnx;
pub mod ops;
pub mod persist;
pub mod random;
pub mod sequence;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use exec::Executor;
pub use graph::{
    constant, input_variable, input_variable_with, parameter, parameter_from, placeholder, scalar,
    Axis, CloneMethod, DynamicAxes, Function, InputOptions, VarKind, Variable,
};
pub use import::load_cntk;
pub use persist::{load_model, save_model};
pub use tensor::{DType, Shape, Tensor, Value};
