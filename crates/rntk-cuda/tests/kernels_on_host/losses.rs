//! The softmax, cross-entropy and classification-error kernels on the host.

use super::{close, library, vals, M, NULLU, P};
use rntk::backend::losses::{AxisGeom, LastAxis};
use rntk::backend::{Arg, Cpu, Losses, Operand, Par};

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
