//! Python's number formatting, reproduced so progress lines are byte-identical to
//! CNTK's: `'%8.3g'` (C's %g) and `str(float)` (the shortest round-trip repr).

/// C/Python `%.{prec}g`, right-aligned in `width`.
pub fn fmt_g(x: f64, width: usize, prec: usize) -> String {
    format!("{:>width$}", g(x, prec.max(1)), width = width)
}

fn g(x: f64, p: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // The exponent after rounding to p significant digits decides the style.
    let e = format!("{:.*e}", p - 1, x);
    let exp: i32 = e
        .split('e')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let (mant, _) = e.split_once('e').unwrap_or((&e, "0"));
        let mant = strip_zeros(mant);
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Python's `str(x)` for a float: shortest digits that round-trip, fixed notation for
/// exponents in [-4, 16), scientific otherwise (`0.005`, `1e-05`, `100.0`, `1e+16`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "6.666666666666666e-1".
    let e = format!("{:e}", x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn percent_g_matches_python() {
        // Values from CNTK's golden progress output and Python's '%8.3g'.
        assert_eq!(fmt_g(0.6932, 8, 3), "   0.693");
        assert_eq!(fmt_g(0.25, 8, 3), "    0.25");
        assert_eq!(fmt_g(693.1, 8, 3), "     693");
        assert_eq!(fmt_g(0.0, 8, 3), "       0");
        assert_eq!(fmt_g(1.05, 8, 3), "    1.05");
        assert_eq!(fmt_g(0.3928, 8, 3), "   0.393");
        assert_eq!(fmt_g(0.5, 8, 3), "     0.5");
        assert_eq!(fmt_g(12345.0, 8, 3), "1.23e+04");
        assert_eq!(fmt_g(0.00001234, 8, 3), "1.23e-05");
        assert_eq!(fmt_g(0.0001234, 8, 3), "0.000123");
        assert_eq!(fmt_g(999.6, 8, 3), "   1e+03");
        assert_eq!(fmt_g(100.0, 8, 3), "     100");
    }
    #[test]
    fn str_float_matches_python() {
        assert_eq!(py_float(0.005), "0.005");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(0.0003), "0.0003");
        assert_eq!(py_float(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(py_float(0.9900498337491681), "0.9900498337491681");
        assert_eq!(py_float(100.0), "100.0");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(123456.5), "123456.5");
        assert_eq!(py_float(-0.25), "-0.25");
    }
}
