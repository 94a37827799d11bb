//! Plain Rust loops compiled three times: for the baseline target (SSE2 on x86-64) and,
//! run when the CPU has it, with AVX-512 enabled, or else with AVX2 (+ FMA) enabled, so
//! the compiler vectorizes the same code 16 or 8 lanes wide instead of 4. Only the width
//! changes: Rust never reassociates or contracts float arithmetic (an enabled FMA is used
//! only where the code calls `mul_add`), so every build gives the same bits (the kernels'
//! own tests run the wide one here and the narrow one under `RNTK_SIMD=scalar`, which caps
//! the level).
//!
//! A caller passes its loop as a closure over `#[inline(always)]` bodies; the closure is
//! inlined into the AVX-512 function, and so is what it calls.

/// `f()` compiled with AVX-512F enabled when the CPU has it (and the `RNTK_SIMD` cap
/// allows), else with AVX2 + FMA when it has those, else as compiled for the baseline.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match super::simd_level() {
        // SAFETY: AVX-512F was detected on this CPU (`simd_level`).
        super::SimdLevel::Avx512 => return unsafe { avx512(f) },
        // SAFETY: AVX2 and FMA were detected on this CPU (`simd_level`).
        super::SimdLevel::Avx2 => return unsafe { avx2(f) },
        super::SimdLevel::Scalar => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
