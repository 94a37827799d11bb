//! Who owns what in a graph, and how graphs with recurrent loops are freed.
//!
//! Every edge of a graph is a strong reference from a consumer to what it consumes: a
//! function to its operands, an output variable to its function, a composite to its
//! outputs, a block to its body and argument placeholders, and a replaced placeholder
//! to its replacement. Handles (`Variable`, `Function`) are strong references too.
//! Without loops this is plain reference counting: dropping the last handle frees the
//! graph (from a work list, so any depth drops on a small stack).
//!
//! A recurrent loop's closing edge (placeholder → replacement, made by
//! `replace_placeholders` or by `clone_with` copying a loop) makes the references
//! circular, and counts alone would never free it. So when a loop is closed, its
//! nodes — the strongly connected component through the placeholder — are recorded
//! in a [`LoopInfo`] with the number of references each receives from inside the loop.
//! Whenever a reference to one of them is released, the loop is checked: if every
//! node is referenced only from inside the loop, nothing outside can reach it any
//! more, its closing edges are cut, and it is freed like any acyclic graph.
//!
//! The rule for users: **a loop lives exactly as long as something outside it refers
//! to any of its nodes** — a handle to its output, to an inner variable (a
//! past_value's output, a gate inside the step, the placeholder itself), or a node
//! outside the loop that consumes one. Holding any of them keeps the whole loop, with
//! its closing edge, working; dropping the last frees it. A compiled `Executor` holds
//! no graph nodes (only leaves: inputs, parameters, constants), so it works on after
//! the graph it was compiled from is gone.
//!
//! Threads: the check reads every node's count; a generation counter, bumped whenever
//! a new reference to a loop node is made, makes a check that overlapped one give up
//! (the releasing side of that reference checks again), and closing loops is
//! serialized, so a loop that is still reachable is never cut.

use super::function::{FnKind, FnNode, Function};
use super::variable::{VarNode, Variable};
use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A reference being released.
pub(crate) enum Item {
    Var(Arc<VarNode>),
    Fn(Arc<FnNode>),
}

/// Release one reference; nodes it was the last reference to are taken apart and
/// their references released in turn, from a work list (no recursion).
pub(crate) fn release(item: Item) {
    let mut work = Vec::new();
    release_one(item, &mut work);
    release_all(work);
}

/// Release every reference in `work`, and whatever they free.
pub(crate) fn release_all(mut work: Vec<Item>) {
    while let Some(item) = work.pop() {
        release_one(item, &mut work);
    }
}

fn release_one(item: Item, work: &mut Vec<Item>) {
    let (info, at) = match &item {
        Item::Var(a) => (a.mark().get(), Arc::as_ptr(a) as usize),
        Item::Fn(a) => (a.mark.get(), Arc::as_ptr(a) as usize),
    };
    // The last reference takes its node apart; any other may leave a loop unreachable.
    let freed = match item {
        Item::Var(a) => Arc::into_inner(a).map(|n| n.take_children(work)),
        Item::Fn(a) => Arc::into_inner(a).map(|mut n| n.take_children(work)),
    };
    if let (None, Some(info)) = (freed, info) {
        info.collect_if_unreachable(at, work)
    }
}

/// The loop a node belongs to, if any (set when a loop through it is closed).
#[derive(Default)]
pub(crate) struct LoopMark {
    set: AtomicBool,
    info: Mutex<Option<Arc<LoopInfo>>>,
}

