//! The ONNX nodes of the recurrences `rnn.rs` recognises: `LSTM` / `GRU` / `RNN` with
//! the weights in ONNX's layout and gate order (CNTK's LSTM gates [i, g, f, o] → ONNX's
//! [i, o, f, c]), a forward and a backward cell as one bidirectional node, and rntk's
//! fused LSTM scan whose c output is read as a Scan over the LSTM cell.

use super::super::builder::{
    attr_g, attr_i, attr_ints, attr_s, attr_strings, elem_type, value_info_untyped_shape, BOOL,
};
use super::super::proto::GraphProto;
use super::rnn::{Cell, Kind};
use super::{Ex, Lay, XV};
use crate::error::Result;
use crate::graph::flat::Src;
use crate::tensor::{DType, Shape, Tensor};

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
