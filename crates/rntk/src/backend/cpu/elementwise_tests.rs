//! Tests of the CPU element-wise kernels: the static operand's split bias gradient and the
//! partial sums of long runs, against the plain sums.

use super::run_sum;
use crate::backend::cpu::Cpu;
use crate::backend::elementwise::{BinaryOp, Elementwise, Geom};
use crate::backend::{Operand, Par};
use crate::tensor::Shape;

/// A per-channel bias over planes (a static operand broadcast over rows and pixels):
/// its gradient summed in blocks of rows on several threads equals the one-thread sum
/// to rounding, and the per-row operand's gradient equals it exactly.
#[test]
fn static_operand_gradient_split_over_rows() {
    let (c, hw, n) = (4usize, 1024usize, 96usize);
    let g = Geom::new(
        [&Shape::from([c, 32, 32]), &Shape::from([c, 1, 1])],
        &Shape::from([c, 32, 32]),
    )
    .expect("broadcast");
    let a: Vec<f32> = (0..n * c * hw).map(|i| (i % 13) as f32).collect();
    let b = vec![0.5f32; c];
    let dout: Vec<f32> = (0..n * c * hw)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let out = vec![0.0f32; n * c * hw];
    let ops = || {
        (
            Operand {
                data: &a[..],
                per_row: true,
            },
            Operand {
                data: &b[..],
                per_row: false,
            },
        )
    };
    let grad = |wrt_b: bool, par: Par| {
        let mut din = vec![0.25f32; if wrt_b { c } else { n * c * hw }];
        let (x, y) = ops();
        Cpu.binary_backward(
            BinaryOp::Plus,
            wrt_b,
            x,
            y,
            &g,
            &out,
            &dout,
            &mut din,
            n,
            par,
        );
        din
    };
    let two = Par::Rayon(std::num::NonZeroUsize::new(2).expect("2"));
    let (seq, split) = (
        grad(true, Par::Seq),
        crate::backend::cpu::par::pool().install(|| grad(true, two)),
    );
    for j in 0..c {
        let exact: f64 = 0.25
            + (0..n)
                .flat_map(|r| dout[(r * c + j) * hw..][..hw].iter())
                .map(|&v| v as f64)
                .sum::<f64>();
        assert!(
            (seq[j] as f64 - exact).abs() < 1e-3,
            "{j}: {} vs {exact}",
            seq[j]
        );
        assert!(
            (split[j] as f64 - exact).abs() < 1e-3,
            "{j}: {} vs {exact}",
            split[j]
        );
    }
    assert_eq!(grad(false, Par::Seq), grad(false, two));
}

/// Short runs sum in order (to the bit); long ones agree with the exact sum to
/// rounding, every term counted once (odd lengths: the tail).
#[test]
fn run_sum_counts_every_term() {
    let xs: Vec<f32> = (0..301)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    for len in [0, 1, 7, 31, 32, 33, 64, 95, 301] {
        let got = run_sum(0.5f32, len, |t| xs[t]);
        let exact = 0.5 + xs[..len].iter().map(|&x| x as f64).sum::<f64>();
        if len < 32 {
            assert_eq!(
                got,
                xs[..len].iter().fold(0.5f32, |a, &x| a + x),
                "len {len}"
            );
        }
        assert!(
            (got as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
            "len {len}"
        );
        // each term once: a marker on the last term shows up
        let marked = run_sum(0.0f64, len, |t| if t + 1 == len { 1e6 } else { 0.0 });
        assert_eq!(marked, if len > 0 { 1e6 } else { 0.0 });
    }
}
