//! Element-wise transcendental kernels (sigmoid, tanh, exp).
//!
//! f32 runs vectorized, picked once per process at run time: AVX-512F (16 lanes)
//! when the CPU has it, else AVX2+FMA (8 lanes), else the portable path of
//! `scalar.rs` (also the only path off x86). All paths share one algorithm and
//! agree within an ulp or two; accuracy against f64 `std` (measured by the tests
//! below): exp ≤ 2 ulp over the normal range, sigmoid/tanh ≤ 2e-7 absolute over
//! [-30, 30], exact saturation, NaN in ⇒ NaN out. The environment variable
//! `RNTK_SIMD=scalar|avx2|avx512` caps the level (for comparisons; it never
//! raises it above what the CPU supports).
//!
//! f64 (the gradient-check type) stays on `std`'s correctly rounded functions.

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx2;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx512;
mod scalar;
mod wide;

use crate::backend::recurrent::LstmStrides;
use crate::tensor::Element;
use std::any::TypeId;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level for the f32 kernels, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar = 1,
    Avx2 = 2,
    Avx512 = 3,
}

/// One of the vectorized functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Exp,
    Sigmoid,
    Tanh,
}

/// 0 = not yet detected, else a `SimdLevel` discriminant.
static LEVEL: AtomicU8 = AtomicU8::new(0);

fn detect() -> SimdLevel {
    #[allow(unused_mut)]
    let mut level = SimdLevel::Scalar;
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if is_x86_feature_detected!("avx512f") {
            level = SimdLevel::Avx512;
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            level = SimdLevel::Avx2;
        }
    }
    let cap = match std::env::var("RNTK_SIMD").as_deref() {
        Ok("scalar") => SimdLevel::Scalar,
        Ok("avx2") => SimdLevel::Avx2,
        _ => SimdLevel::Avx512,
    };
    level.min(cap)
}

/// The level the f32 kernels run at (detected once, then cached).
pub fn simd_level() -> SimdLevel {
    match LEVEL.load(Ordering::Relaxed) {
        1 => SimdLevel::Scalar,
        2 => SimdLevel::Avx2,
        3 => SimdLevel::Avx512,
        _ => {
            let l = detect();
            LEVEL.store(l as u8, Ordering::Relaxed);
            l
        }
    }
}

/// Run `kernel` on f32 at `level`, lowered to what this CPU supports.
/// For benchmarks and tests; the generic functions below use `simd_level()`.
pub fn run_f32(kernel: Kernel, level: SimdLevel, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "element-wise kernel: length mismatch");
    let level = level.min(simd_level());
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        // SAFETY: `level` is at most the detected level, so the CPU has the
        // features each `#[target_feature]` kernel is compiled for.
        unsafe {
            match (level, kernel) {
                (SimdLevel::Avx512, Kernel::Exp) => return avx512::exp(x, y),
                (SimdLevel::Avx512, Kernel::Sigmoid) => return avx512::sigmoid(x, y),
                (SimdLevel::Avx512, Kernel::Tanh) => return avx512::tanh(x, y),
                (SimdLevel::Avx2, Kernel::Exp) => return avx2::exp(x, y),
                (SimdLevel::Avx2, Kernel::Sigmoid) => return avx2::sigmoid(x, y),
                (SimdLevel::Avx2, Kernel::Tanh) => return avx2::tanh(x, y),
                (SimdLevel::Scalar, _) => {}
            }
        }
    }
    let _ = level;
    match kernel {
        Kernel::Exp => scalar::exp(x, y),
        Kernel::Sigmoid => scalar::sigmoid(x, y),
        Kernel::Tanh => scalar::tanh(x, y),
    }
}

/// The f32 view of `x` when `T` is f32 (a `TypeId` check, so the cast is sound).
fn as_f32<T: Element>(x: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>())
        // SAFETY: T is f32: same size, alignment and validity.
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()) })
}

fn as_f32_mut<T: Element>(y: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32; the borrow of `y` is moved into the result.
        unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr().cast::<f32>(), y.len()) }
    })
}

/// `y = k(x)`: the f32 fast path, or `f` per element for other types.
fn apply<T: Element>(kernel: Kernel, x: &[T], y: &mut [T], f: impl Fn(T) -> T) {
    assert_eq!(x.len(), y.len(), "element-wise kernel: length mismatch");
    if let Some(xf) = as_f32(x) {
        let yf = as_f32_mut(y).expect("same T");
        return run_f32(kernel, simd_level(), xf, yf);
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// y = 1 / (1 + e^-x), stable for large |x|.
pub fn sigmoid<T: Element>(x: &[T], y: &mut [T]) {
    let one = T::one();
    apply(Kernel::Sigmoid, x, y, |v| {
        if v >= T::zero() {
            one / (one + (-v).exp())
        } else {
            let e = v.exp();
            e / (one + e)
        }
    })
}

pub fn tanh<T: Element>(x: &[T], y: &mut [T]) {
    apply(Kernel::Tanh, x, y, |v| v.tanh())
}

pub fn exp<T: Element>(x: &[T], y: &mut [T]) {
    apply(Kernel::Exp, x, y, |v| v.exp())
}

fn as_f32_opt<T: Element>(x: Option<&mut [T]>) -> Option<Option<&mut [f32]>> {
    match x {
        None => Some(None),
        Some(v) => as_f32_mut(v).map(Some),
    }
}

/// The LSTM cell forward over `rows` rows in one vectorized pass (f32 with
/// AVX-512); false when that path does not apply and the caller runs its loop.
pub(crate) fn lstm_forward_rows<T: Element>(
    pre: &[T],
    cprev: &[T],
    cprev_stride: usize,
    kept: &mut [T],
    out: &mut [T],
    (n, rows): (usize, usize),
) -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if simd_level() == SimdLevel::Avx512 {
        if let (Some(p), Some(c), Some(k), Some(o)) = (
            as_f32(pre),
            as_f32(cprev),
            as_f32_mut(kept),
            as_f32_mut(out),
        ) {
            // SAFETY: AVX-512F was detected; the kernel checks the lengths.
            unsafe { avx512::lstm_forward(p, c, cprev_stride, k, o, n, rows) };
            return true;
        }
    }
    let _ = (pre, cprev, cprev_stride, kept, out, n, rows);
    false
}

/// The LSTM cell backward over `rows` rows in one vectorized pass (f32 with
/// AVX-512); false when that path does not apply and the caller runs its loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_backward_rows<T: Element>(
    kept: &[T],
    cprev: &[T],
    dh: &[T],
    dc: &[T],
    dpre: Option<&mut [T]>,
    dcprev: Option<&mut [T]>,
    strides: &LstmStrides,
    (n, rows): (usize, usize),
) -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if simd_level() == SimdLevel::Avx512 {
        if let (Some(k), Some(c), Some(h), Some(d)) =
            (as_f32(kept), as_f32(cprev), as_f32(dh), as_f32(dc))
        {
            if let (Some(dp), Some(dcp)) = (as_f32_opt(dpre), as_f32_opt(dcprev)) {
                // SAFETY: AVX-512F was detected; the kernel checks the lengths.
                unsafe { avx512::lstm_backward(k, c, h, d, dp, dcp, strides, n, rows) };
                return true;
            }
            return false;
        }
    }
    let _ = (kept, cprev, dh, dc, strides, n, rows);
    false
}

/// The unit-range cell kernels, for a step split between threads (`cpu::packed`).
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{lstm_backward_units, lstm_forward_units};

pub(crate) use wide::wide;

#[cfg(test)]
mod tests;
