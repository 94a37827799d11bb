//! The backward pass: the schedule in reverse, only through slots that lead from the
//! `wrt` variables (the plan caches which, per set); loops run backward in time, and
//! the gradients of their static operands (recurrent weights) and of the operands a
//! context op reads whole (attention's encoder keys and values) are deferred and
//! computed once over all steps.

use super::arena::{Arena, Params};
use super::compile::{Plan, Step};
use super::feeds::{param_bufs, read_params};
use super::forward::Args;
use super::{runtime_err, with_name, Executor};
use crate::backend::{Backend, Par, Work};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::ops::{delay, ExecKind, NodeState, RowCtx, WholeArg};
use crate::tensor::{Element, Layout, Tensor, Value, ValueData};
use smallvec::SmallVec;
use std::ops::Range;

impl<T: Element, B: Backend> Executor<T, B> {
    /// Backpropagate from `seeds` (root, gradient; `None` = all ones) and return the
    /// gradients of `wrt`, in order, on this executor's device. Only what leads from
    /// `wrt` to the roots is computed.
    pub fn backward(
        &mut self,
        seeds: &[(&Variable, Option<&Value>)],
        wrt: &[&Variable],
    ) -> Result<Vec<Value>> {
        if self.inference.is_some() {
            return Err(Error::Argument(
                "backward() on a forward-only executor (build it with Executor::new to train)"
                    .into(),
            ));
        }
        if !self.forwarded {
            return Err(Error::Argument(
                "backward() needs a successful forward() first".into(),
            ));
        }
        let wrt_slots = self.wrt_slots(wrt)?;
        self.run_backward(seeds, &wrt_slots, None)?;
        self.take_gradients(&wrt_slots)
    }

    /// [`Executor::backward`] that hands each gradient of `wrt` to `ready(k, gradient)`
    /// (moved, not copied) as soon as the pass has finished it, while the pass goes on
    /// through the rest of the graph: a distributed learner starts exchanging the
    /// output layer's gradient while the recurrent layers below are still computed.
    /// The order of the calls is [`Executor::gradient_order`]'s, the same every pass.
    pub fn backward_streaming(
        &mut self,
        seeds: &[(&Variable, Option<&Value>)],
        wrt: &[&Variable],
        ready: &mut (dyn FnMut(usize, Tensor) -> Result<()> + Send),
    ) -> Result<()> {
        let wrt_slots = self.wrt_slots(wrt)?;
        let finals = final_steps(&self.plan, &wrt_slots);
        let mut stream = Stream {
            wrt: &wrt_slots,
            finals: &finals,
            ready,
        };
        self.run_backward(seeds, &wrt_slots, Some(&mut stream))
    }

    /// The indices of `wrt` in the order a backward pass finishes their gradients
    /// (those of the parameters nearest the loss first), as
    /// [`Executor::backward_streaming`] hands them over.
    pub fn gradient_order(&self, wrt: &[&Variable]) -> Result<Vec<usize>> {
        let finals = final_steps(&self.plan, &self.wrt_slots(wrt)?);
        let steps = self.plan.steps.len();
        let mut order: Vec<usize> = (0..finals.len()).collect();
        // final at once (None) first, then by step, the last step first; stable
        order.sort_by_key(|&k| finals[k].map_or(0, |i| steps - i));
        Ok(order)
    }

    fn wrt_slots(&self, wrt: &[&Variable]) -> Result<Vec<usize>> {
        wrt.iter()
            .map(|v| {
                self.plan.var_slots.get(&v.key()).copied().ok_or_else(|| {
                    Error::Argument(format!(
                        "cannot differentiate with respect to {}: not part of this function",
                        v.label()
                    ))
                })
            })
            .collect()
    }

    /// The pass itself: zeroed gradients, the seeds, the steps in reverse (handing
    /// finished gradients to `stream`, if any).
    fn run_backward(
        &mut self,
        seeds: &[(&Variable, Option<&Value>)],
        wrt_slots: &[usize],
        mut stream: Option<&mut Stream<'_>>,
    ) -> Result<()> {
        // Ops that compute all their operands' gradients at once do so anew each pass.
        for st in &mut self.arena.states {
            st.grad_ready = false;
        }
        let reach = self.plan.reach(wrt_slots);
        let seeded: Vec<usize> = seeds
            .iter()
            .filter_map(|(v, _)| self.plan.var_slots.get(&v.key()).copied())
            .collect();
        self.pass = self.pass_through(&reach, wrt_slots, &seeded);
        let assign = self.written_once(&reach, wrt_slots, &seeded);
        let work = Work::Pass(self.pass_work());
        self.zero_grads(&reach, &assign, work);
        self.add_seeds(seeds, &reach)?;
        if let Some(st) = stream.as_deref_mut() {
            // gradients no step reads: final (zero) at once
            st.emit(&self.backend, &mut self.arena, None)?;
        }
        let (plan, backend) = (self.plan.clone(), self.backend.clone());
        let (arena, pass, training) = (&mut self.arena, &self.pass, self.training);
        let fold = self.inference.is_none();
        backend.scope(work, |par| {
            let guards = read_params(&plan);
            let params = param_bufs::<T, B>(&backend, &guards);
            let mut run = Back {
                plan: &plan,
                b: &backend,
                arena,
                params: &params,
                reach: &reach,
                pass,
                assign: &assign,
                training,
                par,
                fold,
            };
            run.all(stream)
        })
    }

