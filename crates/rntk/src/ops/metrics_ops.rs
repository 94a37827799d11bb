//! Primitive ops behind losses and metrics that no composite of other ops computes
//! exactly as CNTK 2.7 does: hardmax, weighted logistic, top-N classification error,
//! LambdaRank and NDCG@1.
//!
//! * `Hardmax` is row-local: per sample, 1 at the *first* maximal element over all
//!   static elements, 0 elsewhere (CNTK's HardmaxNode). Its gradient is zero, as in
//!   CNTK (the op is not differentiable).
//! * The other four are *whole* ops that sum over the whole minibatch and give one
//!   scalar without dynamic axes. Their "samples" are the valid rows of the operands
//!   (packed sequences have no padding rows).
//! * `WeightedLogistic(o, t, w)` = `N·Σ w·ℓ / Σ w` with ℓ the binary cross entropy
//!   *without* ε (unlike `binary_cross_entropy`). CNTK's backward is *not* the derivative
//!   of that value: it is `w·∂ℓ/∂o` times the incoming gradient, i.e. the gradient of
//!   `Σ w·ℓ` without the `N/Σw` factor (observed with CNTK 2.7). rntk reproduces it
//!   so that training follows CNTK; `t` and `w` get no gradient (CNTK refuses one).
//! * `LambdaRank(score, gain, group)` and `Ndcg1(score, gain, group)` follow CNTK's
//!   LambdaRankNode / NDCG1EvalNode: a new group starts whenever the group id (cast
//!   to an integer) differs from the previous sample's; the *input order* of a group
//!   is taken as its ideal order (samples must come in decreasing gain); ranks sort
//!   scores in decreasing order, equal scores putting the smaller gain first; the
//!   discount of rank r is ln(2+r). See [`lambda_rank_grad`] for the gradient.

use super::{dense_info, expect_arity, Inferred, NodeState, Op, VarInfo, WholeArg};
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Layout, Shape};

/// ε inside `ln(o + ε)` of CNTK's binary cross entropy: the float32 value of 1e-6,
/// even in float64 networks (observed: o = 0, t = 1 gives 13.815510560489031).
pub const BCE_EPS: f64 = 9.999_999_974_752_427e-7;
/// The constant `c` of `ln(c − o)`: float32(1 + 1e-6) = 1 + 2⁻²⁰ (observed: o = 1,
/// t = 0 gives ln(2²⁰) = 13.862943611198906 in float64 too).
pub const BCE_ONE_PLUS_EPS: f64 = 1.000_000_953_674_316_4;

// ---------------------------------------------------------------------------
// Hardmax (row-local)
// ---------------------------------------------------------------------------

