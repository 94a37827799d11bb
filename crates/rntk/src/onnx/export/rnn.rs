//! Recurrences that are ONNX cells → ONNX `LSTM` / `GRU` / `RNN` with
//! `sequence_lens`: rntk's fused LSTM scan, and loops whose step is an LSTM (with or
//! without peepholes), GRU or RNN step, recognized by the step's structure — the same
//! whether the model was built in rntk or loaded from a CNTK file:
//!
//! ```text
//! LSTM  pre = A + h·H,  A = b + x·W  (CNTK gates [i, g, f, o] → ONNX [i, o, f, c])
//!       c = σ(pre_f [+ Cf⊙c']) ⊙ c' + σ(pre_i [+ Ci⊙c']) ⊙ act(pre_g)
//!       h = act(c) ⊙ σ(pre_o [+ Co⊙c])
//! GRU   z = σ(A_z + (h·H)_z)  r = σ(A_r + (h·H)_r)  ĥ = act(A_c + (h⊙r)·H1)
//!       h' = (1 − z)⊙ĥ + z⊙h                    (linear_before_reset = 0)
//! RNN   h' = act(x·W + h·H + b)
//! ```
//!
//! When `A` is not `b + x·W` of parameters, `A` itself is the cell's input and `W` a
//! permutation (exact). Self-stabilized and projected cells do not match: they are
//! written as Scan (`loops.rs`). A forward and a backward cell over the same input whose
//! outputs are spliced become one bidirectional node. The ONNX nodes are written by
//! `rnn_emit.rs`.

use super::loops::parts;
use crate::graph::flat::{Flat, Src};
use crate::ops::{BinaryOp, Op, UnaryOp};
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Lstm,
    Gru,
    Rnn,
}

/// A recurrence that is one ONNX cell.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub kind: Kind,
    /// Hidden size.
    pub n: usize,
    /// The activation of g and h (LSTM), ĥ (GRU), h (RNN): "Tanh", "Sigmoid", "Relu".
    pub act: &'static str,
    pub reverse: bool,
    /// The cell's input: `x` with `w`/`b` (values), or the projected `A` without.
    pub x: usize,
    pub w: Option<usize>,
    pub b: Option<usize>,
    /// Recurrent weights: LSTM `H` (n, 4n); GRU `H` (n, 2n) and `h1` (n, n); RNN `H`.
    pub h: usize,
    pub h1: Option<usize>,
    /// Peepholes Ci, Cf, Co.
    pub peep: Option<[usize; 3]>,
    /// Initial states (h, then c for an LSTM).
    pub init: Vec<usize>,
    /// The value the cell provides: the sequence of h.
    pub provides: usize,
    /// Nodes whose work the cell does (not written separately).
    pub absorbed: Vec<usize>,
}

impl Cell {
    /// Values the cell's node reads.
    pub fn deps(&self) -> Vec<usize> {
        let mut d = vec![self.x, self.h];
        d.extend(self.w);
        d.extend(self.b);
        d.extend(self.h1);
        d.extend(self.peep.iter().flatten());
        d.extend(&self.init);
        d
    }
}

/// Structural questions about the flattened graph.
struct M<'a> {
    f: &'a Flat,
    inside: HashSet<usize>,
}