    /// For each node run on its own (not inside a recurrent loop) with an operand its
    /// op passes through unchanged (`x` in `x + b`), same shape and rows as the output:
    /// that operand, when nothing else reads it, it is not asked for (`wrt`) or seeded,
    /// and the output's gradient is not asked for. Its gradient is then the output's
    /// gradient itself: the buffer is moved instead of zeroed and added to (for a
    /// Dense(10000) output over 700 rows, 28 MB zeroed and 28 MB added per minibatch).
    pub(super) fn pass_through(
        &self,
        reach: &[bool],
        wrt: &[usize],
        seeded: &[usize],
    ) -> Vec<Option<usize>> {
        let (plan, layouts) = (&*self.plan, &self.arena.layouts);
        let mut pass = vec![None; plan.nodes.len()];
        for step in &plan.steps {
            let Step::Node(n) = step else { continue };
            let node = &plan.nodes[*n];
            let out = node.out;
            if !reach[out] || wrt.contains(&out) || node.ins.len() != 2 {
                continue;
            }
            pass[*n] = node.op.pass_through().iter().copied().find(|&i| {
                let s = node.ins[i];
                reach[s]
                    && plan.readers[s] == 1
                    && node.ins[1 - i] != s
                    && !wrt.contains(&s)
                    && !seeded.contains(&s)
                    && plan.slots[s].shape == plan.slots[out].shape
                    && !matches!(layouts[s], Layout::Static)
                    && layouts[s].same_as(&layouts[out])
            });
        }
        pass
    }

    /// Slots whose gradient one node's backward writes whole instead of adding into
    /// (`Op::writes_gradient`): read by that operand alone, in a node run on its own,
    /// not asked for (`wrt`) or seeded. They are not zeroed; the node is told
    /// (`RowCtx::assign`). A convolution's or normalization's input: a full pass saved.
    fn written_once(&self, reach: &[bool], wrt: &[usize], seeded: &[usize]) -> Vec<bool> {
        let plan = &*self.plan;
        let mut assign = vec![false; plan.slots.len()];
        for step in &plan.steps {
            let Step::Node(n) = *step else { continue };
            let node = &plan.nodes[n];
            for (i, &s) in node.ins.iter().enumerate() {
                assign[s] = reach[s]
                    && reach[node.out]
                    && plan.readers[s] == 1
                    && node.op.writes_gradient(i)
                    && node.op.differentiable(i)
                    && !wrt.contains(&s)
                    && !seeded.contains(&s);
            }
        }
        assign
    }

    /// Zeroed gradient buffers for every slot that carries gradient (a handed-over one
    /// gets its buffer from its consumer, one in `assign` is written whole: no zeros).
    /// Zeroing an output layer's gradient is a memory-bound pass: spread over the pool
    /// for large minibatches.
    fn zero_grads(&mut self, reach: &[bool], assign: &[bool], work: Work) {
        let mut handed = vec![false; reach.len()];
        for (n, p) in self.pass.iter().enumerate() {
            if let Some(i) = *p {
                handed[self.plan.nodes[n].ins[i]] = true;
            }
        }
        if self.inference.is_none() {
            // a normalization with a ReLU folded in reads the ReLU's gradient, not its own
            for (n, m) in self.plan.relu_after.iter().enumerate() {
                if m.is_some() {
                    handed[self.plan.nodes[n].out] = true;
                }
            }
        }
        let (b, a) = (&self.backend, &mut self.arena);
        b.clone().scope(work, |par| {
            for s in (0..reach.len()).filter(|&s| reach[s] && !handed[s]) {
                let len = a.layouts[s].rows() * a.numels[s];
                b.resize(&mut a.grads[s], len);
                if !assign[s] {
                    b.zero(B::view_mut(&mut a.grads[s]), par);
                }
            }
        });
    }

