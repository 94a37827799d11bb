//! The CUDA kernels' arithmetic checked without a GPU: the same sources, compiled as
//! C++ for the host by the system's `c++` with a small shim (one block of one thread,
//! so every grid-stride loop walks all items in order; atomics are plain adds), are
//! called on host memory and compared with rntk's CPU kernels. This checks what each
//! kernel computes (gates, softmax, losses, broadcasting tables, reductions, learner
//! steps) — not the launch, the memory or the GPU's rounding of
//! exp/tanh, which `tests/gpu_conformance.rs` checks on a GPU. Skips with one line
//! where no C++ compiler is installed.

use rntk::backend::elementwise::{BinaryOp, Geom, UnaryOp};
use rntk::backend::losses::{AxisGeom, LastAxis};
use rntk::backend::recurrent::LstmStrides;
use rntk::backend::reduce::{ReduceGeom, ReduceOp};
use rntk::backend::updates::{LearnerStep, UpdateKernel};
use rntk::backend::{Arg, Cpu, Elementwise, Losses, Operand, Par, Recurrent, Reductions, Updates};
use rntk::Shape;
use rntk_cuda::{kernels, tables};
use std::path::PathBuf;
use std::sync::OnceLock;

const SHIM: &str = r#"
#include <cmath>
#include <cstdint>
using namespace std;
struct dim3_ { unsigned x, y, z; };
static const dim3_ blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const dim3_ blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() ((void)0)
template <class X> inline X atomicAdd(X* p, X v) { X old = *p; *p += v; return old; }
"#;

/// The f64 kernels built as a host library, or `None` (skip) without a compiler.
fn library() -> Option<&'static libloading::Library> {
    static LIB: OnceLock<Option<libloading::Library>> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rntk-cuda-host-kernels");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("kernels.cpp");
        let lib = dir.join("libkernels.so");
        std::fs::write(
            &src,
            format!("{SHIM}\n{}", kernels::program(rntk::DType::F64)),
        )
        .unwrap();
        let out = std::process::Command::new("c++")
            .args(["-O1", "-std=c++17", "-shared", "-fPIC", "-w", "-o"])
            .arg(&lib)
            .arg(&src)
            .output();
        match out {
            Err(e) => {
                eprintln!("skipped: no C++ compiler to build the host emulation ({e})");
                None
            }
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "the kernels as C++:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                // SAFETY: a library just built from our sources, no initializers.
                Some(unsafe { libloading::Library::new(&lib) }.unwrap())
            }
        }
    })
    .as_ref()
}

/// Call kernel `$name` (f64) with the C signature `$sig`.
macro_rules! k {
    ($lib:expr, $name:literal, fn($($t:ty),*), $($a:expr),*) => {{
        let f: libloading::Symbol<unsafe extern "C" fn($($t),*)> =
            unsafe { $lib.get(concat!($name, "_f64\0").as_bytes()) }.unwrap();
        unsafe { f($($a),*) }
    }};
}

type P = *const f64;
type M = *mut f64;
const NULLU: *const u64 = std::ptr::null();

fn vals(n: usize, key: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((((i * 37 + key * 11) % 29) as f64) - 14.0) * 0.13 + 0.001 * i as f64)
        .collect()
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: kernel {g} vs CPU {w}"
        );
    }
}

