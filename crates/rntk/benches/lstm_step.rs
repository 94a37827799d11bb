//! Engine micro-benchmarks (see BENCHMARKS.md at the repository root):
//! * `lstm_step/*`: one LSTM recurrence built from primitives exactly like
//!   tests/engine/lstm_loop.rs (times, plus, slice, sigmoid, tanh, element_times,
//!   past_value), f32, run through the `Executor` over B sequences of length T;
//!   forward only and forward + backward (gradients of W, H, b).
//!   Divide the reported time by T for the time per step.
//! * `lstm_floor/*`: the same forward step written directly against the CPU
//!   kernels, no graph or executor: the floor that engine overhead is measured from.
//! * `elementwise_f32_4096/*`: sigmoid / tanh / exp on 4096 f32: `std` per element,
//!   the portable path, AVX2, AVX-512 (a level the CPU lacks runs the next lower one).
//!
//! `cargo bench -p rntk --bench lstm_step` prints, before the benchmarks, the
//! primitive-node counts per step that the per-primitive overhead divides by.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rntk::backend::cpu::{self, Kernel, Mat, MatMut, SimdLevel};
use rntk::backend::Par;
use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::{placeholder, sequence, DType, DynamicAxes, Executor, Tensor, Value, Variable};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

const T: usize = 20;

/// Problem size: batch B, input I, hidden N.
#[derive(Clone, Copy)]
struct Size {
    name: &'static str,
    b: usize,
    i: usize,
    n: usize,
}

const TINY: Size = Size {
    name: "b10_i1_n15",
    b: 10,
    i: 1,
    n: 15,
};
const LARGE: Size = Size {
    name: "b64_i512_n512",
    b: 64,
    i: 512,
    n: 512,
};

/// Deterministic values in [-0.5, 0.5).
fn fill(n: usize, key: u64) -> Vec<f32> {
    let mut s = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

struct Lstm {
    x: Variable,
    h: Variable,
    params: Vec<Variable>,
}

/// tests/engine/lstm_loop.rs's LSTM (past_value, k = 1), generalized to input I, hidden N.
fn build(sz: Size) -> Lstm {
    let (i, n) = (sz.i, sz.n);
    let x = input_variable_with(
        [i],
        InputOptions {
            dtype: DType::F32,
            dynamic_axes: DynamicAxes::default_sequence(),
            needs_gradient: false,
            name: "x".into(),
            ..Default::default()
        },
    );
    let scale = 1.0 / (n as f32).sqrt();
    let p = |shape: Vec<usize>, key, name| {
        let len = shape.iter().product();
        let v: Vec<f32> = fill(len, key).into_iter().map(|v| v * scale).collect();
        rntk::parameter_from(Tensor::from_vec(shape, v).unwrap(), name)
    };
    let w = p(vec![i, 4 * n], 1, "W");
    let hw = p(vec![n, 4 * n], 2, "H");
    let b = p(vec![4 * n], 3, "b");
    let dt = DType::F32;
    let h_ph = placeholder([n], dt, x.dynamic_axes(), "h_ph").unwrap();
    let c_ph = placeholder([n], dt, x.dynamic_axes(), "c_ph").unwrap();
    let init = rntk::scalar(0.1, dt);
    let dh = sequence::past_value(&h_ph, &init, 1).unwrap();
    let dc = sequence::past_value(&c_ph, &init, 1).unwrap();
    let a = plus(
        &plus(&b, &times(&x, &w).unwrap()).unwrap(),
        &times(&dh, &hw).unwrap(),
    )
    .unwrap();
    let n = n as isize;
    let gate = |j: isize| slice(&a, 0, j * n, (j + 1) * n).unwrap();
    let (ig, g, f, o) = (gate(0), gate(1), gate(2), gate(3));
    let c = plus(
        &element_times(&sigmoid(&f).unwrap(), &dc).unwrap(),
        &element_times(&sigmoid(&ig).unwrap(), &tanh(&g).unwrap()).unwrap(),
    )
    .unwrap();
    let h = element_times(&sigmoid(&o).unwrap(), &tanh(&c).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(h_ph, h.clone()), (c_ph, c)])
        .unwrap();
    Lstm {
        x,
        h,
        params: vec![w, hw, b],
    }
}

