//! clip, element_select, dropout, one_hot, gather.
//!
//! * `clip(x, min, max)` and `element_select(cond, a, b)` broadcast their three
//!   operands NumPy-style. Clip's gradient is 1 where `min ≤ x ≤ max` (bounds
//!   inclusive) and goes to `x` only (CNTK gives the bounds none); select's goes to
//!   `a` where `cond ≠ 0` and to `b` elsewhere, never to `cond`.
//! * `dropout` draws CNTK 2.7's masks: the node's stream ([`DropoutRng`], kept in
//!   `NodeState::rng`) continues across training forwards, and each call draws its
//!   rows in CNTK's column order (step by step, sequences in the caller's order, gap
//!   columns of shorter sequences drawn and discarded), so the whole minibatch at once
//!   and a forward loop's steps draw the same masks, and a backward loop's steps draw
//!   in its order, as CNTK does (see `random::dropout`). The mask (0 or 1/(1−rate)
//!   per element) is kept in `NodeState::aux`, indexed by absolute row, for the backward.
//! * `one_hot` and `gather` take integer-valued indices; anything else (fractions,
//!   negatives, out of range) is refused at run time.

use super::binary::broadcast_shape;
use super::{dense_info, expect_arity, join_axes, Arg, Inferred, NodeState, Op, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::random::{DropoutRng, StreamPacking};
use crate::tensor::{Element, PackedLayout, Shape};

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

/// Which block of a packed minibatch a dropout call runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PassOrder {
    /// All rows at once (outside a loop).
    Whole,
    /// Step 0: a forward loop starts (or continues) here.
    FirstStep,
    /// The last step: a backward loop starts here.
    LastStep,
    /// Any other whole step of a loop.
    Middle,
}

fn pass_order(p: &PackedLayout, row0: usize, rows: usize) -> Result<PassOrder> {
    let offs = p.offsets();
    let t0 = offs.partition_point(|&o| o <= row0).saturating_sub(1);
    let t1 = offs.partition_point(|&o| o < row0 + rows);
    if offs.get(t0) != Some(&row0) || offs.get(t1) != Some(&(row0 + rows)) || t1 <= t0 {
        return Err(Error::Unsupported(format!(
            "Dropout over rows {row0}..{} that are not whole sequence steps",
            row0 + rows
        )));
    }
    let steps = offs.len() - 1;
    Ok(match (t0, t1) {
        (0, t) if t == steps => PassOrder::Whole,
        (0, _) => PassOrder::FirstStep,
        (_, t) if t == steps => PassOrder::LastStep,
        _ => PassOrder::Middle,
    })
}