#[test]
fn unary_kernels_compute_what_the_cpu_computes() {
    let Some(lib) = library() else { return };
    let ops = [
        (0, UnaryOp::Negate),
        (1, UnaryOp::Sigmoid),
        (2, UnaryOp::Tanh),
        (3, UnaryOp::Relu),
        (4, UnaryOp::LeakyRelu(0.2)),
        (5, UnaryOp::Elu),
        (6, UnaryOp::Softplus),
        (7, UnaryOp::Exp),
        (8, UnaryOp::Log),
        (9, UnaryOp::Sqrt),
        (10, UnaryOp::Square),
        (11, UnaryOp::Abs),
        (12, UnaryOp::Reciprocal),
        (14, UnaryOp::Alias),
        (15, UnaryOp::Floor),
        (16, UnaryOp::Sin),
        (17, UnaryOp::Cos),
    ];
    let n = 40;
    for (code, op) in ops {
        let positive = matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Reciprocal);
        let x: Vec<f64> = vals(n, code as usize)
            .iter()
            .map(|v| if positive { v.abs() + 0.1 } else { *v })
            .collect();
        let a = if let UnaryOp::LeakyRelu(a) = op {
            a
        } else {
            0.0
        };
        let (mut y, mut yc) = (vec![0.0; n], vec![0.0; n]);
        k!(
            lib,
            "unary_fwd",
            fn(i32, f64, P, M, u64),
            code,
            a,
            x.as_ptr(),
            y.as_mut_ptr(),
            n as u64
        );
        Cpu.unary(op, &x, &mut yc, (4, 10), Par::Seq);
        close(&format!("{op:?}"), &y, &yc, 1e-14);
        let dy = vals(n, 3);
        let (mut dx, mut dxc) = (vals(n, 5), vals(n, 5));
        k!(
            lib,
            "unary_bwd",
            fn(i32, f64, P, P, P, M, u64),
            code,
            a,
            x.as_ptr(),
            yc.as_ptr(),
            dy.as_ptr(),
            dx.as_mut_ptr(),
            n as u64
        );
        Cpu.unary_backward(op, &x, &yc, &dy, &mut dxc, (4, 10), Par::Seq);
        close(&format!("{op:?} backward"), &dx, &dxc, 1e-14);
    }
}

#[test]
fn broadcast_binary_kernels_follow_the_tables() {
    let Some(lib) = library() else { return };
    let (sa, sb, so) = (
        Shape::from([3, 1, 4]),
        Shape::from([2, 1]),
        Shape::from([3, 2, 4]),
    );
    let g = Geom::new([&sa, &sb], &so).unwrap();
    let t = tables::broadcast(&g).expect("a broadcast");
    let n = 3;
    let a = vals(n * 12, 1);
    let b = vals(2, 2);
    let codes = [
        (0, BinaryOp::Plus),
        (2, BinaryOp::ElementTimes),
        (3, BinaryOp::ElementDivide),
        (5, BinaryOp::ElementMax),
        (13, BinaryOp::LogPlus),
    ];
    for (code, op) in codes {
        let (mut out, mut outc) = (vec![0.0; n * 24], vec![0.0; n * 24]);
        k!(
            lib,
            "binary_fwd",
            fn(i32, P, u64, P, u64, M, u64, u64, *const u64),
            code,
            a.as_ptr(),
            12,
            b.as_ptr(),
            0,
            out.as_mut_ptr(),
            n as u64,
            24,
            t.as_ptr()
        );
        let (oa, ob) = (
            Operand::<Cpu, f64> {
                data: &a,
                per_row: true,
            },
            Operand::<Cpu, f64> {
                data: &b,
                per_row: false,
            },
        );
        Cpu.binary(op, oa, ob, &g, &mut outc, n, Par::Seq);
        close(&format!("{op:?}"), &out, &outc, 1e-14);
        let dout = vals(n * 24, 7);
        for wrt_b in [false, true] {
            let len = if wrt_b { 2 } else { n * 12 };
            let (mut d, mut dc) = (vals(len, 9), vals(len, 9));
            let sd = if wrt_b { 0 } else { 12 };
            k!(
                lib,
                "binary_bwd",
                fn(i32, i32, P, u64, P, u64, P, P, M, u64, i32, u64, u64, *const u64),
                code,
                i32::from(wrt_b),
                a.as_ptr(),
                12,
                b.as_ptr(),
                0,
                outc.as_ptr(),
                dout.as_ptr(),
                d.as_mut_ptr(),
                sd,
                1,
                n as u64,
                24,
                t.as_ptr()
            );
            Cpu.binary_backward(op, wrt_b, oa, ob, &g, &outc, &dout, &mut dc, n, Par::Seq);
            close(&format!("{op:?} backward (b: {wrt_b})"), &d, &dc, 1e-12);
        }
    }
}

