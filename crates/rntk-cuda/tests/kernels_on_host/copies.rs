//! The copy kernels on the host (delays, slices, splices, permutations, row maps,
//! hardmax) and the sparse ones (densify, sparse products).

use super::{close, library, vals, M, P};
use rntk::backend::copies::{DelayStep, PermuteGeom, SliceGeom, SpliceGeom};
use rntk::backend::{Copies, Cpu, Losses, Operand};
use rntk::tensor::PackedLayout;
use rntk::Shape;
use rntk_cuda::tables;

#[test]
fn copy_kernels_move_what_the_cpu_moves() {
    let Some(lib) = library() else { return };
    let n = 3;
    check_slice(lib, n);
    check_splice(lib, n);
    check_permute(lib, n);
    check_delay(lib);
    check_hardmax(lib, n);
}

/// Slice forward and backward (per-row and shared gradients).
fn check_slice(lib: &libloading::Library, n: usize) {
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
}

/// Splice forward and backward.
fn check_splice(lib: &libloading::Library, n: usize) {
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
}

/// Permute forward and backward.
fn check_permute(lib: &libloading::Library, n: usize) {
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
}

/// A delay step by step, forward and backward.
fn check_delay(lib: &libloading::Library) {
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
}

/// Hardmax and max_rows with a tie.
fn check_hardmax(lib: &libloading::Library, n: usize) {
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
    use rntk::backend::{Products, SparseRows};
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