/// Draw the mask of every row of a packed minibatch into `mask`, in CNTK's column
/// order ([`StreamPacking`]): slot by slot (`backward`: last slot first), each slot's
/// streams in order, gap columns drawn and discarded.
fn draw_packed<T: Element>(
    rng: &mut DropoutRng,
    p: &PackedLayout,
    no: usize,
    backward: bool,
    threshold: f64,
    scale: T,
    mask: &mut [T],
) {
    let pk = StreamPacking::new(p.lengths());
    let slots = pk.slots();
    for i in 0..slots {
        let tau = if backward { slots - 1 - i } else { i };
        for k in 0..pk.streams() {
            match pk.occupant(tau, k) {
                Some((s, t)) => {
                    let r = p.row(s, t);
                    rng.fill(threshold, scale, T::zero(), &mut mask[r * no..(r + 1) * no]);
                }
                None => rng.skip(no),
            }
        }
    }
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
            // CNTK compares the draw with the rate as the element type holds it.
            let threshold = T::from_f64(*rate).as_f64();
            let scale = T::from_f64(1.0 / (1.0 - rate));
            let rng = st.rng.get_or_insert_with(|| DropoutRng::new(*seed, 0));
            let packed = if args[0].is_static() {
                None
            } else {
                st.layout.as_ref().and_then(|l| l.packed()).cloned()
            };
            match packed {
                None => rng.fill(threshold, scale, T::zero(), &mut st.aux[first..end]),
                Some(p) => {
                    let order = pass_order(&p, ctx.row0, rows)?;
                    if order == PassOrder::Whole || st.drawn_pass != Some(st.calls) {
                        let all = p.total() * no;
                        if st.aux.len() < all {
                            st.aux.resize(all, T::zero());
                        }
                        let backward = order == PassOrder::LastStep;
                        draw_packed(rng, &p, no, backward, threshold, scale, &mut st.aux[..all]);
                        st.drawn_pass = Some(st.calls);
                    }
                }
            }
            let mask = &st.aux[first..end];
            for ((o, &v), &m) in out.iter_mut().zip(x).zip(mask.iter()) {
                *o = v * m;
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
    use crate::tensor::Layout;

    fn ctx(n: usize, row0: usize, training: bool) -> RowCtx {
        RowCtx { n, row0, training }
    }

    fn run(
        op: &Op,
        x: &[f64],
        layout: &Layout,
        blocks: &[(usize, usize)],
        st: &mut NodeState<f64>,
    ) -> Vec<f64> {
        let sh = [Shape::from([4])];
        let mut out = vec![0.0; x.len()];
        st.layout = Some(layout.clone());
        for &(a, b) in blocks {
            forward(
                op,
                &[Arg::Rows(&x[a * 4..b * 4])],
                &sh,
                &sh[0],
                &mut out[a * 4..b * 4],
                ctx(b - a, a, true),
                st,
            )
            .unwrap();
        }
        out
    }

    /// A forward loop's steps draw what the whole minibatch draws at once (CNTK's column
    /// order is slot-major); a backward loop draws its last slot first, as CNTK does;
    /// the next pass continues the stream.
    #[test]
    fn dropout_steps_follow_cntks_column_order() {
        let op = Op::Dropout { rate: 0.5, seed: 7 };
        let p = std::sync::Arc::new(PackedLayout::new(&[3, 1, 2]).unwrap());
        let layout = Layout::Sequence(p.clone());
        let x: Vec<f64> = (0..24).map(|v| v as f64 + 1.0).collect();
        let steps: Vec<(usize, usize)> = (0..3)
            .map(|t| (p.step_rows(t).start, p.step_rows(t).end))
            .collect();
        let mut st = NodeState::default();
        let whole = run(&op, &x, &layout, &[(0, 6)], &mut st);
        let mut st2 = NodeState::default();
        let forward_steps = run(&op, &x, &layout, &steps, &mut st2);
        assert_eq!(whole, forward_steps);
        // packed as CNTK does: 3 slots x 2 streams ({0}, {1, 2}) x 4 elements, no gap
        assert_eq!(st.rng.as_ref().unwrap().offset(), 24);
        let rev: Vec<_> = steps.iter().rev().copied().collect();
        let mut st3 = NodeState::default();
        let backward_steps = run(&op, &x, &layout, &rev, &mut st3);
        assert_ne!(whole, backward_steps);
        for (o, v) in whole.iter().zip(&x) {
            assert!(*o == 0.0 || *o == 2.0 * v);
        }
        let again = run(&op, &x, &layout, &[(0, 6)], &mut st);
        assert_ne!(whole, again);
        assert_eq!(st.rng.as_ref().unwrap().offset(), 48);
        // a block that is not whole steps is refused, not drawn wrongly
        let mut st4 = NodeState {
            layout: Some(layout),
            ..Default::default()
        };
        let sh = [Shape::from([4])];
        let mut out = vec![0.0; 8];
        assert!(forward(
            &op,
            &[Arg::Rows(&x[..8])],
            &sh,
            &sh[0],
            &mut out,
            ctx(2, 0, true),
            &mut st4
        )
        .is_err());
    }
}
