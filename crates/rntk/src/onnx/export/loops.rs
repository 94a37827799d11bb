//! Recurrent loops (strongly connected components through past_value /
//! future_value) → ONNX `LSTM` / `GRU` / `RNN` where the step is such a cell
//! (`rnn.rs`), else one `Scan` whose body is the step:
//!
//! * each delay in the loop is a state: its initial value (static, or one per
//!   sequence) is broadcast to `[batch, state…]`, the body reads the state before the
//!   step and writes the delayed value after it;
//! * values the step reads from outside the loop are per-step scan inputs (sequence
//!   values) or outer-scope references (everything else);
//! * the step's mask `[batch]` is a scan input too: where a sequence has no step
//!   (past its end; before its end when scanning backwards) the state is kept as it
//!   was, so every sequence sees exactly its own steps and padding never enters;
//! * values of the loop used after it are scan outputs `[sequence, batch, …]`.

use super::super::builder::{attr_g, attr_i, attr_ints, elem_type, value_info_untyped_shape, BOOL};
use super::super::proto::GraphProto;
use super::{Ex, Lay, Refusal, XV};
use crate::error::Result;
use crate::graph::flat::Flat;
use crate::ops::{ExecKind, Op};
use std::collections::{HashMap, HashSet};

/// What a loop cannot be written as, found before anything is built.
pub(crate) fn check(flat: &Flat, comp: &[usize]) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut dirs = HashSet::new();
    for &n in comp {
        match flat.nodes[n].op {
            Op::PastValue { offset } | Op::FutureValue { offset } => {
                dirs.insert(matches!(flat.nodes[n].op, Op::FutureValue { .. }));
                if offset != 1 {
                    out.push(Refusal {
                        node: n,
                        why: format!(
                            "a delay of {offset} steps inside a recurrent loop (loops are \
                             written as Scan, whose state reaches back one step)"
                        ),
                    });
                }
            }
            ref op if op.exec_kind() != ExecKind::RowLocal => out.push(Refusal {
                node: n,
                why: "a whole-sequence op inside a recurrent loop".into(),
            }),
            _ => {}
        }
    }
    if dirs.len() > 1 {
        out.push(Refusal {
            node: comp[0],
            why: "a recurrent loop through both past_value and future_value (a Scan runs one \
                  direction)"
                .into(),
        });
    }
    out
}

/// The parts of a loop.
pub(crate) struct LoopParts {
    pub delays: Vec<usize>,
    /// Body nodes in step order.
    pub body: Vec<usize>,
    /// Values read from outside the loop.
    pub outer: Vec<usize>,
    pub reverse: bool,
}

pub(crate) fn parts(flat: &Flat, comp: &[usize]) -> LoopParts {
    let inside: HashSet<usize> = comp.iter().copied().collect();
    let delays: Vec<usize> = comp
        .iter()
        .copied()
        .filter(|&n| {
            matches!(
                flat.nodes[n].op,
                Op::PastValue { .. } | Op::FutureValue { .. }
            )
        })
        .collect();
    let reverse = delays
        .iter()
        .any(|&n| matches!(flat.nodes[n].op, Op::FutureValue { .. }));
    // Step order: a topological order of the body, delays' outputs read as states.
    let body_set: HashSet<usize> = comp
        .iter()
        .copied()
        .filter(|n| !delays.contains(n))
        .collect();
    let mut order = Vec::new();
    let mut done: HashSet<usize> = HashSet::new();
    for &start in comp.iter().filter(|n| body_set.contains(n)) {
        let mut stack = vec![(start, false)];
        while let Some((n, expanded)) = stack.pop() {
            if done.contains(&n) {
                continue;
            }
            if expanded {
                done.insert(n);
                order.push(n);
                continue;
            }
            stack.push((n, true));
            for &i in &flat.nodes[n].ins {
                if let Some(p) = flat.producer(i) {
                    if body_set.contains(&p) && !done.contains(&p) {
                        stack.push((p, false));
                    }
                }
            }
        }
    }
    let mut outer = Vec::new();
    for &n in comp {
        let ins = &flat.nodes[n].ins;
        // a delay's initial state is read outside the loop (to start the state)
        let read: &[usize] = if delays.contains(&n) { &ins[..1] } else { ins };
        for &i in read {
            let from_inside = flat.producer(i).is_some_and(|p| inside.contains(&p));
            if !from_inside && !outer.contains(&i) {
                outer.push(i);
            }
        }
    }
    LoopParts {
        delays,
        body: order,
        outer,
        reverse,
    }
}