pub(crate) fn hardmax_forward<B: Backend, T: Element>(
    b: &B,
    x: Arg<B, T>,
    shape: &Shape,
    out: B::Mut<'_, T>,
    n: usize,
) -> Result<()> {
    if let Some(x) = x.dense() {
        b.hardmax(x, shape.numel(), out, n);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Build time
// ---------------------------------------------------------------------------

fn need_dense(op: &str, name: &str, infos: &[VarInfo], roles: &[&str]) -> Result<()> {
    for (i, role) in infos.iter().zip(roles) {
        if i.is_sparse {
            return Err(Error::shape(
                op,
                name,
                format!("the {role} cannot be sparse"),
            ));
        }
    }
    Ok(())
}

fn same_axes(op: &str, name: &str, a: &VarInfo, b: &VarInfo, what: &str) -> Result<()> {
    if a.axes != b.axes {
        return Err(Error::axes(
            op,
            name,
            format!(
                "{what} has dynamic axes {}, the scores {}",
                b.axes.notation(),
                a.axes.notation()
            ),
        ));
    }
    Ok(())
}

fn scalar_out(like: &VarInfo) -> Inferred {
    Inferred::one(dense_info(Shape::scalar(), like, DynamicAxes::None))
}

/// `WeightedLogistic(o, t, w)`: one element per sample (CNTK refuses vectors).
pub(crate) fn infer_weighted_logistic(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 3)?;
    need_dense(op, name, infos, &["output", "target", "weight"])?;
    let (o, t, w) = (&infos[0], &infos[1], &infos[2]);
    if o.shape.numel() != 1 || t.shape != o.shape || w.shape.numel() != 1 {
        return Err(Error::shape(
            op,
            name,
            format!(
                "output {}, target {} and weight {} must each hold one element per sample \
                 (CNTK: 'The input matrix dimensions do not match.')",
                o.shape, t.shape, w.shape
            ),
        ));
    }
    if o.axes.is_none() {
        return Err(Error::axes(op, name, "the output must have dynamic axes"));
    }
    same_axes(op, name, o, t, "the target")?;
    // A weight without dynamic axes is one weight for every sample.
    if !w.axes.is_none() {
        same_axes(op, name, o, w, "the weight")?;
    }
    Ok(scalar_out(o))
}

/// `ClassificationError(o, t, topN)` with topN > 1: a count over the minibatch.
pub(crate) fn infer_topn(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    top_n: usize,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    need_dense(op, name, infos, &["output", "target"])?;
    let (o, t) = (&infos[0], &infos[1]);
    if o.shape != t.shape || o.shape.numel() == 0 {
        return Err(Error::shape(
            op,
            name,
            format!(
                "output shape {} and target shape {} must be equal and non-empty",
                o.shape, t.shape
            ),
        ));
    }
    if top_n == 0 {
        return Err(Error::invalid(
            format!("{op} '{name}'"),
            "topN must be at least 1",
        ));
    }
    if o.axes.is_none() {
        return Err(Error::axes(op, name, "the output must have dynamic axes"));
    }
    same_axes(op, name, o, t, "the target")?;
    Ok(scalar_out(o))
}

/// `LambdaRank` / `NDCG1Eval(score, gain, group)`: one element per sample, batch
/// axis only (the group order is the sample order of the minibatch).
pub(crate) fn infer_ranking(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 3)?;
    need_dense(op, name, infos, &["score", "gain", "group"])?;
    let (s, g, q) = (&infos[0], &infos[1], &infos[2]);
    for (v, role) in [(s, "score"), (g, "gain"), (q, "group")] {
        if v.shape.numel() != 1 {
            return Err(Error::shape(
                op,
                name,
                format!(
                    "the {role} must hold one element per sample, got shape {} \
                     (score {}, gain {}, group {})",
                    v.shape, s.shape, g.shape, q.shape
                ),
            ));
        }
    }
    if s.axes != DynamicAxes::Batch {
        return Err(Error::axes(
            op,
            name,
            format!(
                "the score must have the batch axis only ([#]), got {}",
                s.axes.notation()
            ),
        ));
    }
    same_axes(op, name, s, g, "the gain")?;
    same_axes(op, name, s, q, "the group")?;
    Ok(scalar_out(s))
}

// ---------------------------------------------------------------------------
// Run time
// ---------------------------------------------------------------------------

fn rt(op: &str, detail: impl Into<String>) -> Error {
    Error::Runtime {
        op: op.into(),
        name: String::new(),
        detail: detail.into(),
    }
}

/// The valid rows of a whole operand (`numel` values each) and its row count.
fn rows<'a, B: Backend, T: Element>(
    op: &str,
    a: &WholeArg<'a, B, T>,
) -> Result<(B::Ref<'a, T>, usize)> {
    let d = a
        .data
        .dense()
        .ok_or_else(|| rt(op, "sparse operands are not supported"))?
        .data;
    let n = a.layout.rows();
    let need = n * a.shape.numel();
    if B::ref_len(d) < need {
        return Err(rt(
            op,
            format!(
                "operand holds {} values, its layout needs {need}",
                B::ref_len(d)
            ),
        ));
    }
    Ok((B::sub(d, 0..need), n))
}

fn same_rows<B: Backend, T: Element>(
    op: &str,
    a: &WholeArg<B, T>,
    b: &WholeArg<B, T>,
) -> Result<()> {
    if a.layout.same_as(b.layout) {
        Ok(())
    } else {
        Err(rt(
            op,
            format!(
                "operands have different layouts ({} vs {} samples)",
                a.layout.rows(),
                b.layout.rows()
            ),
        ))
    }
}

/// The weight operand: one value per sample, or one for all (a static weight).
fn weight<'a, B: Backend, T: Element>(
    op: &str,
    o: &WholeArg<B, T>,
    w: &WholeArg<'a, B, T>,
) -> Result<Operand<'a, B, T>> {
    let (wd, _) = rows(op, w)?;
    let per_row = !matches!(w.layout, Layout::Static);
    if per_row {
        same_rows(op, o, w)?;
    }
    Ok(Operand { data: wd, per_row })
}

/// Forward of the whole-minibatch metrics into `out[0]`.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[WholeArg<B, T>],
    out: B::Mut<'_, T>,
    _st: &mut NodeState<B, T>,
) -> Result<()> {
    let name = op.name();
    match op {
        Op::WeightedLogistic => {
            let (o, n) = rows(name, &args[0])?;
            let (t, _) = rows(name, &args[1])?;
            same_rows(name, &args[0], &args[1])?;
            let w = weight(name, &args[0], &args[2])?;
            b.weighted_logistic(o, t, w, n, out);
        }
        Op::ClassificationErrorTopN { top_n } => {
            let (o, n) = rows(name, &args[0])?;
            let (t, _) = rows(name, &args[1])?;
            same_rows(name, &args[0], &args[1])?;
            b.top_n_error(o, t, (n, args[0].shape.numel()), *top_n, out);
        }
        Op::LambdaRank => {
            let v = lambda_rank_value(ranking_inputs(b, name, args)?);
            b.write_host(&[T::from_f64(v)], out);
        }
        Op::Ndcg1 => {
            let v = ndcg1_value(ranking_inputs(b, name, args)?);
            b.write_host(&[T::from_f64(v)], out);
        }
        _ => return Err(Error::Unsupported(format!("{name} is not a metric op"))),
    }
    Ok(())
}