impl M<'_> {
    fn node(&self, v: usize) -> Option<(usize, &Op, &[usize])> {
        let n = self.f.producer(v)?;
        let node = &self.f.nodes[n];
        Some((n, &node.op, &node.ins))
    }
    fn unary(&self, v: usize, u: UnaryOp) -> Option<usize> {
        match self.node(v)? {
            (_, Op::Unary(x), ins) if *x == u => Some(ins[0]),
            _ => None,
        }
    }
    fn binary(&self, v: usize, b: BinaryOp) -> Option<(usize, usize)> {
        match self.node(v)? {
            (_, Op::Binary(x), ins) if *x == b => Some((ins[0], ins[1])),
            _ => None,
        }
    }
    /// `v = a ∘ b` with `∘` commutative: both orders tried.
    fn comm<T>(&self, v: usize, b: BinaryOp, f: impl Fn(usize, usize) -> Option<T>) -> Option<T> {
        let (x, y) = self.binary(v, b)?;
        f(x, y).or_else(|| f(y, x))
    }
    /// `v = slice(src, begin..end)` along the only axis of a vector.
    fn slice(&self, v: usize) -> Option<(usize, isize, isize)> {
        match self.node(v)? {
            (
                _,
                Op::Slice {
                    axis,
                    begin,
                    end,
                    stride: 1,
                },
                ins,
            ) if (*axis == 0 || *axis == -1) && self.f.vals[ins[0]].info.shape.rank() == 1 => {
                Some((ins[0], *begin, *end))
            }
            _ => None,
        }
    }
    fn gate(&self, v: usize, k: usize, n: usize) -> Option<usize> {
        let (src, b, e) = self.slice(v)?;
        (b == (k * n) as isize && e == ((k + 1) * n) as isize).then_some(src)
    }
    /// `v = times(x, W)` (output rank 1).
    fn times(&self, v: usize) -> Option<(usize, usize)> {
        match self.node(v)? {
            (_, Op::Times { output_rank: 1, .. }, ins) => Some((ins[0], ins[1])),
            _ => None,
        }
    }
    fn is_static_leaf(&self, v: usize) -> bool {
        matches!(self.f.vals[v].src, Src::Param(_) | Src::Const(_))
    }
    fn matrix(&self, v: usize, rows: usize, cols: usize) -> bool {
        self.is_static_leaf(v) && self.f.vals[v].info.shape.dims() == [rows, cols]
    }
    fn vector(&self, v: usize, n: usize) -> bool {
        self.is_static_leaf(v) && self.f.vals[v].info.shape.dims() == [n]
    }
    fn outer(&self, v: usize) -> bool {
        !self.f.producer(v).is_some_and(|p| self.inside.contains(&p))
    }
    /// A scalar constant equal to `x`.
    fn is_const(&self, v: usize, x: f64) -> bool {
        match &self.f.vals[v].src {
            Src::Const(c) => c
                .value()
                .map(|t| t.shape().numel() == 1 && t.to_f64_vec()[0] == x)
                .unwrap_or(false),
            _ => false,
        }
    }
    fn activation(&self, v: usize) -> Option<(&'static str, usize)> {
        for (u, name) in [
            (UnaryOp::Tanh, "Tanh"),
            (UnaryOp::Sigmoid, "Sigmoid"),
            (UnaryOp::Relu, "Relu"),
        ] {
            if let Some(x) = self.unary(v, u) {
                return Some((name, x));
            }
        }
        None
    }
    /// `A = b + x·W` with parameters `b` (width `w`) and `W`: (x, W, b).
    fn projection(&self, a: usize, width: usize) -> Option<(usize, usize, usize)> {
        self.comm(a, BinaryOp::Plus, |b, t| {
            let (x, w) = self.times(t)?;
            let xi = &self.f.vals[x].info;
            (self.vector(b, width)
                && xi.shape.rank() == 1
                && xi.axes.has_sequence()
                && self.matrix(w, xi.shape.dims()[0], width))
            .then_some((x, w, b))
        })
    }
}

/// The delays of a loop as (delay node, state before the step, state after it).
fn states(f: &Flat, delays: &[usize]) -> Vec<(usize, usize, usize)> {
    delays
        .iter()
        .map(|&d| (d, f.nodes[d].out, f.nodes[d].ins[0]))
        .collect()
}

fn init_ok(f: &Flat, v: usize, n: usize) -> bool {
    let i = &f.vals[v].info;
    let s = i.shape.dims();
    let shape_ok = i.shape.numel() == 1 && s.len() <= 1 || s == [n];
    shape_ok
        && matches!(
            i.axes,
            crate::graph::DynamicAxes::None | crate::graph::DynamicAxes::Batch
        )
}

