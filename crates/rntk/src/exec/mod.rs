//! The runtime: an `Executor` runs a compiled plan forward and backward over
//! minibatches. Buffers live per slot and are reused across calls (they only grow),
//! so a warm executor allocates nothing inside its time loops.

mod compile;

use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, Variable};
use crate::ops::delay::Delay;
use crate::ops::{Arg, BinaryOp, ExecKind, NodeState, Op, RowCtx, SparseRows, WholeArg};
use crate::tensor::{Csr, Element, Layout, Tensor, Value, ValueData};
use compile::{compile, Plan, Source, Step};
use smallvec::SmallVec;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Operands of one node: on the stack for the usual ≤ 4, so a warm time loop never allocates.
type Args<'a, T> = SmallVec<[Arg<'a, T>; 4]>;
type WholeArgs<'a, T> = SmallVec<[WholeArg<'a, T>; 4]>;

/// Runs one compiled set of roots, in element type `T`.
pub struct Executor<T: Element> {
    plan: Plan,
    data: Vec<Vec<T>>,
    sparse: Vec<Option<Csr<T>>>,
    layouts: Vec<Layout>,
    grads: Vec<Vec<T>>,
    states: Vec<NodeState<T>>,
    /// Shared storage of parameter and constant slots.
    stores: Vec<Option<Arc<RwLock<Tensor>>>>,
    forwarded: bool,
    training: bool,
    /// Forward-only mode: intermediate buffers go back to `free` after their last reader.
    inference: Option<Inference<T>>,
    /// Per node, for the current backward pass: the operand whose gradient is the
    /// node's output gradient itself, handed over by moving the buffer (see
    /// `pass_through`).
    pass: Vec<Option<usize>>,
    /// How many node operands read each slot (fixed by the plan).
    readers: Vec<usize>,
}

/// Buffer recycling of a forward-only executor: memory grows with the widest point of
/// the graph, not with its depth. Buffers are assigned to slots once, at compile time
/// (like registers by liveness), so a warm executor allocates nothing.
struct Inference<T> {
    /// The pool buffer each intermediate slot uses.
    buffer_of: Vec<Option<usize>>,
    /// Slots whose buffer returns to the pool after each schedule step.
    release_after: Vec<Vec<usize>>,
    pool: Vec<Vec<T>>,
}

/// Read access to parameter storage for the duration of one call.
struct Params<'a> {
    guards: Vec<Option<RwLockReadGuard<'a, Tensor>>>,
}

impl Params<'_> {
    fn get<T: Element>(&self, slot: usize) -> Option<&[T]> {
        self.guards[slot].as_ref().and_then(|g| g.as_slice::<T>())
    }
}

fn runtime_err(op: &Op, name: &str, detail: String) -> Error {
    Error::Runtime {
        op: op.name().to_string(),
        name: name.to_string(),
        detail,
    }
}

/// Size an output buffer to `rows × numel` values. The product is checked and the
/// memory asked of the allocator before anything is written, so a minibatch too large
/// for memory (a huge one-hot, a long unpack) is an error naming the op, the rows and
/// the sample shape rather than an abort.
fn size_output<T: Element>(
    buf: &mut Vec<T>,
    rows: usize,
    numel: usize,
    op: &Op,
    name: &str,
) -> Result<()> {
    let fail = |what: &str| {
        runtime_err(
            op,
            name,
            format!("{rows} rows of {numel} elements each: {what}"),
        )
    };
    let n = rows
        .checked_mul(numel)
        .ok_or_else(|| fail("the element count overflows"))?;
    if n > buf.len() {
        buf.try_reserve(n - buf.len())
            .map_err(|_| fail("not enough memory for the output (use smaller minibatches)"))?;
    }
    buf.resize(n, T::zero());
    Ok(())
}

/// Whole ops report run-time errors without the function's name; add it.
/// Elements a call must produce before it runs inside the thread pool: entering a
/// rayon pool from outside costs ~16 µs, paid once per call here instead of once per
/// parallel GEMM; tiny models (the seed's 5 µs inference) never pay it.
const POOL_WORK: usize = 1 << 20;

fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("rntk-{i}"))
            .build()
            .unwrap_or_else(|_| {
                // Thread creation refused (limits): a one-thread pool still works.
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a single-thread pool")
            })
    })
}

/// Run `f` inside rntk's pool when `parallel`, so every parallel kernel in it reuses the
/// pool's threads without re-entering.
pub(crate) fn in_pool<R: Send>(parallel: bool, f: impl FnOnce() -> R + Send) -> R {
    if parallel && rayon::current_thread_index().is_none() {
        pool().install(f)
    } else {
        f()
    }
}

fn with_name(e: Error, name: &str) -> Error {
    match e {
        Error::Runtime {
            op,
            name: n,
            detail,
        } if n.is_empty() => Error::Runtime {
            op,
            name: name.to_string(),
            detail,
        },
        e => e,
    }
}

