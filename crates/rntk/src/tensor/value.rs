//! `Value`: the data of one variable for one minibatch — a static shape, a dynamic
//! layout (none, batch, packed sequences) and dense or sparse rows.

use super::layout::{Layout, PackedLayout};
use super::storage::Storage;
use super::{Csr, DType, Element, Shape};
use crate::error::{Error, Result};
use std::sync::Arc;

/// The elements of a value: one row per sample, in layout order.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueData {
    Dense(Storage),
    SparseF32(Csr<f32>),
    SparseF64(Csr<f64>),
}

/// One minibatch's data for a variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    shape: Shape,
    layout: Layout,
    data: ValueData,
}

impl Value {
    /// A value from its parts, checked: the data must hold exactly
    /// `layout.rows() × shape.numel()` elements.
    pub fn new(shape: Shape, layout: Layout, data: ValueData) -> Result<Self> {
        let v = Value {
            shape,
            layout,
            data,
        };
        v.validate()?;
        Ok(v)
    }

    fn validate(&self) -> Result<()> {
        if self.shape.has_inferred() {
            return Err(Error::InvalidValue(format!(
                "value shape {} has an inferred dimension",
                self.shape
            )));
        }
        let rows = self.layout.rows();
        let numel = self.shape.numel();
        match &self.data {
            ValueData::Dense(s) => {
                if s.len() != rows * numel {
                    return Err(Error::InvalidValue(format!(
                        "data has {} elements but the layout ({}) × sample shape {} needs {}",
                        s.len(),
                        self.layout.describe(),
                        self.shape,
                        rows * numel
                    )));
                }
            }
            ValueData::SparseF32(c) => Self::check_csr(c, rows, numel, &self.layout)?,
            ValueData::SparseF64(c) => Self::check_csr(c, rows, numel, &self.layout)?,
        }
        Ok(())
    }

    fn check_csr<T: Element>(c: &Csr<T>, rows: usize, numel: usize, l: &Layout) -> Result<()> {
        c.validate()?;
        if c.rows != rows || c.cols != numel {
            return Err(Error::InvalidValue(format!(
                "sparse data is {}×{} but the layout ({}) and sample size {numel} need {rows}×{numel}",
                c.rows,
                c.cols,
                l.describe()
            )));
        }
        Ok(())
    }

    /// Variable-length sequences, caller order; `seqs[i]` holds `T_i` samples of
    /// `shape`, flattened row-major.
    pub fn from_sequences<T: Element>(shape: impl Into<Shape>, seqs: &[Vec<T>]) -> Result<Self> {
        let shape = shape.into();
        let numel = shape.numel();
        if numel == 0 {
            return Err(Error::InvalidValue(format!(
                "sample shape {shape} has no elements"
            )));
        }
        let mut lengths = Vec::with_capacity(seqs.len());
        for (i, s) in seqs.iter().enumerate() {
            if s.len() % numel != 0 {
                return Err(Error::InvalidValue(format!(
                    "sequence {i} has {} elements, not a multiple of the sample size {numel} of shape {shape}",
                    s.len()
                )));
            }
            lengths.push(s.len() / numel);
        }
        let packed = PackedLayout::new(&lengths)?;
        let mut data = vec![T::zero(); packed.total() * numel];
        for (i, s) in seqs.iter().enumerate() {
            for t in 0..lengths[i] {
                let r = packed.row(i, t);
                data[r * numel..(r + 1) * numel].copy_from_slice(&s[t * numel..(t + 1) * numel]);
            }
        }
        Ok(Value {
            shape,
            layout: Layout::Sequence(Arc::new(packed)),
            data: ValueData::Dense(T::wrap(data)),
        })
    }

    /// Sparse one-hot sequences: `seqs[i][t]` is the hot index of step t.
    pub fn one_hot_sequences<T: Element>(dim: usize, seqs: &[Vec<usize>]) -> Result<Self> {
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let packed = PackedLayout::new(&lengths)?;
        let mut idx = vec![0usize; packed.total()];
        for (i, s) in seqs.iter().enumerate() {
            for (t, &k) in s.iter().enumerate() {
                idx[packed.row(i, t)] = k;
            }
        }
        let csr = Csr::<T>::one_hot(&idx, dim)?;
        Ok(Value {
            shape: Shape::from([dim]),
            layout: Layout::Sequence(Arc::new(packed)),
            data: Self::wrap_csr(csr),
        })
    }