/// Match a recurrent loop against the three cells.
pub(crate) fn match_loop(f: &Flat, comp: &[usize], used_outside: &[usize]) -> Option<Cell> {
    let p = parts(f, comp);
    if p.delays.iter().any(|&d| {
        !matches!(
            f.nodes[d].op,
            Op::PastValue { offset: 1 } | Op::FutureValue { offset: 1 }
        )
    }) {
        return None;
    }
    let m = M {
        f,
        inside: comp.iter().copied().collect(),
    };
    let st = states(f, &p.delays);
    let mut cell = match st.len() {
        2 => match_lstm(&m, &st[0], &st[1]).or_else(|| match_lstm(&m, &st[1], &st[0])),
        1 => match_gru(&m, &st[0]).or_else(|| match_rnn(&m, &st[0])),
        _ => None,
    }?;
    // Only h may be read after the loop.
    if used_outside != [cell.provides] {
        return None;
    }
    cell.reverse = p.reverse;
    if !cell.init.iter().all(|&v| init_ok(f, v, cell.n)) {
        return None;
    }
    cell.absorbed = comp.to_vec();
    Some(cell)
}

fn match_lstm(m: &M, hs: &(usize, usize, usize), cs: &(usize, usize, usize)) -> Option<Cell> {
    let (dh, hp, h_out) = *hs;
    let (dc, cp, c_out) = *cs;
    let n = m.f.vals[cp].info.shape.numel();
    if m.f.vals[hp].info.shape.dims() != [n] || m.f.vals[cp].info.shape.dims() != [n] {
        return None;
    }
    // pre = A + h·H
    let pre_of = |pre: usize| -> Option<(usize, usize)> {
        m.comm(pre, BinaryOp::Plus, |a, t| {
            let (h, w) = m.times(t)?;
            (h == hp && m.matrix(w, n, 4 * n) && m.outer(a)).then_some((a, w))
        })
    };
    let (pre, act, peep) =
        if let (Some((hc, 0, e1)), Some((hc2, b2, e2))) = (m.slice(h_out), m.slice(c_out)) {
            // the fused cell: [h | c] = lstm_cell(pre, c')
            if hc != hc2 || e1 != n as isize || b2 != n as isize || e2 != 2 * n as isize {
                return None;
            }
            match m.node(hc)? {
                (_, Op::LstmCell, ins) if ins[1] == cp => (ins[0], "Tanh", None),
                _ => return None,
            }
        } else {
            // explicit: h = act(c) ⊙ o
            let (act, o_in) = m.comm(h_out, BinaryOp::ElementTimes, |a, o| {
                let (act, c) = m.activation(a)?;
                (c == c_out).then_some((act, m.unary(o, UnaryOp::Sigmoid)?))
            })?;
            // c = f ⊙ c' + i ⊙ act(g)
            let (f_in, i_in, g) = m.comm(c_out, BinaryOp::Plus, |fc, ig| {
                let f_in = m.comm(fc, BinaryOp::ElementTimes, |f, c| {
                    (c == cp).then_some(m.unary(f, UnaryOp::Sigmoid)?)
                })?;
                let (i_in, g) = m.comm(ig, BinaryOp::ElementTimes, |i, ag| {
                    let (a2, g) = m.activation(ag)?;
                    (a2 == act).then_some((m.unary(i, UnaryOp::Sigmoid)?, g))
                })?;
                Some((f_in, i_in, g))
            })?;
            let pre = m.gate(g, 1, n)?;
            // each gate input: slice k of pre, optionally + peephole ⊙ state
            let gate_in = |v: usize, k: usize, state: usize| -> Option<(usize, Option<usize>)> {
                if m.gate(v, k, n) == Some(pre) {
                    return Some((pre, None));
                }
                m.comm(v, BinaryOp::Plus, |s, pe| {
                    (m.gate(s, k, n)? == pre).then_some(())?;
                    let c = m.comm(pe, BinaryOp::ElementTimes, |c, st| {
                        (st == state && m.vector(c, n)).then_some(c)
                    })?;
                    Some((pre, Some(c)))
                })
            };
            let (_, ci) = gate_in(i_in, 0, cp)?;
            let (_, cf) = gate_in(f_in, 2, cp)?;
            let (_, co) = gate_in(o_in, 3, c_out)?;
            let peep = match (ci, cf, co) {
                (Some(a), Some(b), Some(c)) => Some([a, b, c]),
                (None, None, None) => None,
                _ => return None,
            };
            (pre, act, peep)
        };
    let (a, hw) = pre_of(pre)?;
    let (x, w, b) = match m.projection(a, 4 * n) {
        Some((x, w, b)) => (x, Some(w), Some(b)),
        None => (a, None, None),
    };
    Some(Cell {
        kind: Kind::Lstm,
        n,
        act,
        reverse: false,
        x,
        w,
        b,
        h: hw,
        h1: None,
        peep,
        init: vec![m.f.nodes[dh].ins[1], m.f.nodes[dc].ins[1]],
        provides: h_out,
        absorbed: Vec::new(),
    })
}