#[test]
fn reduction_kernels_follow_the_tables() {
    let Some(lib) = library() else { return };
    let shape = Shape::from([2, 3, 4]);
    let n = 2;
    let x = vals(n * 24, 4);
    for axes in [vec![1isize], vec![0, 2], vec![-1]] {
        let g = ReduceGeom::new(&shape, Some(&axes)).unwrap();
        let (bases, offs) = tables::reduce(&g);
        let on = g.out_numel();
        for (code, op) in [
            (0, ReduceOp::Sum),
            (1, ReduceOp::Mean),
            (2, ReduceOp::Max),
            (3, ReduceOp::Min),
            (4, ReduceOp::LogSumExp),
        ] {
            let (mut out, mut outc) = (vec![0.0; n * on], vec![0.0; n * on]);
            k!(
                lib,
                "reduce_fwd",
                fn(i32, P, u64, M, u64, u64, *const u64, *const u64, u64),
                code,
                x.as_ptr(),
                24,
                out.as_mut_ptr(),
                n as u64,
                on as u64,
                bases.as_ptr(),
                offs.as_ptr(),
                g.count as u64
            );
            let ox = Operand::<Cpu, f64> {
                data: &x,
                per_row: true,
            };
            Cpu.reduce(op, &g, ox, &mut outc, n);
            close(&format!("{op:?} over {axes:?}"), &out, &outc, 1e-14);
            let dout = vals(n * on, 6);
            let (mut d, mut dc) = (vec![0.5; n * 24], vec![0.5; n * 24]);
            k!(
                lib,
                "reduce_bwd",
                fn(i32, P, u64, P, P, M, u64, u64, *const u64, *const u64, u64),
                code,
                x.as_ptr(),
                24,
                outc.as_ptr(),
                dout.as_ptr(),
                d.as_mut_ptr(),
                n as u64,
                on as u64,
                bases.as_ptr(),
                offs.as_ptr(),
                g.count as u64
            );
            Cpu.reduce_backward(op, &g, ox, &outc, &dout, &mut dc, n);
            close(&format!("{op:?} backward over {axes:?}"), &d, &dc, 1e-14);
        }
    }
}

