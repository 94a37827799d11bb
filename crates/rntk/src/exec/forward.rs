//! The forward pass: the schedule in order; a node outside a loop runs once over all
//! rows, a recurrent loop step by step over each step's block of rows; afterwards the
//! ops that update state in place (batch normalization) commit it.

use super::arena::{Arena, Params};
use super::compile::{Plan, Source, Step};
use super::feeds::{param_bufs, read_params};
use super::{runtime_err, with_name, Executor};
use crate::backend::{Arg, Backend, Par, Work};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::ops::{delay, sized, ExecKind, NodeState, RowCtx, WholeArg};
use crate::tensor::{Element, Layout, Value};
use smallvec::SmallVec;

/// Operands of one node: on the stack for the usual ≤ 4, so a warm time loop never allocates.
pub(super) type Args<'a, T, B> = SmallVec<[Arg<'a, B, T>; 4]>;
type WholeArgs<'a, T, B> = SmallVec<[WholeArg<'a, B, T>; 4]>;

impl<T: Element, B: Backend> Executor<T, B> {
    /// Run the plan forward. `training` turns dropout on and lets batch normalization
    /// update its running statistics.
    pub fn forward(&mut self, feeds: &[(&Variable, &Value)], training: bool) -> Result<()> {
        self.forwarded = false;
        self.training = training;
        self.bind_feeds(feeds)?;
        if training {
            // One training pass: every block a node runs in it (a whole minibatch or
            // one loop step) sees the same counter (dropout's random stream).
            for st in &mut self.arena.states {
                st.calls += 1;
            }
        }
        self.make_params_resident();
        for (s, store) in self.plan.stores.iter().enumerate() {
            if store.is_some() {
                self.arena.layouts[s] = Layout::Static;
            }
        }
        let work = Work::Pass(self.pass_work());
        let (plan, backend) = (self.plan.clone(), self.backend.clone());
        let (arena, inference) = (&mut self.arena, &mut self.inference);
        // folding a ReLU into its normalization moves buffers between the two slots,
        // which a forward-only executor's buffer pool does not expect
        let fold = inference.is_none();
        let result = backend.scope(work, |par| {
            let guards = read_params(&plan);
            let params = param_bufs::<T, B>(&backend, &guards);
            let mut run = Run {
                plan: &plan,
                b: &backend,
                arena,
                params: &params,
                training,
                par,
                fold,
            };
            for i in 0..plan.steps.len() {
                if let Some(inf) = inference.as_mut() {
                    inf.acquire(&plan, i, &mut run.arena.data);
                }
                run.step(i)?;
                if let Some(inf) = inference.as_mut() {
                    inf.release(&backend, i, &mut run.arena.data);
                }
            }
            Ok::<(), Error>(())
        });
        result?;
        if training {
            self.commit()?;
        }
        self.forwarded = true;
        Ok(())
    }

    /// Write what training forwards computed for the ops that update their operands
    /// in place (after the forward, when no reader holds their locks any more).
    fn commit(&mut self) -> Result<()> {
        for (n, node) in self.plan.nodes.iter().enumerate() {
            if !node.op.commits() {
                continue;
            }
            let st = &self.arena.states[n];
            node.op.commit(st, |k, vals| {
                let slot = node.ins[k];
                let fail = |what: &str| runtime_err(&node.op, &node.name, what.into());
                let store = self.plan.stores[slot]
                    .as_ref()
                    .ok_or_else(|| fail("running statistics must be parameters or constants"))?;
                let mut t = store.write().expect("parameter lock");
                match self.backend.resident_mut::<T>(t.storage_mut()) {
                    Some(dst) if B::len(dst) == B::ref_len(vals) => {
                        self.backend.copy(vals, B::view_mut(dst));
                        Ok(())
                    }
                    _ => Err(fail("running statistics changed shape or type")),
                }
            })?;
        }
        Ok(())
    }
}

/// One pass over the schedule: the plan, the buffers, the call's parameters.
pub(super) struct Run<'r, 'p, T: Element, B: Backend> {
    pub plan: &'r Plan,
    pub b: &'r B,
    pub arena: &'r mut Arena<T, B>,
    pub params: &'r Params<'p, T, B>,
    pub training: bool,
    pub par: Par,
    /// Whether ReLUs run inside the normalizations they follow (`Plan::relu_after`).
    pub fold: bool,
}

impl<T: Element, B: Backend> Run<'_, '_, T, B> {
    fn ctx(&self, rows: std::ops::Range<usize>) -> RowCtx {
        RowCtx {
            n: rows.len(),
            row0: rows.start,
            training: self.training,
            par: self.par,
            assign: false,
        }
    }

