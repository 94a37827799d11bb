//! `Products` on the GPU: GEMM through cuBLAS on strided views (a view with a unit
//! stride along one axis is a column-major matrix or its transpose; C = A·B is run
//! as Cᵀ = Bᵀ·Aᵀ when C is row-major), batches through `gemmStridedBatched`, sparse
//! rows times dense through a CSR kernel. fp32 in cuBLAS's default math mode (no
//! TF32).

use super::{flag, p, pm, u};
use crate::device::{fault, Cuda, KArg};
use crate::memory::{dev_ptr, CMut, CRef, CudaSparse};
use cudarc::cublas::result as blas;
use cudarc::cublas::sys::cublasOperation_t as Op;
use rntk::backend::products::{Batch, Products};
use rntk::backend::{Cpu, MatMut, MatRef, Par, SparseRows};
use rntk::tensor::{DType, Element};

/// How cuBLAS reads an `r × c` view with strides `(rs, cs)`: as a column-major matrix
/// (`false`) or the transpose of one (`true`), with its leading dimension.
fn as_colmajor(r: usize, c: usize, rs: usize, cs: usize) -> Option<(bool, usize)> {
    if rs == 1 || r <= 1 {
        let ld = if c <= 1 { r.max(1) } else { cs };
        if ld >= r.max(1) {
            return Some((false, ld));
        }
    }
    if cs == 1 || c <= 1 {
        let ld = if r <= 1 { c.max(1) } else { rs };
        if ld >= c.max(1) {
            return Some((true, ld));
        }
    }
    None
}

fn op(t: bool) -> Op {
    if t {
        Op::CUBLAS_OP_T
    } else {
        Op::CUBLAS_OP_N
    }
}

/// One cuBLAS call's arguments, column-major: `C = op(A)·op(B)`, `C` m × n.
#[derive(Clone, Copy, Debug)]
struct Call {
    ta: bool,
    tb: bool,
    m: i32,
    n: i32,
    k: i32,
    a: (u64, i32, i64),
    b: (u64, i32, i64),
    c: (u64, i32, i64),
}

fn int(x: usize) -> i32 {
    i32::try_from(x)
        .unwrap_or_else(|_| fault("a cuBLAS product", format!("dimension {x} exceeds i32")))
}

/// The cuBLAS call for `c = a·b` (strides per product for a batch), or `None` when a
/// view has no unit stride.
fn plan<T: Element>(
    a: &MatRef<'_, Cuda, T>,
    b: &MatRef<'_, Cuda, T>,
    c: &MatMut<'_, Cuda, T>,
    s: (usize, usize, usize),
) -> Option<Call> {
    let pa = as_colmajor(a.rows, a.cols, a.rs, a.cs)?;
    let pb = as_colmajor(b.rows, b.cols, b.rs, b.cs)?;
    let pc = as_colmajor(c.rows, c.cols, c.rs, c.cs)?;
    let (m, n, k) = (int(c.rows), int(c.cols), int(a.cols));
    let ea = (a.data.ptr, int(pa.1), s.0 as i64);
    let eb = (b.data.ptr, int(pb.1), s.1 as i64);
    let ec = (c.data.ptr, int(pc.1), s.2 as i64);
    Some(if !pc.0 {
        Call {
            ta: pa.0,
            tb: pb.0,
            m,
            n,
            k,
            a: ea,
            b: eb,
            c: ec,
        }
    } else {
        // Cᵀ = Bᵀ·Aᵀ: B's matrix first, each transpose flag flipped
        Call {
            ta: !pb.0,
            tb: !pa.0,
            m: n,
            n: m,
            k,
            a: eb,
            b: ea,
            c: ec,
        }
    })
}

/// One cuBLAS product of element type `$t` through its routines (`$gemm` for one
/// product, `$batched` for a strided batch): alpha 1, beta 1 when accumulating, else 0.
macro_rules! cublas_gemm {
    ($h:expr, $x:expr, $ops:expr, $acc:expr, $count:expr, $t:ty, $gemm:path, $batched:path) => {{
        let (x, (ta, tb)): (&Call, (Op, Op)) = ($x, $ops);
        let al: $t = 1.0;
        let be: $t = if $acc { 1.0 } else { 0.0 };
        let f = |p: u64| p as *const $t;
        let c = x.c.0 as *mut $t;
        if $count == 1 {
            $gemm(
                $h,
                ta,
                tb,
                x.m,
                x.n,
                x.k,
                &al,
                f(x.a.0),
                x.a.1,
                f(x.b.0),
                x.b.1,
                &be,
                c,
                x.c.1,
            )
        } else {
            $batched(
                $h,
                ta,
                tb,
                x.m,
                x.n,
                x.k,
                &al,
                f(x.a.0),
                x.a.1,
                x.a.2,
                f(x.b.0),
                x.b.1,
                x.b.2,
                &be,
                c,
                x.c.1,
                x.c.2,
                int($count),
            )
        }
    }};
}

