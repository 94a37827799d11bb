//! The number grammar of CTF values: plain decimals read directly, the short forms
//! eight digits at a time, anything else through fast-float, with the error that
//! names what was expected.

use super::scan::is_delim;
use crate::io::buffer::IoFloat;

const NUMBER: &str =
    "a number (digits with optional sign, fraction and exponent, e.g. 1, -2.5, 1e-3)";

/// Plain decimals (`-0.168231`, `1`, `007`, `0.`) without exponent and with few
/// enough digits to be exact: read directly. Anything else returns `None` and goes
/// through fast-float (the result is the same; this only skips its generic path).
#[inline(always)]
pub(super) fn plain_decimal<T: IoFloat>(s: &[u8]) -> Option<(T, usize)> {
    let (negative, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let start = i;
    let mut m: u64 = 0;
    // 19 digits always fit in a u64
    while i < s.len() && s[i].is_ascii_digit() && i - start < 19 {
        m = m * 10 + u64::from(s[i] - b'0');
        i += 1;
    }
    if i == start {
        return None;
    }
    let mut frac = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let f0 = i;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 20 {
            m = m * 10 + u64::from(s[i] - b'0');
            i += 1;
        }
        frac = i - f0;
    }
    if i < s.len() && !is_delim(s[i]) {
        return None;
    }
    T::from_decimal(m, frac, negative).map(|v| (v, i))
}

/// Bytes of `0`..`9` at the start of `v` (little endian: the first byte of text
/// is the lowest), 0..=8. A byte is a digit when its high nibble is 3 and adding
/// 6 keeps it 3; carries only move upward, so bytes before the first non-digit
/// are judged exactly.
#[inline(always)]
pub(super) fn digit_run(v: u64) -> u32 {
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let bad = ((v & HI) ^ THREES) | ((v.wrapping_add(0x0606_0606_0606_0606) & HI) ^ THREES);
    bad.trailing_zeros() / 8
}

/// The value of the first `n` (1..=8) digit bytes of `v`: shifted to the top so
/// that the vacated low bytes read as leading zeros, then the usual three
/// multiply-and-add steps of an eight-digit conversion.
#[inline(always)]
pub(super) fn digits_value(v: u64, n: u32) -> u64 {
    // borrows of the subtraction only move upward, into bytes shifted out
    let d = v.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - n));
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    let v1 = (d & MASK).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((d >> 16) & MASK).wrapping_mul(1 + (10_000 << 32));
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