    /// Sparse one-hot batch: sample r is hot at `idx[r]`.
    pub fn one_hot_batch<T: Element>(dim: usize, idx: &[usize]) -> Result<Self> {
        if idx.is_empty() {
            return Err(Error::InvalidValue(
                "a batch needs at least one sample".into(),
            ));
        }
        let csr = Csr::<T>::one_hot(idx, dim)?;
        Ok(Value {
            shape: Shape::from([dim]),
            layout: Layout::Batch(idx.len()),
            data: Self::wrap_csr(csr),
        })
    }

    fn wrap_csr<T: Element>(c: Csr<T>) -> ValueData {
        // Element is only implemented for f32 and f64; pick the matching variant.
        match T::DTYPE {
            DType::F32 => ValueData::SparseF32(Csr {
                rows: c.rows,
                cols: c.cols,
                indptr: c.indptr,
                indices: c.indices,
                values: c.values.iter().map(|v| v.as_f64() as f32).collect(),
            }),
            DType::F64 => ValueData::SparseF64(Csr {
                rows: c.rows,
                cols: c.cols,
                indptr: c.indptr,
                indices: c.indices,
                values: c.values.iter().map(|v| v.as_f64()).collect(),
            }),
        }
    }

    /// Sparse rows under any layout (checked against it).
    pub fn from_csr<T: Element>(
        shape: impl Into<Shape>,
        layout: Layout,
        csr: Csr<T>,
    ) -> Result<Self> {
        Value::new(shape.into(), layout, Self::wrap_csr(csr))
    }

    /// `n` samples with only a batch axis; `data` is `n × shape` row-major.
    pub fn batch<T: Element>(shape: impl Into<Shape>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        let numel = shape.numel();
        if numel == 0 || !data.len().is_multiple_of(numel) || data.is_empty() {
            return Err(Error::InvalidValue(format!(
                "{} elements do not form a whole number (≥ 1) of samples of shape {shape}",
                data.len()
            )));
        }
        let n = data.len() / numel;
        Ok(Value {
            shape,
            layout: Layout::Batch(n),
            data: ValueData::Dense(T::wrap(data)),
        })
    }

    /// A value with no dynamic axes.
    pub fn from_static<T: Element>(shape: impl Into<Shape>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        Value::new(shape, Layout::Static, ValueData::Dense(T::wrap(data)))
    }