impl LoopMark {
    fn get(&self) -> Option<Arc<LoopInfo>> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, info: &Arc<LoopInfo>) {
        let old = self
            .info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(info.clone());
        self.set.store(true, Ordering::Release);
        // A loop merged into a larger one: the larger one's record replaces it.
        if let Some(old) = old {
            if !Arc::ptr_eq(&old, info) {
                old.done.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Called after a new reference to this node was made (a handle cloned).
    pub(crate) fn new_reference(&self) {
        if let Some(info) = self.get() {
            info.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

enum Member {
    Var(Weak<VarNode>),
    Fn(Weak<FnNode>),
}

impl Member {
    fn strong_count(&self) -> usize {
        match self {
            Member::Var(w) => w.strong_count(),
            Member::Fn(w) => w.strong_count(),
        }
    }
}

/// One recurrent loop: its nodes, the references each receives from inside the loop,
/// and the placeholders whose replacements close it.
pub(crate) struct LoopInfo {
    /// Cut, or replaced by the record of a larger loop.
    done: AtomicBool,
    /// Bumped whenever a new reference to a node of the loop is made.
    generation: AtomicU64,
    members: Vec<(Member, usize)>,
    /// A member's place in `members`, by the address of its node.
    position: HashMap<usize, usize>,
    closers: Vec<Weak<VarNode>>,
}

impl LoopInfo {
    /// Every node is referenced only from inside the loop (and no new reference was
    /// made while looking). The node just released (at address `at`) is looked at
    /// first: a temporary handle's release stops there, without reading the others.
    fn unreachable(&self, at: usize) -> bool {
        if self.done.load(Ordering::SeqCst) {
            return false;
        }
        let g = self.generation.load(Ordering::SeqCst);
        if let Some((m, inside)) = self.position.get(&at).map(|&i| &self.members[i]) {
            if m.strong_count() != *inside {
                return false;
            }
        }
        for (m, inside) in &self.members {
            if m.strong_count() != *inside {
                return false;
            }
        }
        fence(Ordering::SeqCst);
        self.generation.load(Ordering::SeqCst) == g
    }

    /// Cut the closing edges of a loop nothing outside refers to any more; what they
    /// held goes to `work` to be released.
    fn collect_if_unreachable(&self, at: usize, work: &mut Vec<Item>) {
        if !self.unreachable(at) || self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        for ph in &self.closers {
            let Some(ph) = ph.upgrade() else { continue };
            if let VarNode::Leaf(leaf) = &*ph {
                let b = leaf
                    .binding
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                work.extend(b.map(|v| Item::Var(v.into_arc())));
            }
            work.push(Item::Var(ph));
        }
    }
}

static CLOSING: Mutex<()> = Mutex::new(());

/// Held while placeholders are bound and the loops they close recorded, so that two
/// threads closing loops in one graph see each other's bindings.
pub(crate) fn closing_lock() -> MutexGuard<'static, ()> {
    CLOSING.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
enum Node {
    Var(Variable),
    Fn(Function),
}

/// The strong references among the nodes reachable from some placeholders.
struct Reach {
    /// The placeholders the walk started from.
    starts: Vec<usize>,
    nodes: Vec<Node>,
    /// Edges with multiplicity: one per reference held.
    edges: Vec<Vec<usize>>,
    index: HashMap<(bool, usize), usize>,
}

impl Reach {
    fn from(starts: &[Variable]) -> Reach {
        let mut r = Reach {
            starts: Vec::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
            index: HashMap::new(),
        };
        let mut todo = Vec::new();
        for v in starts {
            let before = r.nodes.len();
            let j = r.add(Node::Var(v.clone()));
            if j == before {
                todo.push(j);
            }
            r.starts.push(j);
        }
        // Every node is pushed once, when first seen.
        while let Some(i) = todo.pop() {
            let mut out = Vec::new();
            for c in children(&r.nodes[i]) {
                let before = r.nodes.len();
                let j = r.add(c);
                if j == before {
                    todo.push(j);
                }
                out.push(j);
            }
            r.edges[i] = out;
        }
        r
    }

    /// The address of node `i` (variables and functions are separate allocations,
    /// so addresses never coincide).
    fn address(&self, i: usize) -> usize {
        match &self.nodes[i] {
            Node::Var(v) => Arc::as_ptr(v.node()) as usize,
            Node::Fn(f) => Arc::as_ptr(f.node()) as usize,
        }
    }

    fn add(&mut self, n: Node) -> usize {
        let key = match &n {
            Node::Var(v) => (false, Arc::as_ptr(v.node()) as usize),
            Node::Fn(f) => (true, Arc::as_ptr(f.node()) as usize),
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.index.insert(key, self.nodes.len());
        self.nodes.push(n);
        self.edges.push(Vec::new());
        self.nodes.len() - 1
    }
}

/// The references a node holds, one entry per reference.
fn children(n: &Node) -> Vec<Node> {
    match n {
        Node::Var(v) => match &**v.node() {
            VarNode::Leaf(l) => l
                .binding
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|b| Node::Var(b.clone()))
                .collect(),
            VarNode::Output { owner, .. } => vec![Node::Fn(owner.clone())],
        },
        Node::Fn(f) => {
            let mut out: Vec<Node> = f.inputs().iter().cloned().map(Node::Var).collect();
            match f.kind() {
                FnKind::Primitive(_) => {}
                FnKind::Composite { outputs } => out.extend(outputs.iter().cloned().map(Node::Var)),
                FnKind::Block { body, args, .. } => {
                    out.push(Node::Fn(body.clone()));
                    out.extend(args.iter().cloned().map(Node::Var));
                }
            }
            out
        }
    }
}

/// Strongly connected components (Tarjan, iterative: graphs may be deep).
fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let (mut index, mut low, mut on_stack) = (vec![NONE; n], vec![0; n], vec![false; n]);
    let (mut stack, mut out, mut next) = (Vec::new(), Vec::new(), 0);
    for s in 0..n {
        if index[s] != NONE {
            continue;
        }
        let mut calls = vec![(s, 0usize)];
        index[s] = next;
        low[s] = next;
        next += 1;
        stack.push(s);
        on_stack[s] = true;
        while let Some(&(v, i)) = calls.last() {
            if let Some(&w) = edges[v].get(i) {
                calls.last_mut().expect("a call").1 += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(p, _)) = calls.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}

/// Record the loops that the just-bound `placeholders` close (call with
/// [`closing_lock`] held, after binding them).
pub(crate) fn close_loops(placeholders: &[Variable]) {
    if placeholders.is_empty() {
        return;
    }
    let r = Reach::from(placeholders);
    let mut comp_of = vec![usize::MAX; r.nodes.len()];
    let comps = components(&r.edges);
    for (c, comp) in comps.iter().enumerate() {
        for &i in comp {
            comp_of[i] = c;
        }
    }
    // Each loop through a start is recorded once.
    let mut recorded = vec![false; comps.len()];
    for &s in &r.starts {
        let c = comp_of[s];
        if recorded[c] {
            continue;
        }
        recorded[c] = true;
        let comp = &comps[c];
        let self_edge = r.edges[comp[0]].contains(&comp[0]);
        if comp.len() < 2 && !self_edge {
            continue;
        }
        record(&r, comp, &comp_of, c);
    }
}

fn record(r: &Reach, comp: &[usize], comp_of: &[usize], c: usize) {
    let mut inside: HashMap<usize, usize> = comp.iter().map(|&i| (i, 0)).collect();
    for &i in comp {
        for &j in &r.edges[i] {
            if comp_of[j] == c {
                *inside.get_mut(&j).expect("a member") += 1;
            }
        }
    }
    let mut members = Vec::with_capacity(comp.len());
    let mut position = HashMap::with_capacity(comp.len());
    let mut closers = Vec::new();
    for &i in comp {
        position.insert(r.address(i), members.len());
        match &r.nodes[i] {
            Node::Var(v) => {
                members.push((Member::Var(Arc::downgrade(v.node())), inside[&i]));
                if v.is_placeholder() {
                    closers.push(Arc::downgrade(v.node()));
                }
            }
            Node::Fn(f) => members.push((Member::Fn(Arc::downgrade(f.node())), inside[&i])),
        }
    }
    let info = Arc::new(LoopInfo {
        done: AtomicBool::new(false),
        generation: AtomicU64::new(0),
        members,
        position,
        closers,
    });
    for &i in comp {
        match &r.nodes[i] {
            Node::Var(v) => v.node().mark().set(&info),
            Node::Fn(f) => f.node().mark.set(&info),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn components_of_a_small_graph() {
        // 0 -> 1 -> 2 -> 0 (a loop), 2 -> 3, 3 -> 3 (a self edge), 4 alone
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![3], vec![]];
        let mut c: Vec<Vec<usize>> = components(&edges)
            .into_iter()
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        c.sort();
        assert_eq!(c, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }
}