    /// `grad += seed` for every root seeded (`None`: ones).
    fn add_seeds(&mut self, seeds: &[(&Variable, Option<&Value>)], reach: &[bool]) -> Result<()> {
        for (v, seed) in seeds {
            let s = *self.plan.var_slots.get(&v.key()).ok_or_else(|| {
                Error::Argument(format!("{} is not a root of this executor", v.label()))
            })?;
            if !reach[s] {
                continue;
            }
            let (b, a) = (&self.backend, &mut self.arena);
            match seed {
                None => b.add_scalar(B::view_mut(&mut a.grads[s]), T::one()),
                Some(val) => {
                    let d = val.dense_rows::<T>();
                    if d.len() != B::len(&a.grads[s]) || !val.layout().same_as(&a.layouts[s]) {
                        return Err(Error::Argument(format!(
                            "gradient seed for {} does not match its value's layout ({})",
                            v.label(),
                            a.layouts[s].describe()
                        )));
                    }
                    b.upload(&d, &mut a.seed);
                    b.add(B::view(&a.seed), B::view_mut(&mut a.grads[s]), Par::Seq);
                }
            }
        }
        Ok(())
    }

    /// The gradient buffers of `wrt` as values: moved out, not copied (a slot asked for
    /// twice is copied the first time); `recycle_gradients` can hand them back.
    fn take_gradients(&mut self, wrt_slots: &[usize]) -> Result<Vec<Value>> {
        (0..wrt_slots.len())
            .map(|k| take_gradient(&self.backend, &mut self.arena, wrt_slots, k))
            .collect()
    }
}

/// Gradient `k` of `wrt` as a value: moved out, or copied if the slot is asked for again.
fn take_gradient<T: Element, B: Backend>(
    b: &B,
    a: &mut Arena<T, B>,
    wrt_slots: &[usize],
    k: usize,
) -> Result<Value> {
    let s = wrt_slots[k];
    let buf = if wrt_slots[k + 1..].contains(&s) {
        let mut copy = Default::default();
        b.resize(&mut copy, B::len(&a.grads[s]));
        b.copy(B::view(&a.grads[s]), B::view_mut(&mut copy));
        copy
    } else {
        std::mem::take(&mut a.grads[s])
    };
    let data = ValueData::Dense(b.wrap_storage(buf));
    Value::new(a.shapes[s].clone(), a.layouts[s].clone(), data)
}

/// For each of `wrt`: the step (index in the forward schedule) after whose backward
/// its gradient is final, i.e. the first step that reads it (`None`: no step does).
fn final_steps(plan: &Plan, wrt_slots: &[usize]) -> Vec<Option<usize>> {
    let reads = |step: &Step, s: usize| match step {
        Step::Node(n) => plan.nodes[*n].ins.contains(&s),
        Step::Loop(lp) => lp.nodes.iter().any(|&n| plan.nodes[n].ins.contains(&s)),
    };
    wrt_slots
        .iter()
        .map(|&s| plan.steps.iter().position(|st| reads(st, s)))
        .collect()
}

/// Where [`Executor::backward_streaming`] hands the gradients of `wrt` over: for each,
/// its slot and the step after which it is final.
struct Stream<'a> {
    wrt: &'a [usize],
    finals: &'a [Option<usize>],
    ready: &'a mut (dyn FnMut(usize, Tensor) -> Result<()> + Send),
}

impl Stream<'_> {
    /// Hand over the gradients that are final after step `after` (`None`: those no
    /// step reads).
    fn emit<T: Element, B: Backend>(
        &mut self,
        b: &B,
        a: &mut Arena<T, B>,
        after: Option<usize>,
    ) -> Result<()> {
        for k in 0..self.wrt.len() {
            if self.finals[k] == after {
                let t = take_gradient(b, a, self.wrt, k)?.into_tensor()?;
                (self.ready)(k, t)?;
            }
        }
        Ok(())
    }
}

/// One backward pass over the schedule.
struct Back<'r, 'p, T: Element, B: Backend> {
    plan: &'r Plan,
    b: &'r B,
    arena: &'r mut Arena<T, B>,
    params: &'r Params<'p, T, B>,
    reach: &'r [bool],
    pass: &'r [Option<usize>],
    /// Slots whose one reader writes their gradient (`written_once`).
    assign: &'r [bool],
    training: bool,
    par: Par,
    /// Whether ReLUs ran inside the normalizations they follow (`Plan::relu_after`).
    fold: bool,
}

