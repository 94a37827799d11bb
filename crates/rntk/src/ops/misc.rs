//! clip, element_select, dropout, one_hot, gather.
//!
//! * `clip(x, min, max)` and `element_select(cond, a, b)` broadcast their three
//!   operands NumPy-style. Clip's gradient is 1 where `min ≤ x ≤ max` (bounds
//!   inclusive) and goes to `x` only (CNTK gives the bounds none); select's goes to
//!   `a` where `cond ≠ 0` and to `b` elsewhere, never to `cond`.
//! * `dropout` draws its mask from a counter-based hash of
//!   `(seed, NodeState::calls, absolute element index)`, so a block of rows run
//!   inside a recurrent loop gets exactly the mask the same rows get when the whole
//!   minibatch runs at once. The runtime counts training forwards in `calls`. The
//!   mask (0 or 1/(1−rate) per element) is kept in `NodeState::aux`, indexed by
//!   absolute row, for the backward.
//! * `one_hot` and `gather` take integer-valued indices; anything else (fractions,
//!   negatives, out of range) is refused at run time.

use super::binary::broadcast_shape;
use super::{dense_info, expect_arity, join_axes, Arg, Inferred, NodeState, Op, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

pub(crate) fn infer(op: &Op, op_name: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    match op {
        Op::Clip | Op::Select => {
            expect_arity(op_name, name, infos, 3)?;
            let roles = if matches!(op, Op::Clip) {
                ["operand", "min", "max"]
            } else {
                ["condition", "then-operand", "else-operand"]
            };
            for (i, role) in infos.iter().zip(roles) {
                if i.is_sparse {
                    return Err(Error::shape(
                        op_name,
                        name,
                        format!("the {role} cannot be sparse"),
                    ));
                }
            }
            let shape = broadcast_shape(&infos[0].shape, &infos[1].shape)
                .and_then(|s| broadcast_shape(&s, &infos[2].shape))
                .ok_or_else(|| {
                    Error::shape(
                        op_name,
                        name,
                        format!(
                            "operand shapes {}, {} and {} cannot be broadcast together",
                            infos[0].shape, infos[1].shape, infos[2].shape
                        ),
                    )
                })?;
            let refs: Vec<&VarInfo> = infos.iter().collect();
            let axes = join_axes(op_name, name, &refs)?;
            let like = if matches!(op, Op::Clip) {
                &infos[0]
            } else {
                &infos[1]
            };
            Ok(Inferred::one(dense_info(shape, like, axes)))
        }
        Op::Dropout { rate, .. } => {
            expect_arity(op_name, name, infos, 1)?;
            if !(0.0..1.0).contains(rate) {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    format!("dropout rate {rate} must be in [0, 1)"),
                ));
            }
            let x = &infos[0];
            if x.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "cannot drop out a sparse operand",
                ));
            }
            Ok(Inferred::one(dense_info(
                x.shape.clone(),
                x,
                x.axes.clone(),
            )))
        }
        Op::OneHot { num_classes } => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            if *num_classes == 0 {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    "num_classes must be at least 1",
                ));
            }
            let max = crate::limits::current().max_one_hot_classes;
            if *num_classes > max {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    format!(
                        "{num_classes} classes is more than the limit of {max} ({})",
                        crate::limits::how_to_raise("max_one_hot_classes")
                    ),
                ));
            }
            if x.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "the index operand cannot be sparse",
                ));
            }
            let mut d = x.shape.dims().to_vec();
            d.push(*num_classes);
            Ok(Inferred::one(dense_info(Shape::new(d), x, x.axes.clone())))
        }
        Op::Gather => {
            expect_arity(op_name, name, infos, 2)?;
            let (r, i) = (&infos[0], &infos[1]);
            if r.shape.rank() == 0 {
                return Err(Error::shape(
                    op_name,
                    name,
                    format!(
                        "the reference must have rank ≥ 1 to gather along its first axis, got shape {} (indices {})",
                        r.shape, i.shape
                    ),
                ));
            }
            if r.is_sparse || i.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "sparse reference or indices are not supported",
                ));
            }
            let mut d = i.shape.dims().to_vec();
            d.extend_from_slice(&r.shape.dims()[1..]);
            let axes = join_axes(op_name, name, &[r, i])?;
            Ok(Inferred::one(dense_info(Shape::new(d), r, axes)))
        }
        _ => Err(Error::Unsupported(format!("{op_name} is not a misc op"))),
    }
}