#[test]
fn softmax_and_cross_entropy_kernels_agree() {
    let Some(lib) = library() else { return };
    let (n, outer, dim, inner) = (3, 2, 5, 3);
    let numel = outer * dim * inner;
    let x = vals(n * numel, 2);
    for log in [false, true] {
        let g = AxisGeom { outer, dim, inner };
        let (mut y, mut yc) = (vec![0.0; n * numel], vec![0.0; n * numel]);
        k!(
            lib,
            "softmax_fwd",
            fn(i32, P, u64, M, u64, u64, u64, u64),
            i32::from(log),
            x.as_ptr(),
            numel as u64,
            y.as_mut_ptr(),
            n as u64,
            outer as u64,
            dim as u64,
            inner as u64
        );
        Cpu.softmax(
            log,
            g,
            Operand {
                data: &x,
                per_row: true,
            },
            &mut yc,
            n,
        );
        close("softmax", &y, &yc, 1e-13);
        let dout = vals(n * numel, 8);
        let (mut d, mut dc) = (vec![0.0; n * numel], vec![0.0; n * numel]);
        k!(
            lib,
            "softmax_bwd",
            fn(i32, P, P, M, u64, u64, u64, u64, i32),
            i32::from(log),
            yc.as_ptr(),
            dout.as_ptr(),
            d.as_mut_ptr(),
            n as u64,
            outer as u64,
            dim as u64,
            inner as u64,
            1
        );
        Cpu.softmax_backward(log, g, &yc, &dout, &mut dc, n, true);
        close("softmax backward", &d, &dc, 1e-13);
    }
    // cross-entropy over the last axis: 2 distributions of 5 per sample, dense target
    let (numel, dim) = (10, 5);
    let g = LastAxis { numel, dim };
    let o = vals(n * numel, 3);
    let t: Vec<f64> = (0..n * numel)
        .map(|i| if i % 5 == (i / 5) % 5 { 1.0 } else { 0.0 })
        .collect();
    let q = n * 2;
    let (mut lse, mut out, mut lsec, mut outc) =
        (vec![0.0; q], vec![0.0; q], vec![0.0; q], vec![0.0; q]);
    k!(
        lib,
        "ce_fwd",
        fn(P, u64, P, u64, *const u64, *const u32, P, M, M, u64, u64, u64),
        o.as_ptr(),
        numel as u64,
        t.as_ptr(),
        numel as u64,
        NULLU,
        std::ptr::null(),
        std::ptr::null(),
        lse.as_mut_ptr(),
        out.as_mut_ptr(),
        n as u64,
        numel as u64,
        dim as u64
    );
    let oo = Operand::<Cpu, f64> {
        data: &o,
        per_row: true,
    };
    Cpu.cross_entropy(g, oo, Arg::Rows(&t[..]), &mut lsec, &mut outc, n, Par::Seq);
    close("cross_entropy lse", &lse, &lsec, 1e-14);
    close("cross_entropy", &out, &outc, 1e-14);
    let dout = vals(q, 1);
    for i in [0usize, 1] {
        let (mut d, mut dc) = (vec![0.0; n * numel], vec![0.0; n * numel]);
        k!(
            lib,
            "ce_bwd",
            fn(i32, P, u64, P, u64, *const u64, *const u32, P, P, P, M, u64, u64, u64, u64),
            i as i32,
            o.as_ptr(),
            numel as u64,
            t.as_ptr(),
            numel as u64,
            NULLU,
            std::ptr::null(),
            std::ptr::null(),
            lsec.as_ptr(),
            dout.as_ptr(),
            d.as_mut_ptr(),
            numel as u64,
            n as u64,
            numel as u64,
            dim as u64
        );
        Cpu.cross_entropy_backward(
            g,
            i,
            oo,
            Arg::Rows(&t[..]),
            &lsec,
            &dout,
            &mut dc,
            n,
            Par::Seq,
        );
        close(&format!("cross_entropy backward {i}"), &d, &dc, 1e-14);
    }
    let (mut err, mut errc) = (vec![0.0; q], vec![0.0; q]);
    k!(
        lib,
        "class_err_fwd",
        fn(P, u64, P, u64, *const u64, *const u32, P, M, u64, u64, u64),
        o.as_ptr(),
        numel as u64,
        t.as_ptr(),
        numel as u64,
        NULLU,
        std::ptr::null(),
        std::ptr::null(),
        err.as_mut_ptr(),
        n as u64,
        numel as u64,
        dim as u64
    );
    Cpu.classification_error(g, oo, Arg::Rows(&t[..]), &mut errc, n, Par::Seq);
    close("classification_error", &err, &errc, 0.0);
}

