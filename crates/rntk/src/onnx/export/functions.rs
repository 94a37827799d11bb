//! rntk's sequence-axis ops as model-local ONNX functions (domain `ai.rntk`): each
//! body is standard ONNX over the padded form `[sequence, batch, …]` and the int32
//! lengths `[batch]`, rank-agnostic, so one definition serves every call. A runtime
//! inlines the bodies; rntk's importer maps the calls back onto its own ops.
//!
//! | function | inputs → outputs | value |
//! |---|---|---|
//! | `SequenceMask` | x, lens → mask | `[T, B]` bool, `t < lens[b]` |
//! | `SequenceFirst` | x → y | `x[0]` |
//! | `SequenceLast` | x, lens → y | `x[lens[b] − 1, b]` |
//! | `SequenceReduceSum` / `Max` | x, lens, fill → y | over the real steps |
//! | `SequenceSoftmax` | x, lens, −∞, 0 → y | softmax along the sequence, 0 in padding |
//! | `SequenceBroadcastAs` | v, like → y | `v` repeated along `like`'s steps |
//! | `SequenceIsFirst` / `IsLast` | x, (lens,) 1, 0 → y | `[T, B]` indicator |
//! | `PastValue` / `FutureValue` | x, init, (lens) → y | shift by `offset`, `init` where it runs out |
//! | `SequenceWhere` | c, lens, 1, 0 → idx, lens′ | indices of the steps the condition keeps (repeat counts) |
//! | `SequenceGather` | x, c, lens → y, lens′ | the steps the condition keeps |
//! | `SequenceScatter` | x, lens_x, c, lens_c, 0 → y | back onto the condition's steps (sums repeats) |
//! | `SequenceSlice` | x, lens → y, lens′ | steps `begin..end` (negative from the end, `end = 0`: to the end) |
//! | `SequenceUnpack` / `UnpackMask` | x, lens, pad (1, 0) → y | `[B, max len, …]` |
//! | `SequenceReduceAll{Sum,Mean,Max,Min,LogSumExp}` | x, lens, fill (, 1) → scalar | over every real element |

use super::super::builder::{
    attr_i, attr_ref, attr_t, tensor_proto, Gb, DOUBLE, INT32, INT64, RNTK_DOMAIN,
};
use super::super::proto::{attribute_proto::AttributeType, FunctionProto, OperatorSetIdProto};

/// A large end index for slices "to the end".
const END: i64 = i64::MAX;

/// `[T, B, 1, …, 1]` bool mask broadcastable against `x` (of any rank ≥ 2).
fn mask_full(g: &mut Gb, x: &str, lens: &str) -> String {
    let m = mask2(g, x, lens);
    to_rank(g, &m, x)
}

/// `[T, B]` bool mask: `t < lens[b]`.
fn mask2(g: &mut Gb, x: &str, lens: &str) -> String {
    let t = g.dim_scalar(x, 0);
    let r = range(g, &t);
    let l = g.cast(lens, INT64);
    let rr = g.unsqueeze(&r, &[1]);
    let ll = g.unsqueeze(&l, &[0]);
    g.op("Less", &[&rr, &ll], vec![])
}

/// `Range(0, n, 1)` of an int64 scalar `n`.
fn range(g: &mut Gb, n: &str) -> String {
    let (z, o) = (g.i64_scalar(0), g.i64_scalar(1));
    g.op("Range", &[&z, n, &o], vec![])
}

/// A `[T, B]` tensor reshaped to `[T, B, 1, …]` of `like`'s rank.
fn to_rank(g: &mut Gb, m: &str, like: &str) -> String {
    let s = g.op("Shape", &[like], vec![]);
    let rk = g.op("Shape", &[&s], vec![]);
    let two = g.i64s(&[2]);
    let extra = g.op("Sub", &[&rk, &two], vec![]);
    let one = tensor_proto("", INT64, &[1], 1i64.to_le_bytes().to_vec());
    let ones = g.op("ConstantOfShape", &[&extra], vec![attr_t("value", one)]);
    let lead = g.slice(&s, &[0], &[2], &[0]);
    let tgt = g.op("Concat", &[&lead, &ones], vec![attr_i("axis", 0)]);
    g.op("Reshape", &[m, &tgt], vec![])
}