const MAX_RANK: usize = 8;

/// Index maps from an output element to the elements of three broadcast operands,
/// without heap allocation (ranks up to 8).
struct Bcast3 {
    rank: usize,
    dims: [usize; MAX_RANK],
    st: [[usize; MAX_RANK]; 3],
}

impl Bcast3 {
    fn new(shapes: &[Shape], out: &Shape) -> Result<Self> {
        let r = out.rank();
        if r > MAX_RANK {
            return Err(Error::Unsupported(format!(
                "broadcasting beyond rank {MAX_RANK}"
            )));
        }
        let mut b = Bcast3 {
            rank: r,
            dims: [1; MAX_RANK],
            st: [[0; MAX_RANK]; 3],
        };
        b.dims[..r].copy_from_slice(out.dims());
        for (sh, st) in shapes.iter().zip(b.st.iter_mut()) {
            let mut acc = 1;
            for k in (0..sh.rank()).rev() {
                let d = sh.dims()[k];
                st[k + r - sh.rank()] = if d == 1 { 0 } else { acc };
                acc *= d;
            }
        }
        Ok(b)
    }

    /// Call `f(out_index, [index in operand 0, 1, 2])` for every output element.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, [usize; 3])) {
        let total: usize = self.dims[..self.rank].iter().product();
        let mut idx = [0usize; MAX_RANK];
        let mut at = [0usize; 3];
        for e in 0..total {
            f(e, at);
            let mut k = self.rank;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                for (a, st) in at.iter_mut().zip(&self.st) {
                    *a += st[k];
                }
                if idx[k] < self.dims[k] {
                    break;
                }
                for (a, st) in at.iter_mut().zip(&self.st) {
                    *a -= st[k] * self.dims[k];
                }
                idx[k] = 0;
            }
        }
    }
}