/// Backward of the whole-minibatch metrics: only the first operand of
/// WeightedLogistic and LambdaRank has a gradient.
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    i: usize,
    args: &[WholeArg<B, T>],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let name = op.name();
    match (op, i) {
        (Op::WeightedLogistic, 0) => {
            let (o, n) = rows(name, &args[0])?;
            let (t, _) = rows(name, &args[1])?;
            let w = weight(name, &args[0], &args[2])?;
            b.weighted_logistic_backward(o, t, w, n, dout, din);
        }
        (Op::LambdaRank, 0) => {
            let (s, g, gs) = ranking_inputs(b, name, args)?;
            let up = b.read_host(B::sub(dout, 0..1))[0].as_f64();
            let grad: Vec<T> = lambda_rank_grad(&s, &g, &gs)
                .into_iter()
                .map(|v| T::from_f64(up * v))
                .collect();
            // CNTK's sorting by group is host work: the gradient goes back through a
            // counted write and is added on the device.
            b.resize(&mut st.work, grad.len());
            b.write_host(&grad, B::view_mut(&mut st.work));
            let len = grad.len();
            b.add(
                B::view(&st.work),
                B::sub_mut(din, 0..len),
                crate::backend::Par::Seq,
            );
        }
        _ => {}
    }
    Ok(())
}
/// One group of a ranking minibatch: `start..end` rows.
fn groups(q: &[f64]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut prev: Option<i64> = None;
    for (i, &v) in q.iter().enumerate() {
        // CNTK casts the id to an integer and starts a group on every change.
        let id = v as i64;
        if prev != Some(id) {
            out.push(i..i + 1);
            prev = Some(id);
        } else if let Some(g) = out.last_mut() {
            g.end = i + 1;
        }
    }
    out
}

/// Rank (0 = best) of each member of a group: scores in decreasing order; equal
/// scores put the smaller gain first, then the earlier sample.
fn ranks(s: &[f64], g: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| {
        let by_score = if s[a] == s[b] || s[a].is_nan() || s[b].is_nan() {
            std::cmp::Ordering::Equal
        } else {
            s[b].partial_cmp(&s[a]).unwrap_or(std::cmp::Ordering::Equal)
        };
        by_score
            .then(g[a].partial_cmp(&g[b]).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.cmp(&b))
    });
    let mut rank = vec![0; s.len()];
    for (r, &k) in order.iter().enumerate() {
        rank[k] = r;
    }
    rank
}

fn discount(rank: usize) -> f64 {
    (2.0 + rank as f64).ln()
}

/// Scores, gains and groups of a ranking op, as f64.
type Ranking = (Vec<f64>, Vec<f64>, Vec<std::ops::Range<usize>>);

/// The scores, gains and groups of a ranking op, read on the host (CNTK's ranking
/// sorts within groups found in the data: an op read of three small vectors).
fn ranking_inputs<B: Backend, T: Element>(
    b: &B,
    op: &str,
    args: &[WholeArg<B, T>],
) -> Result<Ranking> {
    let (s, n) = rows(op, &args[0])?;
    let (g, _) = rows(op, &args[1])?;
    let (q, _) = rows(op, &args[2])?;
    same_rows(op, &args[0], &args[1])?;
    same_rows(op, &args[0], &args[2])?;
    if n == 0 {
        return Err(rt(op, "the minibatch has no samples (no groups)"));
    }
    let host = |x| -> Vec<f64> { b.read_host(x).iter().map(|v: &T| v.as_f64()).collect() };
    let q = host(q);
    Ok((host(s), host(g), groups(&q)))
}

/// `(1 − mean over groups of NDCG) · 100 · N`; a group whose ideal DCG is 0 counts
/// as NDCG 0 (it stays in the mean, as in CNTK).
fn lambda_rank_value((s, g, gs): Ranking) -> f64 {
    let mut sum = 0.0;
    for r in &gs {
        let (sg, gg) = (&s[r.clone()], &g[r.clone()]);
        let rank = ranks(sg, gg);
        let ideal: f64 = gg.iter().enumerate().map(|(k, &x)| x / discount(k)).sum();
        let dcg: f64 = gg.iter().zip(&rank).map(|(&x, &rk)| x / discount(rk)).sum();
        if ideal != 0.0 {
            sum += dcg / ideal;
        }
    }
    let n = s.len() as f64;
    (1.0 - sum / gs.len() as f64) * 100.0 * n
}

