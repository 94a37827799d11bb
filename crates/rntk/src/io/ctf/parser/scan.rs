//! Byte classes of the CTF grammar and the 64-byte classifier the dense fast path
//! finds value ends with (SSE2, or AVX2 where the CPU has it).

#[inline(always)]
pub(super) fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// End of a value: blank, bar, line end.
#[inline(always)]
pub(super) fn is_delim(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'|' | b'\r' | b'\n')
}

/// Bitmasks over 64 bytes of text (bit `i` for byte `i`): blanks, and the bytes
/// that end a field's values (`|`, `\r`, `\n`), and points (`.`). Finding every
/// value's end at once keeps the next value's start off the chain of each
/// value's digits; the points spare each value its own search.
/// `AVX2` (only inside a function compiled for it, after runtime detection)
/// classifies 32 bytes per compare instead of 16.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn classify64<const AVX2: bool>(w: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::*;
    if AVX2 {
        let mut blank = 0u64;
        let mut stop = 0u64;
        let mut dot = 0u64;
        for k in 0..2 {
            // SAFETY: `AVX2` is only true in `dense_loop_avx2`, which runs after
            // `fast_dense()` detected AVX2; the load reads bytes 32k..32k+32 of
            // the 64-byte array.
            unsafe {
                let v = _mm256_loadu_si256(w.as_ptr().add(32 * k).cast::<__m256i>());
                let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
                let b = _mm256_or_si256(eq(b' '), eq(b'\t'));
                let e = _mm256_or_si256(_mm256_or_si256(eq(b'|'), eq(b'\r')), eq(b'\n'));
                blank |= u64::from(_mm256_movemask_epi8(b) as u32) << (32 * k);
                stop |= u64::from(_mm256_movemask_epi8(e) as u32) << (32 * k);
                dot |= u64::from(_mm256_movemask_epi8(eq(b'.')) as u32) << (32 * k);
            }
        }
        return (blank, stop, dot);
    }
    let mut blank = 0u64;
    let mut stop = 0u64;
    let mut dot = 0u64;
    for k in 0..4 {
        // SAFETY: SSE2 is part of every x86_64 target; the load reads bytes
        // 16k..16k+16 of the 64-byte array.
        unsafe {
            let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast::<__m128i>());
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let b = _mm_or_si128(eq(b' '), eq(b'\t'));
            let e = _mm_or_si128(_mm_or_si128(eq(b'|'), eq(b'\r')), eq(b'\n'));
            blank |= u64::from(_mm_movemask_epi8(b) as u16) << (16 * k);
            stop |= u64::from(_mm_movemask_epi8(e) as u16) << (16 * k);
            dot |= u64::from(_mm_movemask_epi8(eq(b'.')) as u16) << (16 * k);
        }
    }
    (blank, stop, dot)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn classify64<const AVX2: bool>(w: &[u8; 64]) -> (u64, u64, u64) {
    let mut blank = 0u64;
    let mut stop = 0u64;
    let mut dot = 0u64;
    for (i, &c) in w.iter().enumerate() {
        blank |= u64::from(is_blank(c)) << i;
        stop |= u64::from(matches!(c, b'|' | b'\r' | b'\n')) << i;
        dot |= u64::from(c == b'.') << i;
    }
    (blank, stop, dot)
}

/// Whether this CPU has what `dense_loop_avx2` is compiled for.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn fast_dense() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 classification (taken wherever the CPU has it) and the SSE2 one
    /// give the same masks, so both dense loops read the same values.
    #[test]
    fn classify64_paths_agree() {
        let alphabet = b" \t|\r\n.-+0123456789eE,x";
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut w = [0u8; 64];
            for c in w.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *c = alphabet[(x % alphabet.len() as u64) as usize];
            }
            let sse2 = classify64::<false>(&w);
            let mut scalar = (0u64, 0u64, 0u64);
            for (i, &c) in w.iter().enumerate() {
                scalar.0 |= u64::from(is_blank(c)) << i;
                scalar.1 |= u64::from(matches!(c, b'|' | b'\r' | b'\n')) << i;
                scalar.2 |= u64::from(c == b'.') << i;
            }
            assert_eq!(sse2, scalar);
            #[cfg(target_arch = "x86_64")]
            if fast_dense() {
                // SAFETY: the CPU has AVX2 (checked just above); the function
                // compiled for it only classifies.
                assert_eq!(unsafe { classify64_avx2(&w) }, scalar);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn classify64_avx2(w: &[u8; 64]) -> (u64, u64, u64) {
        classify64::<true>(w)
    }
}
