//! Dense contiguous storage, tagged with its element type and its device: host vectors,
//! or a device backend's buffer behind a type-erased handle.

use super::{DType, Element, Shape};
use crate::error::{Error, Result};
use std::any::Any;
use std::fmt;

/// Where a tensor lives. The graph never looks at it; backends (`backend/`) do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Device {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal (the `rntk-cuda` backend).
    Cuda(u32),
    /// The arena backend the tests use (`backend::Arena`), by arena id.
    Arena(u64),
}

impl Device {
    /// The CPU (CNTK's `cpu()`).
    pub fn cpu() -> Device {
        Device::Cpu
    }
    /// GPU `n` (CNTK's `gpu(n)`); computing on it needs the `rntk-cuda` backend.
    pub fn gpu(n: u32) -> Device {
        Device::Cuda(n)
    }
    /// `cpu`, `gpu` (GPU 0) or `gpu:N`, as the command line and the Python package
    /// write devices.
    pub fn parse(s: &str) -> crate::error::Result<Device> {
        let bad = || {
            Error::invalid(
                "device",
                format!("expected \"cpu\", \"gpu\" or \"gpu:N\", found \"{s}\""),
            )
        };
        match s {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("gpu:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "gpu:{n}"),
            Device::Arena(n) => write!(f, "arena:{n}"),
        }
    }
}

/// The process's default device (CNTK's `try_set_default_device`): where front ends
/// run a model when not told otherwise. Only records the choice; a front end checks
/// the device can be used (`rntk_cuda::try_set_default_device`) before setting it.
static DEFAULT_DEVICE: std::sync::Mutex<Device> = std::sync::Mutex::new(Device::Cpu);

/// The default device (the CPU unless set).
pub fn default_device() -> Device {
    *DEFAULT_DEVICE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set the default device.
pub fn set_default_device(d: Device) {
    *DEFAULT_DEVICE.lock().unwrap_or_else(|e| e.into_inner()) = d;
}

/// A device backend's buffer as tensor storage. A backend implements this for its own
/// buffers (see `backend::Resident`); code that is not generic over the backend (a
/// learner, a saved model) reaches the values only through it.
pub trait DeviceData: Send + Sync + fmt::Debug + 'static {
    fn device(&self) -> Device;
    fn dtype(&self) -> DType;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements copied to the host (a counted download).
    fn to_host(&self) -> Storage;
    /// A copy on the same device.
    fn duplicate(&self) -> Box<dyn DeviceData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// The backend owning the memory, type-erased (`backend::backend_of` reads it).
    fn owner(&self) -> &dyn Any;
}

/// Dtype-erased storage.
#[derive(Debug)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// On a device other than the CPU.
    Device(Box<dyn DeviceData>),
}

impl Clone for Storage {
    fn clone(&self) -> Self {
        match self {
            Storage::F32(v) => Storage::F32(v.clone()),
            Storage::F64(v) => Storage::F64(v.clone()),
            Storage::Device(d) => Storage::Device(d.duplicate()),
        }
    }
}

/// Equal elements (of the same type), wherever they live.
impl PartialEq for Storage {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Storage::F32(a), Storage::F32(b)) => a == b,
            (Storage::F64(a), Storage::F64(b)) => a == b,
            (Storage::Device(_), _) | (_, Storage::Device(_)) => {
                self.dtype() == other.dtype() && self.to_host() == other.to_host()
            }
            _ => false,
        }
    }
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::Device(d) => d.dtype(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::Device(d) => d.len(),
        }
    }
    /// Where the elements are.
    pub fn device(&self) -> Device {
        match self {
            Storage::Device(d) => d.device(),
            _ => Device::Cpu,
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
            Storage::Device(d) => d.to_host().to_f64_vec(),
        }
    }
    /// The elements on the host (a copy; a counted download from a device).
    pub fn to_host(&self) -> Storage {
        match self {
            Storage::Device(d) => d.to_host(),
            host => host.clone(),
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
}

impl Tensor {
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Self {
        let shape = shape.into();
        let n = shape.numel();
        Tensor {
            shape,
            storage: Storage::zeros(dtype, n),
        }
    }
    /// A tensor over existing storage (no copy), if the lengths agree.
    pub fn from_storage_checked(shape: Shape, storage: Storage) -> Option<Self> {
        (shape.numel() == storage.len()).then_some(Tensor { shape, storage })
    }
    /// A tensor over existing storage (no copy); the caller checked the length.
    pub(crate) fn from_storage(shape: Shape, storage: Storage) -> Self {
        debug_assert_eq!(shape.numel(), storage.len());
        Tensor { shape, storage }
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
        })
    }
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }
    /// Where the elements are (the storage's device).
    pub fn device(&self) -> Device {
        self.storage.device()
    }
    /// The same tensor with its elements on the host (a copy; a counted download
    /// from a device).
    pub fn to_host(&self) -> Tensor {
        Tensor {
            shape: self.shape.clone(),
            storage: self.storage.to_host(),
        }
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
        }
    }
}