impl<T: Element, B: Backend> Back<'_, '_, T, B> {
    fn all(&mut self, mut stream: Option<&mut Stream<'_>>) -> Result<()> {
        for (i, step) in self.plan.steps.iter().enumerate().rev() {
            match step {
                Step::Node(n) => self.node(*n)?,
                Step::Loop(lp) => self.backward_loop(&lp.nodes, lp.backward_in_time)?,
            }
            if let Some(st) = stream.as_deref_mut() {
                st.emit(self.b, self.arena, Some(i))?;
            }
        }
        Ok(())
    }

    fn ctx(&self, rows: Range<usize>) -> RowCtx {
        RowCtx {
            n: rows.len(),
            row0: rows.start,
            training: self.training,
            par: self.par,
            assign: false,
        }
    }

    /// Backward of one row-local node over `rows`, for the operands selected by `which`.
    fn rows_of(
        &mut self,
        n: usize,
        rows: Range<usize>,
        which: impl Fn(bool) -> bool,
        skip: Option<usize>,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let (out, numel) = (node.out, node.out_shape.numel());
        for (i, &s) in node.ins.iter().enumerate() {
            if !self.reach[s] || !node.op.differentiable(i) || skip == Some(i) {
                continue;
            }
            let is_static =
                matches!(self.arena.layouts[s], Layout::Static) || self.params[s].is_some();
            if !which(is_static) {
                continue;
            }
            let mut din = std::mem::take(&mut self.arena.grads[s]);
            let mut st = std::mem::take(&mut self.arena.states[n]);
            let ctx = RowCtx {
                assign: self.assign[s],
                ..self.ctx(rows.clone())
            };
            let a = &*self.arena;
            let args: Args<T, B> = node
                .ins
                .iter()
                .map(|&x| a.arg(x, self.params, rows.clone()))
                .collect();
            let d = a.numels[s];
            let din_view = if is_static {
                B::view_mut(&mut din)
            } else {
                B::sub_mut(B::view_mut(&mut din), rows.start * d..rows.end * d)
            };
            let od = (
                Arena::<T, B>::rows_of(&a.data[out], numel, rows.clone()),
                Arena::<T, B>::rows_of(&a.grads[out], numel, rows.clone()),
            );
            let shapes = (&node.in_shapes[..], &node.out_shape);
            let res = node
                .op
                .backward_rows(self.b, i, &args, shapes, od, din_view, ctx, &mut st)
                .map_err(|e| with_name(e, &node.name));
            drop(args);
            self.arena.states[n] = st;
            self.arena.grads[s] = din;
            res?;
        }
        Ok(())
    }

    fn node(&mut self, n: usize) -> Result<()> {
        let node = &self.plan.nodes[n];
        let out = node.out;
        if !self.reach[out] || (self.fold && self.plan.folded_into[n].is_some()) {
            // (a ReLU folded into a normalization: that one's backward covers it)
            return Ok(());
        }
        match node.op.exec_kind() {
            ExecKind::RowLocal => {
                let rows = self.arena.layouts[out].rows();
                let pass = self.pass.get(n).copied().flatten();
                self.rows_of(n, 0..rows, |_| true, pass)?;
                if let Some(i) = pass {
                    // the operand's gradient is the output's (nothing reads it after)
                    self.arena.grads.swap(node.ins[i], out);
                }
                Ok(())
            }
            ExecKind::Delay => {
                let layout = self.arena.layouts[out].clone();
                let steps = layout.packed().map_or(0, |p| p.max_len());
                (0..steps).try_for_each(|t| self.delay(n, &layout, t))
            }
            ExecKind::Whole => self.whole(n),
            ExecKind::Context => {
                let rows = self.arena.layouts[out].rows();
                self.context(n, 0..rows, |_| true)
            }
        }
    }

    /// `f(arena, args, din, state)` for operand `i` of node `n`: every operand whole,
    /// operand `i`'s gradient buffer and the node's state taken out of the arena for
    /// the call and put back; errors name the node.
    fn with_operand(
        &mut self,
        n: usize,
        i: usize,
        f: impl FnOnce(
            &Arena<T, B>,
            &[WholeArg<B, T>],
            B::Mut<'_, T>,
            &mut NodeState<B, T>,
        ) -> Result<()>,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let s = node.ins[i];
        let mut din = std::mem::take(&mut self.arena.grads[s]);
        let mut st = std::mem::take(&mut self.arena.states[n]);
        let a = &*self.arena;
        let args: SmallVec<[WholeArg<B, T>; 4]> = node
            .ins
            .iter()
            .map(|&x| a.whole_arg(x, self.params))
            .collect();
        let res = f(a, &args, B::view_mut(&mut din), &mut st).map_err(|e| with_name(e, &node.name));
        drop(args);
        self.arena.states[n] = st;
        self.arena.grads[s] = din;
        res
    }