/// An int64 `[T, B]` index tensor broadcast to `x`'s shape (for GatherElements).
fn index_like(g: &mut Gb, idx: &str, x: &str) -> String {
    let r = to_rank(g, idx, x);
    let s = g.op("Shape", &[x], vec![]);
    g.op("Expand", &[&r, &s], vec![])
}

/// The int scalar value of function attribute `a`.
fn attr_value(g: &mut Gb, a: &str) -> String {
    let n = g.fresh(a);
    g.push(
        "",
        "Constant",
        &[],
        std::slice::from_ref(&n),
        vec![attr_ref("value_int", a, AttributeType::Int)],
    );
    n
}

/// `len_t[t, b]`: how many output steps the condition has produced after step t
/// (`ceil` of the running sum, in double as rntk accumulates), padding excluded.
fn where_counts(g: &mut Gb, c: &str, lens: &str) -> String {
    let s = g.op("Shape", &[c], vec![]);
    let lead = g.slice(&s, &[0], &[2], &[0]);
    let c2 = g.op("Reshape", &[c, &lead], vec![]);
    let cd = g.cast(&c2, DOUBLE);
    let m = mask2(g, c, lens);
    let z = g.constant("zero", DOUBLE, &[], 0f64.to_le_bytes().to_vec());
    let cm = g.op("Where", &[&m, &cd, &z], vec![]);
    let ax = g.i64_scalar(0);
    let acc = g.op("CumSum", &[&cm, &ax], vec![]);
    let ce = g.op("Ceil", &[&acc], vec![]);
    g.op("Max", &[&ce, &z], vec![])
}

/// `src[j, b]`: the input step of output step j (how many steps have produced ≤ j
/// outputs), as a bool table `[J, T, B]` → counts.
fn where_table(g: &mut Gb, counts: &str) -> String {
    let t = g.dim_scalar(counts, 0);
    let r = range(g, &t);
    let rd = g.cast(&r, DOUBLE);
    let j = g.unsqueeze(&rd, &[1, 2]);
    let c = g.unsqueeze(counts, &[0]);
    g.op("LessOrEqual", &[&c, &j], vec![])
}

/// The new lengths: the counts at the last step, as int32.
fn where_lens(g: &mut Gb, counts: &str) -> String {
    let last = g.i64_scalar(-1);
    let l = g.op("Gather", &[counts, &last], vec![attr_i("axis", 0)]);
    g.cast(&l, INT32)
}

/// Clamp an int64 index tensor to `[0, T − 1]` of `x`.
fn clamp_t(g: &mut Gb, idx: &str, x: &str) -> String {
    let t = g.dim_scalar(x, 0);
    let one = g.i64_scalar(1);
    let tm = g.op("Sub", &[&t, &one], vec![]);
    let z = g.i64_scalar(0);
    let a = g.op("Min", &[idx, &tm], vec![]);
    g.op("Max", &[&a, &z], vec![])
}

/// `[T, B, R]` → `[B, T, R]` for any rank (the rest flattened and restored).
fn swap_tb(g: &mut Gb, x: &str) -> String {
    let s = g.op("Shape", &[x], vec![]);
    let lead = g.slice(&s, &[0], &[2], &[0]);
    let rest = g.slice(&s, &[2], &[END], &[0]);
    let m1 = g.i64s(&[-1]);
    let flat_shape = g.op("Concat", &[&lead, &m1], vec![attr_i("axis", 0)]);
    let xf = g.op("Reshape", &[x, &flat_shape], vec![]);
    let tr = g.op(
        "Transpose",
        &[&xf],
        vec![super::super::builder::attr_ints("perm", &[1, 0, 2])],
    );
    let b = g.slice(&s, &[1], &[2], &[0]);
    let t = g.slice(&s, &[0], &[1], &[0]);
    let out = g.op("Concat", &[&b, &t, &rest], vec![attr_i("axis", 0)]);
    g.op("Reshape", &[&tr, &out], vec![])
}

/// A function body: its inputs, outputs and attributes.
type Body = (Vec<&'static str>, Vec<String>, Vec<&'static str>);

