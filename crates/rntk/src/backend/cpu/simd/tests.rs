//! Accuracy of every f32 path against f64 `std`, extremes, tails, and dispatch.

use super::*;

const LEVELS: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

/// The levels this CPU can run (others would silently run a lower one).
fn levels() -> Vec<SimdLevel> {
    LEVELS.into_iter().filter(|&l| l <= simd_level()).collect()
}

fn run(k: Kernel, l: SimdLevel, x: &[f32]) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.len()];
    run_f32(k, l, x, &mut y);
    y
}

fn reference(k: Kernel, x: f32) -> f64 {
    let x = x as f64;
    match k {
        Kernel::Exp => x.exp(),
        Kernel::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Kernel::Tanh => x.tanh(),
    }
}

/// |got − want| in units of the f32 ulp at `want` (normal range).
fn ulps(got: f32, want: f64) -> f64 {
    if want == 0.0 {
        return if got == 0.0 { 0.0 } else { f64::INFINITY };
    }
    let e = want.abs().log2().floor();
    (got as f64 - want).abs() / 2f64.powf(e - 23.0)
}

fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..=n)
        .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
        .collect()
}

#[test]
fn exp_is_within_two_ulp_over_the_normal_range() {
    // e^x is a normal f32 for x in [-87.33, 88.72].
    let x = sweep(-87.33, 88.72, 400_000);
    for l in levels() {
        let y = run(Kernel::Exp, l, &x);
        let worst = x
            .iter()
            .zip(&y)
            .map(|(&x, &y)| ulps(y, reference(Kernel::Exp, x)))
            .fold(0.0, f64::max);
        eprintln!("exp {l:?}: max error {worst:.2} ulp");
        assert!(worst <= 2.0, "exp {l:?}: {worst} ulp");
    }
}

#[test]
fn exp_underflows_gradually_and_overflows_to_inf() {
    let denorm = sweep(-103.9, -87.4, 20_000);
    for l in levels() {
        let y = run(Kernel::Exp, l, &denorm);
        for (&x, &y) in denorm.iter().zip(&y) {
            let want = reference(Kernel::Exp, x);
            // one rounding at the denormal spacing 2^-149, plus the ≈1 ulp of e^r
            assert!(
                (y as f64 - want).abs() <= 2f64.powi(-149) + 2.5e-7 * want,
                "exp {l:?}({x}) = {y:e}, want {want:e}"
            );
        }
        let big = [88.73f32, 89.0, 100.0, 1e10, f32::MAX, f32::INFINITY];
        assert!(run(Kernel::Exp, l, &big)
            .iter()
            .all(|&y| y == f32::INFINITY));
        let small = [-104.0f32, -110.0, -1e10, f32::MIN, f32::NEG_INFINITY];
        assert!(run(Kernel::Exp, l, &small).iter().all(|&y| y == 0.0));
        let y = run(Kernel::Exp, l, &[0.0, -0.0, 1.0, f32::NAN, -f32::NAN]);
        assert_eq!(&y[..2], &[1.0, 1.0]);
        assert!((y[2] as f64 - std::f64::consts::E).abs() < 2.5e-7);
        assert!(
            y[3].is_nan() && y[4].is_nan(),
            "exp {l:?}: NaN → {:?}",
            &y[3..]
        );
    }
}

#[test]
fn sigmoid_and_tanh_are_within_1e6_absolute_over_pm30() {
    let x = sweep(-30.0, 30.0, 600_000);
    for l in levels() {
        for k in [Kernel::Sigmoid, Kernel::Tanh] {
            let y = run(k, l, &x);
            let (mut abs, mut rel) = (0.0f64, 0.0f64);
            for (&x, &y) in x.iter().zip(&y) {
                let want = reference(k, x);
                abs = abs.max((y as f64 - want).abs());
                if want.abs() > 1e-30 {
                    rel = rel.max(ulps(y, want));
                }
            }
            eprintln!("{k:?} {l:?}: max abs error {abs:.2e}, max {rel:.2} ulp");
            assert!(abs <= 1e-6, "{k:?} {l:?}: abs error {abs}");
            // relative accuracy holds too (tanh near 0, sigmoid's tail near 0)
            assert!(rel <= 4.0, "{k:?} {l:?}: {rel} ulp");
        }
    }
}

