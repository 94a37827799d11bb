//! SGEMM throughput of rntk's GEMM entry point (`backend::cpu::gemm`), on 1 thread and on
//! the whole pool: a large square product (the machine's practical peak) and the
//! products of the P2 lm / P3 slots workloads (issue #7), in GFLOP/s (2·m·n·k per call).
//! The recurrent steps also run on `packed_gemm` (the right operand packed once, as the
//! LSTM scan does for a whole time loop): the "packed" columns.
//!
//! ```text
//! cargo run --release --example gemm_peak [-- SECONDS_PER_CASE]
//! ```

use rntk::backend::cpu::{gemm, pack_rhs, packed_available, packed_gemm, packed_len, Mat, MatMut};
use rntk::backend::Par;
use std::time::Instant;

/// (name, m, n, k, transposed lhs, transposed rhs): c(m×n) = a(m×k)·b(k×n).
const CASES: &[(&str, usize, usize, usize, bool, bool)] = &[
    ("square 2048", 2048, 2048, 2048, false, false),
    (
        "lm Dense fwd 700x200 . 200x10000",
        700,
        10000,
        200,
        false,
        false,
    ),
    (
        "lm Dense dX 700x10000 . (200x10000)^T",
        700,
        200,
        10000,
        false,
        true,
    ),
    (
        "lm Dense dW (700x200)^T . 700x10000",
        200,
        10000,
        700,
        true,
        false,
    ),
    (
        "lm LSTM input 700x200 . 200x800",
        700,
        800,
        200,
        false,
        false,
    ),
    ("lm LSTM step 20x200 . 200x800", 20, 800, 200, false, false),
    (
        "lm LSTM step dH 20x800 . (200x800)^T",
        20,
        200,
        800,
        false,
        true,
    ),
    (
        "slots LSTM input 1000x150 . 150x1200",
        1000,
        1200,
        150,
        false,
        false,
    ),
    (
        "slots LSTM step 64x300 . 300x1200",
        64,
        1200,
        300,
        false,
        false,
    ),
    (
        "slots LSTM step dH 64x1200 . (300x1200)^T",
        64,
        300,
        1200,
        false,
        true,
    ),
    (
        "slots LSTM dW (1000x300)^T . 1000x1200",
        300,
        1200,
        1000,
        true,
        false,
    ),
];

fn run(m: usize, n: usize, k: usize, ta: bool, tb: bool, packed: bool, secs: f64) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let mut c = vec![0f32; m * n];
    // a stored (k×m) when transposed, b stored (n×k) when transposed
    let am = if ta {
        Mat {
            data: &a[..],
            rows: k,
            cols: m,
            rs: m,
            cs: 1,
        }
        .t()
    } else {
        Mat {
            data: &a[..],
            rows: m,
            cols: k,
            rs: k,
            cs: 1,
        }
    };
    let bm = if tb {
        Mat {
            data: &b[..],
            rows: n,
            cols: k,
            rs: k,
            cs: 1,
        }
        .t()
    } else {
        Mat {
            data: &b[..],
            rows: k,
            cols: n,
            rs: n,
            cs: 1,
        }
    };
    let mut bp = vec![0f32; if packed { packed_len(k, n) } else { 0 }];
    if packed {
        pack_rhs(&bm, &mut bp);
    }
    let call = |c: &mut [f32]| {
        let mut cm = MatMut {
            data: c,
            rows: m,
            cols: n,
            rs: n,
            cs: 1,
        };
        // the pool's threads (run is called inside a pool of 1 or all threads)
        let par = match std::num::NonZeroUsize::new(rayon::current_num_threads()) {
            Some(n) if n.get() > 1 => Par::Rayon(n),
            _ => Par::Seq,
        };
        if !(packed && packed_gemm(&am, &bp, None, &mut cm, par)) {
            gemm(&am, &bm, &mut cm, false, par)
        }
    };
    call(&mut c);
    let mut best = f64::INFINITY;
    let t0 = Instant::now();
    let mut calls = 0;
    // best of rounds of ~20 ms: the least disturbed by other load
    while t0.elapsed().as_secs_f64() < secs || calls < 3 {
        let r = Instant::now();
        let mut k2 = 0;
        while r.elapsed().as_secs_f64() < 0.02 || k2 == 0 {
            call(&mut c);
            k2 += 1;
        }
        best = best.min(r.elapsed().as_secs_f64() / k2 as f64);
        calls += 1;
    }
    std::hint::black_box(&c);
    2.0 * (m * n * k) as f64 / best / 1e9
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let all = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("best-of-rounds GFLOP/s (2·m·n·k / time); load {}", {
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
    });
    println!(
        "{:48} {:>10} {:>10} {:>10} {:>10}",
        "case",
        "1 thread",
        format!("{all} threads"),
        "packed 1",
        format!("packed {all}")
    );
    for &(name, m, n, k, ta, tb) in CASES {
        // the packed kernel takes a row-major lhs (a recurrent step's)
        let with_packed = name.contains("step") && !ta && packed_available::<f32>();
        let mut g = [f64::NAN; 4];
        for (slot, threads) in [1, all].into_iter().enumerate() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            g[slot] = pool.install(|| run(m, n, k, ta, tb, false, secs));
            if with_packed {
                g[slot + 2] = pool.install(|| run(m, n, k, ta, tb, true, secs));
            }
        }
        println!(
            "{name:48} {:10.1} {:10.1} {:>10} {:>10}",
            g[0],
            g[1],
            if with_packed {
                format!("{:.1}", g[2])
            } else {
                "-".into()
            },
            if with_packed {
                format!("{:.1}", g[3])
            } else {
                "-".into()
            }
        );
    }
}