/// The body of function `name`: (inputs, outputs, attributes, builder).
fn body(name: &str, g: &mut Gb) -> Body {
    match name {
        "SequenceMask" => (vec!["x", "lens"], vec![mask2(g, "x", "lens")], vec![]),
        "SequenceFirst" => sequence_first(g),
        "SequenceLast" => sequence_last(g),
        "SequenceReduceSum" | "SequenceReduceMax" => sequence_reduce(name, g),
        "SequenceSoftmax" => sequence_softmax(g),
        "SequenceBroadcastAs" => sequence_broadcast_as(g),
        "SequenceIsFirst" | "SequenceIsLast" => sequence_is_first_last(name, g),
        "PastValue" => past_value(g),
        "FutureValue" => future_value(g),
        "SequenceWhere" => sequence_where(g),
        "SequenceGather" => sequence_gather(g),
        "SequenceScatter" => sequence_scatter(g),
        "SequenceSlice" => sequence_slice(g),
        "SequenceUnpack" | "SequenceUnpackMask" => sequence_unpack(name, g),
        _ => reduce_all(name, g),
    }
}

/// `SequenceFirst`.
fn sequence_first(g: &mut Gb) -> Body {
    let z = g.i64_scalar(0);
    let y = g.op("Gather", &["x", &z], vec![attr_i("axis", 0)]);
    (vec!["x"], vec![y], vec![])
}

/// `SequenceLast`.
fn sequence_last(g: &mut Gb) -> Body {
    let s = g.op("Shape", &["x"], vec![]);
    let rest = g.slice(&s, &[2], &[END], &[0]);
    let m1 = g.i64s(&[-1]);
    let fs = g.op("Concat", &[&m1, &rest], vec![attr_i("axis", 0)]);
    let xf = g.op("Reshape", &["x", &fs], vec![]);
    let b = g.dim_scalar("x", 1);
    let l = g.cast("lens", INT64);
    let one = g.i64_scalar(1);
    let lm = g.op("Sub", &[&l, &one], vec![]);
    let rows = g.op("Mul", &[&lm, &b], vec![]);
    let bi = range(g, &b);
    let idx = g.op("Add", &[&rows, &bi], vec![]);
    let y = g.op("Gather", &[&xf, &idx], vec![attr_i("axis", 0)]);
    (vec!["x", "lens"], vec![y], vec![])
}

/// `SequenceReduceSum` / `SequenceReduceMax`.
fn sequence_reduce(name: &str, g: &mut Gb) -> Body {
    let m = mask_full(g, "x", "lens");
    let xm = g.op("Where", &[&m, "x", "fill"], vec![]);
    let op = if name == "SequenceReduceSum" {
        "ReduceSum"
    } else {
        "ReduceMax"
    };
    let y = g.reduce(op, &xm, &[0], false);
    (vec!["x", "lens", "fill"], vec![y], vec![])
}

/// `SequenceSoftmax`.
fn sequence_softmax(g: &mut Gb) -> Body {
    let m = mask_full(g, "x", "lens");
    let xm = g.op("Where", &[&m, "x", "neg_inf"], vec![]);
    let mx = g.reduce("ReduceMax", &xm, &[0], true);
    let d = g.op("Sub", &["x", &mx], vec![]);
    let e = g.op("Exp", &[&d], vec![]);
    let em = g.op("Where", &[&m, &e, "zero"], vec![]);
    let s = g.reduce("ReduceSum", &em, &[0], true);
    let y = g.op("Div", &[&em, &s], vec![]);
    (vec!["x", "lens", "neg_inf", "zero"], vec![y], vec![])
}

/// `SequenceBroadcastAs`.
fn sequence_broadcast_as(g: &mut Gb) -> Body {
    let t = g.shape_part("like", 0, 1);
    let sv = g.op("Shape", &["v"], vec![]);
    let shape = g.op("Concat", &[&t, &sv], vec![attr_i("axis", 0)]);
    let u = g.unsqueeze("v", &[0]);
    let y = g.op("Expand", &[&u, &shape], vec![]);
    (vec!["v", "like"], vec![y], vec![])
}

/// `SequenceIsFirst` / `SequenceIsLast`.
fn sequence_is_first_last(name: &str, g: &mut Gb) -> Body {
    let t = g.dim_scalar("x", 0);
    let r = range(g, &t);
    let rr = g.unsqueeze(&r, &[1]);
    let at = if name == "SequenceIsFirst" {
        g.i64s(&[0])
    } else {
        let l = g.cast("lens", INT64);
        let one = g.i64_scalar(1);
        let lm = g.op("Sub", &[&l, &one], vec![]);
        g.unsqueeze(&lm, &[0])
    };
    let eq = g.op("Equal", &[&rr, &at], vec![]);
    let m = mask2(g, "x", "lens");
    let both = g.op("And", &[&eq, &m], vec![]);
    let y = g.op("Where", &[&both, "one", "zero"], vec![]);
    (vec!["x", "lens", "one", "zero"], vec![y], vec![])
}

