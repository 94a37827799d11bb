//! The kernels against the plain loops of `reference`, over many geometries, in f64 and
//! f32, on one thread and several.

use super::reference;
use super::*;
use crate::backend::conv::{Axes, ConvAxis, ConvGeometry, PoolGeometry, PoolKind};

fn data(len: usize, key: usize) -> Vec<f64> {
    (0..len)
        .map(|i| (((i * 7 + key) % 23) as f64 - 11.0) / 10.0 + 0.001 * i as f64)
        .collect()
}

fn axis(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    mode: usize,
) -> Option<ConvAxis> {
    match mode {
        0 => ConvAxis::auto_padded(input, kernel, stride, dilation, false),
        1 => ConvAxis::explicit(input, kernel, stride, dilation, (0, 0), false),
        3 => ConvAxis::explicit(input, kernel, stride, dilation, (3, 1), false),
        _ => ConvAxis::explicit(input, kernel, stride, dilation, (1, 2), false),
    }
}

/// A spread of geometries: 1 to 3 axes, odd sizes, strides, dilation, padding modes, groups.
fn geometries() -> Vec<ConvGeometry> {
    let mut out = Vec::new();
    /// (input, kernel, stride, dilation, padding mode) per axis
    type AxisSpec = (usize, usize, usize, usize, usize);
    let specs: &[(&[AxisSpec], usize, usize, usize)] = &[
        (&[(7, 3, 1, 1, 0), (6, 3, 1, 1, 0)], 3, 4, 1),
        (&[(6, 3, 2, 1, 0), (7, 3, 2, 1, 0)], 2, 5, 1),
        (&[(9, 4, 3, 1, 0), (8, 2, 2, 1, 1)], 2, 3, 1),
        (&[(7, 3, 4, 1, 0), (9, 3, 4, 1, 2)], 1, 2, 1),
        (&[(8, 3, 1, 2, 0), (7, 2, 2, 3, 2)], 2, 2, 1),
        (&[(6, 3, 1, 1, 0), (6, 3, 1, 1, 0)], 4, 6, 2),
        (&[(5, 3, 1, 1, 0), (6, 3, 2, 1, 0)], 3, 6, 3),
        (&[(5, 1, 1, 1, 1), (7, 1, 1, 1, 1)], 5, 3, 1),
        (&[(6, 1, 2, 1, 0), (6, 1, 2, 1, 0)], 3, 4, 1),
        (&[(11, 3, 2, 1, 0)], 2, 3, 1),
        (&[(13, 4, 3, 2, 2)], 3, 2, 1),
        (
            &[(4, 3, 1, 1, 0), (5, 3, 2, 1, 1), (4, 2, 1, 1, 0)],
            2,
            3,
            1,
        ),
        (
            &[(3, 3, 1, 1, 0), (5, 3, 1, 1, 0), (6, 3, 1, 1, 0)],
            2,
            2,
            2,
        ),
        (&[(34, 3, 1, 1, 0), (33, 3, 1, 1, 0)], 3, 9, 1),
        (&[(28, 5, 1, 1, 0), (28, 5, 1, 1, 0)], 1, 8, 1),
        (&[(16, 3, 2, 1, 0), (16, 3, 2, 1, 0)], 16, 32, 1),
        (&[(8, 3, 1, 1, 0), (8, 3, 1, 1, 0)], 64, 40, 1),
        // the P5 model's stride-1 layers, and pads wider than the window (stride 1)
        (&[(32, 3, 1, 1, 0), (32, 3, 1, 1, 0)], 16, 16, 1),
        (&[(16, 3, 1, 1, 0), (16, 3, 1, 1, 0)], 32, 32, 1),
        // (at least 8 channels per group: backward data reads in place too)
        (&[(7, 3, 1, 1, 3), (6, 2, 1, 2, 3)], 8, 4, 1),
        (&[(9, 3, 1, 2, 3)], 16, 6, 2),
        (&[(6, 3, 1, 1, 0), (7, 3, 1, 1, 2)], 16, 12, 2),
        // LeNet-like (the CNTK fixture `lenet_stack`)
        (&[(12, 5, 1, 1, 0), (12, 5, 1, 1, 0)], 1, 4, 1),
        (&[(6, 3, 1, 1, 0), (6, 3, 1, 1, 0)], 4, 3, 1),
    ];
    for (axes, c, o, groups) in specs {
        let ax: Axes = axes
            .iter()
            .map(|&(i, k, s, d, m)| axis(i, k, s, d, m).expect("valid axis"))
            .collect();
        out.push(ConvGeometry {
            axes: ax,
            in_channels: *c,
            out_channels: *o,
            groups: *groups,
        });
    }
    out
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}[{i}]: {g:e} vs {w:e}");
    }
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn convolution_kernels_equal_the_plain_loops() {
    for (gi, g) in geometries().iter().enumerate() {
        let n = 3;
        let x = data(n * g.in_size(), 1);
        let w = data(g.filter_size(), 2);
        let dy = data(n * g.out_size(), 3);
        let y_ref = reference::conv(g, n, &x, &w);
        let (dx_ref, dw_ref) = reference::conv_grads(g, n, &x, &w, &dy);
        for threads in [1, 2, 5] {
            let what = |s: &str| format!("geometry {gi} {g:?} threads {threads}: {s}");
            // f64
            let mut y = vec![0.5; y_ref.len()];
            conv_forward(g, n, &x, &w, &mut y, false, threads);
            close(&y, &y_ref, 1e-12, &what("forward f64"));
            conv_forward(g, n, &x, &w, &mut y, true, threads);
            let twice: Vec<f64> = y_ref.iter().map(|v| 2.0 * v).collect();
            close(&y, &twice, 1e-12, &what("forward accumulate f64"));
            let mut dx = vec![0.5; x.len()];
            conv_backward_data(g, n, &dy, &w, &mut dx, false, threads);
            close(&dx, &dx_ref, 1e-12, &what("backward data f64"));
            let mut dw = vec![0.5; w.len()];
            conv_backward_filter(g, n, &x, &dy, &mut dw, false, threads);
            close(&dw, &dw_ref, 1e-12, &what("backward filter f64"));
            conv_backward_filter(g, n, &x, &dy, &mut dw, true, threads);
            let twice: Vec<f64> = dw_ref.iter().map(|v| 2.0 * v).collect();
            close(&dw, &twice, 1e-12, &what("backward filter accumulate f64"));
            // f32 (the AVX-512 path where the CPU has it)
            let (x32, w32, dy32) = (to32(&x), to32(&w), to32(&dy));
            let mut y32 = vec![0.0f32; y_ref.len()];
            conv_forward(g, n, &x32, &w32, &mut y32, false, threads);
            close(&to64(&y32), &y_ref, 1e-5, &what("forward f32"));
            conv_forward(g, n, &x32, &w32, &mut y32, true, threads);
            let twice: Vec<f64> = y_ref.iter().map(|v| 2.0 * v).collect();
            close(&to64(&y32), &twice, 1e-5, &what("forward accumulate f32"));
            let mut dx32 = vec![0.25f32; x.len()];
            conv_backward_data(g, n, &dy32, &w32, &mut dx32, false, threads);
            close(&to64(&dx32), &dx_ref, 1e-5, &what("backward data f32"));
            let mut dx32 = vec![0.25f32; x.len()];
            conv_backward_data(g, n, &dy32, &w32, &mut dx32, true, threads);
            let shifted: Vec<f64> = dx_ref.iter().map(|v| v + 0.25).collect();
            close(
                &to64(&dx32),
                &shifted,
                1e-5,
                &what("backward data accumulate f32"),
            );
            let mut dw32 = vec![0.0f32; w.len()];
            conv_backward_filter(g, n, &x32, &dy32, &mut dw32, false, threads);
            close(&to64(&dw32), &dw_ref, 1e-5, &what("backward filter f32"));
        }
    }
}