#[test]
fn the_lstm_cell_kernels_agree() {
    let Some(lib) = library() else { return };
    let (n, rows) = (7, 4);
    let pre = vals(rows * 4 * n, 1);
    let cprev = vals(rows * n, 2);
    let (mut kept, mut out) = (vec![0.0; rows * 5 * n], vec![0.0; rows * 2 * n]);
    let (mut keptc, mut outc) = (kept.clone(), out.clone());
    k!(
        lib,
        "lstm_cell_fwd",
        fn(P, P, u64, M, M, u64, u64),
        pre.as_ptr(),
        cprev.as_ptr(),
        n as u64,
        kept.as_mut_ptr(),
        out.as_mut_ptr(),
        n as u64,
        rows as u64
    );
    Cpu.lstm_cell(&pre, (&cprev, n), &mut keptc, &mut outc, (n, rows));
    close("lstm kept", &kept, &keptc, 1e-14);
    close("lstm out", &out, &outc, 1e-14);
    let (dh, dc) = (vals(rows * n, 3), vals(rows * n, 4));
    let (mut dpre, mut dcp) = (vals(rows * 4 * n, 5), vals(rows * n, 6));
    let (mut dprec, mut dcpc) = (dpre.clone(), dcp.clone());
    let s = LstmStrides {
        cprev: n,
        dh: n,
        dc: n,
        dcprev: n,
    };
    k!(
        lib,
        "lstm_cell_bwd",
        fn(P, P, P, P, M, M, u64, u64, u64, u64, u64, u64),
        keptc.as_ptr(),
        cprev.as_ptr(),
        dh.as_ptr(),
        dc.as_ptr(),
        dpre.as_mut_ptr(),
        dcp.as_mut_ptr(),
        n as u64,
        n as u64,
        n as u64,
        n as u64,
        n as u64,
        rows as u64
    );
    Cpu.lstm_cell_backward(
        &keptc,
        &cprev,
        &dh,
        &dc,
        Some(&mut dprec),
        Some(&mut dcpc),
        &s,
        (n, rows),
    );
    close("lstm dpre", &dpre, &dprec, 1e-14);
    close("lstm dcprev", &dcp, &dcpc, 1e-14);
}

#[test]
fn learner_step_kernels_agree() {
    let Some(lib) = library() else { return };
    let n = 50;
    let g = vals(n, 2);
    // Adam
    let k = UpdateKernel::Adam {
        mu: 0.9,
        beta2: 0.999,
        step: 0.01,
        epsilon: 1e-8,
        unit_gain: true,
        adamax: false,
    };
    let step = LearnerStep {
        samples: 4,
        clip_per_sample: f64::INFINITY,
        clip_truncation: true,
        l2_per_sample: 0.0,
        l1_per_sample: 0.0,
        eta: 0.01,
        rule: k,
    };
    let (mut p, mut m, mut v) = (
        vals(n, 1),
        vals(n, 3),
        vals(n, 4).iter().map(|x| x.abs()).collect::<Vec<_>>(),
    );
    let mut pc = p.clone();
    let mut state = vec![m.clone(), v.clone()];
    k!(
        lib,
        "adam",
        fn(M, P, M, M, u64, f64, f64, f64, f64, i32, i32),
        p.as_mut_ptr(),
        g.as_ptr(),
        m.as_mut_ptr(),
        v.as_mut_ptr(),
        n as u64,
        0.9,
        0.999,
        0.01,
        1e-8,
        1,
        0
    );
    Cpu.learner_step(&step, &mut pc, &g, &mut state, &mut Vec::new(), Par::Seq);
    close("adam p", &p, &pc, 1e-15);
    close("adam m", &m, &state[0], 1e-15);
    close("adam v", &v, &state[1], 1e-15);
    // Nesterov momentum
    let k = UpdateKernel::Momentum {
        mu: 0.9,
        eta: 0.1,
        unit_gain: true,
        nesterov: true,
    };
    let step = LearnerStep { rule: k, ..step };
    let (mut p, mut v) = (vals(n, 1), vals(n, 6));
    let (mut pc, mut state) = (p.clone(), vec![v.clone()]);
    k!(
        lib,
        "momentum",
        fn(M, P, M, u64, f64, f64, i32, i32),
        p.as_mut_ptr(),
        g.as_ptr(),
        v.as_mut_ptr(),
        n as u64,
        0.9,
        0.1,
        1,
        1
    );
    Cpu.learner_step(&step, &mut pc, &g, &mut state, &mut Vec::new(), Par::Seq);
    close("nesterov p", &p, &pc, 1e-15);
    close("nesterov v", &v, &state[0], 1e-15);
    // clipping by truncation, then L1's shrink
    let mut clipped = vec![0.0; n];
    k!(
        lib,
        "clip_truncate",
        fn(P, M, u64, f64),
        g.as_ptr(),
        clipped.as_mut_ptr(),
        n as u64,
        0.5
    );
    assert!(clipped
        .iter()
        .zip(&g)
        .all(|(c, g)| *c == g.clamp(-0.5, 0.5)));
    let mut p = vals(n, 8);
    let want: Vec<f64> = p
        .iter()
        .map(|x| {
            if *x > 0.2 {
                x - 0.2
            } else if *x < -0.2 {
                x + 0.2
            } else {
                0.0
            }
        })
        .collect();
    k!(
        lib,
        "l1_shrink",
        fn(M, u64, f64),
        p.as_mut_ptr(),
        n as u64,
        0.2
    );
    assert_eq!(p, want);
}