/// `PastValue`.
fn past_value(g: &mut Gb) -> Body {
    let k = attr_value(g, "offset");
    let t = g.dim_scalar("x", 0);
    let s = g.op("Shape", &["x"], vec![]);
    let rest = g.slice(&s, &[1], &[END], &[0]);
    let kk = g.unsqueeze(&k, &[0]);
    let hs = g.op("Concat", &[&kk, &rest], vec![attr_i("axis", 0)]);
    let pad = g.op("Expand", &["init", &hs], vec![]);
    let cat = g.op("Concat", &[&pad, "x"], vec![attr_i("axis", 0)]);
    let z = g.i64s(&[0]);
    let tt = g.unsqueeze(&t, &[0]);
    let ax = g.i64s(&[0]);
    let y = g.op("Slice", &[&cat, &z, &tt, &ax], vec![]);
    (vec!["x", "init"], vec![y], vec!["offset"])
}

/// `FutureValue`.
fn future_value(g: &mut Gb) -> Body {
    let k = attr_value(g, "offset");
    let t = g.dim_scalar("x", 0);
    let s = g.op("Shape", &["x"], vec![]);
    let rest = g.slice(&s, &[1], &[END], &[0]);
    let kk = g.unsqueeze(&k, &[0]);
    let hs = g.op("Concat", &[&kk, &rest], vec![attr_i("axis", 0)]);
    let pad = g.op("Expand", &["init", &hs], vec![]);
    let cat = g.op("Concat", &["x", &pad], vec![attr_i("axis", 0)]);
    let tt = g.unsqueeze(&t, &[0]);
    let end = g.op("Add", &[&kk, &tt], vec![]);
    let ax = g.i64s(&[0]);
    let shifted = g.op("Slice", &[&cat, &kk, &end, &ax], vec![]);
    // step t reads step t + k only while that is inside the sequence
    let r = range(g, &t);
    let rk = g.op("Add", &[&r, &k], vec![]);
    let rr = g.unsqueeze(&rk, &[1]);
    let l = g.cast("lens", INT64);
    let ll = g.unsqueeze(&l, &[0]);
    let inside = g.op("Less", &[&rr, &ll], vec![]);
    let inside = to_rank(g, &inside, "x");
    let full = g.op("Shape", &["x"], vec![]);
    let init_full = g.op("Expand", &["init", &full], vec![]);
    let y = g.op("Where", &[&inside, &shifted, &init_full], vec![]);
    (vec!["x", "init", "lens"], vec![y], vec!["offset"])
}

/// `SequenceWhere`.
fn sequence_where(g: &mut Gb) -> Body {
    let counts = where_counts(g, "c", "lens");
    let table = where_table(g, &counts);
    let ind = g.op("Where", &[&table, "one", "zero"], vec![]);
    let src = g.reduce("ReduceSum", &ind, &[1], false);
    let sc = g.op("Shape", &["c"], vec![]);
    let y = g.op("Reshape", &[&src, &sc], vec![]);
    let nl = where_lens(g, &counts);
    (vec!["c", "lens", "one", "zero"], vec![y, nl], vec![])
}

/// `SequenceGather`.
fn sequence_gather(g: &mut Gb) -> Body {
    let counts = where_counts(g, "c", "lens");
    let table = where_table(g, &counts);
    let ti = g.cast(&table, INT64);
    let src = g.reduce("ReduceSum", &ti, &[1], false);
    let src = clamp_t(g, &src, "x");
    let idx = index_like(g, &src, "x");
    let y = g.op("GatherElements", &["x", &idx], vec![attr_i("axis", 0)]);
    let nl = where_lens(g, &counts);
    (vec!["x", "c", "lens"], vec![y, nl], vec![])
}