/// Primitive nodes of the graph: (op name, inside the recurrence) per node.
/// A node is inside when it depends on a past_value (the compiler hoists the rest
/// out of the loop and runs it once over all steps).
fn count_nodes(root: &Variable) -> (HashMap<String, usize>, usize, usize) {
    fn visit(v: &Variable, seen: &mut HashMap<String, (String, bool)>) -> bool {
        let v = v.resolve();
        let Some(f) = v.owner() else {
            return false;
        };
        if let Some((_, rec)) = seen.get(f.uid()) {
            return *rec;
        }
        let op = f.op_name();
        let is_delay = op.contains("PastValue");
        // Insert first: the recurrence leads back here through past_value.
        seen.insert(f.uid().to_string(), (op.clone(), is_delay));
        let mut rec = is_delay;
        for inp in f.inputs() {
            rec |= visit(inp, seen);
        }
        seen.insert(f.uid().to_string(), (op, rec));
        rec
    }
    let mut seen = HashMap::new();
    visit(root, &mut seen);
    let mut by_op = HashMap::new();
    for (op, rec) in seen.values() {
        *by_op
            .entry(format!("{op}{}", if *rec { "" } else { " (hoisted)" }))
            .or_insert(0) += 1;
    }
    let in_loop = seen.values().filter(|(_, r)| *r).count();
    (by_op, in_loop, seen.len() - in_loop)
}

fn feed(sz: Size) -> Value {
    let seqs: Vec<Vec<f32>> = (0..sz.b).map(|s| fill(T * sz.i, 100 + s as u64)).collect();
    Value::from_sequences([sz.i], &seqs).unwrap()
}

fn bench_lstm(c: &mut Criterion) {
    let mut g = c.benchmark_group("lstm_step");
    g.throughput(Throughput::Elements(T as u64)); // "elements" = time steps
    for sz in [TINY, LARGE] {
        let m = build(sz);
        let (by_op, in_loop, hoisted) = count_nodes(&m.h);
        let mut ops: Vec<_> = by_op.into_iter().collect();
        ops.sort();
        eprintln!(
            "{}: {in_loop} primitive nodes per step + {hoisted} hoisted (run once per \
             sequence batch): {ops:?}",
            sz.name
        );
        if sz.b >= 64 {
            g.sample_size(10).measurement_time(Duration::from_secs(8));
        } else {
            g.sample_size(50).measurement_time(Duration::from_secs(4));
        }
        let x = feed(sz);
        let mut ex = Executor::<f32>::new(std::slice::from_ref(&m.h)).unwrap();
        let wrt: Vec<&Variable> = m.params.iter().collect();
        g.bench_function(BenchmarkId::new("forward", sz.name), |bch| {
            bch.iter(|| ex.forward(&[(&m.x, &x)], true).unwrap())
        });
        g.bench_function(BenchmarkId::new("forward_backward", sz.name), |bch| {
            bch.iter(|| {
                ex.forward(&[(&m.x, &x)], true).unwrap();
                black_box(ex.backward(&[(&m.h, None)], &wrt).unwrap());
            })
        });
    }
    g.finish();
}