/// The three dense operands of clip/select, each with its per-row sample size
/// (0 for a static operand, which every row shares).
fn three<'a, T>(op: &Op, args: &[Arg<'a, T>], shapes: &[Shape]) -> Result<[(&'a [T], usize); 3]> {
    let get = |k: usize| -> Result<(&'a [T], usize)> {
        let d = args[k]
            .dense()
            .ok_or_else(|| Error::Unsupported(format!("{} of a sparse operand", op.name())))?;
        Ok((
            d,
            if args[k].is_static() {
                0
            } else {
                shapes[k].numel()
            },
        ))
    };
    Ok([get(0)?, get(1)?, get(2)?])
}

/// Run `f(out_index, [element index in each operand's row])` over the rows of a
/// three-operand element-wise op, with `row_of(k, r)` giving operand k's row r.
fn rows3(
    shapes: &[Shape],
    out_shape: &Shape,
    n: usize,
    mut f: impl FnMut(usize, usize, [usize; 3]),
) -> Result<()> {
    let no = out_shape.numel();
    let same = shapes.iter().all(|s| s.numel() == no);
    let bc = if same {
        None
    } else {
        Some(Bcast3::new(shapes, out_shape)?)
    };
    for r in 0..n {
        match &bc {
            None => (0..no).for_each(|e| f(r, e, [e; 3])),
            Some(b) => b.for_each(|e, at| f(r, e, at)),
        }
    }
    Ok(())
}

/// Whether `v` is an integer in `[0, n)`, and which.
#[inline]
fn index_of<T: Element>(v: T, n: usize) -> Option<usize> {
    let f = v.as_f64();
    (f >= 0.0 && f < n as f64 && f.fract() == 0.0).then_some(f as usize)
}

fn bad_index<T: Element>(op: &Op, v: T, row: usize, n: usize, what: &str) -> Error {
    Error::invalid(
        format!("{} at run time", op.name()),
        format!("index {v} in sample row {row} is not an integer in [0, {n}) ({what})"),
    )
}

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Keep (true) or drop element `index` (absolute, over all rows) of pass `calls`.
#[inline(always)]
fn keep(seed: u64, calls: u64, index: usize, rate: f64) -> bool {
    let key = mix(seed ^ mix(calls.wrapping_mul(0xD6E8_FEB8_6659_FD93)));
    let h = mix(key.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let u = (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    u >= rate
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    op: &Op,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
    st: &mut NodeState<T>,
) -> Result<()> {
    let no = out_shape.numel();
    match op {
        Op::Clip => {
            let [(x, sx), (lo, sl), (hi, sh)] = three(op, args, shapes)?;
            rows3(shapes, out_shape, ctx.n, |r, e, [i, j, k]| {
                let (v, l, h) = (x[r * sx + i], lo[r * sl + j], hi[r * sh + k]);
                out[r * no + e] = if v < l {
                    l
                } else if v > h {
                    h
                } else {
                    v
                };
            })
        }
        Op::Select => {
            let [(c, sc), (a, sa), (b, sb)] = three(op, args, shapes)?;
            rows3(shapes, out_shape, ctx.n, |r, e, [i, j, k]| {
                out[r * no + e] = if c[r * sc + i] != T::zero() {
                    a[r * sa + j]
                } else {
                    b[r * sb + k]
                };
            })
        }
        Op::Dropout { rate, seed } => {
            let x = args[0]
                .dense()
                .ok_or_else(|| Error::Unsupported("Dropout of a sparse operand".into()))?;
            let rows = if args[0].is_static() { 1 } else { ctx.n };
            let x = &x[..rows * no];
            let out = &mut out[..rows * no];
            if !ctx.training || *rate == 0.0 {
                out.copy_from_slice(x);
                return Ok(());
            }
            let first = ctx.row0 * no;
            let end = first + rows * no;
            if st.aux.len() < end {
                st.aux.resize(end, T::zero());
            }
            let scale = T::from_f64(1.0 / (1.0 - rate));
            let mask = &mut st.aux[first..end];
            for (e, ((o, &v), m)) in out.iter_mut().zip(x).zip(mask.iter_mut()).enumerate() {
                *m = if keep(*seed, st.calls, first + e, *rate) {
                    scale
                } else {
                    T::zero()
                };
                *o = v * *m;
            }
            Ok(())
        }
        Op::OneHot { num_classes } => {
            let c = *num_classes;
            let x = args[0]
                .dense()
                .ok_or_else(|| Error::Unsupported("OneHot of a sparse operand".into()))?;
            let ni = shapes[0].numel();
            let rows = if args[0].is_static() { 1 } else { ctx.n };
            out[..rows * no].iter_mut().for_each(|v| *v = T::zero());
            for r in 0..rows {
                for (k, &v) in x[r * ni..(r + 1) * ni].iter().enumerate() {
                    let j = index_of(v, c)
                        .ok_or_else(|| bad_index(op, v, ctx.row0 + r, c, "class index"))?;
                    out[r * no + k * c + j] = T::one();
                }
            }
            Ok(())
        }
        Op::Gather => {
            let (rf, ix) = gather_operands(args)?;
            let (nr, ni) = (shapes[0].numel(), shapes[1].numel());
            let len = shapes[0].dims()[0];
            let rest = nr / len.max(1);
            let sr = if args[0].is_static() { 0 } else { nr };
            let si = if args[1].is_static() { 0 } else { ni };
            for r in 0..ctx.n {
                let refr = &rf[r * sr..r * sr + nr];
                for (k, &v) in ix[r * si..r * si + ni].iter().enumerate() {
                    let j = index_of(v, len).ok_or_else(|| {
                        bad_index(op, v, ctx.row0 + r, len, "row of the reference")
                    })?;
                    out[r * no + k * rest..r * no + (k + 1) * rest]
                        .copy_from_slice(&refr[j * rest..(j + 1) * rest]);
                }
            }
            Ok(())
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a misc op",
            op.name()
        ))),
    }
}

fn gather_operands<'a, T>(args: &[Arg<'a, T>]) -> Result<(&'a [T], &'a [T])> {
    let d = |a: &Arg<'a, T>| {
        a.dense()
            .ok_or_else(|| Error::Unsupported("Gather with a sparse operand".into()))
    };
    Ok((d(&args[0])?, d(&args[1])?))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: &Op,
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    _out: &[T],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
    st: &mut NodeState<T>,
) -> Result<()> {
    let no = out_shape.numel();
    match op {
        Op::Clip => {
            // Only the clipped operand has a gradient (as in CNTK).
            if i != 0 {
                return Ok(());
            }
            let [(x, sx), (lo, sl), (hi, sh)] = three(op, args, shapes)?;
            rows3(shapes, out_shape, ctx.n, |r, e, [a, j, k]| {
                let (v, l, h) = (x[r * sx + a], lo[r * sl + j], hi[r * sh + k]);
                if v >= l && v <= h {
                    din[r * sx + a] += dout[r * no + e];
                }
            })
        }
        Op::Select => {
            if i == 0 {
                return Ok(());
            }
            let [(c, sc), (_, sa), (_, sb)] = three(op, args, shapes)?;
            let sd = if i == 1 { sa } else { sb };
            rows3(shapes, out_shape, ctx.n, |r, e, [k, a, b]| {
                let taken = c[r * sc + k] != T::zero();
                if taken == (i == 1) {
                    let at = if i == 1 { a } else { b };
                    din[r * sd + at] += dout[r * no + e];
                }
            })
        }
        Op::Dropout { rate, .. } => {
            let rows = if args[0].is_static() { 1 } else { ctx.n };
            let g = &dout[..ctx.n * no];
            if !ctx.training || *rate == 0.0 {
                for (r, gr) in g.chunks(no.max(1)).enumerate() {
                    let d = &mut din[(r % rows) * no..(r % rows + 1) * no];
                    d.iter_mut().zip(gr).for_each(|(d, &v)| *d += v);
                }
                return Ok(());
            }
            let first = ctx.row0 * no;
            let mask = st.aux.get(first..first + rows * no).ok_or_else(|| {
                Error::Unsupported("Dropout backward without its training forward".into())
            })?;
            for ((d, &v), &m) in din[..rows * no].iter_mut().zip(g).zip(mask) {
                *d += v * m;
            }
            Ok(())
        }
        Op::OneHot { .. } => Ok(()),
        Op::Gather => {
            if i != 0 {
                return Ok(());
            }
            let (_, ix) = gather_operands(args)?;
            let (nr, ni) = (shapes[0].numel(), shapes[1].numel());
            let len = shapes[0].dims()[0];
            let rest = nr / len.max(1);
            let sr = if args[0].is_static() { 0 } else { nr };
            let si = if args[1].is_static() { 0 } else { ni };
            for r in 0..ctx.n {
                let g = &dout[r * no..(r + 1) * no];
                for (k, &v) in ix[r * si..r * si + ni].iter().enumerate() {
                    let j = index_of(v, len).ok_or_else(|| {
                        bad_index(op, v, ctx.row0 + r, len, "row of the reference")
                    })?;
                    let d = &mut din[r * sr + j * rest..r * sr + (j + 1) * rest];
                    for (d, &v) in d.iter_mut().zip(&g[k * rest..(k + 1) * rest]) {
                        *d += v;
                    }
                }
            }
            Ok(())
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a misc op",
            op.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: usize, row0: usize, training: bool) -> RowCtx {
        RowCtx { n, row0, training }
    }

    #[test]
    fn dropout_blocks_match_whole_run() {
        let op = Op::Dropout { rate: 0.5, seed: 7 };
        let sh = [Shape::from([4])];
        let x: Vec<f64> = (0..40).map(|v| v as f64 + 1.0).collect();
        let mut whole = vec![0.0; 40];
        let mut st = NodeState {
            calls: 3,
            ..Default::default()
        };
        forward(
            &op,
            &[Arg::Rows(&x)],
            &sh,
            &sh[0],
            &mut whole,
            ctx(10, 0, true),
            &mut st,
        )
        .unwrap();
        let mut st2 = NodeState {
            calls: 3,
            ..Default::default()
        };
        let mut parts = vec![0.0; 40];
        // blocks in reverse order, as a future_value loop runs them
        for (a, b) in [(7, 10), (3, 7), (0, 3)] {
            forward(
                &op,
                &[Arg::Rows(&x[a * 4..b * 4])],
                &sh,
                &sh[0],
                &mut parts[a * 4..b * 4],
                ctx(b - a, a, true),
                &mut st2,
            )
            .unwrap();
        }
        assert_eq!(whole, parts);
        let dropped = whole.iter().filter(|&&v| v == 0.0).count();
        assert!((8..=32).contains(&dropped), "dropped {dropped} of 40");
        for (o, v) in whole.iter().zip(&x) {
            assert!(*o == 0.0 || *o == 2.0 * v);
        }
        // another pass draws another mask
        st.calls += 1;
        let mut again = vec![0.0; 40];
        forward(
            &op,
            &[Arg::Rows(&x)],
            &sh,
            &sh[0],
            &mut again,
            ctx(10, 0, true),
            &mut st,
        )
        .unwrap();
        assert_ne!(whole, again);
    }
}