/// `SequenceScatter`.
fn sequence_scatter(g: &mut Gb) -> Body {
    // out[t] = Σ x[j] over the outputs j that step t produced:
    // counts[t−1] ≤ j < counts[t].
    let counts = where_counts(g, "c", "c_lens");
    let zd = g.constant("zero", DOUBLE, &[1, 1], 0f64.to_le_bytes().to_vec());
    let t = g.dim_scalar("c", 0);
    let one = g.i64_scalar(1);
    let tm = g.op("Sub", &[&t, &one], vec![]);
    let tm1 = g.unsqueeze(&tm, &[0]);
    let z1 = g.i64s(&[0]);
    let ax = g.i64s(&[0]);
    let head = g.op("Slice", &[&counts, &z1, &tm1, &ax], vec![]);
    let b = g.shape_part("c", 1, 2);
    let one1 = g.i64s(&[1]);
    let zs = g.op("Concat", &[&one1, &b], vec![attr_i("axis", 0)]);
    let zrow = g.op("Expand", &[&zd, &zs], vec![]);
    let prev = g.op("Concat", &[&zrow, &head], vec![attr_i("axis", 0)]);
    // [B, T, J]
    let jn = g.dim_scalar("x", 0);
    let jr = range(g, &jn);
    let jd = g.cast(&jr, DOUBLE);
    let j = g.unsqueeze(&jd, &[0, 1]);
    let tr = |g: &mut Gb, v: &str| {
        let u = g.unsqueeze(v, &[2]);
        g.op(
            "Transpose",
            &[&u],
            vec![super::super::builder::attr_ints("perm", &[1, 0, 2])],
        )
    };
    let p = tr(g, &prev);
    let c = tr(g, &counts);
    let ge = g.op("GreaterOrEqual", &[&j, &p], vec![]);
    let lt = g.op("Less", &[&j, &c], vec![]);
    let inside = g.op("And", &[&ge, &lt], vec![]);
    let mx = mask_full(g, "x", "x_lens");
    let xm = g.op("Where", &[&mx, "x", "zero"], vec![]);
    // x as [B, J, R]
    let xs = swap_tb(g, &xm);
    let s = g.op("Shape", &[&xs], vec![]);
    let lead = g.slice(&s, &[0], &[2], &[0]);
    let m1 = g.i64s(&[-1]);
    let fs = g.op("Concat", &[&lead, &m1], vec![attr_i("axis", 0)]);
    let x3 = g.op("Reshape", &[&xs, &fs], vec![]);
    let w = g.op("Where", &[&inside, "one", "zero"], vec![]);
    let y3 = g.op("MatMul", &[&w, &x3], vec![]);
    // back to [T, B, sample]
    let y3t = g.op(
        "Transpose",
        &[&y3],
        vec![super::super::builder::attr_ints("perm", &[1, 0, 2])],
    );
    let sx = g.op("Shape", &["x"], vec![]);
    let rest = g.slice(&sx, &[2], &[END], &[0]);
    let tb = g.shape_part("c", 0, 2);
    let os = g.op("Concat", &[&tb, &rest], vec![attr_i("axis", 0)]);
    let y = g.op("Reshape", &[&y3t, &os], vec![]);
    (
        vec!["x", "x_lens", "c", "c_lens", "one", "zero"],
        vec![y],
        vec![],
    )
}

/// `SequenceSlice`.
fn sequence_slice(g: &mut Gb) -> Body {
    let bg = attr_value(g, "begin");
    let en = attr_value(g, "end");
    let l = g.cast("lens", INT64);
    let z = g.i64_scalar(0);
    // begin ≥ 0: min(begin, len), else max(len + begin, 0)
    let b_pos = g.op("Min", &[&bg, &l], vec![]);
    let lb = g.op("Add", &[&l, &bg], vec![]);
    let b_neg = g.op("Max", &[&lb, &z], vec![]);
    let bnn = g.op("GreaterOrEqual", &[&bg, &z], vec![]);
    let start = g.op("Where", &[&bnn, &b_pos, &b_neg], vec![]);
    // end == 0: len; end < 0: max(len + end, 0); else min(end, len)
    let e_pos = g.op("Min", &[&en, &l], vec![]);
    let le = g.op("Add", &[&l, &en], vec![]);
    let e_neg = g.op("Max", &[&le, &z], vec![]);
    let epos = g.op("Greater", &[&en, &z], vec![]);
    let ez = g.op("Equal", &[&en, &z], vec![]);
    let e1 = g.op("Where", &[&epos, &e_pos, &e_neg], vec![]);
    let stop = g.op("Where", &[&ez, &l, &e1], vec![]);
    let d = g.op("Sub", &[&stop, &start], vec![]);
    let nl = g.op("Max", &[&d, &z], vec![]);
    let nl = g.cast(&nl, INT32);
    let t = g.dim_scalar("x", 0);
    let r = range(g, &t);
    let rr = g.unsqueeze(&r, &[1]);
    let ss = g.unsqueeze(&start, &[0]);
    let src = g.op("Add", &[&rr, &ss], vec![]);
    let src = clamp_t(g, &src, "x");
    let idx = index_like(g, &src, "x");
    let y = g.op("GatherElements", &["x", &idx], vec![attr_i("axis", 0)]);
    (vec!["x", "lens"], vec![y, nl], vec!["begin", "end"])
}

