//! Tensors without graph knowledge: element types, shapes, dense and sparse storage,
//! and the packed layout of variable-length sequences.

mod dtype;
mod layout;
mod shape;
mod sparse;
mod storage;
mod value;

pub use dtype::{DType, Element};
pub use layout::{Layout, PackedLayout};
pub use shape::{Shape, INFERRED};
pub use sparse::Csr;
pub use storage::{Device, Tensor};
pub use value::{Value, ValueData};