#[test]
fn sigmoid_and_tanh_saturate_and_propagate_nan() {
    let big = [30.0f32, 50.0, 88.0, 89.0, 1e10, f32::MAX, f32::INFINITY];
    let neg: Vec<f32> = big.iter().map(|v| -v).collect();
    for l in levels() {
        assert!(run(Kernel::Sigmoid, l, &big).iter().all(|&y| y == 1.0));
        assert!(run(Kernel::Tanh, l, &big).iter().all(|&y| y == 1.0));
        assert!(run(Kernel::Tanh, l, &neg).iter().all(|&y| y == -1.0));
        let s = run(Kernel::Sigmoid, l, &neg);
        assert!(s.iter().all(|&y| (0.0..1e-13).contains(&y)), "{l:?}: {s:?}");
        assert_eq!(
            run(Kernel::Sigmoid, l, &[f32::NEG_INFINITY, 0.0]),
            [0.0, 0.5]
        );
        let z = run(Kernel::Tanh, l, &[0.0, -0.0]);
        assert!(z[0] == 0.0 && z[1] == 0.0 && z[1].is_sign_negative());
        for k in [Kernel::Sigmoid, Kernel::Tanh] {
            assert!(run(k, l, &[f32::NAN, -f32::NAN]).iter().all(|y| y.is_nan()));
        }
    }
}

#[test]
fn tails_match_the_vector_body_for_every_length() {
    for l in levels() {
        for k in [Kernel::Exp, Kernel::Sigmoid, Kernel::Tanh] {
            for n in 0..=40 {
                let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.77).sin() * 9.0).collect();
                let y = run(k, l, &x);
                for (i, (&x, &y)) in x.iter().zip(&y).enumerate() {
                    // alone, element i goes through the tail path
                    assert_eq!(
                        y.to_bits(),
                        run(k, l, &[x])[0].to_bits(),
                        "{k:?} {l:?} n={n} i={i}"
                    );
                    assert!(ulps(y, reference(k, x)) <= 4.0, "{k:?} {l:?}({x}) = {y}");
                }
            }
        }
    }
}

#[test]
fn vector_paths_agree_with_the_scalar_path() {
    let x = sweep(-40.0, 40.0, 10_007);
    for k in [Kernel::Exp, Kernel::Sigmoid, Kernel::Tanh] {
        let s = run(k, SimdLevel::Scalar, &x);
        for l in levels() {
            let v = run(k, l, &x);
            for ((&x, &a), &b) in x.iter().zip(&s).zip(&v) {
                assert!(ulps(a, b as f64) <= 2.0, "{k:?} {l:?}({x}): {a} vs {b}");
            }
        }
    }
}

#[test]
fn generic_entry_points_dispatch_by_type() {
    let x32 = sweep(-12.0, 12.0, 1001);
    let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let (mut y32, mut y64) = (vec![0.0f32; x32.len()], vec![0.0f64; x64.len()]);
    type F32 = fn(&[f32], &mut [f32]);
    type F64 = fn(&[f64], &mut [f64]);
    let fns: [(Kernel, F32, F64); 3] = [
        (Kernel::Exp, exp::<f32>, exp::<f64>),
        (Kernel::Sigmoid, sigmoid::<f32>, sigmoid::<f64>),
        (Kernel::Tanh, tanh::<f32>, tanh::<f64>),
    ];
    for (k, f32_fn, f64_fn) in fns {
        f32_fn(&x32, &mut y32);
        assert_eq!(y32, run(k, simd_level(), &x32));
        f64_fn(&x64, &mut y64);
        for (&x, &y) in x64.iter().zip(&y64) {
            let want = match k {
                Kernel::Exp => x.exp(),
                Kernel::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                Kernel::Tanh => x.tanh(),
            };
            assert!(
                (y - want).abs() <= 1e-15 * want.abs().max(1.0),
                "{k:?} f64({x})"
            );
        }
    }
}
