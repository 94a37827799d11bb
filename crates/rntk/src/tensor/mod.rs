//! Tensors without graph knowledge: element types, shapes, dense and sparse storage,
//! the dynamic axes a variable declares and the packed layout of variable-length
//! sequences that a minibatch gives them.

mod axes;
mod dtype;
mod layout;
mod shape;
mod sparse;
mod storage;
mod value;

pub use axes::{Axis, DynamicAxes};
pub use dtype::{DType, Element};
pub use layout::{Layout, PackedLayout};
pub use shape::{Shape, INFERRED};
pub use sparse::Csr;
pub use storage::{default_device, set_default_device, Device, DeviceData, Storage, Tensor};
pub use value::{Value, ValueData};