impl Cuda {
    /// Run `call` (`count` products; 1 for a plain GEMM).
    fn blas<T: Element>(&self, x: &Call, accumulate: bool, count: usize) {
        self.bind();
        let h = self.inner.blas.0;
        let ops = (op(x.ta), op(x.tb));
        // SAFETY: the views are live device buffers holding every product's operands
        // (checked by the op's shape rule); alpha/beta are host scalars.
        let r = unsafe {
            match T::DTYPE {
                DType::F32 => cublas_gemm!(
                    h,
                    x,
                    ops,
                    accumulate,
                    count,
                    f32,
                    blas::sgemm,
                    blas::sgemm_strided_batched
                ),
                DType::F64 => cublas_gemm!(
                    h,
                    x,
                    ops,
                    accumulate,
                    count,
                    f64,
                    blas::dgemm,
                    blas::dgemm_strided_batched
                ),
            }
        };
        r.unwrap_or_else(|e| fault("a cuBLAS product", e));
    }

    /// The product on the host (a view without a unit stride).
    fn gemm_host<T: Element>(
        &self,
        (a, b, c): (
            MatRef<'_, Cuda, T>,
            MatRef<'_, Cuda, T>,
            MatMut<'_, Cuda, T>,
        ),
        accumulate: bool,
    ) {
        self.on_host("gemm (strided)");
        let (ha, hb, mut hc) = (
            self.fetch(a.data),
            self.fetch(b.data),
            self.fetch_mut(&c.data),
        );
        let ma = MatRef::<Cpu, T> {
            data: &ha,
            rows: a.rows,
            cols: a.cols,
            rs: a.rs,
            cs: a.cs,
        };
        let mb = MatRef::<Cpu, T> {
            data: &hb,
            rows: b.rows,
            cols: b.cols,
            rs: b.rs,
            cs: b.cs,
        };
        let mc = MatMut::<Cpu, T> {
            data: &mut hc,
            rows: c.rows,
            cols: c.cols,
            rs: c.rs,
            cs: c.cs,
        };
        Cpu.gemm(ma, mb, mc, accumulate, Par::Seq);
        self.put(&hc, c.data);
    }

    pub(super) fn sparse_args<T: Element>(&self, s: &SparseRows<'_, Cuda, T>) -> [KArg; 3] {
        let m: &CudaSparse<T> = s.m;
        let indptr = m
            .indptr
            .as_ref()
            .map_or(0, |x| dev_ptr(x, self) + 8 * s.r0 as u64);
        let indices = m.indices.as_ref().map_or(0, |x| dev_ptr(x, self));
        [KArg::U(indptr), KArg::U(indices), KArg::U(m.values.ptr)]
    }
}

impl Products for Cuda {
    fn gemm<T: Element>(
        &self,
        a: MatRef<'_, Cuda, T>,
        b: MatRef<'_, Cuda, T>,
        c: MatMut<'_, Cuda, T>,
        accumulate: bool,
        _par: Par,
    ) {
        if c.rows == 0 || c.cols == 0 {
            return;
        }
        match plan(&a, &b, &c, (0, 0, 0)) {
            Some(call) => self.blas::<T>(&call, accumulate, 1),
            None => self.gemm_host((a, b, c), accumulate),
        }
    }

