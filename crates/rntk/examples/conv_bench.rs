//! Convolution kernel throughput (`backend::cpu::conv`) on the layers of the P4 (103D LeNet)
//! and P5 (ResNet-20) benchmark models at minibatch 64, against the machine's SGEMM peak:
//! forward, backward-data and backward-filter in GFLOP/s (2 · multiply-adds per second),
//! on 1 thread and on the pool, plus a 1024³ SGEMM through `backend::cpu::gemm` as the
//! reference. Prints one table row per layer and pass, and the share of the peak.
//!
//! ```text
//! cargo run --release --example conv_bench [-- SECONDS_PER_CASE [BATCH]]
//! ```

use rntk::backend::conv::{ConvAxis, ConvGeometry};
use rntk::backend::cpu::conv::{conv_backward_data, conv_backward_filter, conv_forward};
use rntk::backend::cpu::{gemm, Mat, MatMut};
use rntk::backend::Par;
use std::time::Instant;

/// (name, input channels, size, output channels, kernel, stride, how many in the model)
const LAYERS: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("lenet conv1 1->8 5x5 28", 1, 28, 8, 5, 1, 1),
    ("lenet conv2 8->16 5x5 14", 8, 14, 16, 5, 1, 1),
    ("resnet 3->16 3x3 32", 3, 32, 16, 3, 1, 1),
    ("resnet 16->16 3x3 32", 16, 32, 16, 3, 1, 6),
    ("resnet 16->32 3x3 s2 32", 16, 32, 32, 3, 2, 1),
    ("resnet 16->32 1x1 s2 32", 16, 32, 32, 1, 2, 1),
    ("resnet 32->32 3x3 16", 32, 16, 32, 3, 1, 5),
    ("resnet 32->64 3x3 s2 16", 32, 16, 64, 3, 2, 1),
    ("resnet 32->64 1x1 s2 16", 32, 16, 64, 1, 2, 1),
    ("resnet 64->64 3x3 8", 64, 8, 64, 3, 1, 5),
];

fn geometry(c: usize, size: usize, o: usize, k: usize, s: usize) -> ConvGeometry {
    let a = ConvAxis::auto_padded(size, k, s, 1, false).expect("axis");
    ConvGeometry {
        axes: [a, a].into_iter().collect(),
        in_channels: c,
        out_channels: o,
        groups: 1,
    }
}

/// Best seconds per call over rounds of about `budget / 5` seconds.
fn time(budget: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    let t_all = Instant::now();
    while t_all.elapsed().as_secs_f64() < budget {
        let t = Instant::now();
        let mut n = 0;
        while n == 0 || t.elapsed().as_secs_f64() < budget / 5.0 {
            f();
            n += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / n as f64);
    }
    best
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let budget: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let pool = rayon::current_num_threads();

    let m = 1024;
    let a = vec![0.5f32; m * m];
    let b = vec![0.25f32; m * m];
    let mut c = vec![0f32; m * m];
    let peak1 = {
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let t = p.install(|| {
            time(budget, || {
                let am = Mat {
                    data: &a,
                    rows: m,
                    cols: m,
                    rs: m,
                    cs: 1,
                };
                let bm = Mat {
                    data: &b,
                    rows: m,
                    cols: m,
                    rs: m,
                    cs: 1,
                };
                let mut cm = MatMut {
                    data: &mut c,
                    rows: m,
                    cols: m,
                    rs: m,
                    cs: 1,
                };
                gemm(&am, &bm, &mut cm, false, Par::Seq);
            })
        });
        2.0 * (m * m * m) as f64 / t / 1e9
    };
    println!("SGEMM 1024^3, 1 thread: {peak1:.1} GFLOP/s (the peak below); pool: {pool} threads; batch {batch}");
    println!("| layer | pass | 1 thread ms | GFLOP/s | % of peak | {pool} threads ms | GFLOP/s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut totals = [0.0f64; 2];
    let mut total_flops = 0.0;
    for &(name, ci, size, co, k, s, count) in LAYERS {
        let g = geometry(ci, size, co, k, s);
        let x: Vec<f32> = (0..batch * g.in_size())
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..g.filter_size()).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut y = vec![0f32; batch * g.out_size()];
        let mut dx = vec![0f32; x.len()];
        let mut dw = vec![0f32; w.len()];
        let flops = 2.0 * (batch * g.macs_per_image()) as f64;
        for pass in ["forward", "backward data", "backward filter"] {
            let mut row = format!("| {name} | {pass} |");
            for (ti, threads) in [1, pool].into_iter().enumerate() {
                let mut run = || match pass {
                    "forward" => conv_forward(&g, batch, &x, &w, &mut y, false, threads),
                    "backward data" => {
                        conv_backward_data(&g, batch, &y, &w, &mut dx, false, threads)
                    }
                    _ => conv_backward_filter(&g, batch, &x, &y, &mut dw, false, threads),
                };
                let t = time(budget, &mut run);
                totals[ti] += t * count as f64;
                let gf = flops / t / 1e9;
                if ti == 0 {
                    row += &format!(" {:.3} | {gf:.1} | {:.0} % |", t * 1e3, 100.0 * gf / peak1);
                } else {
                    row += &format!(" {:.3} | {gf:.1} |", t * 1e3);
                }
            }
            total_flops += flops * count as f64;
            println!("{row}");
        }
    }
    println!(
        "all passes of all layers (LeNet + ResNet-20 convolutions, weighted by count): 1 thread {:.1} ms = {:.1} GFLOP/s ({:.0} % of peak); {pool} threads {:.1} ms",
        totals[0] * 1e3,
        total_flops / totals[0] / 1e9,
        100.0 * total_flops / totals[0] / 1e9 / peak1,
        totals[1] * 1e3
    );
}
