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
//! outputs are spliced become one bidirectional node.

use super::super::builder::{
    attr_g, attr_i, attr_ints, attr_s, attr_strings, elem_type, value_info_untyped_shape, BOOL,
};
use super::super::proto::GraphProto;
use super::loops::parts;
use super::{Ex, Lay, XV};
use crate::error::Result;
use crate::graph::flat::{Flat, Src};
use crate::ops::{BinaryOp, Op, UnaryOp};
use crate::tensor::{DType, Shape, Tensor};
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

/// Gate blocks of CNTK's order in ONNX's: LSTM [i, g, f, o] → [i, o, f, c]; GRU and
/// RNN keep theirs.
fn gate_order(kind: Kind) -> &'static [usize] {
    match kind {
        Kind::Lstm => &[0, 3, 2, 1],
        Kind::Gru => &[0, 1, 2],
        Kind::Rnn => &[0],
    }
}

/// `m` (rows × gates·n, row-major) as ONNX's `[gates·n, rows]` with the gate blocks
/// reordered.
fn onnx_weights(m: &[f64], rows: usize, n: usize, order: &[usize]) -> Vec<f64> {
    let cols = order.len() * n;
    let mut out = Vec::with_capacity(cols * rows);
    for &g in order {
        for j in 0..n {
            let c = g * n + j;
            for r in 0..rows {
                out.push(m[r * cols + c]);
            }
        }
    }
    out
}

/// W, R, B and P of one direction, in ONNX's layout.
type CellWeights = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

