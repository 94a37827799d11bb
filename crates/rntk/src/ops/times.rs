//! Matrix products: `times(x, W)` with CNTK's output_rank / infer_input_rank_to_map
//! rules, and `times_transpose(a, b)` = a·bᵀ. Everything becomes GEMMs over the
//! whole block of rows: `(rows·M × K)·(K × O)` when the right operand is static,
//! which is how an LSTM's input projection runs once over all time steps.
//!
//! Shapes (Python order): `x = M ++ K`, `W = K ++ O` with `rank(O) = output_rank`;
//! the result is `M ++ O`. For `times_transpose`, `b` is `(P, K)` (or `(K,)`, read as
//! `(1, K)`) and the result is `a[..-1] ++ (P,)`.

use super::{dense_info, expect_arity, join_axes, Arg, Inferred, RowCtx};
use crate::backend::cpu::{gemm, Mat, MatMut};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
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
fn right<T>(b: &[T], k: usize, o: usize, transpose: bool) -> Mat<'_, T> {
    if transpose {
        Mat {
            data: b,
            rows: k,
            cols: o,
            rs: 1,
            cs: k,
        }
    } else {
        Mat {
            data: b,
            rows: k,
            cols: o,
            rs: o,
            cs: 1,
        }
    }
}

pub(crate) fn forward<T: Element>(
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
    output_rank: usize,
    transpose: bool,
) -> Result<()> {
    let (m, k, o) = dims(shapes, out_shape, output_rank, transpose);
    let n = ctx.n;
    match (&args[0], &args[1]) {
        (Arg::Rows(a), Arg::Static(b)) | (Arg::Static(a), Arg::Static(b)) => {
            let rows = if args[0].is_static() { 1 } else { n };
            let lhs = Mat {
                data: a,
                rows: rows * m,
                cols: k,
                rs: k,
                cs: 1,
            };
            let mut dst = MatMut {
                data: out,
                rows: rows * m,
                cols: o,
                rs: o,
                cs: 1,
            };
            gemm(&lhs, &right(b, k, o, transpose), &mut dst, false);
        }
        (Arg::Sparse(sp), Arg::Static(b)) => {
            out[..n * o].iter_mut().for_each(|v| *v = T::zero());
            let base = sp.indptr[0];
            for r in 0..n {
                let orow = &mut out[r * o..(r + 1) * o];
                for e in sp.indptr[r] - base..sp.indptr[r + 1] - base {
                    let (c, v) = (sp.indices[e] as usize, sp.values[e]);
                    if transpose {
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
        (Arg::Static(a), Arg::Rows(b)) if o == 1 => {
            // All rows at once: out(m, r) = Σ_k a(m, k)·b_r(k).
            let lhs = Mat {
                data: a,
                rows: m,
                cols: k,
                rs: k,
                cs: 1,
            };
            let rhs = Mat {
                data: b,
                rows: k,
                cols: n,
                rs: 1,
                cs: k,
            };
            let mut dst = MatMut {
                data: out,
                rows: m,
                cols: n,
                rs: 1,
                cs: m,
            };
            gemm(&lhs, &rhs, &mut dst, false);
        }
        (Arg::Static(_) | Arg::Rows(_), Arg::Rows(_)) => {
            let a = args[0].dense().expect("dense");
            let b = args[1].dense().expect("dense");
            let sa = if args[0].is_static() { 0 } else { m * k };
            for r in 0..n {
                let lhs = Mat {
                    data: &a[r * sa..r * sa + m * k],
                    rows: m,
                    cols: k,
                    rs: k,
                    cs: 1,
                };
                let rb = &b[r * k * o..(r + 1) * k * o];
                let mut dst = MatMut {
                    data: &mut out[r * m * o..(r + 1) * m * o],
                    rows: m,
                    cols: o,
                    rs: o,
                    cs: 1,
                };
                gemm(&lhs, &right(rb, k, o, transpose), &mut dst, false);
            }
        }
        _ => {
            return Err(Error::Unsupported(
                "times with a sparse right operand or per-row sparse pairs".into(),
            ))
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
    output_rank: usize,
    transpose: bool,
) -> Result<()> {
    let (m, k, o) = dims(shapes, out_shape, output_rank, transpose);
    let n = ctx.n;
    match (&args[0], &args[1], i) {
        // dA = dOut · Bᵀ
        (Arg::Rows(_) | Arg::Static(_), Arg::Static(b), 0) => {
            let rows = if args[0].is_static() { 1 } else { n };
            let g = Mat {
                data: dout,
                rows: rows * m,
                cols: o,
                rs: o,
                cs: 1,
            };
            let bt = right(b, k, o, transpose).t();
            if args[0].is_static() && n > 1 {
                // A static left with a static right: only one row exists.
                return Err(Error::Unsupported(
                    "static × static times over several rows".into(),
                ));
            }
            let mut dst = MatMut {
                data: din,
                rows: rows * m,
                cols: k,
                rs: k,
                cs: 1,
            };
            gemm(&g, &bt, &mut dst, true);
        }
        // dB = Aᵀ · dOut
        (Arg::Rows(a) | Arg::Static(a), Arg::Static(_), 1) => {
            let rows = if args[0].is_static() { 1 } else { n };
            let at = Mat {
                data: a,
                rows: rows * m,
                cols: k,
                rs: k,
                cs: 1,
            }
            .t();
            let g = Mat {
                data: dout,
                rows: rows * m,
                cols: o,
                rs: o,
                cs: 1,
            };
            let (rs, cs) = if transpose { (1, k) } else { (o, 1) };
            let mut dst = MatMut {
                data: din,
                rows: k,
                cols: o,
                rs,
                cs,
            };
            gemm(&at, &g, &mut dst, true);
        }
        (Arg::Sparse(sp), Arg::Static(_), 1) => {
            let base = sp.indptr[0];
            for r in 0..n {
                let grow = &dout[r * o..(r + 1) * o];
                for e in sp.indptr[r] - base..sp.indptr[r + 1] - base {
                    let (c, v) = (sp.indices[e] as usize, sp.values[e]);
                    if transpose {
                        for (j, &g) in grow.iter().enumerate() {
                            din[j * k + c] += v * g;
                        }
                    } else {
                        for (d, &g) in din[c * o..(c + 1) * o].iter_mut().zip(grow) {
                            *d += v * g;
                        }
                    }
                }
            }
        }
        (Arg::Sparse(_), _, 0) => {
            return Err(Error::Unsupported(
                "gradient with respect to a sparse input".into(),
            ))
        }
        (Arg::Static(a), Arg::Rows(b), _) if o == 1 => {
            let g = Mat {
                data: dout,
                rows: m,
                cols: n,
                rs: 1,
                cs: m,
            };
            if i == 0 {
                // dA(m,k) = Σ_r dOut(m,r)·b_r(k)
                let bt = Mat {
                    data: b,
                    rows: n,
                    cols: k,
                    rs: k,
                    cs: 1,
                };
                let mut dst = MatMut {
                    data: din,
                    rows: m,
                    cols: k,
                    rs: k,
                    cs: 1,
                };
                gemm(&g, &bt, &mut dst, true);
            } else {
                let at = Mat {
                    data: a,
                    rows: m,
                    cols: k,
                    rs: k,
                    cs: 1,
                }
                .t();
                let mut dst = MatMut {
                    data: din,
                    rows: k,
                    cols: n,
                    rs: 1,
                    cs: k,
                };
                gemm(&at, &g, &mut dst, true);
            }
        }
        (Arg::Static(_) | Arg::Rows(_), Arg::Rows(_), _) => {
            let a = args[0].dense().expect("dense");
            let b = args[1].dense().expect("dense");
            let sa = if args[0].is_static() { 0 } else { m * k };
            for r in 0..n {
                let ar = &a[r * sa..r * sa + m * k];
                let br = &b[r * k * o..(r + 1) * k * o];
                let g = Mat {
                    data: &dout[r * m * o..(r + 1) * m * o],
                    rows: m,
                    cols: o,
                    rs: o,
                    cs: 1,
                };
                if i == 0 {
                    let d = if args[0].is_static() {
                        &mut din[..]
                    } else {
                        &mut din[r * m * k..(r + 1) * m * k]
                    };
                    let mut dst = MatMut {
                        data: d,
                        rows: m,
                        cols: k,
                        rs: k,
                        cs: 1,
                    };
                    gemm(&g, &right(br, k, o, transpose).t(), &mut dst, true);
                } else {
                    let at = Mat {
                        data: ar,
                        rows: m,
                        cols: k,
                        rs: k,
                        cs: 1,
                    }
                    .t();
                    let (rs, cs) = if transpose { (1, k) } else { (o, 1) };
                    let mut dst = MatMut {
                        data: &mut din[r * k * o..(r + 1) * k * o],
                        rows: k,
                        cols: o,
                        rs,
                        cs,
                    };
                    gemm(&at, &g, &mut dst, true);
                }
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