#[test]
fn copy_kernels_move_what_the_cpu_moves() {
    use rntk::backend::copies::{DelayStep, PermuteGeom, SliceGeom, SpliceGeom};
    use rntk::backend::Copies;
    use rntk::tensor::PackedLayout;
    let Some(lib) = library() else { return };
    let n = 3;
    // slice: (outer 2, dim 5, inner 3), elements 1, 3 of the middle axis
    let g = SliceGeom {
        outer: 2,
        dim: 5,
        inner: 3,
        begin: 1,
        stride: 2,
        count: 2,
    };
    let (nx, no) = (30, 12);
    let x = vals(n * nx, 1);
    let (mut y, mut yc) = (vec![0.0; n * no], vec![0.0; n * no]);
    k!(
        lib,
        "slice_fwd",
        fn(P, M, u64, u64, u64, u64, u64, u64, u64),
        x.as_ptr(),
        y.as_mut_ptr(),
        n as u64,
        2,
        5,
        3,
        1,
        2,
        2
    );
    Cpu.slice(&g, &x, &mut yc, n);
    close("slice", &y, &yc, 0.0);
    for per_row in [true, false] {
        let len = if per_row { n * nx } else { nx };
        let (mut d, mut dc) = (vals(len, 2), vals(len, 2));
        k!(
            lib,
            "slice_bwd",
            fn(P, M, u64, u64, u64, u64, u64, u64, u64, i32),
            yc.as_ptr(),
            d.as_mut_ptr(),
            n as u64,
            2,
            5,
            3,
            1,
            2,
            2,
            i32::from(per_row)
        );
        Cpu.slice_backward(&g, &yc, &mut dc, n, per_row);
        close("slice backward", &d, &dc, 1e-15);
    }
    // splice: this operand fills 2 .. 4 of a middle axis of 6
    let g = SpliceGeom {
        outer: 2,
        inner: 3,
        total: 6,
        start: 2,
        extent: 2,
    };
    let xs = vals(n * 12, 3);
    let (mut y, mut yc) = (vec![0.0; n * 36], vec![0.0; n * 36]);
    k!(
        lib,
        "splice_fwd",
        fn(P, u64, M, u64, u64, u64, u64, u64, u64),
        xs.as_ptr(),
        12,
        y.as_mut_ptr(),
        n as u64,
        2,
        3,
        6,
        2,
        2
    );
    Cpu.splice(
        &g,
        Operand {
            data: &xs,
            per_row: true,
        },
        &mut yc,
        n,
    );
    close("splice", &y, &yc, 0.0);
    let (mut d, mut dc) = (vals(12, 4), vals(12, 4));
    k!(
        lib,
        "splice_bwd",
        fn(P, M, u64, u64, u64, u64, u64, u64, i32),
        yc.as_ptr(),
        d.as_mut_ptr(),
        n as u64,
        2,
        3,
        6,
        2,
        2,
        0
    );
    Cpu.splice_backward(&g, &yc, &mut dc, n, false);
    close("splice backward", &d, &dc, 1e-15);
    // permute (2, 3, 4) → axes (2, 0, 1)
    let pg = PermuteGeom::new(&[2, 0, 1], &Shape::from([2, 3, 4]));
    let t = tables::permute(&pg);
    let xp = vals(n * 24, 5);
    let (mut y, mut yc) = (vec![0.0; n * 24], vec![0.0; n * 24]);
    k!(
        lib,
        "gather_map",
        fn(P, M, u64, u64, *const u64),
        xp.as_ptr(),
        y.as_mut_ptr(),
        n as u64,
        24,
        t.as_ptr()
    );
    Cpu.permute(&pg, &xp, &mut yc, n);
    close("permute", &y, &yc, 0.0);
    let (mut d, mut dc) = (vec![0.0; n * 24], vec![0.0; n * 24]);
    k!(
        lib,
        "scatter_map",
        fn(P, M, u64, u64, *const u64, i32),
        yc.as_ptr(),
        d.as_mut_ptr(),
        n as u64,
        24,
        t.as_ptr(),
        1
    );
    Cpu.permute_backward(&pg, &yc, &mut dc, n, true);
    close("permute backward", &d, &dc, 0.0);
    // a delay by 2 steps, per-sequence initial state: the map the backend builds
    let layout = PackedLayout::new(&[4, 1, 3]).unwrap();
    let dnum = 2;
    let step = DelayStep {
        layout: &layout,
        offset: 2,
        future: false,
        numel: dnum,
        init_scalar: false,
        init_per_seq: true,
    };
    let total = layout.total();
    let xd = vals(total * dnum, 6);
    let init = vals(3 * dnum, 7);
    let (mut y, mut yc) = (vec![0.0; total * dnum], vec![0.0; total * dnum]);
    let (mut dx, mut dxc, mut di, mut dic) = (
        vec![0.0; total * dnum],
        vec![0.0; total * dnum],
        vec![0.0; 3 * dnum],
        vec![0.0; 3 * dnum],
    );
    for t in 0..layout.max_len() {
        let map: Vec<u64> = (0..layout.batch_sizes()[t])
            .map(|j| {
                step.source(t, j)
                    .map_or((1 << 63) | layout.sorted()[j] as u64, |s| s as u64)
            })
            .collect();
        let row0 = layout.offsets()[t] * dnum;
        k!(
            lib,
            "delay_fwd",
            fn(P, P, M, u64, *const u64, u64, i32),
            xd.as_ptr(),
            init.as_ptr(),
            y[row0..].as_mut_ptr(),
            dnum as u64,
            map.as_ptr(),
            map.len() as u64,
            1
        );
        Cpu.delay(&step, &xd, &init, &mut yc, t);
        k!(
            lib,
            "delay_bwd",
            fn(P, M, M, u64, *const u64, u64, i32),
            xd[row0..].as_ptr(),
            dx.as_mut_ptr(),
            di.as_mut_ptr(),
            dnum as u64,
            map.as_ptr(),
            map.len() as u64,
            1
        );
        Cpu.delay_backward(&step, &xd, Some(&mut dxc), Some(&mut dic), t);
    }
    close("delay", &y, &yc, 0.0);
    close("delay backward (x)", &dx, &dxc, 1e-15);
    close("delay backward (init)", &di, &dic, 1e-15);
    // hardmax and max_rows with a tie (the first maximum wins; both gradients flow)
    let mut xh = vals(n * 5, 8);
    xh[3] = xh[1].max(xh[3]);
    xh[1] = xh[3];
    let (mut h, mut hc) = (vec![0.0; n * 5], vec![0.0; n * 5]);
    k!(
        lib,
        "hardmax",
        fn(P, u64, M, u64, u64),
        xh.as_ptr(),
        5,
        h.as_mut_ptr(),
        n as u64,
        5
    );
    Cpu.hardmax(
        Operand {
            data: &xh,
            per_row: true,
        },
        5,
        &mut hc,
        n,
    );
    close("hardmax", &h, &hc, 0.0);
    let pairs: Vec<(usize, usize)> = vec![(0, 1), (2, 1), (1, 0)];
    let flat: Vec<u64> = pairs
        .iter()
        .flat_map(|&(a, b)| [a as u64, b as u64])
        .collect();
    let (mut m, mut mc) = (vec![-1.0; 2 * 5], vec![-1.0; 2 * 5]);
    k!(
        lib,
        "max_rows",
        fn(P, M, u64, *const u64, u64),
        xh.as_ptr(),
        m.as_mut_ptr(),
        5,
        flat.as_ptr(),
        3
    );
    Cpu.max_rows(5, &pairs, &xh, &mut mc);
    close("max_rows", &m, &mc, 0.0);
}