impl Ex<'_> {
    fn value_f64(&self, v: usize) -> Result<Tensor> {
        match &self.flat.vals[v].src {
            Src::Param(p) | Src::Const(p) => p.value(),
            _ => Err(crate::error::Error::Argument(
                "ONNX export: a cell weight is not a parameter".into(),
            )),
        }
    }

    /// The ONNX weight tensors of one direction: W, R, B (and P).
    fn cell_weights(&self, c: &Cell, in_dim: usize) -> Result<CellWeights> {
        let order = gate_order(c.kind);
        let g = order.len();
        let n = c.n;
        let w = match c.w {
            Some(w) => onnx_weights(&self.value_f64(w)?.to_f64_vec(), in_dim, n, order),
            None => {
                // A is the input: W picks its gate blocks (a permutation)
                let mut eye = vec![0.0; g * n * g * n];
                for j in 0..g * n {
                    eye[j * (g * n) + j] = 1.0;
                }
                onnx_weights(&eye, g * n, n, order)
            }
        };
        let r = match c.kind {
            Kind::Gru => {
                // H (n, 2n) holds z and r; H1 (n, n) the candidate's
                let h = self.value_f64(c.h)?.to_f64_vec();
                let h1 = self.value_f64(c.h1.expect("GRU H1"))?.to_f64_vec();
                let mut full = vec![0.0; n * 3 * n];
                for row in 0..n {
                    full[row * 3 * n..row * 3 * n + 2 * n]
                        .copy_from_slice(&h[row * 2 * n..(row + 1) * 2 * n]);
                    full[row * 3 * n + 2 * n..(row + 1) * 3 * n]
                        .copy_from_slice(&h1[row * n..(row + 1) * n]);
                }
                onnx_weights(&full, n, n, order)
            }
            _ => onnx_weights(&self.value_f64(c.h)?.to_f64_vec(), n, n, order),
        };
        let mut b = vec![0.0; 2 * g * n];
        if let Some(bv) = c.b {
            let bv = self.value_f64(bv)?.to_f64_vec();
            for (k, &src) in order.iter().enumerate() {
                b[k * n..(k + 1) * n].copy_from_slice(&bv[src * n..(src + 1) * n]);
            }
        }
        let mut p = Vec::new();
        if let Some([ci, cf, co]) = c.peep {
            // ONNX peephole order: i, o, f
            for v in [ci, co, cf] {
                p.extend(self.value_f64(v)?.to_f64_vec());
            }
        }
        Ok((w, r, b, p))
    }

    fn f64_const(&mut self, hint: &str, dims: &[usize], v: &[f64], d: DType) -> Result<String> {
        let t = Tensor::from_f64(Shape::new(dims.to_vec()), d, v)?;
        Ok(self.g.initializer(hint, &t))
    }

    /// One cell (or a forward and a backward cell) as an ONNX node; returns the
    /// sequence of h as `[T, B, dirs·n]`.
    pub fn emit_cells(&mut self, cells: &[&Cell]) -> Result<String> {
        let c0 = cells[0];
        let x = self.leaf_value(c0.x)?;
        let k = match x.lay {
            Lay::Seq(k) => k,
            _ => {
                return Err(crate::error::Error::Unsupported(
                    "ONNX export: a recurrence over a value without a sequence axis".into(),
                ))
            }
        };
        let d = x.dtype;
        let in_dim = x.shape.numel();
        let dirs = cells.len();
        let g = gate_order(c0.kind).len();
        let n = c0.n;
        let (mut ws, mut rs, mut bs, mut ps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in cells {
            let (w, r, b, p) = self.cell_weights(c, in_dim)?;
            ws.extend(w);
            rs.extend(r);
            bs.extend(b);
            ps.extend(p);
        }
        let wn = self.f64_const("W_onnx", &[dirs, g * n, in_dim], &ws, d)?;
        let rn = self.f64_const("R_onnx", &[dirs, g * n, n], &rs, d)?;
        let bn = self.f64_const("B_onnx", &[dirs, 2 * g * n], &bs, d)?;
        let lens = self.axes[k].lens.clone();
        // initial states [dirs, B, n]
        let states = if c0.kind == Kind::Lstm { 2 } else { 1 };
        let mut init = Vec::new();
        for s in 0..states {
            let mut per_dir = Vec::new();
            for c in cells {
                let iv = self.leaf_value(c.init[s])?;
                let b = self.g.shape_part(&x.name, 1, 2);
                let one = self.g.i64s(&[1]);
                let nn = self.g.i64s(&[n as i64]);
                let shape = self
                    .g
                    .op("Concat", &[&one, &b, &nn], vec![attr_i("axis", 0)]);
                let src = if iv.lay == Lay::Static {
                    self.g.reshape(&iv.name, &[-1])
                } else {
                    iv.name.clone()
                };
                per_dir.push(self.g.op("Expand", &[&src, &shape], vec![]));
            }
            let refs: Vec<&str> = per_dir.iter().map(|s| s.as_str()).collect();
            init.push(if dirs == 1 {
                per_dir[0].clone()
            } else {
                self.g.op("Concat", &refs, vec![attr_i("axis", 0)])
            });
        }
        let direction = match (dirs, c0.reverse) {
            (2, _) => "bidirectional",
            (_, true) => "reverse",
            _ => "forward",
        };
        let mut attrs = vec![
            attr_i("hidden_size", n as i64),
            attr_s("direction", direction),
        ];
        let acts: Vec<&str> = match c0.kind {
            Kind::Lstm => vec!["Sigmoid", c0.act, c0.act],
            Kind::Gru => vec!["Sigmoid", c0.act],
            Kind::Rnn => vec![c0.act],
        };
        let all: Vec<&str> = (0..dirs).flat_map(|_| acts.clone()).collect();
        attrs.push(attr_strings("activations", &all));
        let op = match c0.kind {
            Kind::Lstm => "LSTM",
            Kind::Gru => {
                attrs.push(attr_i("linear_before_reset", 0));
                "GRU"
            }
            Kind::Rnn => "RNN",
        };
        let mut ins: Vec<String> = vec![x.name.clone(), wn, rn, bn, lens];
        ins.extend(init);
        if c0.peep.is_some() {
            ins.push(self.f64_const("P_onnx", &[dirs, 3 * n], &ps, d)?);
        }
        let refs: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let y = self.g.op(op, &refs, attrs);
        // Y [T, dirs, B, n] → [T, B, dirs·n]
        Ok(if dirs == 1 {
            self.g.squeeze(&y, &[1])
        } else {
            let t = self
                .g
                .op("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])]);
            self.g.reshape(&t, &[0, 0, (dirs * n) as i64])
        })
    }

    /// Write a cell and record the h sequence it provides.
    pub fn emit_cell(&mut self, c: &Cell) -> Result<()> {
        let y = self.emit_cells(&[c])?;
        let x = self.leaf_value(c.x)?;
        let info = self.flat.vals[c.provides].info.clone();
        self.set(
            c.provides,
            XV {
                name: y,
                lay: x.lay,
                shape: info.shape,
                dtype: info.dtype,
            },
        );
        Ok(())
    }

    /// rntk's fused `lstm_scan(pre_x, H, h0, c0)` whose c output is read: a Scan over
    /// the LSTM cell.
    pub fn lstm_scan(&mut self, n: usize, ins: &[XV], reverse: bool) -> Result<XV> {
        let (pre, h, h0, c0) = (&ins[0], &ins[1], &ins[2], &ins[3]);
        let k = match pre.lay {
            Lay::Seq(k) => k,
            _ => return Err(self.err(n, "the pre-activations have no sequence axis")),
        };
        let units = h.shape.dims()[0];
        let d = pre.dtype;
        let mask = self.mask(k);
        let mut inits = Vec::new();
        for s in [h0, c0] {
            let b = self.g.shape_part(&mask, 1, 2);
            let sd = self.g.i64s(&[units as i64]);
            let shape = self.g.op("Concat", &[&b, &sd], vec![attr_i("axis", 0)]);
            let src = if s.lay == Lay::Static {
                self.g.reshape(&s.name, &[-1])
            } else {
                s.name.clone()
            };
            inits.push(self.g.op("Expand", &[&src, &shape], vec![]));
        }
        let sub = self.g.sub();
        let outer = std::mem::replace(&mut self.g, sub);
        let (hi, ci, xi, mi) = (
            self.g.fresh("h_in"),
            self.g.fresh("c_in"),
            self.g.fresh("pre_in"),
            self.g.fresh("step_mask"),
        );
        let rec = self.g.op("MatMul", &[&hi, &h.name], vec![]);
        let p = self.g.op("Add", &[&xi, &rec], vec![]);
        let pv = XV {
            name: p,
            lay: Lay::Step(k),
            shape: pre.shape.clone(),
            dtype: d,
        };
        let cv = XV {
            name: ci.clone(),
            lay: Lay::Step(k),
            shape: Shape::from([units]),
            dtype: d,
        };
        let hc = self.lstm_cell(&pv, &cv);
        let u = units as i64;
        let hn = self.g.slice(&hc, &[0], &[u], &[1]);
        let cn = self.g.slice(&hc, &[u], &[2 * u], &[1]);
        let mm = self.g.unsqueeze(&mi, &[1]);
        let ho = self.g.op("Where", &[&mm, &hn, &hi], vec![]);
        let co = self.g.op("Where", &[&mm, &cn, &ci], vec![]);
        let et = elem_type(d);
        let body = GraphProto {
            node: std::mem::take(&mut self.g.nodes),
            name: Some(self.g.fresh("lstm_body")),
            input: vec![
                value_info_untyped_shape(&hi, et),
                value_info_untyped_shape(&ci, et),
                value_info_untyped_shape(&xi, et),
                value_info_untyped_shape(&mi, BOOL),
            ],
            output: vec![
                value_info_untyped_shape(&ho, et),
                value_info_untyped_shape(&co, et),
                value_info_untyped_shape(&hc, et),
            ],
            ..Default::default()
        };
        self.g = outer;
        let mut attrs = vec![attr_g("body", body), attr_i("num_scan_inputs", 2)];
        if reverse {
            attrs.push(attr_ints("scan_input_directions", &[1, 1]));
            attrs.push(attr_ints("scan_output_directions", &[1]));
        }
        let o = self
            .g
            .op_n("Scan", &[&inits[0], &inits[1], &pre.name, &mask], 3, attrs);
        Ok(self.out_of(n, o[2].clone(), pre.lay))
    }
}
