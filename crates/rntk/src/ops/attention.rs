//! Fused additive attention (Bahdanau et al.; CNTK's `AttentionModel`): every step of
//! a query sequence attends over the key/value sequence of the same batch item,
//! `additive_attention(q, k, v, w)`. For batch item `s` with key steps
//! `j = 0..T_k(s)` and query steps `i = 0..T_q(s)`:
//!
//! ```text
//! u_ij = Σ_a w_a · tanh(q_ia + k_ja)            (a = 0..dim)
//! α_ij = exp(u_ij) / Σ_j' exp(u_ij')            (over the item's own key steps: the mask)
//! y_i  = Σ_j α_ij · v_j
//! ```
//!
//! and, with `g_i = ∂L/∂y_i`, `t_ija = tanh(q_ia + k_ja)`:
//!
//! ```text
//! ∂v_j += Σ_i α_ij g_i          ∂α_ij = g_i · v_j
//! ∂u_ij = α_ij (∂α_ij − Σ_j' α_ij' ∂α_ij')
//! ∂w_a += Σ_ij ∂u_ij t_ija      ∂q_ia += Σ_j ∂u_ij w_a (1 − t_ija²)      ∂k_ja += Σ_i (the same)
//! ```
//!
//! CNTK 2.7 writes this with `sequence.unpack` (keys and values padded to the longest
//! item, a mask), `sequence.broadcast_as` onto the query's axis, `element_select(mask,
//! u, −1e30)` and a softmax over the free unpacked axis. The padded steps' weights are
//! exactly 0 there (`exp(−1e30 − max)` underflows), so leaving them out is the same
//! function; rntk's static shapes cannot follow a free axis through a projection, and
//! the fused op also never materializes the `T_q × T_k × dim` broadcast.
//!
//! Queries and keys may live on different sequence axes (an encoder and a decoder):
//! they are paired by batch item, in the caller's order, and must have the same number
//! of sequences. Keys and values share one layout. The weights `α` are kept for the
//! backward, which recomputes the `tanh` terms and hands each operand its part of one
//! gradient buffer. Kernels: `backend::Attention`.
//!
//! The op is row-local in its query and reads its keys and values whole
//! (`ExecKind::Context`), so it also runs inside a recurrent loop: a decoder whose
//! query is its own previous state (CNTK tutorial 204's `attention_model(encoded,
//! h_prev)` in a `Recurrence` step) gets one call per time step for that step's query
//! rows, over the whole encoder sequence of each row's batch item. The keys and values
//! must not depend on the loop's state (the compiler refuses that).
//!
//! **The weights as a value** (CNTK's `Label('attention_weights')`, which tutorial 204
//! plots): `Op::AttentionWeights` over the same four operands gives, per query step,
//! `α_i·` over its item's key steps padded with zeros to the longest key sequence of
//! the minibatch — CNTK's `[#, q][*=T_k, 1]` (its padded steps get `exp(−1e30 − max)
//! = 0`). It runs the same kernel as the fused op (so its weights are the fused op's,
//! bit for bit) into its output, the weighted sum into scratch. It is a separate node
//! that `AttentionModel` keeps beside its output (not on it), so it costs nothing
//! unless it is evaluated; it is a whole op after the loop when the query is a loop's
//! state, and not differentiable (its free dimension can only be returned).