fn pool_geometries() -> Vec<PoolGeometry> {
    let mk = |axes: &[(usize, usize, usize, usize)], planes| PoolGeometry {
        axes: axes
            .iter()
            .map(|&(i, k, s, m)| axis(i, k, s, 1, m).expect("valid axis"))
            .collect(),
        planes,
    };
    vec![
        mk(&[(5, 2, 2, 1), (5, 2, 2, 1)], 2),
        mk(&[(5, 2, 2, 0), (6, 2, 2, 0)], 3),
        mk(&[(6, 3, 2, 0), (7, 3, 2, 0)], 2),
        mk(&[(8, 3, 3, 1), (8, 3, 3, 1)], 1),
        mk(&[(7, 3, 1, 2), (6, 3, 1, 2)], 2),
        mk(&[(9, 3, 2, 0)], 3),
        mk(&[(4, 2, 2, 1), (5, 2, 2, 1), (4, 2, 2, 1)], 2),
        mk(&[(4, 4, 1, 1), (5, 5, 1, 1)], 3),
        // the P4 model's pools (windows inside the input: the fast path)
        mk(&[(12, 2, 2, 0), (10, 2, 2, 0)], 2),
        mk(&[(14, 3, 3, 0), (14, 3, 3, 0)], 2),
        // LeNet-like (the CNTK fixture `lenet_stack`)
        mk(&[(12, 2, 2, 0), (12, 2, 2, 0)], 4),
        mk(&[(6, 3, 3, 0), (6, 3, 3, 0)], 3),
    ]
}

