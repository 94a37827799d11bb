//! The element-wise kernels on the host: unary ops and their backward, broadcasting
//! binary ops by the tables.

use super::{close, library, vals, M, P};
use rntk::backend::elementwise::{BinaryOp, Geom, UnaryOp};
use rntk::backend::{Cpu, Elementwise, Operand, Par};
use rntk::Shape;
use rntk_cuda::tables;

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