/// A dense row-major matrix view.
fn mat(data: &[f32], rows: usize, cols: usize) -> Mat<'_, f32> {
    Mat {
        data,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

/// The forward recurrence written straight against the kernels (same math, same
/// buffers reused): what the executor would cost with zero per-node overhead.
fn bench_floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("lstm_floor");
    g.throughput(Throughput::Elements(T as u64));
    for sz in [TINY, LARGE] {
        if sz.b >= 64 {
            g.sample_size(10).measurement_time(Duration::from_secs(8));
        } else {
            g.sample_size(50).measurement_time(Duration::from_secs(4));
        }
        let (b, i, n) = (sz.b, sz.i, sz.n);
        let w = fill(i * 4 * n, 1);
        let hw = fill(n * 4 * n, 2);
        let bias = fill(4 * n, 3);
        let x = fill(T * b * i, 4);
        let mut xa = vec![0f32; T * b * 4 * n];
        let mut a = vec![0f32; b * 4 * n];
        let mut act = vec![0f32; b * 4 * n];
        let (mut h, mut c2, mut th) = (vec![0.1f32; b * n], vec![0.1f32; b * n], vec![0f32; b * n]);
        // (as before the explicit `Par`: large products on rayon's global pool)
        let par = match std::num::NonZeroUsize::new(rayon::current_num_threads()) {
            Some(t) if t.get() > 1 => Par::Rayon(t),
            _ => Par::Seq,
        };
        g.bench_function(BenchmarkId::new("forward", sz.name), |bch| {
            bch.iter(|| {
                // hoisted: x·W + b over all steps
                cpu::gemm(
                    &mat(&x, T * b, i),
                    &mat(&w, i, 4 * n),
                    &mut MatMut {
                        data: &mut xa,
                        rows: T * b,
                        cols: 4 * n,
                        rs: 4 * n,
                        cs: 1,
                    },
                    false,
                    par,
                );
                for row in xa.chunks_mut(4 * n) {
                    row.iter_mut().zip(&bias).for_each(|(v, bb)| *v += bb);
                }
                for t in 0..T {
                    a.copy_from_slice(&xa[t * b * 4 * n..(t + 1) * b * 4 * n]);
                    cpu::gemm(
                        &mat(&h, b, n),
                        &mat(&hw, n, 4 * n),
                        &mut MatMut {
                            data: &mut a,
                            rows: b,
                            cols: 4 * n,
                            rs: 4 * n,
                            cs: 1,
                        },
                        true,
                        par,
                    );
                    // gates i, g, f, o per row: sigmoid on all, tanh on g
                    cpu::sigmoid(&a, &mut act);
                    for r in 0..b {
                        let row = &a[r * 4 * n..(r + 1) * 4 * n];
                        let ar = &mut act[r * 4 * n..(r + 1) * 4 * n];
                        cpu::tanh(&row[n..2 * n], &mut ar[n..2 * n]);
                        for k in 0..n {
                            let cc = ar[2 * n + k] * c2[r * n + k] + ar[k] * ar[n + k];
                            c2[r * n + k] = cc;
                        }
                    }
                    cpu::tanh(&c2, &mut th);
                    for r in 0..b {
                        for k in 0..n {
                            h[r * n + k] = act[r * 4 * n + 3 * n + k] * th[r * n + k];
                        }
                    }
                }
                black_box(&h);
            })
        });
    }
    g.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    const N: usize = 4096;
    let mut g = c.benchmark_group("elementwise_f32_4096");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(50).measurement_time(Duration::from_secs(2));
    // inputs spread over the interesting range of all three functions
    let x: Vec<f32> = fill(N, 7).into_iter().map(|v| v * 24.0).collect();
    let mut y = vec![0f32; N];
    eprintln!("detected SIMD level: {:?}", cpu::simd_level());
    type Std = fn(f32) -> f32;
    let kernels: [(&str, Kernel, Std); 3] = [
        ("sigmoid", Kernel::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
        ("tanh", Kernel::Tanh, f32::tanh),
        ("exp", Kernel::Exp, f32::exp),
    ];
    for (name, k, f) in kernels {
        g.bench_function(BenchmarkId::new(name, "std"), |bch| {
            bch.iter(|| {
                for (o, &v) in y.iter_mut().zip(black_box(&x)) {
                    *o = f(v);
                }
            })
        });
        for l in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            if l > cpu::simd_level() {
                continue;
            }
            let id = format!("{l:?}").to_lowercase();
            g.bench_function(BenchmarkId::new(name, id), |bch| {
                bch.iter(|| cpu::run_f32(k, l, black_box(&x), &mut y))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_elementwise, bench_lstm, bench_floor);
criterion_main!(benches);