fn match_gru(m: &M, hs: &(usize, usize, usize)) -> Option<Cell> {
    let (dh, hp, h_out) = *hs;
    let n = m.f.vals[hp].info.shape.numel();
    if m.f.vals[hp].info.shape.dims() != [n] {
        return None;
    }
    // h' = (1 − z) ⊙ ĥ + z ⊙ h
    let (z, cand) = m.comm(h_out, BinaryOp::Plus, |l, r| {
        let (z1, cand) = m.comm(l, BinaryOp::ElementTimes, |omz, c| {
            let (one, z) = m.binary(omz, BinaryOp::Minus)?;
            m.is_const(one, 1.0).then_some((z, c))
        })?;
        let z2 = m.comm(r, BinaryOp::ElementTimes, |z, h| (h == hp).then_some(z))?;
        (z1 == z2).then_some((z1, cand))
    })?;
    // z = σ(A_z + (h·H)_z), r = σ(A_r + (h·H)_r)
    let gate = |v: usize, k: usize| -> Option<(usize, usize)> {
        let s = m.unary(v, UnaryOp::Sigmoid)?;
        m.comm(s, BinaryOp::Plus, |ax, ah| {
            let a = m.gate(ax, k, n)?;
            let t = m.gate(ah, k, n)?;
            let (h, w) = m.times(t)?;
            (h == hp && m.matrix(w, n, 2 * n) && m.outer(ax)).then_some((a, w))
        })
    };
    let (a, hw) = gate(z, 0)?;
    // ĥ = act(A_c + (h ⊙ r)·H1)
    let (act, s) = m.activation(cand)?;
    let (a2, r, h1) = m.comm(s, BinaryOp::Plus, |ac, t| {
        let a2 = m.gate(ac, 2, n)?;
        let (hr, h1) = m.times(t)?;
        let r = m.comm(hr, BinaryOp::ElementTimes, |h, r| (h == hp).then_some(r))?;
        (m.matrix(h1, n, n) && m.outer(ac)).then_some((a2, r, h1))
    })?;
    let (a3, hw2) = gate(r, 1)?;
    if a2 != a || a3 != a || hw2 != hw {
        return None;
    }
    let (x, w, b) = match m.projection(a, 3 * n) {
        Some((x, w, b)) => (x, Some(w), Some(b)),
        None => (a, None, None),
    };
    Some(Cell {
        kind: Kind::Gru,
        n,
        act,
        reverse: false,
        x,
        w,
        b,
        h: hw,
        h1: Some(h1),
        peep: None,
        init: vec![m.f.nodes[dh].ins[1]],
        provides: h_out,
        absorbed: Vec::new(),
    })
}

