//! Stream configuration (`StreamDef`, CNTK's `StreamDef`/`StreamDefs`) and the
//! description a source gives of each stream it delivers (`StreamInformation`).

use crate::tensor::{DType, Shape};

/// How a stream's samples are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageFormat {
    Dense,
    /// Compressed rows (CNTK delivers sparse CTF streams as sparse CSC; rntk's
    /// sparse values are CSR with one row per sample, the same data).
    Sparse,
}

/// One stream to read: the name the source exposes, the field name inside the file,
/// its dimension, storage and whether it alone defines the minibatch size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDef {
    /// Name exposed by the source (CNTK: the `StreamDefs` keyword).
    pub name: String,
    /// Name of the stream inside the file (CNTK: `StreamDef(field=...)`).
    pub field: String,
    pub dim: usize,
    pub sparse: bool,
    pub defines_mb_size: bool,
}

impl StreamDef {
    /// A dense stream whose field name in the file equals `name`.
    pub fn dense(name: &str, dim: usize) -> Self {
        StreamDef {
            name: name.to_string(),
            field: name.to_string(),
            dim,
            sparse: false,
            defines_mb_size: false,
        }
    }
    /// A sparse (`index:value`) stream whose field name equals `name`.
    pub fn sparse(name: &str, dim: usize) -> Self {
        StreamDef {
            sparse: true,
            ..StreamDef::dense(name, dim)
        }
    }
    /// Read the stream from field `field` of the file (the exposed name stays).
    pub fn field(mut self, field: &str) -> Self {
        self.field = field.to_string();
        self
    }
    /// Only streams marked so count toward the minibatch size (readers.md §3.2).
    pub fn defines_mb_size(mut self, yes: bool) -> Self {
        self.defines_mb_size = yes;
        self
    }
}

/// What a source delivers for one stream (CNTK's `StreamInformation`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInformation {
    pub name: String,
    /// Position of the stream in the source's stream list.
    pub id: usize,
    pub storage_format: StorageFormat,
    pub element_type: DType,
    pub sample_shape: Shape,
    pub defines_mb_size: bool,
}

impl StreamInformation {
    pub fn is_sparse(&self) -> bool {
        self.storage_format == StorageFormat::Sparse
    }
    /// Number of elements in one sample.
    pub fn sample_size(&self) -> usize {
        self.sample_shape.numel()
    }
}