#[test]
fn pooling_forward_equals_the_plain_loops_and_backward_the_derivative() {
    let kinds = [
        PoolKind::Max,
        PoolKind::Average { include_pad: false },
        PoolKind::Average { include_pad: true },
    ];
    for (gi, g) in pool_geometries().iter().enumerate() {
        let n = 2;
        let x = data(n * g.in_size(), 5);
        let dy = data(n * g.out_size(), 6);
        for kind in kinds {
            let want = reference::pool(g, kind, n, &x);
            for threads in [1, 3] {
                let mut y = vec![0.0; want.len()];
                pool_forward(g, kind, n, &x, &mut y, threads);
                close(&y, &want, 1e-13, &format!("pool {gi} {kind:?}"));
                let mut dx = vec![0.0; x.len()];
                pool_backward(g, kind, n, &x, &dy, &mut dx, false, threads);
                // central differences of sum(pool(x) * dy) (piecewise linear: exact away
                // from ties, and the data has none)
                let h = 1e-6;
                for i in (0..x.len()).step_by(3) {
                    let mut xp = x.clone();
                    xp[i] += h;
                    let mut xm = x.clone();
                    xm[i] -= h;
                    let f = |v: &[f64]| -> f64 {
                        reference::pool(g, kind, n, v)
                            .iter()
                            .zip(&dy)
                            .map(|(a, b)| a * b)
                            .sum()
                    };
                    let fd = (f(&xp) - f(&xm)) / (2.0 * h);
                    assert!(
                        (fd - dx[i]).abs() < 1e-7,
                        "pool {gi} {kind:?} dx[{i}]: {} vs {fd}",
                        dx[i]
                    );
                }
            }
        }
    }
}

#[test]
fn unpooling_places_values_at_window_maxima_and_its_exact_gradient_is_the_derivative() {
    for (gi, g) in pool_geometries().iter().enumerate() {
        let n = 2;
        let x = data(n * g.in_size(), 7);
        let u = data(n * g.out_size(), 8);
        let dy = data(n * g.in_size(), 9);
        let mut y = vec![1.0; x.len()];
        unpool_forward(g, n, &u, &x, &mut y, 2);
        // every nonzero of y is some u at a window maximum of x
        let maxes = reference::pool(g, PoolKind::Max, n, &x);
        for (i, &v) in y.iter().enumerate() {
            if v != 0.0 {
                let plane = i / g.in_spatial();
                let k = (0..g.out_spatial())
                    .find(|&k| u[plane * g.out_spatial() + k] == v)
                    .expect("value from u");
                assert_eq!(
                    maxes[plane * g.out_spatial() + k],
                    x[i],
                    "unpool {gi} at {i}"
                );
            }
        }
        let mut du = vec![0.0; u.len()];
        unpool_backward_exact(g, n, &x, &dy, &mut du, false, 1);
        let f = |uv: &[f64]| -> f64 {
            let mut yy = vec![0.0; x.len()];
            unpool_forward(g, n, uv, &x, &mut yy, 1);
            yy.iter().zip(&dy).map(|(a, b)| a * b).sum()
        };
        for i in 0..u.len() {
            let (mut up, mut um) = (u.clone(), u.clone());
            up[i] += 0.5;
            um[i] -= 0.5;
            let fd = f(&up) - f(&um);
            assert!(
                (fd - du[i]).abs() < 1e-12,
                "unpool {gi} du[{i}]: {} vs {fd}",
                du[i]
            );
        }
        // CNTK's version: the window maximum of dy
        let mut dc = vec![0.0; u.len()];
        unpool_backward_cntk(g, n, &dy, &mut dc, false, 2);
        close(
            &dc,
            &reference::pool(g, PoolKind::Max, n, &dy),
            0.0,
            "unpool cntk",
        );
    }
}