    fn step(&mut self, i: usize) -> Result<()> {
        match &self.plan.steps[i] {
            Step::Node(n) => self.forward_node(*n),
            Step::Loop(lp) => self.forward_loop(&lp.nodes, lp.backward_in_time),
        }
    }

    /// The common layout of a row-local node's per-row operands.
    fn row_layout(&self, n: usize) -> Result<Layout> {
        let node = &self.plan.nodes[n];
        let mut layout = Layout::Static;
        for &s in &node.ins {
            let l = &self.arena.layouts[s];
            if matches!(l, Layout::Static) {
                continue;
            }
            if matches!(layout, Layout::Static) {
                layout = l.clone();
            } else if !layout.same_as(l) {
                return Err(runtime_err(
                    &node.op,
                    &node.name,
                    format!(
                        "operands have different dynamic layouts: {} vs {}",
                        layout.describe(),
                        l.describe()
                    ),
                ));
            }
        }
        Ok(layout)
    }

    /// Row-local node `n` over `rows` into `out` (the node's whole output buffer).
    fn rows_forward(
        &mut self,
        n: usize,
        rows: std::ops::Range<usize>,
        out: &mut B::Buf<T>,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let numel = node.out_shape.numel();
        let mut st = std::mem::take(&mut self.arena.states[n]);
        if node.op.draws_in_column_order() {
            st.layout = Some(self.arena.layouts[node.out].clone());
        }
        let ctx = self.ctx(rows.clone());
        let a = &*self.arena;
        let args: Args<T, B> = node
            .ins
            .iter()
            .map(|&s| a.arg(s, self.params, rows.clone()))
            .collect();
        let dst = B::sub_mut(B::view_mut(out), rows.start * numel..rows.end * numel);
        let r = node
            .op
            .forward_rows(
                self.b,
                &args,
                &node.in_shapes,
                &node.out_shape,
                dst,
                ctx,
                &mut st,
            )
            .map_err(|e| with_name(e, &node.name));
        drop(args);
        self.arena.states[n] = st;
        r
    }

    fn forward_node(&mut self, n: usize) -> Result<()> {
        let node = &self.plan.nodes[n];
        let out = node.out;
        if self.fold && self.plan.folded_into[n].is_some() {
            // the normalization before it computed this ReLU: its output moves over
            let s = node.ins[0];
            self.arena.data.swap(s, out);
            self.arena.layouts[out] = self.arena.layouts[s].clone();
            return Ok(());
        }
        let numel = node.out_shape.numel();
        let mut buf = std::mem::take(&mut self.arena.data[out]);
        let r = match node.op.exec_kind() {
            ExecKind::RowLocal => self.row_layout(n).and_then(|layout| {
                let rows = layout.rows();
                self.arena.layouts[out] = layout;
                sized(self.b, &node.op, &mut buf, (rows, numel))
                    .map_err(|e| with_name(e, &node.name))?;
                self.rows_forward(n, 0..rows, &mut buf)
            }),
            ExecKind::Delay => {
                let layout = self.arena.layouts[node.ins[0]].clone();
                self.arena.layouts[out] = layout.clone();
                let steps = layout.packed().map_or(0, |p| p.max_len());
                sized(self.b, &node.op, &mut buf, (layout.rows(), numel))
                    .map_err(|e| with_name(e, &node.name))
                    .and_then(|_| {
                        (0..steps).try_for_each(|t| self.delay_forward(n, &layout, &mut buf, t))
                    })
            }
            ExecKind::Whole => self.whole_forward(n, &mut buf),
            ExecKind::Context => {
                let layout = self.arena.layouts[node.ins[0]].clone();
                let rows = layout.rows();
                self.arena.layouts[out] = layout;
                sized(self.b, &node.op, &mut buf, (rows, numel))
                    .map_err(|e| with_name(e, &node.name))
                    .and_then(|_| self.context_forward(n, 0..rows, &mut buf))
            }
        };
        self.arena.data[out] = buf;
        r
    }

    /// `f` with node `n`'s operands, every one whole, and its state (taken out of the
    /// arena for the call and put back); errors name the node.
    fn with_whole_args<R>(
        &mut self,
        n: usize,
        f: impl FnOnce(&[WholeArg<B, T>], &mut NodeState<B, T>) -> Result<R>,
    ) -> Result<R> {
        let node = &self.plan.nodes[n];
        let mut st = std::mem::take(&mut self.arena.states[n]);
        let a = &*self.arena;
        let args: WholeArgs<T, B> = node
            .ins
            .iter()
            .map(|&s| a.whole_arg(s, self.params))
            .collect();
        let r = f(&args, &mut st).map_err(|e| with_name(e, &node.name));
        drop(args);
        self.arena.states[n] = st;
        r
    }

