//! Matrix products: `times(x, W)` with CNTK's output_rank / infer_input_rank_to_map
//! rules, and `times_transpose(a, b)` = a·bᵀ. Everything becomes GEMMs over the
//! whole block of rows: `(rows·M × K)·(K × O)` when the right operand is static,
//! which is how an LSTM's input projection runs once over all time steps.
//!
//! Shapes (Python order): `x = M ++ K`, `W = K ++ O` with `rank(O) = output_rank`;
//! the result is `M ++ O`. For `times_transpose`, `b` is `(P, K)` (or `(K,)`, read as
//! `(1, K)`) and the result is `a[..-1] ++ (P,)`.

use super::{dense_info, expect_arity, join_axes, Inferred, RowCtx, VarInfo};
use crate::backend::products::Batch;
use crate::backend::{Arg, Backend, MatMut, MatRef};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape, INFERRED};

pub(crate) fn infer(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    output_rank: usize,
    infer_map: i32,
    transpose: bool,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (l, r) = (&infos[0], &infos[1]);
    let axes = join_axes(op, name, &[l, r])?;
    if r.is_sparse {
        return Err(Error::shape(op, name, "the right operand cannot be sparse"));
    }
    if transpose {
        let (ls, rs) = (l.shape.dims(), r.shape.dims());
        if ls.is_empty() || rs.is_empty() || rs.len() > 2 {
            return Err(Error::shape(
                op,
                name,
                format!(
                    "times_transpose needs a of rank ≥ 1 and b of rank 1 or 2, got {} and {}",
                    l.shape, r.shape
                ),
            ));
        }
        let k = *ls.last().expect("rank ≥ 1");
        if *rs.last().expect("rank ≥ 1") != k {
            return Err(Error::shape(
                op,
                name,
                format!("last axes of {} and {} must agree", l.shape, r.shape),
            ));
        }
        let p = if rs.len() == 2 { rs[0] } else { 1 };
        let mut out = ls[..ls.len() - 1].to_vec();
        out.push(p);
        return Ok(Inferred::one(dense_info(Shape::new(out), l, axes)));
    }
    if output_rank == 0 || output_rank > r.shape.rank() {
        return Err(Error::shape(
            op,
            name,
            format!(
                "output_rank {output_rank} is not between 1 and the rank of the right operand {}",
                r.shape
            ),
        ));
    }
    let rdims = r.shape.dims();
    let o_dims = &rdims[rdims.len() - output_rank..];
    let mut k_dims: Vec<usize> = rdims[..rdims.len() - output_rank].to_vec();
    let mut resolved = Vec::new();
    if k_dims.contains(&INFERRED) {
        if infer_map >= 0 {
            let map = infer_map as usize;
            if map > l.shape.rank() {
                return Err(Error::shape(
                    op,
                    name,
                    format!(
                        "infer_input_rank_to_map {map} exceeds the rank of {}",
                        l.shape
                    ),
                ));
            }
            k_dims = l.shape.dims()[map..].to_vec();
        } else {
            let m = k_dims.len();
            if m > l.shape.rank() {
                return Err(Error::shape(
                    op,
                    name,
                    format!("cannot infer {} from {}", r.shape, l.shape),
                ));
            }
            let ld = &l.shape.dims()[l.shape.rank() - m..];
            for (j, d) in k_dims.iter_mut().enumerate() {
                if *d == INFERRED {
                    *d = ld[j];
                }
            }
        }
        let mut full = k_dims.clone();
        full.extend_from_slice(o_dims);
        resolved.push((1, Shape::new(full)));
    }
    let m = k_dims.len();
    let ld = l.shape.dims();
    if m > ld.len() || ld[ld.len() - m..] != k_dims[..] {
        return Err(Error::shape(
            op,
            name,
            format!(
                "operand shapes {} and {} do not match: the last {m} axes of the left operand must equal {}",
                l.shape,
                r.shape,
                Shape::new(k_dims.clone())
            ),
        ));
    }
    let mut out = ld[..ld.len() - m].to_vec();
    out.extend_from_slice(o_dims);
    Ok(Inferred {
        outputs: vec![dense_info(Shape::new(out), l, axes)],
        resolved_inputs: resolved,
    })
}

/// The (M, K, O) sizes of one sample's product.
fn dims(
    shapes: &[Shape],
    out_shape: &Shape,
    output_rank: usize,
    transpose: bool,
) -> (usize, usize, usize) {
    let k = if transpose {
        *shapes[0].dims().last().unwrap_or(&1)
    } else {
        let r = &shapes[1];
        r.prod(0..r.rank().saturating_sub(output_rank))
    };
    let m = shapes[0].numel() / k.max(1);
    let o = out_shape.numel() / m.max(1);
    (m, k, o)
}

/// The right operand as a K×O matrix (strided view for the transposed product).
fn right<B: Backend, T: Element>(
    b: B::Ref<'_, T>,
    k: usize,
    o: usize,
    transpose: bool,
) -> MatRef<'_, B, T> {
    let (rs, cs) = if transpose { (1, k) } else { (o, 1) };
    MatRef {
        data: b,
        rows: k,
        cols: o,
        rs,
        cs,
    }
}

/// `data` as a row-major matrix view.
fn rm<B: Backend, T: Element>(data: B::Ref<'_, T>, rows: usize, cols: usize) -> MatRef<'_, B, T> {
    MatRef::row_major(data, rows, cols)
}

fn rm_mut<B: Backend, T: Element>(
    data: B::Mut<'_, T>,
    rows: usize,
    cols: usize,
) -> MatMut<'_, B, T> {
    MatMut::row_major(data, rows, cols)
}