#[inline(always)]
pub(super) fn load8(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// [`plain_decimal`] eight digits at a time for the usual short forms: an
/// optional sign, 1–7 integer digits, optionally `.` and up to 8 fraction digits,
/// then a delimiter. Needs 18 readable bytes from `p` (anything else, and any
/// longer form, returns `None` for the general paths). Reading past the line end
/// is harmless: a line end is no digit, so it stops the run. Returns the exact
/// numerator and divisor of [`IoFloat::decimal_parts`] and the length.
#[inline(always)]
pub(super) fn short_decimal_parts<T: IoFloat>(bytes: &[u8], p: usize) -> Option<(T, T, usize)> {
    if p + 18 > bytes.len() {
        return None;
    }
    let c = bytes[p];
    let negative = c == b'-';
    let mut i = p + usize::from(negative || c == b'+');
    let w = load8(bytes, i);
    let ni = digit_run(w);
    if ni == 0 || ni == 8 {
        return None;
    }
    let mut m = digits_value(w, ni);
    i += ni as usize;
    let mut frac = 0usize;
    if bytes[i] == b'.' {
        i += 1;
        let w = load8(bytes, i);
        let nf = digit_run(w);
        if nf > 0 {
            m = m * POW10_U64[nf as usize] + digits_value(w, nf);
            i += nf as usize;
            frac = nf as usize;
        }
    }
    if !is_delim(bytes[i]) {
        return None;
    }
    T::decimal_parts(m, frac, negative).map(|(n, d)| (n, d, i - p))
}

/// [`short_decimal_parts`], divided.
#[inline(always)]
pub(super) fn short_decimal<T: IoFloat>(bytes: &[u8], p: usize) -> Option<(T, usize)> {
    // integers (one-hot values) skip the division's latency
    short_decimal_parts::<T>(bytes, p)
        .map(|(n, d, len)| (if d == T::one() { n } else { n / d }, len))
}

/// The value of a token whose extent is known (`len` bytes at `at`, as the
/// 64-byte window finds it) in the commonest short form: an optional `-`, then at
/// most 8 bytes of digits with at most one `.` and at least one digit. The token
/// is read as one word ending at its last byte, so the digits land right-aligned
/// (the bytes before them become leading zeros) and the point is squeezed out
/// with two masks: no loop, no branch on the digit counts. `dot` is the offset
/// of the token's first `.` from `at` (`len` or more when it has none), as the
/// window's bitmask gives it. `None` hands the token to the general paths.
#[inline(always)]
pub(super) fn token_decimal_parts<T: IoFloat>(
    bytes: &[u8],
    at: usize,
    len: usize,
    dot: usize,
) -> Option<(T, T)> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let negative = *bytes.get(at)? == b'-';
    let body = len - usize::from(negative);
    let end = at + len;
    if body == 0 || body > 8 || end < 8 {
        return None;
    }
    let w = load8(bytes, end - 8);
    // bytes before the body read as '0'
    let keep = !0u64 << (8 * (8 - body));
    let w = (w & keep) | (ZEROS & !keep);
    let (digits, frac) = if dot >= len {
        (w, 0)
    } else {
        if body == 1 {
            return None; // "." alone
        }
        // byte of the (first) point in w (the token's first byte is 8 - len,
        // a sign before it: the point is never the sign)
        let dp = (8 + dot - len) as u32;
        let below = w & ((1u64 << (8 * dp)) - 1);
        let above = w & ((!0u64 << (8 * dp)) << 8);
        // the point removed, one more leading '0' at the bottom
        (above | (below << 8) | 0x30, (7 - dp) as usize)
    };
    // all eight bytes digits (a second point, a '+', an 'e' fail here)
    let bad = ((digits & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS)
        | ((digits.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS);
    if bad != 0 {
        return None;
    }
    let d = digits - ZEROS;
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    let v1 = (d & MASK).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((d >> 16) & MASK).wrapping_mul(1 + (10_000 << 32));
    let m = u64::from((v1.wrapping_add(v2) >> 32) as u32);
    T::decimal_parts(m, frac, negative)
}

const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Parse a number at `p` (line content ends at `le`): value and bytes consumed, or
/// (position of the bad character, what was expected).
#[inline(never)]
pub(super) fn parse_number<T: IoFloat>(
    bytes: &[u8],
    p: usize,
    le: usize,
) -> std::result::Result<(T, usize), (usize, String)> {
    let s = &bytes[p..le];
    if let Some(r) = plain_decimal::<T>(s) {
        return Ok(r);
    }
    let q = usize::from(matches!(s.first(), Some(b'+') | Some(b'-')));
    // fast-float also reads "nan", "inf" and "infinity"; CTF has no such numbers.
    match s.get(q) {
        Some(c) if c.is_ascii_digit() || *c == b'.' => {}
        _ => return Err((p, NUMBER.to_string())),
    }
    let (v, n) = match fast_float2::parse_partial::<T, _>(s) {
        Ok(r) => r,
        Err(_) => return Err((p, NUMBER.to_string())),
    };
    if let Some(&c) = s.get(n) {
        if !is_delim(c) {
            let expected = if matches!(c, b'e' | b'E') {
                "digits after the exponent symbol (e.g. 1e-3)".to_string()
            } else {
                format!("{NUMBER}, followed by a blank, '|' or the end of the line")
            };
            return Err((p, expected));
        }
    }
    if !v.is_finite() {
        return Err((p, format!("a number within the range of {}", T::DTYPE)));
    }
    Ok((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// The direct path for plain decimals gives exactly fast-float's value.
        #[test]
        fn plain_decimals_match_fast_float(
            sign in prop::sample::select(vec!["", "-", "+"]),
            int in "[0-9]{1,12}",
            frac in prop::option::of("[0-9]{0,12}"),
        ) {
            let text = match &frac {
                Some(f) => format!("{sign}{int}.{f}"),
                None => format!("{sign}{int}"),
            };
            let b = text.as_bytes();
            if let Some((v, n)) = plain_decimal::<f32>(b) {
                prop_assert_eq!(n, b.len());
                let want: f32 = fast_float2::parse(b).expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
            if let Some((v, n)) = plain_decimal::<f64>(b) {
                prop_assert_eq!(n, b.len());
                let want: f64 = fast_float2::parse(b).expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
        }
    }
    /// A short decimal as text, with one of the delimiters after it and padding
    /// so that the eight-byte loads are in bounds.
    fn padded(text: &str, tail: &str) -> Vec<u8> {
        format!("{text}{tail}..................").into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
        /// The eight-digits-at-a-time path gives exactly the value of a correct
        /// parser (the standard library's) and consumes exactly the number, or
        /// declines; it never accepts a number that runs into other text.
        #[test]
        fn short_decimals_match_std(
            sign in prop::sample::select(vec!["", "-", "+"]),
            int in "[0-9]{0,9}",
            frac in prop::option::of("[0-9]{0,10}"),
            tail in prop::sample::select(vec![" ", "\t", "|", "\r", "\n", "e", "x", "5", "."]),
        ) {
            let text = match &frac {
                Some(f) => format!("{sign}{int}.{f}"),
                None => format!("{sign}{int}"),
            };
            let b = padded(&text, tail);
            let delimited = is_delim(tail.as_bytes()[0]);
            if let Some((v, n)) = short_decimal::<f32>(&b, 0) {
                prop_assert!(delimited, "{:?} accepted before {:?}", text, tail);
                prop_assert_eq!(n, text.len());
                let want: f32 = text.parse().expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
            if let Some((v, n)) = short_decimal::<f64>(&b, 0) {
                prop_assert!(delimited, "{:?} accepted before {:?}", text, tail);
                prop_assert_eq!(n, text.len());
                let want: f64 = text.parse().expect("valid");
                prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text);
            }
        }

        /// Random `%.6f` numbers (the common form of dense data) always take the
        /// fast path and give the correctly rounded value.
        #[test]
        fn printf_decimals_take_the_fast_path(x in -1.0e6f64..1.0e6, digits in 0usize..9) {
            let text = format!("{x:.digits$}");
            let b = padded(&text, " ");
            let (v, n) = short_decimal::<f64>(&b, 0).expect("fast path");
            prop_assert_eq!(n, text.len());
            prop_assert_eq!(v.to_bits(), text.parse::<f64>().expect("valid").to_bits());
            if x.abs() < 1.0 && digits <= 6 {
                let (v, _) = short_decimal::<f32>(&b, 0).expect("fast path");
                prop_assert_eq!(v.to_bits(), text.parse::<f32>().expect("valid").to_bits());
            }
        }
    }

    #[test]
    fn short_decimals_need_room_and_a_delimiter() {
        assert_eq!(short_decimal::<f32>(b"0.5 ", 0), None); // too close to the end
        let (v, n) = short_decimal::<f32>(&padded("-0.168231", "\n"), 0).unwrap();
        assert_eq!((v, n), (-0.168_231, 9));
        for bad in ["12345678", ".5", "-", "1e5", "0x1"] {
            assert_eq!(short_decimal::<f64>(&padded(bad, " "), 0), None, "{bad}");
        }
    }

    #[test]
    fn numbers_follow_the_ctf_grammar() {
        let ok = |s: &str| parse_number::<f32>(s.as_bytes(), 0, s.len()).map(|r| r.0);
        assert_eq!(ok("1"), Ok(1.0));
        assert_eq!(ok("+1"), Ok(1.0));
        assert_eq!(ok("007"), Ok(7.0));
        assert_eq!(ok("0."), Ok(0.0));
        assert_eq!(ok("-2.5E+1"), Ok(-25.0));
        assert_eq!(ok("1e-1"), Ok(0.1));
        assert_eq!(ok(".5"), Ok(0.5)); // extension
        for bad in [
            "nan", "inf", "-inf", "0x10", "1,2", "1e", "1e+", "a", "-", ".", "1e99",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let r = parse_number::<f64>(b"0.1 2", 0, 5).unwrap();
        assert_eq!(r, (0.1, 3));
    }
}
