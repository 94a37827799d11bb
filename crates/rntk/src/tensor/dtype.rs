//! Element types: the `DType` tag and the `Element` trait that kernels are generic over.

use num_traits::Float;
use std::fmt;

/// The element type of a tensor. f16/bf16 will join as storage-only types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A floating-point element type that the CPU kernels compute in.
pub trait Element:
    Float
    + Default
    + Send
    + Sync
    + fmt::Debug
    + fmt::Display
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::iter::Sum
    + 'static
{
    const DTYPE: DType;
    fn from_f64(v: f64) -> Self;
    fn as_f64(self) -> f64;
    /// The typed view of dtype-erased storage, if it holds this type.
    fn slice(data: &super::storage::Storage) -> Option<&[Self]>;
    fn slice_mut(data: &mut super::storage::Storage) -> Option<&mut [Self]>;
    /// The typed vector of host storage holding this type.
    fn vec(data: &super::storage::Storage) -> Option<&Vec<Self>>;
    fn vec_mut(data: &mut super::storage::Storage) -> Option<&mut Vec<Self>>;
    fn wrap(v: Vec<Self>) -> super::storage::Storage;
    /// The typed elements of storage holding this type (else the storage, unchanged).
    fn unwrap_vec(
        s: super::storage::Storage,
    ) -> std::result::Result<Vec<Self>, super::storage::Storage>;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn slice(data: &super::storage::Storage) -> Option<&[Self]> {
        match data {
            super::storage::Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(data: &mut super::storage::Storage) -> Option<&mut [Self]> {
        match data {
            super::storage::Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn vec(data: &super::storage::Storage) -> Option<&Vec<Self>> {
        match data {
            super::storage::Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn vec_mut(data: &mut super::storage::Storage) -> Option<&mut Vec<Self>> {
        match data {
            super::storage::Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> super::storage::Storage {
        super::storage::Storage::F32(v)
    }
    fn unwrap_vec(
        s: super::storage::Storage,
    ) -> std::result::Result<Vec<Self>, super::storage::Storage> {
        match s {
            super::storage::Storage::F32(v) => Ok(v),
            other => Err(other),
        }
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    fn slice(data: &super::storage::Storage) -> Option<&[Self]> {
        match data {
            super::storage::Storage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(data: &mut super::storage::Storage) -> Option<&mut [Self]> {
        match data {
            super::storage::Storage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn vec(data: &super::storage::Storage) -> Option<&Vec<Self>> {
        match data {
            super::storage::Storage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn vec_mut(data: &mut super::storage::Storage) -> Option<&mut Vec<Self>> {
        match data {
            super::storage::Storage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> super::storage::Storage {
        super::storage::Storage::F64(v)
    }
    fn unwrap_vec(
        s: super::storage::Storage,
    ) -> std::result::Result<Vec<Self>, super::storage::Storage> {
        match s {
            super::storage::Storage::F64(v) => Ok(v),
            other => Err(other),
        }
    }
}
