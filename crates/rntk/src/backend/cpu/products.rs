//! `Products` on the CPU: GEMM through `gemm.rs`, batches as a loop of GEMMs, sparse
//! rows times a dense matrix row by row.

use super::gemm::{gemm, Mat, MatMut};
use super::Cpu;
use crate::backend::products::{Batch, Products};
use crate::backend::{MatMut as BMatMut, MatRef, Par, SparseRows};
use crate::tensor::Element;

fn mat<'a, T: Element>(m: MatRef<'a, Cpu, T>) -> Mat<'a, T> {
    Mat {
        data: m.data,
        rows: m.rows,
        cols: m.cols,
        rs: m.rs,
        cs: m.cs,
    }
}

/// The elements a strided view touches, from its first (0 for an empty view).
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl Products for Cpu {
    fn gemm<T: Element>(
        &self,
        a: MatRef<'_, Cpu, T>,
        b: MatRef<'_, Cpu, T>,
        c: BMatMut<'_, Cpu, T>,
        accumulate: bool,
        par: Par,
    ) {
        let mut c = MatMut {
            data: c.data,
            rows: c.rows,
            cols: c.cols,
            rs: c.rs,
            cs: c.cs,
        };
        gemm(&mat(a), &mat(b), &mut c, accumulate, par);
    }

    fn gemm_batched<T: Element>(
        &self,
        batch: Batch,
        a: MatRef<'_, Cpu, T>,
        b: MatRef<'_, Cpu, T>,
        c: BMatMut<'_, Cpu, T>,
        accumulate: bool,
        par: Par,
    ) {
        let (la, lb) = (
            span(a.rows, a.cols, a.rs, a.cs),
            span(b.rows, b.cols, b.rs, b.cs),
        );
        let lc = span(c.rows, c.cols, c.rs, c.cs);
        for q in 0..batch.count {
            let (oa, ob, oc) = (q * batch.a, q * batch.b, q * batch.c);
            let am = Mat {
                data: &a.data[oa..oa + la],
                ..mat(a)
            };
            let bm = Mat {
                data: &b.data[ob..ob + lb],
                ..mat(b)
            };
            let mut cm = MatMut {
                data: &mut c.data[oc..oc + lc],
                rows: c.rows,
                cols: c.cols,
                rs: c.rs,
                cs: c.cs,
            };
            gemm(&am, &bm, &mut cm, accumulate, par);
        }
    }

    fn sparse_times<T: Element>(
        &self,
        a: SparseRows<'_, Cpu, T>,
        b: &[T],
        (k, o): (usize, usize),
        transposed: bool,
        out: &mut [T],
    ) {
        let n = a.rows();
        let sp = a.m;
        out[..n * o].iter_mut().for_each(|v| *v = T::zero());
        for r in 0..n {
            let orow = &mut out[r * o..(r + 1) * o];
            for e in sp.indptr[a.r0 + r]..sp.indptr[a.r0 + r + 1] {
                let (c, v) = (sp.indices[e] as usize, sp.values[e]);
                if transposed {
                    for (j, y) in orow.iter_mut().enumerate() {
                        *y += v * b[j * k + c];
                    }
                } else {
                    for (y, &w) in orow.iter_mut().zip(&b[c * o..(c + 1) * o]) {
                        *y += v * w;
                    }
                }
            }
        }
    }

    fn sparse_times_backward<T: Element>(
        &self,
        a: SparseRows<'_, Cpu, T>,
        dout: &[T],
        (k, o): (usize, usize),
        transposed: bool,
        db: &mut [T],
    ) {
        let sp = a.m;
        for r in 0..a.rows() {
            let grow = &dout[r * o..(r + 1) * o];
            for e in sp.indptr[a.r0 + r]..sp.indptr[a.r0 + r + 1] {
                let (c, v) = (sp.indices[e] as usize, sp.values[e]);
                if transposed {
                    for (j, &g) in grow.iter().enumerate() {
                        db[j * k + c] += v * g;
                    }
                } else {
                    for (d, &g) in db[c * o..(c + 1) * o].iter_mut().zip(grow) {
                        *d += v * g;
                    }
                }
            }
        }
    }
}