    fn gemm_batched<T: Element>(
        &self,
        batch: Batch,
        a: MatRef<'_, Cuda, T>,
        b: MatRef<'_, Cuda, T>,
        c: MatMut<'_, Cuda, T>,
        accumulate: bool,
        _par: Par,
    ) {
        if c.rows == 0 || c.cols == 0 || batch.count == 0 {
            return;
        }
        let sz = std::mem::size_of::<T>() as u64;
        let call = plan(&a, &b, &c, (batch.a, batch.b, batch.c));
        match call {
            // products writing one C in turn: one call each (a batch would race)
            Some(mut x) if batch.c == 0 && batch.count > 1 => {
                let (a0, b0) = (x.a.0, x.b.0);
                for q in 0..batch.count as u64 {
                    x.a.0 = a0 + q * x.a.2 as u64 * sz;
                    x.b.0 = b0 + q * x.b.2 as u64 * sz;
                    self.blas::<T>(&x, accumulate || q > 0, 1);
                }
            }
            Some(x) => self.blas::<T>(&x, accumulate, batch.count),
            None => {
                for q in 0..batch.count {
                    let at = |m: CRef<'_, T>, s: usize| {
                        CRef::new(m.ptr + (q * s) as u64 * sz, m.len - q * s)
                    };
                    let aq = MatRef {
                        data: at(a.data, batch.a),
                        ..a
                    };
                    let bq = MatRef {
                        data: at(b.data, batch.b),
                        ..b
                    };
                    let cd = CMut::from_raw(
                        c.data.ptr + (q * batch.c) as u64 * sz,
                        c.data.len - q * batch.c,
                    );
                    let cq = MatMut {
                        data: cd,
                        rows: c.rows,
                        cols: c.cols,
                        rs: c.rs,
                        cs: c.cs,
                    };
                    self.gemm_host((aq, bq, cq), accumulate || (batch.c == 0 && q > 0));
                }
            }
        }
    }

    fn sparse_times<T: Element>(
        &self,
        a: SparseRows<'_, Cuda, T>,
        b: CRef<'_, T>,
        (k, o): (usize, usize),
        transposed: bool,
        out: CMut<'_, T>,
    ) {
        let n = a.rows();
        let [ip, ix, v] = self.sparse_args(&a);
        let args = [
            ip,
            ix,
            v,
            u(n),
            p(b),
            u(k),
            u(o),
            flag(transposed),
            pm(&out),
        ];
        self.launch::<T>("sparse_times", n * o, &args);
    }

    fn sparse_times_backward<T: Element>(
        &self,
        a: SparseRows<'_, Cuda, T>,
        dout: CRef<'_, T>,
        (k, o): (usize, usize),
        transposed: bool,
        db: CMut<'_, T>,
    ) {
        let n = a.rows();
        let [ip, ix, v] = self.sparse_args(&a);
        let args = [
            ip,
            ix,
            v,
            u(n),
            p(dout),
            u(k),
            u(o),
            flag(transposed),
            pm(&db),
        ];
        self.launch::<T>("sparse_times_bwd", n * o, &args);
    }
}

#[cfg(test)]
mod tests {
    //! The cuBLAS call plans, checked without a GPU: each plan is run by a host model
    //! of column-major `gemm` (cuBLAS's documented semantics) on the same memory and
    //! compared with the row-major product of the strided views.
    use super::*;
    use crate::memory::CMut;

    /// A view over `data` at element `off` (pointers are element offsets here).
    fn view<'a>(off: usize, len: usize) -> CRef<'a, f64> {
        CRef::new(off as u64, len)
    }

    fn at(m: (usize, usize, usize, usize, usize), i: usize, j: usize) -> usize {
        m.0 + i * m.3 + j * m.4
    }

    /// cuBLAS's column-major `C = op(A)·op(B) (+ C)` on `mem` (pointers as offsets).
    fn model(x: &Call, mem: &mut [f64], acc: bool, count: usize) {
        for q in 0..count as i64 {
            for i in 0..x.m as usize {
                for j in 0..x.n as usize {
                    let mut s = 0.0;
                    for l in 0..x.k as usize {
                        let (a0, b0) = (
                            (x.a.0 as i64 + q * x.a.2) as usize,
                            (x.b.0 as i64 + q * x.b.2) as usize,
                        );
                        let a = if x.ta {
                            mem[a0 + l + i * x.a.1 as usize]
                        } else {
                            mem[a0 + i + l * x.a.1 as usize]
                        };
                        let b = if x.tb {
                            mem[b0 + j + l * x.b.1 as usize]
                        } else {
                            mem[b0 + l + j * x.b.1 as usize]
                        };
                        s += a * b;
                    }
                    let c = (x.c.0 as i64 + q * x.c.2) as usize + i + j * x.c.1 as usize;
                    mem[c] = if acc { mem[c] + s } else { s };
                }
            }
        }
    }

    /// (offset, rows, cols, rs, cs) of A (m×k), B (k×n), C (m×n) in one memory.
    type Geo = (usize, usize, usize, usize, usize);