#[test]
fn sparse_kernels_agree() {
    use rntk::backend::{Copies, Products, SparseRows};
    use rntk::tensor::Csr;
    let Some(lib) = library() else { return };
    let csr = Csr::<f64> {
        rows: 4,
        cols: 6,
        indptr: vec![0, 2, 2, 5, 6],
        indices: vec![1, 4, 0, 4, 5, 2],
        values: vec![0.5, -1.0, 2.0, 0.25, 1.5, -0.75],
    };
    let ip: Vec<u64> = csr.indptr.iter().map(|&p| p as u64).collect();
    let (r0, rows) = (1, 3);
    let sp = SparseRows::<Cpu, f64> {
        m: &csr,
        r0,
        r1: r0 + rows,
    };
    let (k_, o) = (6, 3);
    for transposed in [false, true] {
        let b = vals(k_ * o, 9);
        let (mut y, mut yc) = (vec![7.0; rows * o], vec![7.0; rows * o]);
        k!(
            lib,
            "sparse_times",
            fn(*const u64, *const u32, P, u64, P, u64, u64, i32, M),
            ip[r0..].as_ptr(),
            csr.indices.as_ptr(),
            csr.values.as_ptr(),
            rows as u64,
            b.as_ptr(),
            k_ as u64,
            o as u64,
            i32::from(transposed),
            y.as_mut_ptr()
        );
        Cpu.sparse_times(sp, &b, (k_, o), transposed, &mut yc);
        close("sparse_times", &y, &yc, 1e-15);
        let dout = vals(rows * o, 2);
        let (mut db, mut dbc) = (vals(k_ * o, 3), vals(k_ * o, 3));
        k!(
            lib,
            "sparse_times_bwd",
            fn(*const u64, *const u32, P, u64, P, u64, u64, i32, M),
            ip[r0..].as_ptr(),
            csr.indices.as_ptr(),
            csr.values.as_ptr(),
            rows as u64,
            dout.as_ptr(),
            k_ as u64,
            o as u64,
            i32::from(transposed),
            db.as_mut_ptr()
        );
        Cpu.sparse_times_backward(sp, &dout, (k_, o), transposed, &mut dbc);
        close("sparse_times backward", &db, &dbc, 1e-15);
    }
    let (mut dense, mut densec) = (vec![0.0; rows * 6], vec![9.0; rows * 6]);
    k!(
        lib,
        "scatter_sparse",
        fn(*const u64, *const u32, P, u64, u64, M),
        ip[r0..].as_ptr(),
        csr.indices.as_ptr(),
        csr.values.as_ptr(),
        rows as u64,
        6,
        dense.as_mut_ptr()
    );
    Cpu.densify(sp, 6, &mut densec);
    close("densify", &dense, &densec, 0.0);
}
