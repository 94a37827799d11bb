//! Dense contiguous storage on a device, tagged with its element type.

use super::{DType, Element, Shape};
use crate::error::{Error, Result};

/// Where a tensor lives. CPU today; a CUDA backend adds a variant without touching the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
}

/// Dtype-erased host storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => Storage::F32(vec![0.0; n]),
            DType::F64 => Storage::F64(vec![0.0; n]),
        }
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Storage::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Storage::F64(v) => v.clone(),
        }
    }
    pub fn from_f64(dtype: DType, v: &[f64]) -> Self {
        match dtype {
            DType::F32 => Storage::F32(v.iter().map(|&x| x as f32).collect()),
            DType::F64 => Storage::F64(v.to_vec()),
        }
    }
}

/// A dense tensor: a static shape and its elements in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    storage: Storage,
    device: Device,
}

impl Tensor {
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Self {
        let shape = shape.into();
        let n = shape.numel();
        Tensor {
            shape,
            storage: Storage::zeros(dtype, n),
            device: Device::Cpu,
        }
    }
    /// A CPU tensor over existing storage (no copy); the caller checked the length.
    pub(crate) fn from_storage(shape: Shape, storage: Storage) -> Self {
        debug_assert_eq!(shape.numel(), storage.len());
        Tensor {
            shape,
            storage,
            device: Device::Cpu,
        }
    }
    pub fn from_vec<T: Element>(shape: impl Into<Shape>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(Error::InvalidValue(format!(
                "tensor of shape {shape} needs {} elements, got {}",
                shape.numel(),
                data.len()
            )));
        }
        Ok(Tensor {
            shape,
            storage: T::wrap(data),
            device: Device::Cpu,
        })
    }
    pub fn from_f64(shape: impl Into<Shape>, dtype: DType, data: &[f64]) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(Error::InvalidValue(format!(
                "tensor of shape {shape} needs {} elements, got {}",
                shape.numel(),
                data.len()
            )));
        }
        Ok(Tensor {
            shape,
            storage: Storage::from_f64(dtype, data),
            device: Device::Cpu,
        })
    }
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }
    pub fn device(&self) -> Device {
        self.device
    }
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
    /// The elements, giving up the tensor.
    pub fn into_storage(self) -> Storage {
        self.storage
    }
    pub fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice(&self.storage)
    }
    pub fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        T::slice_mut(&mut self.storage)
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.storage.to_f64_vec()
    }
    /// Same data converted to another element type.
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        Tensor {
            shape: self.shape.clone(),
            storage: Storage::from_f64(dtype, &self.storage.to_f64_vec()),
            device: self.device,
        }
    }
}