    /// Backward of context node `n` from the rows `rows` of its first operand, for the
    /// operands selected by `which(deferred)`: a loop defers the gradients of the
    /// static and context operands (read whole) to one call over all rows.
    fn context(
        &mut self,
        n: usize,
        rows: Range<usize>,
        which: impl Fn(bool) -> bool,
    ) -> Result<()> {
        let (plan, b) = (self.plan, self.b);
        let node = &plan.nodes[n];
        for (i, &s) in node.ins.iter().enumerate() {
            if !self.reach[s] || !node.op.differentiable(i) {
                continue;
            }
            let deferred = node.op.is_context_operand(i)
                || matches!(self.arena.layouts[s], Layout::Static)
                || self.params[s].is_some();
            if !which(deferred) {
                continue;
            }
            let rows = rows.clone();
            self.with_operand(n, i, |a, args, din, st| {
                let dout = B::view(&a.grads[node.out]);
                node.op.backward_context(b, i, args, rows, dout, din, st)
            })?;
        }
        Ok(())
    }

    fn whole(&mut self, n: usize) -> Result<()> {
        let (plan, b, ctx) = (self.plan, self.b, self.ctx(0..0));
        let node = &plan.nodes[n];
        let out = node.out;
        for (i, &s) in node.ins.iter().enumerate() {
            if !self.reach[s] || !node.op.differentiable(i) {
                continue;
            }
            // a folded ReLU's output and gradient stand for the normalization's
            let fo = match plan.relu_after[n] {
                Some(m) if self.fold => plan.nodes[m].out,
                _ => out,
            };
            let ctx = RowCtx {
                assign: self.assign[s],
                ..ctx
            };
            self.with_operand(n, i, |a, args, din, st| {
                let o = (&a.shapes[out], &a.layouts[out]);
                let od = (B::view(&a.data[fo]), B::view(&a.grads[fo]));
                node.op.backward_whole(b, i, args, o, od, din, ctx, st)
            })?;
        }
        Ok(())
    }

    /// Step `t` of delay node `n`: its gradient rows to the delayed operand or the
    /// initial state.
    fn delay(&mut self, n: usize, layout: &Layout, t: usize) -> Result<()> {
        let node = &self.plan.nodes[n];
        let (xs, is, out) = (node.ins[0], node.ins[1], node.out);
        let mut dx = self.reach[xs].then(|| std::mem::take(&mut self.arena.grads[xs]));
        let mut dinit = self.reach[is].then(|| std::mem::take(&mut self.arena.grads[is]));
        let a = &*self.arena;
        let init = (&a.layouts[is], &self.plan.slots[is].shape);
        let res = delay::step(&node.op, layout, init, node.out_shape.numel())
            .map_err(|e| runtime_err(&node.op, &node.name, e))
            .map(|d| {
                let dx = dx.as_mut().map(|g| B::view_mut(g));
                let di = dinit.as_mut().map(|g| B::view_mut(g));
                self.b.delay_backward(&d, B::view(&a.grads[out]), dx, di, t)
            });
        if let Some(g) = dx {
            self.arena.grads[xs] = g;
        }
        if let Some(g) = dinit {
            self.arena.grads[is] = g;
        }
        res
    }

    fn backward_loop(&mut self, nodes: &[usize], reverse: bool) -> Result<()> {
        let out0 = self.plan.nodes[nodes[0]].out;
        let layout = self.arena.layouts[out0].clone();
        let packed = layout.packed().expect("loop layout").clone();
        let steps = packed.max_len();
        for k in 0..steps {
            // Opposite time order of the forward.
            let t = if reverse { k } else { steps - 1 - k };
            let r = packed.step_rows(t);
            for &n in nodes.iter().rev() {
                if !self.reach[self.plan.nodes[n].out] {
                    continue;
                }
                match self.plan.nodes[n].op.exec_kind() {
                    ExecKind::Delay => self.delay(n, &layout, t)?,
                    ExecKind::Context => self.context(n, r.clone(), |deferred| !deferred)?,
                    // Static operands (weights) wait: one product over all steps below.
                    _ => self.rows_of(n, r.clone(), |is_static| !is_static, None)?,
                }
            }
        }
        let rows = layout.rows();
        for &n in nodes {
            let node = &self.plan.nodes[n];
            if !self.reach[node.out] {
                continue;
            }
            match node.op.exec_kind() {
                ExecKind::Delay => {}
                ExecKind::Context => self.context(n, 0..rows, |deferred| deferred)?,
                _ => self.rows_of(n, 0..rows, |is_static| is_static, None)?,
            }
        }
        Ok(())
    }
}