/// `SequenceUnpack` / `SequenceUnpackMask`.
fn sequence_unpack(name: &str, g: &mut Gb) -> Body {
    let maxl = g.reduce("ReduceMax", "lens", &[], false);
    let maxl = g.cast(&maxl, INT64);
    let maxl = g.unsqueeze(&maxl, &[0]);
    let z1 = g.i64s(&[0]);
    let one = g.i64s(&[1]);
    if name == "SequenceUnpack" {
        let m = mask_full(g, "x", "lens");
        let xm = g.op("Where", &[&m, "x", "pad"], vec![]);
        let sw = swap_tb(g, &xm);
        let y = g.op("Slice", &[&sw, &z1, &maxl, &one], vec![]);
        (vec!["x", "lens", "pad"], vec![y], vec![])
    } else {
        let m = mask2(g, "x", "lens");
        let v = g.op("Where", &[&m, "one", "zero"], vec![]);
        let tr = g.op(
            "Transpose",
            &[&v],
            vec![super::super::builder::attr_ints("perm", &[1, 0])],
        );
        let y = g.op("Slice", &[&tr, &z1, &maxl, &one], vec![]);
        (vec!["x", "lens", "one", "zero"], vec![y], vec![])
    }
}

/// `SequenceReduceAll*`: every real element of a sequence value.
fn reduce_all(name: &str, g: &mut Gb) -> Body {
    let m = mask_full(g, "x", "lens");
    let xm = g.op("Where", &[&m, "x", "fill"], vec![]);
    let op = match name {
        "SequenceReduceAllMax" => "ReduceMax",
        "SequenceReduceAllMin" => "ReduceMin",
        "SequenceReduceAllLogSumExp" => "ReduceLogSumExp",
        _ => "ReduceSum",
    };
    let s = g.reduce(op, &xm, &[], false);
    if name != "SequenceReduceAllMean" {
        return (vec!["x", "lens", "fill"], vec![s], vec![]);
    }
    let sh = g.op("Shape", &["x"], vec![]);
    let ones = g.op("Expand", &["one", &sh], vec![]);
    let om = g.op("Where", &[&m, &ones, "fill"], vec![]);
    let cnt = g.reduce("ReduceSum", &om, &[], false);
    let y = g.op("Div", &[&s, &cnt], vec![]);
    (vec!["x", "lens", "fill", "one"], vec![y], vec![])
}

/// The definition of rntk sequence function `name` for a model of `opset`.
pub(crate) fn define(name: &str, opset: i64) -> FunctionProto {
    let mut g = Gb::function(opset);
    for n in [
        "x", "lens", "fill", "neg_inf", "zero", "one", "v", "like", "init", "c", "x_lens",
        "c_lens", "pad", "y", "new_lens",
    ] {
        g.reserve(n);
    }
    let (inputs, outputs, attrs) = body(name, &mut g);
    // Outputs get the function's own names.
    let mut nodes = g.nodes;
    let outs: Vec<String> = (0..outputs.len())
        .map(|i| {
            if outputs.len() == 1 {
                "y".to_string()
            } else {
                ["y", "new_lens"][i.min(1)].to_string()
            }
        })
        .collect();
    for (o, src) in outs.iter().zip(&outputs) {
        nodes.push(super::super::proto::NodeProto {
            input: vec![src.clone()],
            output: vec![o.clone()],
            op_type: Some("Identity".into()),
            ..Default::default()
        });
    }
    FunctionProto {
        name: Some(name.to_string()),
        domain: Some(RNTK_DOMAIN.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outs,
        attribute: attrs.iter().map(|s| s.to_string()).collect(),
        node: nodes,
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        doc_string: Some(format!("rntk's {name} over [sequence, batch, ...] values")),
        ..Default::default()
    }
}