use super::{expect_arity, Inferred, NodeState, Op, VarInfo, WholeArg};
use crate::backend::attention::AttentionGeom;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Layout, PackedLayout, Shape};
use std::ops::Range;
use std::sync::Arc;

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 4)?;
    let (q, k, v, w) = (&infos[0], &infos[1], &infos[2], &infos[3]);
    for (what, x) in [("the query", q), ("the keys", k), ("the values", v)] {
        if !x.axes.has_sequence() {
            return Err(Error::axes(
                op,
                name,
                format!(
                    "{what} must be a sequence, got dynamic axes {}",
                    x.axes.notation()
                ),
            ));
        }
        if x.is_sparse {
            return Err(Error::Unsupported(format!(
                "{op} '{name}': {what} cannot be sparse"
            )));
        }
    }
    if k.axes != v.axes {
        return Err(Error::axes(
            op,
            name,
            format!(
                "the keys {} and the values {} must share a sequence axis",
                k.axes.notation(),
                v.axes.notation()
            ),
        ));
    }
    if !matches!(w.axes, DynamicAxes::None) || w.is_sparse {
        return Err(Error::axes(
            op,
            name,
            format!(
                "the scoring weights must be a dense static value, got dynamic axes {}",
                w.axes.notation()
            ),
        ));
    }
    let dim = q.shape.numel();
    let w_ok = w.shape.dims() == [dim] || w.shape.dims() == [dim, 1];
    if q.shape.rank() != 1 || k.shape != q.shape || !w_ok {
        return Err(Error::shape(
            op,
            name,
            format!(
                "query {}, keys {} and scoring weights {} must be (A,), (A,) and (A,) or (A, 1)",
                q.shape, k.shape, w.shape
            ),
        ));
    }
    let mut out = super::dense_info(v.shape.clone(), q, q.axes.clone());
    out.needs_gradient = false;
    Ok(Inferred::one(out))
}

/// `AttentionWeights(q, k, v, w)`: the operands as the fused op's; the output `(*, 1)`
/// on the query's axes (`*`: the longest key sequence, decided per minibatch).
pub(crate) fn infer_weights(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    let fused = infer(op, name, infos)?;
    let mut out = fused.outputs.into_iter().next().ok_or_else(|| {
        Error::shape(
            op,
            name,
            "the attention's shape rule gave no output".to_string(),
        )
    })?;
    out.shape = crate::tensor::Shape::from([crate::tensor::INFERRED, 1]);
    Ok(Inferred::one(out))
}

fn rt(detail: String) -> Error {
    Error::Runtime {
        op: Op::AdditiveAttention.name().to_string(),
        name: String::new(),
        detail,
    }
}

fn packed<'a, B: Backend, T: Element>(
    a: &WholeArg<'a, B, T>,
    what: &str,
) -> Result<&'a Arc<PackedLayout>> {
    a.layout.packed().ok_or_else(|| {
        rt(format!(
            "{what} must be sequences, got {}",
            a.layout.describe()
        ))
    })
}

fn geom<'a, B: Backend, T: Element>(
    args: &[WholeArg<'a, B, T>],
    rows: &Range<usize>,
) -> Result<AttentionGeom<'a>> {
    let q = packed(&args[0], "the query")?;
    let k = packed(&args[1], "the keys")?;
    if !args[2].layout.same_as(args[1].layout) {
        return Err(rt(format!(
            "the values ({}) must have the keys' layout ({})",
            args[2].layout.describe(),
            args[1].layout.describe()
        )));
    }
    if q.num_sequences() != k.num_sequences() {
        return Err(rt(format!(
            "the query has {} sequences and the keys {}: each query sequence attends over \
             the key sequence of the same batch item",
            q.num_sequences(),
            k.num_sequences()
        )));
    }
    if rows.end > q.total() {
        return Err(rt(format!(
            "rows {rows:?} of a query of {} rows",
            q.total()
        )));
    }
    Ok(AttentionGeom {
        query: q,
        keys: k,
        dim: args[0].shape.numel(),
        value_dim: args[2].shape.numel(),
        rows: (rows.start, rows.end),
    })
}

fn operands<'a, B: Backend, T: Element>(args: &[WholeArg<'a, B, T>]) -> Result<[B::Ref<'a, T>; 4]> {
    let d = |i: usize| {
        args[i]
            .data
            .dense()
            .map(|o| o.data)
            .ok_or_else(|| Error::Unsupported("additive attention of a sparse operand".into()))
    };
    Ok([d(0)?, d(1)?, d(2)?, d(3)?])
}