/// Values of the loop that something outside it reads.
pub(crate) fn used_outside(flat: &Flat, users: &[Vec<usize>], comp: &[usize]) -> Vec<usize> {
    let inside: HashSet<usize> = comp.iter().copied().collect();
    let mut outs: Vec<usize> = Vec::new();
    for &n in comp {
        let v = flat.nodes[n].out;
        if users[v].iter().any(|u| !inside.contains(u)) {
            outs.push(v);
        }
    }
    for &r in &flat.roots {
        let produced = flat.producer(r).is_some_and(|p| inside.contains(&p));
        if produced && !outs.contains(&r) {
            outs.push(r);
        }
    }
    outs.sort_unstable();
    outs
}

pub(crate) fn emit(ex: &mut Ex, comp: &[usize]) -> Result<()> {
    scan(ex, comp)
}

/// The loop as a Scan.
fn scan(ex: &mut Ex, comp: &[usize]) -> Result<()> {
    let p = parts(ex.flat, comp);
    let d0 = p.delays[0];
    let state_lay = {
        let v = ex.flat.nodes[d0].out;
        ex.lay_of(&ex.flat.vals[v].info.axes.clone())?
    };
    let k = match state_lay {
        Lay::Seq(k) => k,
        _ => return Err(ex.err(d0, "a recurrent state without a sequence axis")),
    };
    let outs = ex.used_outside(comp);
    // Operands from outside: sequence values are sliced per step, others referenced.
    let mut outer_x: HashMap<usize, XV> = HashMap::new();
    for &v in &p.outer {
        let x = if ex.vals[v].is_some() {
            ex.get(v)?
        } else {
            leaf_or_get(ex, v)?
        };
        outer_x.insert(v, x);
    }
    let mask = ex.mask(k);
    // Initial states [batch, state…].
    let mut inits = Vec::new();
    for &d in &p.delays {
        let iv = ex.flat.nodes[d].ins[1];
        let init = leaf_or_get(ex, iv)?;
        let state = ex.flat.vals[ex.flat.nodes[d].out].info.shape.clone();
        let init = ex.align(&init, state.rank());
        let b = ex.g.shape_part(&mask, 1, 2);
        let dims: Vec<i64> = state.dims().iter().map(|&x| x as i64).collect();
        let sd = ex.g.i64s(&dims);
        let shape = ex.g.op("Concat", &[&b, &sd], vec![attr_i("axis", 0)]);
        inits.push(ex.g.op("Expand", &[&init, &shape], vec![]));
    }
    let seq_in: Vec<usize> = p
        .outer
        .iter()
        .copied()
        .filter(|v| outer_x[v].lay == Lay::Seq(k))
        .collect();
    for &v in &p.outer {
        if let Lay::Seq(j) = outer_x[&v].lay {
            if j != k {
                return Err(ex.err(
                    d0,
                    "a loop reads a sequence on another sequence axis than its own",
                ));
            }
        }
    }
    // The body.
    let sub = ex.g.sub();
    let outer_g = std::mem::replace(&mut ex.g, sub);
    ex.local.push(HashMap::new());
    let r = body(ex, &p, &seq_in, &outer_x, &outs, k);
    let body_g = std::mem::replace(&mut ex.g, outer_g);
    ex.local.pop();
    let (b_inputs, b_outputs, state_count) = r?;
    let graph = GraphProto {
        node: body_g.nodes,
        name: Some(ex.g.fresh("scan_body")),
        input: b_inputs,
        output: b_outputs,
        ..Default::default()
    };
    let mut scan_ins: Vec<String> = inits.clone();
    for &v in &seq_in {
        scan_ins.push(outer_x[&v].name.clone());
    }
    scan_ins.push(mask);
    let m = seq_in.len() + 1;
    let dir = if p.reverse { 1 } else { 0 };
    let mut attrs = vec![attr_g("body", graph), attr_i("num_scan_inputs", m as i64)];
    if p.reverse {
        attrs.push(attr_ints("scan_input_directions", &vec![dir; m]));
        attrs.push(attr_ints("scan_output_directions", &vec![dir; outs.len()]));
    }
    let refs: Vec<&str> = scan_ins.iter().map(|s| s.as_str()).collect();
    let results = ex.g.op_n("Scan", &refs, state_count + outs.len(), attrs);
    for (j, &v) in outs.iter().enumerate() {
        let info = ex.flat.vals[v].info.clone();
        ex.set(
            v,
            XV {
                name: results[state_count + j].clone(),
                lay: Lay::Seq(k),
                shape: info.shape,
                dtype: info.dtype,
            },
        );
    }
    Ok(())
}