/// LambdaRank gradient of the scores, as CNTK 2.7 computes it (σ = 1).
///
/// In a group, every sample `i` whose gain exceeds the group's *last* gain pairs
/// with every later sample `j`; the pair contributes
/// `λ = −|ΔDCG_ij| / IDCG / (1 + exp(s_i − s_j))` to `i` and `−λ` to `j`, with
/// `ΔDCG_ij = (g_i − g_j)(1/D_j − 1/D_i)` for the discounts `D` of their ranks.
/// Pairs of equal gain (|Δg| < 1e-7) contribute nothing — but CNTK then does not
/// advance its index into the list of sigmoid factors, so every later pair of the
/// minibatch uses the factor of the pair before it. rntk reproduces that indexing
/// (observed: gains [3,3,1,0] give CNTK's gradients only with it); with strictly
/// decreasing gains (the documented use) it makes no difference. CNTK ignores the
/// incoming gradient; rntk scales by it (the chain rule), which is the same for the
/// root of a training criterion.
pub(crate) fn lambda_rank_grad(
    s: &[f64],
    g: &[f64],
    groups: &[std::ops::Range<usize>],
) -> Vec<f64> {
    let mut grad = vec![0.0; s.len()];
    // The sigmoid factors of all candidate pairs, in CNTK's order.
    let mut factors = Vec::new();
    for r in groups {
        let gg = &g[r.clone()];
        let min = gg[gg.len() - 1];
        for j in 0..gg.len() {
            if gg[j] > min {
                for k in j + 1..gg.len() {
                    factors.push(-1.0 / (1.0 + (s[r.start + j] - s[r.start + k]).exp()));
                }
            }
        }
    }
    let mut next = 0;
    for r in groups {
        let (sg, gg) = (&s[r.clone()], &g[r.clone()]);
        let rank = ranks(sg, gg);
        let ideal: f64 = gg.iter().enumerate().map(|(k, &x)| x / discount(k)).sum();
        let min = gg[gg.len() - 1];
        for i in 0..gg.len() {
            if gg[i] <= min {
                continue;
            }
            let di = discount(rank[i]);
            for j in i + 1..gg.len() {
                if (gg[i] - gg[j]).abs() < 1e-7 {
                    continue;
                }
                let dj = discount(rank[j]);
                let delta = (gg[i] - gg[j]) * (di - dj) / (di * dj);
                let nd = if ideal == 0.0 {
                    0.0
                } else {
                    (delta / ideal).abs()
                };
                let l = factors.get(next).copied().unwrap_or(0.0) * nd;
                next += 1;
                grad[r.start + i] += l;
                grad[r.start + j] -= l;
            }
        }
    }
    grad
}

/// `mean over groups (gain of the top-ranked sample / gain of the group's first
/// sample) · 100 · N`; groups whose first gain is 0 count as 0.
fn ndcg1_value((s, g, gs): Ranking) -> f64 {
    let mut sum = 0.0;
    for r in &gs {
        let (sg, gg) = (&s[r.clone()], &g[r.clone()]);
        let ideal = gg[0] / discount(0);
        if ideal == 0.0 {
            continue;
        }
        let rank = ranks(sg, gg);
        if let Some(top) = rank.iter().position(|&rk| rk == 0) {
            sum += (gg[top] / discount(0)) / ideal;
        }
    }
    let n = s.len() as f64;
    sum / gs.len() as f64 * 100.0 * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardmax_ties_take_first() {
        let x = [2.0f64, 2.0, 1.0, 0.0, 3.0, 3.0];
        let mut y = [9.0; 6];
        let x = Arg::<crate::backend::Cpu, f64>::Rows(&x);
        hardmax_forward(&crate::backend::Cpu, x, &Shape::from([3]), &mut y, 2).unwrap();
        assert_eq!(y, [1., 0., 0., 0., 1., 0.]);
    }

    #[test]
    fn lambda_spec_example() {
        let s = [1.0, 2.0, 3.0, 4.0];
        let g = [7.0, 1.0, 3.0, 1.0];
        let gs = groups(&[1.0, 1.0, 2.0, 2.0]);
        let d = lambda_rank_grad(&s, &g, &gs);
        let want = [-0.21215, 0.21215, -0.14862, 0.14862];
        for (a, b) in d.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{d:?}");
        }
    }

    #[test]
    fn groups_restart_on_every_change() {
        let gs = groups(&[1.0, 1.0, 2.0, 1.0]);
        assert_eq!(gs, vec![0..2, 2..3, 3..4]);
    }
}
