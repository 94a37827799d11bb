//! Compressed sparse rows: one row per sample, so a sparse input times a dense
//! matrix is a sparse × dense product that never densifies the input.

use super::Element;
use crate::error::{Error, Result};

/// CSR matrix of `rows` samples, each a vector of `cols` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr<T> {
    pub rows: usize,
    pub cols: usize,
    /// `indptr[r]..indptr[r+1]` indexes row r's entries; length rows + 1.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<T>,
}

impl<T: Element> Csr<T> {
    /// One-hot rows: row r has a single 1 at column `idx[r]`.
    pub fn one_hot(idx: &[usize], cols: usize) -> Result<Self> {
        if let Some((r, &bad)) = idx.iter().enumerate().find(|(_, &i)| i >= cols) {
            return Err(Error::InvalidValue(format!(
                "one-hot index {bad} in row {r} is out of range for dimension {cols}"
            )));
        }
        Ok(Csr {
            rows: idx.len(),
            cols,
            indptr: (0..=idx.len()).collect(),
            indices: idx.iter().map(|&i| i as u32).collect(),
            values: vec![T::one(); idx.len()],
        })
    }

    /// Check the structural invariants; hostile data is refused, never trusted.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidValue(format!("sparse value: {m}")));
        if self.indptr.len() != self.rows + 1 {
            return bad(format!(
                "indptr has {} entries for {} rows (needs rows + 1)",
                self.indptr.len(),
                self.rows
            ));
        }
        if self.indptr[0] != 0 || self.indptr.windows(2).any(|w| w[0] > w[1]) {
            return bad("indptr must start at 0 and never decrease".into());
        }
        let nnz = self.indptr[self.rows];
        if self.indices.len() != nnz || self.values.len() != nnz {
            return bad(format!(
                "indptr ends at {nnz} but there are {} indices and {} values",
                self.indices.len(),
                self.values.len()
            ));
        }
        if let Some(i) = self.indices.iter().find(|&&i| i as usize >= self.cols) {
            return bad(format!(
                "column index {i} out of range for dimension {}",
                self.cols
            ));
        }
        Ok(())
    }

    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Dense copy (for tests and small outputs only).
    pub fn to_dense(&self) -> Vec<T> {
        let mut d = vec![T::zero(); self.rows * self.cols];
        for r in 0..self.rows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                d[r * self.cols + self.indices[k] as usize] += self.values[k];
            }
        }
        d
    }

    /// Rows `r0..r1` as a new matrix (used to feed one time step of a loop).
    pub fn row_range(&self, r0: usize, r1: usize) -> Csr<T> {
        let (a, b) = (self.indptr[r0], self.indptr[r1]);
        Csr {
            rows: r1 - r0,
            cols: self.cols,
            indptr: self.indptr[r0..=r1].iter().map(|&p| p - a).collect(),
            indices: self.indices[a..b].to_vec(),
            values: self.values[a..b].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn one_hot_round_trip_and_refusals() {
        let m = Csr::<f32>::one_hot(&[2, 0], 3).unwrap();
        assert_eq!(m.to_dense(), vec![0., 0., 1., 1., 0., 0.]);
        m.validate().unwrap();
        assert!(Csr::<f32>::one_hot(&[3], 3).is_err());
        let mut bad = m.clone();
        bad.indices[0] = 7;
        assert!(bad.validate().is_err());
        let mut bad = m;
        bad.indptr = vec![0, 2, 1];
        assert!(bad.validate().is_err());
    }
}