fn leaf_or_get(ex: &mut Ex, v: usize) -> Result<XV> {
    ex.leaf_value(v)
}

type BodyIo = (
    Vec<super::super::proto::ValueInfoProto>,
    Vec<super::super::proto::ValueInfoProto>,
    usize,
);

/// Build the Scan body in `ex.g` (already a fresh subgraph builder).
fn body(
    ex: &mut Ex,
    p: &LoopParts,
    seq_in: &[usize],
    outer_x: &HashMap<usize, XV>,
    outs: &[usize],
    k: usize,
) -> Result<BodyIo> {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut state_in = Vec::new();
    for &d in &p.delays {
        let v = ex.flat.nodes[d].out;
        let info = ex.flat.vals[v].info.clone();
        let name = ex.g.fresh("state_in");
        inputs.push(value_info_untyped_shape(&name, elem_type(info.dtype)));
        state_in.push(name.clone());
        ex.set(
            v,
            XV {
                name,
                lay: Lay::Step(k),
                shape: info.shape,
                dtype: info.dtype,
            },
        );
    }
    for &v in seq_in {
        let x = &outer_x[&v];
        let name = ex.g.fresh("step_in");
        inputs.push(value_info_untyped_shape(&name, elem_type(x.dtype)));
        ex.set(
            v,
            XV {
                name,
                lay: Lay::Step(k),
                ..x.clone()
            },
        );
    }
    let m = ex.g.fresh("step_mask");
    inputs.push(value_info_untyped_shape(&m, BOOL));
    for &n in &p.body {
        let ins = ex.operands(n)?;
        let x = ex.row_local(n, &ins)?;
        let x = XV {
            lay: step_lay(x.lay, k),
            ..x
        };
        ex.set(ex.flat.nodes[n].out, x);
    }
    // New states: the delayed values where the step is real, the old state elsewhere.
    for (j, &d) in p.delays.iter().enumerate() {
        let src = ex.flat.nodes[d].ins[0];
        let x = ex.get(src)?;
        let x = broadcast_step(ex, &x, &m)?;
        let mm =
            ex.g.unsqueeze(&m, &(1..=x.shape.rank() as i64).collect::<Vec<_>>());
        let s = ex.g.op("Where", &[&mm, &x.name, &state_in[j]], vec![]);
        let o = ex.g.fresh("state_out");
        ex.g.push("", "Identity", &[&s], std::slice::from_ref(&o), vec![]);
        outputs.push(value_info_untyped_shape(&o, elem_type(x.dtype)));
    }
    for &v in outs {
        let x = ex.get(v)?;
        let x = broadcast_step(ex, &x, &m)?;
        let o = ex.g.fresh("step_out");
        ex.g.push("", "Identity", &[&x.name], std::slice::from_ref(&o), vec![]);
        outputs.push(value_info_untyped_shape(&o, elem_type(x.dtype)));
    }
    Ok((inputs, outputs, p.delays.len()))
}

fn step_lay(l: Lay, k: usize) -> Lay {
    match l {
        Lay::Seq(_) => Lay::Step(k),
        x => x,
    }
}

/// A value of the step that does not depend on the batch (a static value computed in
/// the loop) broadcast to `[batch, …]`, so every step output has the same form.
fn broadcast_step(ex: &mut Ex, x: &XV, mask: &str) -> Result<XV> {
    if x.lay != Lay::Static {
        return Ok(x.clone());
    }
    let b = ex.g.shape_part(mask, 0, 1);
    let dims = ex.g.i64s(&x.dims_i64());
    let shape = ex.g.op("Concat", &[&b, &dims], vec![attr_i("axis", 0)]);
    let name = ex.g.op("Expand", &[&x.name, &shape], vec![]);
    Ok(XV {
        name,
        lay: Lay::Batch,
        ..x.clone()
    })
}