/// `times(x, W)` / `times_transpose(a, b)` over a block of rows: one GEMM when the
/// right operand is static (all rows at once), a sparse product for sparse rows, a
/// batch of per-row products when both operands have rows.
pub(crate) fn forward<B: Backend, T: Element>(
    be: &B,
    args: &[Arg<B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
    out: B::Mut<'_, T>,
    ctx: RowCtx,
    (output_rank, transpose): (usize, bool),
) -> Result<()> {
    let (m, k, o) = dims(shapes, out_shape, output_rank, transpose);
    let (n, par) = (ctx.n, ctx.par);
    match (args[0], args[1]) {
        (Arg::Rows(a), Arg::Static(b)) | (Arg::Static(a), Arg::Static(b)) => {
            let rows = if args[0].is_static() { 1 } else { n };
            let dst = rm_mut(out, rows * m, o);
            be.gemm(
                rm(a, rows * m, k),
                right(b, k, o, transpose),
                dst,
                false,
                par,
            );
        }
        (Arg::Sparse(sp), Arg::Static(b)) => be.sparse_times(sp, b, (k, o), transpose, out),
        (Arg::Static(a), Arg::Rows(b)) if o == 1 => {
            // All rows at once: out(m, r) = Σ_k a(m, k)·b_r(k).
            let rhs = MatRef {
                data: b,
                rows: k,
                cols: n,
                rs: 1,
                cs: k,
            };
            let dst = MatMut {
                data: out,
                rows: m,
                cols: n,
                rs: 1,
                cs: m,
            };
            be.gemm(rm(a, m, k), rhs, dst, false, par);
        }
        (Arg::Static(a) | Arg::Rows(a), Arg::Rows(b)) => {
            let sa = if args[0].is_static() { 0 } else { m * k };
            let batch = Batch {
                count: n,
                a: sa,
                b: k * o,
                c: m * o,
            };
            let (lhs, rhs) = (rm(a, m, k), right(b, k, o, transpose));
            be.gemm_batched(batch, lhs, rhs, rm_mut(out, m, o), false, par);
        }
        _ => {
            return Err(Error::Unsupported(
                "times with a sparse right operand or per-row sparse pairs".into(),
            ))
        }
    }
    Ok(())
}

/// `din +=` the product's gradient for operand `i`: `dA = dOut·Bᵀ`, `dB = Aᵀ·dOut`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    be: &B,
    i: usize,
    args: &[Arg<B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
    (output_rank, transpose): (usize, bool),
) -> Result<()> {
    let (m, k, o) = dims(shapes, out_shape, output_rank, transpose);
    let (n, par) = (ctx.n, ctx.par);
    // dB's layout: B itself, or Bᵀ stored (O × K) for the transposed product
    let (brs, bcs) = if transpose { (1, k) } else { (o, 1) };
    match (args[0], args[1], i) {
        (Arg::Rows(_) | Arg::Static(_), Arg::Static(b), 0) => {
            let rows = if args[0].is_static() { 1 } else { n };
            if args[0].is_static() && n > 1 {
                // A static left with a static right: only one row exists.
                return Err(Error::Unsupported(
                    "static × static times over several rows".into(),
                ));
            }
            let g = rm(dout, rows * m, o);
            let bt = right(b, k, o, transpose).t();
            be.gemm(g, bt, rm_mut(din, rows * m, k), true, par);
        }
        (Arg::Rows(a) | Arg::Static(a), Arg::Static(_), 1) => {
            let rows = if args[0].is_static() { 1 } else { n };
            let at = rm(a, rows * m, k).t();
            let dst = MatMut {
                data: din,
                rows: k,
                cols: o,
                rs: brs,
                cs: bcs,
            };
            be.gemm(at, rm(dout, rows * m, o), dst, true, par);
        }
        (Arg::Sparse(sp), Arg::Static(_), 1) => {
            be.sparse_times_backward(sp, dout, (k, o), transpose, din)
        }
        (Arg::Sparse(_), _, 0) => {
            return Err(Error::Unsupported(
                "gradient with respect to a sparse input".into(),
            ))
        }
        (Arg::Static(a), Arg::Rows(b), _) if o == 1 => {
            let g = MatRef {
                data: dout,
                rows: m,
                cols: n,
                rs: 1,
                cs: m,
            };
            if i == 0 {
                // dA(m,k) = Σ_r dOut(m,r)·b_r(k)
                be.gemm(g, rm(b, n, k), rm_mut(din, m, k), true, par);
            } else {
                let dst = MatMut {
                    data: din,
                    rows: k,
                    cols: n,
                    rs: 1,
                    cs: k,
                };
                be.gemm(rm(a, m, k).t(), g, dst, true, par);
            }
        }
        (Arg::Static(a) | Arg::Rows(a), Arg::Rows(b), _) => {
            let sa = if args[0].is_static() { 0 } else { m * k };
            let g = rm(dout, m, o);
            if i == 0 {
                let batch = Batch {
                    count: n,
                    a: m * o,
                    b: k * o,
                    c: sa,
                };
                let bt = right(b, k, o, transpose).t();
                be.gemm_batched(batch, g, bt, rm_mut(din, m, k), true, par);
            } else {
                let batch = Batch {
                    count: n,
                    a: sa,
                    b: m * o,
                    c: k * o,
                };
                let dst = MatMut {
                    data: din,
                    rows: k,
                    cols: o,
                    rs: brs,
                    cs: bcs,
                };
                be.gemm_batched(batch, rm(a, m, k).t(), g, dst, true, par);
            }
        }
        _ => {
            return Err(Error::Unsupported(
                "times gradient for this operand combination".into(),
            ))
        }
    }
    Ok(())
}