    fn check(a: Geo, b: Geo, c: Geo, batch: (usize, usize, usize, usize), acc: bool) {
        let mut mem: Vec<f64> = (0..4096)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 16.0)
            .collect();
        let mut want = mem.clone();
        for q in 0..batch.0 {
            for i in 0..c.1 {
                for j in 0..c.2 {
                    let s: f64 = (0..a.2)
                        .map(|l| want[at(a, i, l) + q * batch.1] * want[at(b, l, j) + q * batch.2])
                        .sum();
                    let ci = at(c, i, j) + q * batch.3;
                    want[ci] = if acc || (batch.3 == 0 && q > 0) {
                        want[ci] + s
                    } else {
                        s
                    };
                }
            }
        }
        let ma = MatRef::<Cuda, f64> {
            data: view(a.0, 1000),
            rows: a.1,
            cols: a.2,
            rs: a.3,
            cs: a.4,
        };
        let mb = MatRef::<Cuda, f64> {
            data: view(b.0, 1000),
            rows: b.1,
            cols: b.2,
            rs: b.3,
            cs: b.4,
        };
        let mc = MatMut::<Cuda, f64> {
            data: CMut::from_raw(c.0 as u64, 1000),
            rows: c.1,
            cols: c.2,
            rs: c.3,
            cs: c.4,
        };
        let x = plan(&ma, &mb, &mc, (batch.1, batch.2, batch.3)).expect("a unit stride");
        if batch.3 == 0 && batch.0 > 1 {
            let mut x = x;
            let (a0, b0) = (x.a.0, x.b.0);
            for q in 0..batch.0 as u64 {
                x.a.0 = a0 + q * x.a.2 as u64;
                x.b.0 = b0 + q * x.b.2 as u64;
                model(&x, &mut mem, acc || q > 0, 1);
            }
        } else {
            model(&x, &mut mem, acc, batch.0);
        }
        assert_eq!(
            mem,
            want,
            "plan {:?}",
            (x.ta, x.tb, x.m, x.n, x.k, x.a, x.b, x.c)
        );
    }

    #[test]
    fn every_layout_of_a_product_maps_to_cublas() {
        let (m, k, n) = (3, 4, 5);
        // A m×k row-major / transposed view of k×m; B likewise; C row- or column-major
        let aa = [(0, m, k, k, 1), (0, m, k, 1, m)];
        let bb = [(100, k, n, n, 1), (100, k, n, 1, k)];
        let cc = [(300, m, n, n, 1), (300, m, n, 1, m), (300, m, n, 8, 1)];
        for a in aa {
            for b in bb {
                for c in cc {
                    for acc in [false, true] {
                        check(a, b, c, (1, 0, 0, 0), acc);
                    }
                }
            }
        }
        // vectors: a row times a matrix, a matrix times a column
        check(
            (0, 1, k, k, 1),
            (100, k, n, n, 1),
            (300, 1, n, n, 1),
            (1, 0, 0, 0),
            false,
        );
        check(
            (0, m, k, k, 1),
            (100, k, 1, 1, 1),
            (300, m, 1, 1, 1),
            (1, 0, 0, 0),
            false,
        );
        check(
            (0, m, k, 1, m),
            (100, k, 1, 1, 7),
            (300, m, 1, 1, 1),
            (1, 0, 0, 0),
            true,
        );
    }

    #[test]
    fn batches_map_to_strided_batched_or_to_one_call_each() {
        let (m, k, n) = (2, 3, 4);
        for c in [(500, m, n, n, 1), (500, m, n, 1, m)] {
            // separate outputs: one strided-batched call
            check(
                (0, m, k, k, 1),
                (100, k, n, n, 1),
                c,
                (3, m * k, k * n, m * n),
                false,
            );
            // shared B
            check(
                (0, m, k, 1, m),
                (100, k, n, n, 1),
                c,
                (3, m * k, 0, m * n),
                true,
            );
            // products adding into one C
            check(
                (0, m, k, k, 1),
                (100, k, n, 1, k),
                c,
                (4, m * k, k * n, 0),
                false,
            );
        }
    }

    #[test]
    fn a_view_without_a_unit_stride_has_no_plan() {
        assert_eq!(as_colmajor(3, 4, 8, 2), None);
        assert_eq!(as_colmajor(3, 4, 4, 1), Some((true, 4)));
        assert_eq!(as_colmajor(3, 4, 1, 3), Some((false, 3)));
        assert_eq!(as_colmajor(1, 1, 1, 1), Some((false, 1)));
    }
}