    /// Dense packed rows with any layout (used by the runtime).
    pub fn from_rows<T: Element>(shape: Shape, layout: Layout, rows: Vec<T>) -> Result<Self> {
        Value::new(shape, layout, ValueData::Dense(T::wrap(rows)))
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn data(&self) -> &ValueData {
        &self.data
    }
    pub fn dtype(&self) -> DType {
        match &self.data {
            ValueData::Dense(s) => s.dtype(),
            ValueData::SparseF32(_) => DType::F32,
            ValueData::SparseF64(_) => DType::F64,
        }
    }
    pub fn is_sparse(&self) -> bool {
        !matches!(self.data, ValueData::Dense(_))
    }
    /// Number of samples (rows) in this value.
    pub fn num_samples(&self) -> usize {
        self.layout.rows()
    }
    /// Number of sequences (or samples for a batch-only value, 1 for a static one).
    pub fn num_sequences(&self) -> usize {
        match &self.layout {
            Layout::Static => 1,
            Layout::Batch(n) => *n,
            Layout::Sequence(p) => p.num_sequences(),
        }
    }

    /// Dense rows in layout order, converted to `T` (sparse values are densified).
    pub fn dense_rows<T: Element>(&self) -> Vec<T> {
        match &self.data {
            ValueData::Dense(s) => match T::slice(s) {
                Some(v) => v.to_vec(),
                None => s.to_f64_vec().into_iter().map(T::from_f64).collect(),
            },
            ValueData::SparseF32(c) => c
                .to_dense()
                .into_iter()
                .map(|x| T::from_f64(x as f64))
                .collect(),
            ValueData::SparseF64(c) => c.to_dense().into_iter().map(T::from_f64).collect(),
        }
    }

    /// Per-sequence data in the caller's order (each flattened `T_i × shape`).
    /// A batch-only value gives one single-step "sequence" per sample.
    pub fn to_sequences<T: Element>(&self) -> Vec<Vec<T>> {
        let numel = self.shape.numel();
        let rows = self.dense_rows::<T>();
        match &self.layout {
            Layout::Sequence(p) => (0..p.num_sequences())
                .map(|i| {
                    let mut s = Vec::with_capacity(p.lengths()[i] * numel);
                    for t in 0..p.lengths()[i] {
                        let r = p.row(i, t);
                        s.extend_from_slice(&rows[r * numel..(r + 1) * numel]);
                    }
                    s
                })
                .collect(),
            _ => rows.chunks(numel.max(1)).map(|c| c.to_vec()).collect(),
        }
    }

    /// A value without dynamic axes (e.g. a parameter's gradient) as a tensor.
    pub fn to_tensor(&self) -> Result<super::Tensor> {
        match (&self.layout, &self.data) {
            (Layout::Static, ValueData::Dense(s)) => {
                let mut t = super::Tensor::zeros(self.shape.clone(), s.dtype());
                *t.storage_mut() = s.clone();
                Ok(t)
            }
            _ => Err(Error::InvalidValue(format!(
                "only a dense value without dynamic axes converts to a tensor, this one has {}",
                self.layout.describe()
            ))),
        }
    }

    /// The elements, giving up the value (no copy; the Python bindings hand them to numpy).
    pub fn into_data(self) -> ValueData {
        self.data
    }

    /// [`Value::to_tensor`] without copying the elements (the value is consumed).
    pub fn into_tensor(self) -> Result<super::Tensor> {
        match (self.layout, self.data) {
            // `Value::new` checked that the storage holds exactly the shape's elements.
            (Layout::Static, ValueData::Dense(s)) => Ok(super::Tensor::from_storage(self.shape, s)),
            (layout, _) => Err(Error::InvalidValue(format!(
                "only a dense value without dynamic axes converts to a tensor, this one has {}",
                layout.describe()
            ))),
        }
    }

    /// All samples in the caller's order, flattened (sequence after sequence).
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        match &self.layout {
            Layout::Sequence(_) => self.to_sequences::<T>().concat(),
            _ => self.dense_rows::<T>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sequences_round_trip_in_caller_order() {
        let seqs = vec![
            vec![1.0f32, 2., 3.],
            vec![4.0],
            vec![5., 6., 7., 8., 9.],
            vec![10., 11.],
        ];
        let v = Value::from_sequences([1], &seqs).unwrap();
        assert_eq!(v.to_sequences::<f32>(), seqs);
        assert_eq!(
            v.dense_rows::<f32>(),
            vec![5., 1., 10., 4., 6., 2., 11., 7., 3., 8., 9.]
        );
        assert_eq!(v.num_samples(), 11);
    }
    #[test]
    fn refuses_inconsistent_data() {
        assert!(Value::from_sequences([2], &[vec![1.0f32, 2., 3.]]).is_err());
        assert!(Value::from_sequences::<f32>([2], &[vec![]]).is_err());
        let p = PackedLayout::new(&[2, 1]).unwrap();
        let e = Value::from_rows(
            Shape::from([2]),
            Layout::Sequence(Arc::new(p)),
            vec![0.0f32; 4],
        );
        assert!(matches!(e, Err(Error::InvalidValue(_))));
        assert!(Value::batch([3], vec![1.0f64; 4]).is_err());
    }
    #[test]
    fn one_hot_sequences_are_sparse() {
        let v = Value::one_hot_sequences::<f32>(4, &[vec![1, 3], vec![2]]).unwrap();
        assert!(v.is_sparse());
        assert_eq!(
            v.to_sequences::<f32>(),
            vec![vec![0., 1., 0., 0., 0., 0., 0., 1.], vec![0., 0., 1., 0.]]
        );
        assert!(Value::one_hot_sequences::<f32>(4, &[vec![4]]).is_err());
    }
}
