//! Plain Rust loops compiled twice: for the baseline target (SSE2 on x86-64) and, run when
//! the CPU has it, with AVX-512 enabled, so the compiler vectorizes the same code 16 lanes
//! wide instead of 4. Only the width changes: Rust never reassociates or contracts float
//! arithmetic, so both builds give the same bits (the kernels' own tests run the wide one
//! here and the narrow one under `RNTK_SIMD=scalar`, which caps the level).
//!
//! A caller passes its loop as a closure over `#[inline(always)]` bodies; the closure is
//! inlined into the AVX-512 function, and so is what it calls.

/// `f()` compiled with AVX-512F enabled when the CPU has it (and the `RNTK_SIMD` cap
/// allows), else as compiled for the baseline.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() == super::SimdLevel::Avx512 {
        // SAFETY: AVX-512F was detected on this CPU (`simd_level`).
        return unsafe { avx512(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