/// Forward of the query rows `rows` (all of them outside a loop, one time step's
/// inside): their outputs in `out` (the whole output buffer, the query's layout, the
/// values' sample shape, sized by the runtime) and their weights in `st.aux`.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    args: &[WholeArg<B, T>],
    rows: Range<usize>,
    out: B::Mut<'_, T>,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let g = geom(args, &rows)?;
    super::run::sized(b, &Op::AdditiveAttention, &mut st.aux, (g.weights_len(), 1))?;
    b.additive_attention(&g, operands(args)?, B::view_mut(&mut st.aux), out);
    Ok(())
}

/// The gradient of operand `i` from the query rows `rows`, added into `din` (the
/// operand's whole gradient buffer). One kernel call gives all four gradients of a
/// block of rows, accumulated in `st.grad` over a backward pass (`st.grad_rows` rows
/// so far): the query's gradient is asked for block by block (once over all rows
/// outside a loop, step by step inside one); the keys', values' and scoring
/// weights' once over all rows, after every block (the runtime defers them as it
/// does a loop's static operands), and are then computed here at once if no block
/// was.
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    i: usize,
    args: &[WholeArg<B, T>],
    rows: Range<usize>,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let g = geom(args, &rows)?;
    let op = Op::AdditiveAttention;
    let total = g.query.total();
    if !st.grad_ready {
        super::run::zeroed(b, &op, &mut st.grad, (g.grads_len(), 1))?;
        st.grad_rows = 0;
        st.grad_ready = true;
    }
    let accumulate = |st: &mut NodeState<B, T>| -> Result<()> {
        if B::len(&st.aux) < g.weights_len() {
            return Err(rt("backward without its forward".into()));
        }
        b.additive_attention_backward(
            &g,
            operands(args)?,
            B::view(&st.aux),
            dout,
            B::view_mut(&mut st.grad),
        );
        st.grad_rows += rows.len();
        Ok(())
    };
    let (nq, nk) = (total * g.dim, g.keys.total() * g.dim);
    let nv = g.keys.total() * g.value_dim;
    let at = if i == 0 {
        if st.grad_rows + rows.len() > total {
            return Err(rt(format!(
                "query rows {rows:?} asked for again in one backward pass"
            )));
        }
        accumulate(st)?;
        rows.start * g.dim..rows.end * g.dim
    } else {
        match st.grad_rows {
            0 => accumulate(st)?,
            n if n == total => {}
            n => {
                return Err(rt(format!(
                    "the keys' gradient asked for after {n} of {total} query rows"
                )))
            }
        }
        match i {
            1 => nq..nq + nk,
            2 => nq + nk..nq + nk + nv,
            _ => nq + nk + nv..g.grads_len(),
        }
    };
    let part = B::sub(B::view(&st.grad), at.clone());
    let dst = if i == 0 {
        B::sub_mut(din, at)
    } else {
        B::sub_mut(din, 0..at.len())
    };
    b.add(part, dst, crate::backend::Par::Seq);
    Ok(())
}

/// Forward of `AttentionWeights`: the output's layout is the query's and its sample
/// shape `(keys.max_len(), 1)`; the fused kernel writes each query row's weights at
/// `row · max_len` of the (zeroed) output, the weighted sum into `st.aux`.
pub(crate) fn forward_weights<B: Backend, T: Element>(
    b: &B,
    args: &[WholeArg<B, T>],
    static_shape: &Shape,
    out: &mut B::Buf<T>,
    st: &mut NodeState<B, T>,
) -> Result<(Layout, Shape)> {
    let all = 0..packed(&args[0], "the query")?.total();
    let g = geom(args, &all)?;
    let op = Op::AttentionWeights;
    let m = g.keys.max_len();
    let mut dims = static_shape.dims().to_vec();
    if let Some(d) = dims.first_mut() {
        *d = m;
    }
    super::run::zeroed(b, &op, out, (g.query.total(), m))?;
    super::run::sized(b, &op, &mut st.aux, (g.query.total(), g.value_dim))?;
    b.additive_attention(
        &g,
        operands(args)?,
        B::view_mut(out),
        B::view_mut(&mut st.aux),
    );
    Ok((args[0].layout.clone(), Shape::from(dims)))
}