impl<T: Element> Executor<T> {
    /// Compile `roots` (and everything they depend on) for element type `T`.
    pub fn new(roots: &[Variable]) -> Result<Self> {
        let plan = compile(roots)?;
        for s in &plan.slots {
            let dt = match &s.source {
                Source::Input(v) | Source::Param(v) | Source::Const(v) => v.dtype(),
                Source::Node(_) => T::DTYPE,
            };
            if dt != T::DTYPE {
                return Err(Error::DType {
                    context: format!("compiling {}", s.label),
                    expected: T::DTYPE.to_string(),
                    got: dt.to_string(),
                });
            }
        }
        let n = plan.slots.len();
        let stores = plan
            .slots
            .iter()
            .map(|s| match &s.source {
                Source::Param(v) | Source::Const(v) => v.storage(),
                _ => None,
            })
            .collect();
        let states = (0..plan.nodes.len())
            .map(|_| NodeState::default())
            .collect();
        let mut readers = vec![0usize; n];
        for node in &plan.nodes {
            for &s in &node.ins {
                readers[s] += 1;
            }
        }
        Ok(Executor {
            data: vec![Vec::new(); n],
            sparse: vec![None; n],
            layouts: vec![Layout::Static; n],
            grads: vec![Vec::new(); n],
            states,
            stores,
            plan,
            forwarded: false,
            training: false,
            inference: None,
            pass: Vec::new(),
            readers,
        })
    }

    /// A forward-only executor that keeps no activations: each intermediate buffer is
    /// recycled once its last reader has run. Only roots, inputs and parameters can be
    /// read back, and `backward` is refused.
    pub fn new_inference(roots: &[Variable]) -> Result<Self> {
        let mut ex = Self::new(roots)?;
        let nsteps = ex.plan.steps.len();
        let mut last_use: Vec<Option<usize>> = vec![None; ex.plan.slots.len()];
        for (i, step) in ex.plan.steps.iter().enumerate() {
            let nodes: &[usize] = match step {
                Step::Node(n) => std::slice::from_ref(n),
                Step::Loop(lp) => &lp.nodes,
            };
            for &n in nodes {
                for &s in &ex.plan.nodes[n].ins {
                    last_use[s] = Some(last_use[s].map_or(i, |u| u.max(i)));
                }
            }
        }
        let mut release_after = vec![Vec::new(); nsteps];
        let mut buffer_of = vec![None; ex.plan.slots.len()];
        let mut free: Vec<usize> = Vec::new();
        let mut nbuf = 0;
        for (i, step) in ex.plan.steps.iter().enumerate() {
            let nodes: &[usize] = match step {
                Step::Node(n) => std::slice::from_ref(n),
                Step::Loop(lp) => &lp.nodes,
            };
            for &n in nodes {
                let out = ex.plan.nodes[n].out;
                let keep = ex.plan.roots.contains(&out);
                if !keep {
                    buffer_of[out] = Some(free.pop().unwrap_or_else(|| {
                        nbuf += 1;
                        nbuf - 1
                    }));
                }
            }
            for (s, lu) in last_use.iter().enumerate() {
                if *lu == Some(i) {
                    if let Some(b) = buffer_of[s] {
                        release_after[i].push(s);
                        free.push(b);
                    }
                }
            }
        }
        ex.inference = Some(Inference {
            buffer_of,
            release_after,
            pool: (0..nbuf).map(|_| Vec::new()).collect(),
        });
        Ok(ex)
    }

    /// Hand each output slot of `step` its pool buffer (inference only).
    fn acquire_outputs(&mut self, step: usize) {
        let Some(inf) = self.inference.as_mut() else {
            return;
        };
        let nodes: &[usize] = match &self.plan.steps[step] {
            Step::Node(n) => std::slice::from_ref(n),
            Step::Loop(lp) => &lp.nodes,
        };
        for &n in nodes {
            let out = self.plan.nodes[n].out;
            if let Some(b) = inf.buffer_of[out] {
                self.data[out] = std::mem::take(&mut inf.pool[b]);
            }
        }
    }

    /// Return the buffers of slots read for the last time in `step` to the pool.
    fn release_after(&mut self, step: usize) {
        let Some(inf) = self.inference.as_mut() else {
            return;
        };
        for &s in &inf.release_after[step] {
            if let Some(b) = inf.buffer_of[s] {
                let mut buf = std::mem::take(&mut self.data[s]);
                buf.clear();
                inf.pool[b] = buf;
            }
        }
    }

    /// Training forwards run so far.
    pub fn training_passes(&self) -> u64 {
        self.states.first().map_or(0, |s| s.calls)
    }

    /// Restore the count of training forwards (from a checkpoint).
    pub fn set_training_passes(&mut self, passes: u64) {
        for st in &mut self.states {
            st.calls = passes;
        }
    }

    /// Where each dropout node's mask stream stands (CNTK's `rngOffset`: mask elements
    /// drawn so far), in plan order; checkpoints keep them.
    pub fn dropout_offsets(&self) -> Vec<u64> {
        self.plan
            .nodes
            .iter()
            .zip(&self.states)
            .filter(|(node, _)| matches!(node.op, Op::Dropout { .. }))
            .map(|(_, st)| st.rng.as_ref().map_or(0, |r| r.offset()))
            .collect()
    }

    /// Continue from a checkpoint: the next training forward draws the dropout masks
    /// an uninterrupted run would have drawn (one offset per dropout node, plan order).
    pub fn set_dropout_offsets(&mut self, offsets: &[u64]) -> Result<()> {
        let nodes: Vec<usize> = (0..self.plan.nodes.len())
            .filter(|&n| matches!(self.plan.nodes[n].op, Op::Dropout { .. }))
            .collect();
        if nodes.len() != offsets.len() {
            return Err(Error::InvalidValue(format!(
                "{} dropout offsets given for a model with {} dropout nodes",
                offsets.len(),
                nodes.len()
            )));
        }
        for (&n, &off) in nodes.iter().zip(offsets) {
            if let Op::Dropout { seed, .. } = self.plan.nodes[n].op {
                self.states[n].rng = Some(crate::random::DropoutRng::new(seed, off));
            }
        }
        Ok(())
    }