fn match_rnn(m: &M, hs: &(usize, usize, usize)) -> Option<Cell> {
    let (dh, hp, h_out) = *hs;
    let n = m.f.vals[hp].info.shape.numel();
    if m.f.vals[hp].info.shape.dims() != [n] {
        return None;
    }
    let (act, s) = m.activation(h_out)?;
    // s = (x·W + h·H) + b, in any association
    let mut terms = Vec::new();
    let mut stack = vec![s];
    while let Some(v) = stack.pop() {
        match m.binary(v, BinaryOp::Plus) {
            Some((a, b)) if !m.outer(v) => {
                stack.push(a);
                stack.push(b);
            }
            _ => terms.push(v),
        }
    }
    let rec: Vec<usize> = terms
        .iter()
        .copied()
        .filter(|&t| {
            m.times(t)
                .is_some_and(|(h, w)| h == hp && m.matrix(w, n, n))
        })
        .collect();
    if rec.len() != 1 {
        return None;
    }
    let hw = m.times(rec[0])?.1;
    let rest: Vec<usize> = terms.into_iter().filter(|&t| t != rec[0]).collect();
    let (x, w, b) = match rest.as_slice() {
        [a] => match m.projection(*a, n) {
            Some((x, w, b)) => (x, Some(w), Some(b)),
            None => (*a, None, None),
        },
        [p, q] => {
            let pick = |t: usize, b: usize| -> Option<(usize, usize, usize)> {
                let (x, w) = m.times(t)?;
                let xi = &m.f.vals[x].info;
                (m.vector(b, n)
                    && xi.shape.rank() == 1
                    && xi.axes.has_sequence()
                    && m.matrix(w, xi.shape.dims()[0], n))
                .then_some((x, w, b))
            };
            let (x, w, b) = pick(*p, *q).or_else(|| pick(*q, *p))?;
            (x, Some(w), Some(b))
        }
        _ => return None,
    };
    if !m.outer(x) {
        return None;
    }
    Some(Cell {
        kind: Kind::Rnn,
        n,
        act,
        reverse: false,
        x,
        w,
        b,
        h: hw,
        h1: None,
        peep: None,
        init: vec![m.f.nodes[dh].ins[1]],
        provides: h_out,
        absorbed: Vec::new(),
    })
}

/// rntk's fused `lstm_scan` node `n` whose `c` output nothing reads: an ONNX LSTM.
pub(crate) fn match_lstm_scan(
    f: &Flat,
    n: usize,
    users: &[Vec<usize>],
    roots: &[usize],
) -> Option<Cell> {
    let node = &f.nodes[n];
    let Op::LstmScan { reverse } = node.op else {
        return None;
    };
    let (pre, hw, h0, c0) = (node.ins[0], node.ins[1], node.ins[2], node.ins[3]);
    let units = f.vals[hw].info.shape.dims()[0];
    let m = M {
        f,
        inside: HashSet::new(),
    };
    if roots.contains(&node.out) {
        return None;
    }
    let mut h_slice = None;
    let mut absorbed = vec![n];
    for &u in &users[node.out] {
        let (src, b, e) = m.slice(f.nodes[u].out)?;
        debug_assert_eq!(src, node.out);
        if b == 0 && e == units as isize {
            h_slice = Some(f.nodes[u].out);
        } else if users[f.nodes[u].out].is_empty() && !roots.contains(&f.nodes[u].out) {
            // the c sequence, read by nothing
        } else {
            return None;
        }
        absorbed.push(u);
    }
    let provides = h_slice?;
    if !m.is_static_leaf(hw) {
        return None;
    }
    let (x, w, b) = match m.projection(pre, 4 * units) {
        Some((x, w, b)) => (x, Some(w), Some(b)),
        None => (pre, None, None),
    };
    Some(Cell {
        kind: Kind::Lstm,
        n: units,
        act: "Tanh",
        reverse,
        x,
        w,
        b,
        h: hw,
        h1: None,
        peep: None,
        init: vec![h0, c0],
        provides,
        absorbed,
    })
}