    fn whole_forward(&mut self, n: usize, buf: &mut B::Buf<T>) -> Result<()> {
        let (plan, b, ctx) = (self.plan, self.b, self.ctx(0..0));
        let node = &plan.nodes[n];
        self.arena.states[n].relu_folded = self.fold && plan.relu_after[n].is_some();
        let (layout, shape) = self.with_whole_args(n, |args, st| {
            node.op
                .forward_whole(b, args, &node.out_shape, buf, ctx, st)
        })?;
        let out = node.out;
        self.arena.layouts[out] = layout;
        self.arena.numels[out] = shape.numel();
        self.arena.shapes[out] = shape;
        Ok(())
    }

    /// Context node `n` over the rows `rows` of its first operand into `buf` (the
    /// node's whole output buffer); its other operands are read whole.
    fn context_forward(
        &mut self,
        n: usize,
        rows: std::ops::Range<usize>,
        buf: &mut B::Buf<T>,
    ) -> Result<()> {
        let (op, b) = (&self.plan.nodes[n].op, self.b);
        self.with_whole_args(n, |args, st| {
            op.forward_context(b, args, rows, B::view_mut(buf), st)
        })
    }

    /// Step `t` of delay node `n` over `layout` into `buf`.
    fn delay_forward(
        &self,
        n: usize,
        layout: &Layout,
        buf: &mut B::Buf<T>,
        t: usize,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let (xs, is) = (node.ins[0], node.ins[1]);
        let a = &*self.arena;
        let d = delay::step(
            &node.op,
            layout,
            (&a.layouts[is], &self.plan.slots[is].shape),
            node.out_shape.numel(),
        )
        .map_err(|e| runtime_err(&node.op, &node.name, e))?;
        let init = match self.params[is] {
            Some(p) => B::view(p),
            None => B::view(&a.data[is]),
        };
        self.b
            .delay(&d, B::view(&a.data[xs]), init, B::view_mut(buf), t);
        Ok(())
    }

    /// The layout a recurrent loop iterates over: its operands' from outside the loop.
    fn loop_layout(&self, nodes: &[usize]) -> Result<Layout> {
        let inside =
            |s: usize| matches!(self.plan.slots[s].source, Source::Node(m) if nodes.contains(&m));
        let mut layout: Option<Layout> = None;
        for &n in nodes {
            let node = &self.plan.nodes[n];
            let is_delay = node.op.exec_kind() == ExecKind::Delay;
            for (i, &s) in node.ins.iter().enumerate() {
                let l = &self.arena.layouts[s];
                if inside(s)
                    || (is_delay && i == 1)
                    || node.op.is_context_operand(i)
                    || matches!(l, Layout::Static)
                {
                    continue;
                }
                match &layout {
                    None => layout = Some(l.clone()),
                    Some(cur) if !cur.same_as(l) => {
                        return Err(runtime_err(
                            &node.op,
                            &node.name,
                            format!(
                                "recurrent loop operands have different layouts: {} vs {}",
                                cur.describe(),
                                l.describe()
                            ),
                        ))
                    }
                    _ => {}
                }
            }
        }
        let node = &self.plan.nodes[nodes[0]];
        let layout = layout.ok_or_else(|| {
            runtime_err(
                &node.op,
                &node.name,
                "recurrent loop has no sequence operand to iterate over".into(),
            )
        })?;
        if layout.packed().is_none() {
            return Err(runtime_err(
                &node.op,
                &node.name,
                format!("recurrent loop over {}", layout.describe()),
            ));
        }
        Ok(layout)
    }

    fn forward_loop(&mut self, nodes: &[usize], reverse: bool) -> Result<()> {
        let layout = self.loop_layout(nodes)?;
        let packed = layout.packed().expect("checked").clone();
        let rows = layout.rows();
        for &n in nodes {
            let node = &self.plan.nodes[n];
            let (out, numel) = (node.out, node.out_shape.numel());
            self.arena.layouts[out] = layout.clone();
            sized(self.b, &node.op, &mut self.arena.data[out], (rows, numel))
                .map_err(|e| with_name(e, &node.name))?;
        }
        let steps = packed.max_len();
        for k in 0..steps {
            let t = if reverse { steps - 1 - k } else { k };
            let r = packed.step_rows(t);
            for &n in nodes {
                let node = &self.plan.nodes[n];
                let out = node.out;
                let mut buf = std::mem::take(&mut self.arena.data[out]);
                let res = match node.op.exec_kind() {
                    ExecKind::Delay => self.delay_forward(n, &layout, &mut buf, t),
                    ExecKind::Context => self.context_forward(n, r.clone(), &mut buf),
                    _ => self.rows_forward(n, r.clone(), &mut buf),
                };
                self.arena.data[out] = buf;
                res?;
            }
        }
        Ok(())
    }
}