    /// Whether this minibatch is large enough to run inside the thread pool.
    fn worth_a_pool(&self) -> bool {
        let rows = self
            .plan
            .slots
            .iter()
            .zip(&self.layouts)
            .filter(|(s, _)| matches!(s.source, Source::Input(_)))
            .map(|(_, l)| l.rows())
            .max()
            .unwrap_or(1);
        let per_row: usize = self.plan.nodes.iter().map(|n| n.out_shape.numel()).sum();
        rows.saturating_mul(per_row) >= POOL_WORK
    }

    /// The input variables this plan needs fed.
    pub fn arguments(&self) -> Vec<Variable> {
        self.plan
            .slots
            .iter()
            .filter_map(|s| match &s.source {
                Source::Input(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The parameters this plan reads.
    pub fn parameters(&self) -> Vec<Variable> {
        self.plan
            .slots
            .iter()
            .filter_map(|s| match &s.source {
                Source::Param(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn bind_feeds(&mut self, feeds: &[(&Variable, &Value)]) -> Result<()> {
        for (v, _) in feeds {
            if !matches!(
                self.plan
                    .var_slots
                    .get(&v.key())
                    .map(|&s| &self.plan.slots[s].source),
                Some(Source::Input(_))
            ) {
                return Err(Error::Argument(format!(
                    "{} is fed but is not an input of this function",
                    v.label()
                )));
            }
        }
        for s in 0..self.plan.slots.len() {
            let Source::Input(var) = &self.plan.slots[s].source else {
                continue;
            };
            let val = feeds
                .iter()
                .find(|(v, _)| v.key() == var.key())
                .map(|(_, val)| *val)
                .ok_or_else(|| Error::Argument(format!("input {} was not fed", var.label())))?;
            let info = &self.plan.slots[s];
            if val.shape() != &info.shape {
                return Err(Error::Argument(format!(
                    "input {} has sample shape {} but was fed data of shape {}",
                    var.label(),
                    info.shape,
                    val.shape()
                )));
            }
            if val.dtype() != T::DTYPE {
                return Err(Error::DType {
                    context: format!("input {}", var.label()),
                    expected: T::DTYPE.to_string(),
                    got: val.dtype().to_string(),
                });
            }
            let ok = matches!(
                (&info.axes, val.layout()),
                (DynamicAxes::Sequence(_), Layout::Sequence(_))
                    | (DynamicAxes::Batch, Layout::Batch(_))
                    | (DynamicAxes::None, Layout::Static)
            );
            if !ok {
                return Err(Error::Argument(format!(
                    "input {} has dynamic axes {} but was fed {}",
                    var.label(),
                    info.axes.notation(),
                    val.layout().describe()
                )));
            }
            self.layouts[s] = val.layout().clone();
            match val.data() {
                ValueData::Dense(st) => {
                    let src = T::slice(st).expect("dtype checked");
                    let buf = &mut self.data[s];
                    buf.clear();
                    buf.extend_from_slice(src);
                    self.sparse[s] = None;
                }
                ValueData::SparseF32(_) | ValueData::SparseF64(_)
                    if !info.is_sparse || self.plan.densify[s] =>
                {
                    // A sparse value for a dense input is densified once here.
                    let rows = val.dense_rows::<T>();
                    let buf = &mut self.data[s];
                    buf.clear();
                    buf.extend_from_slice(&rows);
                    self.sparse[s] = None;
                }
                ValueData::SparseF32(_) | ValueData::SparseF64(_) => {
                    let csr = match val.data() {
                        ValueData::SparseF32(c) => convert_csr::<f32, T>(c),
                        ValueData::SparseF64(c) => convert_csr::<f64, T>(c),
                        ValueData::Dense(_) => unreachable!("matched above"),
                    };
                    self.sparse[s] = Some(csr);
                    self.data[s].clear();
                }
            }
        }
        Ok(())
    }

    /// Run the plan forward. `training` turns dropout on.
    pub fn forward(&mut self, feeds: &[(&Variable, &Value)], training: bool) -> Result<()> {
        self.forwarded = false;
        self.training = training;
        self.bind_feeds(feeds)?;
        if training {
            // One training pass: every block a node runs in it (a whole minibatch or
            // one loop step) sees the same counter (dropout's rng offset).
            for st in &mut self.states {
                st.calls += 1;
            }
        }
        let stores = std::mem::take(&mut self.stores);
        let parallel = self.worth_a_pool();
        let result = in_pool(parallel, || {
            let params = Params {
                guards: stores
                    .iter()
                    .map(|s| s.as_ref().map(|a| a.read().expect("parameter lock")))
                    .collect(),
            };
            for (s, g) in params.guards.iter().enumerate() {
                if g.is_some() {
                    self.layouts[s] = Layout::Static;
                }
            }
            self.run_forward(&params)
        });
        self.stores = stores;
        result?;
        if training {
            self.commit_running_stats()?;
        }
        self.forwarded = true;
        Ok(())
    }

    /// Write the running statistics that training forwards of batch normalization
    /// computed into the constants that hold them (after the forward, when no reader
    /// holds their locks any more).
    fn commit_running_stats(&mut self) -> Result<()> {
        for (n, node) in self.plan.nodes.iter().enumerate() {
            if !matches!(node.op, Op::BatchNorm { .. }) {
                continue;
            }
            let Some((mean, var, count)) = crate::ops::batchnorm::pending_update(&self.states[n])
            else {
                continue;
            };
            let count = [count];
            for (k, vals) in [(3, mean), (4, var), (5, &count[..])] {
                let slot = node.ins[k];
                let Some(store) = &self.stores[slot] else {
                    return Err(runtime_err(
                        &node.op,
                        &node.name,
                        "running statistics must be parameters or constants".into(),
                    ));
                };
                let mut t = store.write().expect("parameter lock");
                match t.as_mut_slice::<T>() {
                    Some(dst) if dst.len() == vals.len() => dst.copy_from_slice(vals),
                    _ => {
                        return Err(runtime_err(
                            &node.op,
                            &node.name,
                            "running statistics changed shape or type".into(),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn run_forward(&mut self, params: &Params) -> Result<()> {
        for i in 0..self.plan.steps.len() {
            self.acquire_outputs(i);
            let steps = std::mem::take(&mut self.plan.steps);
            let res = match &steps[i] {
                Step::Node(n) => self.forward_node(*n, params),
                Step::Loop(lp) => self.forward_loop(&lp.nodes, lp.backward_in_time, params),
            };
            self.plan.steps = steps;
            res?;
            self.release_after(i);
        }
        Ok(())
    }

    /// The common layout of a row-local node's per-row operands.
    fn row_layout(&self, n: usize) -> Result<Layout> {
        let node = &self.plan.nodes[n];
        let mut layout = Layout::Static;
        for &s in &node.ins {
            let l = &self.layouts[s];
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

    fn arg<'a>(&'a self, s: usize, params: &'a Params, rows: std::ops::Range<usize>) -> Arg<'a, T> {
        if let Some(p) = params.get::<T>(s) {
            return Arg::Static(p);
        }
        if let Some(c) = &self.sparse[s] {
            return Arg::Sparse(SparseRows {
                indptr: &c.indptr[rows.start..=rows.end],
                indices: &c.indices,
                values: &c.values,
            });
        }
        if matches!(self.layouts[s], Layout::Static) {
            return Arg::Static(&self.data[s]);
        }
        let d = self.plan.slots[s].numel;
        Arg::Rows(&self.data[s][rows.start * d..rows.end * d])
    }

    fn whole_arg<'a>(&'a self, s: usize, params: &'a Params) -> WholeArg<'a, T> {
        WholeArg {
            data: self.arg(s, params, 0..self.layouts[s].rows()),
            layout: &self.layouts[s],
            shape: &self.plan.slots[s].shape,
        }
    }

    fn forward_node(&mut self, n: usize, params: &Params) -> Result<()> {
        let node = &self.plan.nodes[n];
        let out = node.out;
        let numel = node.out_shape.numel();
        match node.op.exec_kind() {
            ExecKind::RowLocal => {
                let layout = self.row_layout(n)?;
                let rows = layout.rows();
                self.layouts[out] = layout;
                let mut buf = std::mem::take(&mut self.data[out]);
                if let Err(e) = size_output(&mut buf, rows, numel, &node.op, &node.name) {
                    self.data[out] = buf;
                    return Err(e);
                }
                let mut st = std::mem::take(&mut self.states[n]);
                let node = &self.plan.nodes[n];
                if node.op.draws_in_column_order() {
                    st.layout = Some(self.layouts[out].clone());
                }
                let args: Args<T> = node
                    .ins
                    .iter()
                    .map(|&s| self.arg(s, params, 0..rows))
                    .collect();
                let ctx = RowCtx {
                    n: rows,
                    row0: 0,
                    training: self.training,
                };
                let r = node
                    .op
                    .forward_rows(
                        &args,
                        &node.in_shapes,
                        &node.out_shape,
                        &mut buf,
                        ctx,
                        &mut st,
                    )
                    .map_err(|e| with_name(e, &node.name));
                drop(args);
                self.states[n] = st;
                self.data[out] = buf;
                r
            }
            ExecKind::Delay => {
                let layout = self.layouts[node.ins[0]].clone();
                self.layouts[out] = layout.clone();
                let mut buf = std::mem::take(&mut self.data[out]);
                if let Err(e) = size_output(&mut buf, layout.rows(), numel, &node.op, &node.name) {
                    self.data[out] = buf;
                    return Err(e);
                }
                let r = self.delay_apply(n, params, &layout, |d, x, init, t| {
                    d.forward_step(x, init, &mut buf, t)
                });
                self.data[out] = buf;
                r
            }
            ExecKind::Whole => {
                let mut buf = std::mem::take(&mut self.data[out]);
                let mut st = std::mem::take(&mut self.states[n]);
                let training = self.training;
                let node = &self.plan.nodes[n];
                let args: WholeArgs<T> = node
                    .ins
                    .iter()
                    .map(|&s| self.whole_arg(s, params))
                    .collect();
                let r = node
                    .op
                    .whole_layout(&args)
                    .and_then(|layout| {
                        // The sample shape may depend on the data (sequence.unpack).
                        let shape = node.op.whole_shape(&args, &node.out_shape)?;
                        buf.clear();
                        size_output(&mut buf, layout.rows(), shape.numel(), &node.op, &node.name)?;
                        node.op
                            .forward_whole(&args, &shape, &layout, &mut buf, training, &mut st)
                            .map(|_| (layout, shape))
                    })
                    .map_err(|e| with_name(e, &node.name));
                drop(args);
                self.states[n] = st;
                self.data[out] = buf;
                let (layout, shape) = r?;
                self.layouts[out] = layout;
                self.plan.slots[out].numel = shape.numel();
                self.plan.slots[out].shape = shape;
                Ok(())
            }
        }
    }

    /// Run `f` over every step of a delay node outside a loop.
    fn delay_apply(
        &self,
        n: usize,
        params: &Params,
        layout: &Layout,
        mut f: impl FnMut(&Delay, &[T], &[T], usize),
    ) -> Result<()> {
        let (d, x, init) = self.delay_parts(n, params, layout)?;
        for t in 0..d.layout.max_len() {
            f(&d, x, init, t);
        }
        Ok(())
    }

    fn delay_parts<'a>(
        &'a self,
        n: usize,
        params: &'a Params,
        layout: &'a Layout,
    ) -> Result<(Delay<'a>, &'a [T], &'a [T])> {
        let node = &self.plan.nodes[n];
        let packed = layout.packed().ok_or_else(|| {
            runtime_err(
                &node.op,
                &node.name,
                format!("needs sequences, got {}", layout.describe()),
            )
        })?;
        let (offset, future) = match node.op {
            Op::PastValue { offset } => (offset, false),
            Op::FutureValue { offset } => (offset, true),
            _ => unreachable!("delay node"),
        };
        let (xs, is) = (node.ins[0], node.ins[1]);
        let numel = node.out_shape.numel();
        let init_layout = &self.layouts[is];
        let init_per_seq = matches!(init_layout, Layout::Batch(_));
        if let Layout::Batch(b) = init_layout {
            if *b != packed.num_sequences() {
                return Err(runtime_err(
                    &node.op,
                    &node.name,
                    format!(
                        "initial state has {b} samples but the operand has {} sequences",
                        packed.num_sequences()
                    ),
                ));
            }
        }
        let init_scalar = self.plan.slots[is].shape.numel() == 1 && numel != 1;
        let x: &[T] = &self.data[xs];
        let init: &[T] = match params.get::<T>(is) {
            Some(p) => p,
            None => &self.data[is],
        };
        Ok((
            Delay {
                layout: packed,
                offset,
                future,
                numel,
                init_scalar: init_scalar || self.plan.slots[is].shape.numel() == 1,
                init_per_seq,
            },
            x,
            init,
        ))
    }

    fn loop_layout(&self, nodes: &[usize]) -> Result<Layout> {
        let inside =
            |s: usize| matches!(self.plan.slots[s].source, Source::Node(m) if nodes.contains(&m));
        let mut layout: Option<Layout> = None;
        for &n in nodes {
            let node = &self.plan.nodes[n];
            let is_delay = node.op.exec_kind() == ExecKind::Delay;
            for (i, &s) in node.ins.iter().enumerate() {
                if inside(s) || (is_delay && i == 1) || matches!(self.layouts[s], Layout::Static) {
                    continue;
                }
                let l = &self.layouts[s];
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
        let layout = layout.ok_or_else(|| {
            let node = &self.plan.nodes[nodes[0]];
            runtime_err(
                &node.op,
                &node.name,
                "recurrent loop has no sequence operand to iterate over".into(),
            )
        })?;
        if layout.packed().is_none() {
            let node = &self.plan.nodes[nodes[0]];
            return Err(runtime_err(
                &node.op,
                &node.name,
                format!("recurrent loop over {}", layout.describe()),
            ));
        }
        Ok(layout)
    }

    fn forward_loop(&mut self, nodes: &[usize], reverse: bool, params: &Params) -> Result<()> {
        let layout = self.loop_layout(nodes)?;
        let packed = layout.packed().expect("checked").clone();
        let rows = layout.rows();
        for &n in nodes {
            let out = self.plan.nodes[n].out;
            let node = &self.plan.nodes[n];
            let numel = node.out_shape.numel();
            self.layouts[out] = layout.clone();
            size_output(&mut self.data[out], rows, numel, &node.op, &node.name)?;
        }
        let steps = packed.max_len();
        for k in 0..steps {
            let t = if reverse { steps - 1 - k } else { k };
            let r = packed.step_rows(t);
            for &n in nodes {
                let node = &self.plan.nodes[n];
                let out = node.out;
                let numel = node.out_shape.numel();
                let mut buf = std::mem::take(&mut self.data[out]);
                let res = if node.op.exec_kind() == ExecKind::Delay {
                    self.delay_parts(n, params, &layout)
                        .map(|(d, x, init)| d.forward_step(x, init, &mut buf, t))
                } else {
                    let mut st = std::mem::take(&mut self.states[n]);
                    if node.op.draws_in_column_order() {
                        st.layout = Some(layout.clone());
                    }
                    let args: Args<T> = node
                        .ins
                        .iter()
                        .map(|&s| self.arg(s, params, r.clone()))
                        .collect();
                    let ctx = RowCtx {
                        n: r.len(),
                        row0: r.start,
                        training: self.training,
                    };
                    let res = node
                        .op
                        .forward_rows(
                            &args,
                            &node.in_shapes,
                            &node.out_shape,
                            &mut buf[r.start * numel..r.end * numel],
                            ctx,
                            &mut st,
                        )
                        .map_err(|e| with_name(e, &node.name));
                    drop(args);
                    self.states[n] = st;
                    res
                };
                self.data[out] = buf;
                res?;
            }
        }
        Ok(())
    }

    /// The value of a root, input or parameter after `forward`.
    pub fn value(&self, v: &Variable) -> Result<Value> {
        let s = *self.plan.var_slots.get(&v.key()).ok_or_else(|| {
            Error::Argument(format!("{} is not computed by this executor", v.label()))
        })?;
        if !self.forwarded {
            return Err(Error::Argument(
                "value() before a successful forward()".into(),
            ));
        }
        if let Some(inf) = &self.inference {
            if inf.release_after.iter().any(|r| r.contains(&s)) {
                return Err(Error::Argument(format!(
                    "{} is an intermediate value, not kept by a forward-only executor",
                    v.label()
                )));
            }
        }
        let shape = self.plan.slots[s].shape.clone();
        if let Some(st) = &self.stores[s] {
            let t = st.read().expect("parameter lock");
            return Value::new(shape, Layout::Static, ValueData::Dense(t.storage().clone()));
        }
        Value::from_rows(shape, self.layouts[s].clone(), self.data[s].clone())
    }

    /// Backpropagate from `seeds` (root, gradient; `None` = all ones) and return the
    /// gradients of `wrt`, in order. Only what leads from `wrt` to the roots is computed.
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
        // Ops that compute all their operands' gradients at once do so anew each pass.
        for st in &mut self.states {
            st.grad_ready = false;
        }
        let nslots = self.plan.slots.len();
        let mut wrt_slots = Vec::with_capacity(wrt.len());
        for v in wrt {
            let s = *self.plan.var_slots.get(&v.key()).ok_or_else(|| {
                Error::Argument(format!(
                    "cannot differentiate with respect to {}: not part of this function",
                    v.label()
                ))
            })?;
            wrt_slots.push(s);
        }
        // Which slots carry gradient: those that depend on a wrt slot.
        let mut reach = vec![false; nslots];
        for &s in &wrt_slots {
            reach[s] = true;
        }
        loop {
            let mut changed = false;
            for node in &self.plan.nodes {
                if !reach[node.out]
                    && node
                        .ins
                        .iter()
                        .enumerate()
                        .any(|(i, &s)| reach[s] && node.op.differentiable(i))
                {
                    reach[node.out] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut seeded: Vec<usize> = Vec::with_capacity(seeds.len());
        for (v, _) in seeds {
            if let Some(&s) = self.plan.var_slots.get(&v.key()) {
                seeded.push(s);
            }
        }
        self.pass = self.pass_through(&reach, &wrt_slots, &seeded);
        let mut handed = vec![false; nslots];
        for (n, p) in self.pass.iter().enumerate() {
            if let Some(i) = *p {
                handed[self.plan.nodes[n].ins[i]] = true;
            }
        }
        let parallel = self.worth_a_pool();
        {
            let (layouts, slots) = (&self.layouts, &self.plan.slots);
            let grads = &mut self.grads;
            // Zeroing the gradient buffers (an output layer's is rows × classes) is a
            // memory-bound pass: spread over the pool when the minibatch is large.
            in_pool(parallel, || {
                // (a handed-over gradient gets its buffer from its consumer: no zeros)
                for (s, g) in grads
                    .iter_mut()
                    .enumerate()
                    .filter(|(s, _)| reach[*s] && !handed[*s])
                {
                    let len = layouts[s].rows() * slots[s].numel;
                    if parallel && g.len() == len && len >= 1 << 16 {
                        use rayon::prelude::*;
                        g.par_chunks_mut(1 << 15).for_each(|c| c.fill(T::zero()));
                    } else {
                        g.clear();
                        g.resize(len, T::zero());
                    }
                }
            });
        }
        for (v, seed) in seeds {
            let s = *self.plan.var_slots.get(&v.key()).ok_or_else(|| {
                Error::Argument(format!("{} is not a root of this executor", v.label()))
            })?;
            if !reach[s] {
                continue;
            }
            match seed {
                None => self.grads[s].iter_mut().for_each(|g| *g += T::one()),
                Some(val) => {
                    let d = val.dense_rows::<T>();
                    if d.len() != self.grads[s].len() || !val.layout().same_as(&self.layouts[s]) {
                        return Err(Error::Argument(format!(
                            "gradient seed for {} does not match its value's layout ({})",
                            v.label(),
                            self.layouts[s].describe()
                        )));
                    }
                    for (g, x) in self.grads[s].iter_mut().zip(d) {
                        *g += x;
                    }
                }
            }
        }
        let stores = std::mem::take(&mut self.stores);
        let res = in_pool(parallel, || {
            let params = Params {
                guards: stores
                    .iter()
                    .map(|s| s.as_ref().map(|a| a.read().expect("parameter lock")))
                    .collect(),
            };
            self.run_backward(&params, &reach)
        });
        self.stores = stores;
        res?;
        // The gradient buffers are moved out, not copied (a slot asked for twice is
        // copied the first time); `recycle_gradients` can hand them back.
        (0..wrt_slots.len())
            .map(|k| {
                let s = wrt_slots[k];
                let data = if wrt_slots[k + 1..].contains(&s) {
                    self.grads[s].clone()
                } else {
                    std::mem::take(&mut self.grads[s])
                };
                Value::from_rows(
                    self.plan.slots[s].shape.clone(),
                    self.layouts[s].clone(),
                    data,
                )
            })
            .collect()
    }

    /// Give back the gradients of `wrt` that the last `backward` returned (as tensors,
    /// e.g. after a learner used them): the next `backward` reuses their storage instead
    /// of allocating, so large gradients (an embedding table's, an output layer's) do
    /// not cost fresh pages every minibatch. Anything that does not fit is dropped.
    pub fn recycle_gradients(&mut self, wrt: &[&Variable], grads: Vec<Tensor>) {
        for (v, t) in wrt.iter().zip(grads) {
            let Some(&s) = self.plan.var_slots.get(&v.key()) else {
                continue;
            };
            if self.grads[s].capacity() == 0 {
                if let Ok(buf) = T::unwrap_vec(t.into_storage()) {
                    self.grads[s] = buf;
                }
            }
        }
    }

    /// For each node run on its own (not inside a recurrent loop) that adds an operand
    /// unchanged (`x` in `x + b` or `x - b`, same shape and rows as the output): that
    /// operand, when nothing else reads it, it is not asked for (`wrt`) or seeded, and
    /// the output's gradient is not asked for. Its gradient is then the output's
    /// gradient itself: the buffer is moved instead of zeroed and added to (for a
    /// Dense(10000) output over 700 rows, 28 MB zeroed and 28 MB added per minibatch).
    fn pass_through(&self, reach: &[bool], wrt: &[usize], seeded: &[usize]) -> Vec<Option<usize>> {
        let readers = &self.readers;
        let mut pass = vec![None; self.plan.nodes.len()];
        for step in &self.plan.steps {
            let Step::Node(n) = step else { continue };
            let node = &self.plan.nodes[*n];
            let candidates: &[usize] = match node.op {
                Op::Binary(BinaryOp::Plus) => &[0, 1],
                Op::Binary(BinaryOp::Minus) => &[0],
                _ => continue,
            };
            let out = node.out;
            if !reach[out] || wrt.contains(&out) || node.ins.len() != 2 {
                continue;
            }
            pass[*n] = candidates.iter().copied().find(|&i| {
                let s = node.ins[i];
                reach[s]
                    && readers[s] == 1
                    && node.ins[1 - i] != s
                    && !wrt.contains(&s)
                    && !seeded.contains(&s)
                    && self.plan.slots[s].shape == self.plan.slots[out].shape
                    && !matches!(self.layouts[s], Layout::Static)
                    && self.layouts[s].same_as(&self.layouts[out])
            });
        }
        pass
    }

    fn run_backward(&mut self, params: &Params, reach: &[bool]) -> Result<()> {
        let steps = std::mem::take(&mut self.plan.steps);
        let mut res = Ok(());
        for step in steps.iter().rev() {
            res = match step {
                Step::Node(n) => self.backward_node(*n, params, reach),
                Step::Loop(lp) => self.backward_loop(&lp.nodes, lp.backward_in_time, params, reach),
            };
            if res.is_err() {
                break;
            }
        }
        self.plan.steps = steps;
        res
    }

    /// Backward of one row-local node over `rows`, for the operands selected by `which`.
    fn backward_rows_of(
        &mut self,
        n: usize,
        params: &Params,
        reach: &[bool],
        rows: std::ops::Range<usize>,
        which: impl Fn(bool) -> bool,
        skip: Option<usize>,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let out = node.out;
        let numel = node.out_shape.numel();
        for (i, &s) in node.ins.iter().enumerate() {
            if !reach[s] || !node.op.differentiable(i) || skip == Some(i) {
                continue;
            }
            let is_static =
                matches!(self.layouts[s], Layout::Static) || params.get::<T>(s).is_some();
            if !which(is_static) {
                continue;
            }
            let mut din = std::mem::take(&mut self.grads[s]);
            let mut st = std::mem::take(&mut self.states[n]);
            let res = {
                let args: Args<T> = node
                    .ins
                    .iter()
                    .map(|&x| self.arg(x, params, rows.clone()))
                    .collect();
                let d = self.plan.slots[s].numel;
                let din_view = if is_static {
                    &mut din[..]
                } else {
                    &mut din[rows.start * d..rows.end * d]
                };
                let ctx = RowCtx {
                    n: rows.len(),
                    row0: rows.start,
                    training: self.training,
                };
                node.op
                    .backward_rows(
                        i,
                        &args,
                        &node.in_shapes,
                        &node.out_shape,
                        &self.data[out][rows.start * numel..rows.end * numel],
                        &self.grads[out][rows.start * numel..rows.end * numel],
                        din_view,
                        ctx,
                        &mut st,
                    )
                    .map_err(|e| with_name(e, &node.name))
            };
            self.states[n] = st;
            self.grads[s] = din;
            res?;
        }
        Ok(())
    }

    fn backward_node(&mut self, n: usize, params: &Params, reach: &[bool]) -> Result<()> {
        let node = &self.plan.nodes[n];
        let out = node.out;
        if !reach[out] {
            return Ok(());
        }
        match node.op.exec_kind() {
            ExecKind::RowLocal => {
                let rows = self.layouts[out].rows();
                let pass = self.pass.get(n).copied().flatten();
                self.backward_rows_of(n, params, reach, 0..rows, |_| true, pass)?;
                if let Some(i) = pass {
                    // the operand's gradient is the output's (nothing reads it after)
                    let s = self.plan.nodes[n].ins[i];
                    self.grads.swap(s, out);
                }
                Ok(())
            }
            ExecKind::Delay => {
                let layout = self.layouts[out].clone();
                let steps = layout.packed().map(|p| p.max_len()).unwrap_or(0);
                for t in 0..steps {
                    self.delay_backward(n, params, reach, &layout, t)?;
                }
                Ok(())
            }
            ExecKind::Whole => {
                let node = &self.plan.nodes[n];
                for (i, &s) in node.ins.iter().enumerate() {
                    if !reach[s] || !node.op.differentiable(i) {
                        continue;
                    }
                    let mut din = std::mem::take(&mut self.grads[s]);
                    let mut st = std::mem::take(&mut self.states[n]);
                    let res = {
                        let args: WholeArgs<T> = node
                            .ins
                            .iter()
                            .map(|&x| self.whole_arg(x, params))
                            .collect();
                        node.op
                            .backward_whole(
                                i,
                                &args,
                                &self.plan.slots[out].shape,
                                &self.layouts[out],
                                &self.data[out],
                                &self.grads[out],
                                &mut din,
                                &mut st,
                            )
                            .map_err(|e| with_name(e, &node.name))
                    };
                    self.states[n] = st;
                    self.grads[s] = din;
                    res?;
                }
                Ok(())
            }
        }
    }

    fn delay_backward(
        &mut self,
        n: usize,
        params: &Params,
        reach: &[bool],
        layout: &Layout,
        t: usize,
    ) -> Result<()> {
        let node = &self.plan.nodes[n];
        let (xs, is, out) = (node.ins[0], node.ins[1], node.out);
        let mut dx = if reach[xs] {
            Some(std::mem::take(&mut self.grads[xs]))
        } else {
            None
        };
        let mut dinit = if reach[is] {
            Some(std::mem::take(&mut self.grads[is]))
        } else {
            None
        };
        let res = self.delay_parts(n, params, layout).map(|(d, _, _)| {
            d.backward_step(&self.grads[out], dx.as_deref_mut(), dinit.as_deref_mut(), t)
        });
        if let Some(g) = dx {
            self.grads[xs] = g;
        }
        if let Some(g) = dinit {
            self.grads[is] = g;
        }
        res
    }

    fn backward_loop(
        &mut self,
        nodes: &[usize],
        reverse: bool,
        params: &Params,
        reach: &[bool],
    ) -> Result<()> {
        let out0 = self.plan.nodes[nodes[0]].out;
        let layout = self.layouts[out0].clone();
        let packed = layout.packed().expect("loop layout").clone();
        let steps = packed.max_len();
        for k in 0..steps {
            // Opposite time order of the forward.
            let t = if reverse { k } else { steps - 1 - k };
            let r = packed.step_rows(t);
            for &n in nodes.iter().rev() {
                if !reach[self.plan.nodes[n].out] {
                    continue;
                }
                if self.plan.nodes[n].op.exec_kind() == ExecKind::Delay {
                    self.delay_backward(n, params, reach, &layout, t)?;
                } else {
                    // Static operands (weights) wait: one product over all steps below.
                    self.backward_rows_of(
                        n,
                        params,
                        reach,
                        r.clone(),
                        |is_static| !is_static,
                        None,
                    )?;
                }
            }
        }
        let rows = layout.rows();
        for &n in nodes {
            if reach[self.plan.nodes[n].out] && self.plan.nodes[n].op.exec_kind() != ExecKind::Delay
            {
                self.backward_rows_of(n, params, reach, 0..rows, |is_static| is_static, None)?;
            }
        }
        Ok(())
    }
}

fn convert_csr<S: Element, T: Element>(c: &Csr<S>) -> Csr<T> {
    Csr {
        rows: c.rows,
        cols: c.cols,
        indptr: c.indptr.clone(),
        indices: c.indices.clone(),
        values: c.values.iter().map(|v| T::from_f64(v.as_f64())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::{element_times, plus, tanh, times};
    use crate::graph::{input_variable_with, InputOptions};
    use crate::DType;

    /// The hand-over is taken for `x·W + b` read once, and not when the product has a
    /// second reader (the integration test `executor.rs` checks the gradients agree).
    #[test]
    fn pass_through_is_chosen_only_for_a_single_reader() {
        let x = input_variable_with(
            [2],
            InputOptions {
                dtype: DType::F64,
                dynamic_axes: DynamicAxes::default_sequence(),
                name: "x".into(),
                ..Default::default()
            },
        );
        let w = crate::parameter_from(Tensor::from_vec([2, 3], vec![0.5; 6]).unwrap(), "W");
        let b = crate::parameter_from(Tensor::from_vec([3], vec![0.1; 3]).unwrap(), "b");
        let y = times(&x, &w).unwrap();
        let z = tanh(&plus(&y, &b).unwrap()).unwrap();
        let shared = plus(&z, &element_times(&y, &z).unwrap()).unwrap();
        let v = Value::from_sequences([2], &[vec![1.0, 2.0, 3.0, 4.0], vec![0.5, 0.25]]).unwrap();
        for (root, expect) in [(&z, true), (&shared, false)] {
            let mut ex = Executor::<f64>::new(std::slice::from_ref(root)).unwrap();
            ex.forward(&[(&x, &v)], true).unwrap();
            ex.backward(&[(root, None)], &[&w, &b]).unwrap();
            // the product's slot
            let ys = (ex.plan.nodes.iter())
                .find(|nd| matches!(nd.op, Op::Times { .. }))
                .map(|nd| nd.out)
                .unwrap();
            let handed = (ex.pass.iter().enumerate())
                .any(|(n, p)| p.is_some_and(|i| ex.plan.nodes[n].ins[i] == ys));
            assert_eq!(handed, expect);
        }
    }
}
