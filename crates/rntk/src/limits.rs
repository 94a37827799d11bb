//! Limits on sizes that come from users, configs, model files and data files: the
//! largest sample a variable may describe, one-hot class counts, delay offsets, the
//! longest CTF row and the most bytes read from a stream. Each has a documented
//! default (docs/limits.md), can be raised by a user with a legitimately large model,
//! and is checked before anything is allocated from it, so a hostile or mistaken
//! number is a one-line error rather than an abort, a wrap-around or a lost run.
//!
//! The limits are process-wide: [`current`] reads them, [`set`] replaces them. At
//! first use they start from [`Limits::DEFAULT`] with any `RNTK_MAX_*` environment
//! variable applied (see [`Limits::from_env`]).

use crate::error::{Error, Result};
use crate::tensor::{Shape, INFERRED};
use std::sync::{OnceLock, RwLock};

/// The limits in force (see docs/limits.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Elements of one sample of any variable: inputs, parameters, constants and op
    /// outputs built from configs or model files (every dimension counts, zeros as
    /// one). Environment: `RNTK_MAX_SAMPLE_ELEMENTS`.
    pub max_sample_elements: usize,
    /// Classes of a one-hot op (`one_hot`, CNTK's `OneHot`). Environment:
    /// `RNTK_MAX_ONE_HOT_CLASSES`.
    pub max_one_hot_classes: usize,
    /// Steps of a `past_value` / `future_value` (at least 1 always). Environment:
    /// `RNTK_MAX_DELAY_OFFSET`.
    pub max_delay_offset: usize,
    /// Bytes of one CTF row. Environment: `RNTK_MAX_LINE_BYTES`.
    pub max_line_bytes: usize,
    /// Bytes read into memory from something that is not a regular file (a pipe,
    /// `/dev/stdin`, a device). Environment: `RNTK_MAX_STREAM_BYTES`.
    pub max_stream_bytes: usize,
}

/// One limit: its field name, environment variable, and the largest value it may be
/// raised to (beyond that, sizes could overflow the arithmetic it protects).
struct Entry {
    key: &'static str,
    env: &'static str,
    cap: usize,
    get: fn(&Limits) -> usize,
    put: fn(&mut Limits, usize),
}

const ENTRIES: [Entry; 5] = [
    Entry {
        key: "max_sample_elements",
        env: "RNTK_MAX_SAMPLE_ELEMENTS",
        cap: 1 << 48,
        get: |l| l.max_sample_elements,
        put: |l, v| l.max_sample_elements = v,
    },
    Entry {
        key: "max_one_hot_classes",
        env: "RNTK_MAX_ONE_HOT_CLASSES",
        cap: 1 << 40,
        get: |l| l.max_one_hot_classes,
        put: |l, v| l.max_one_hot_classes = v,
    },
    Entry {
        key: "max_delay_offset",
        env: "RNTK_MAX_DELAY_OFFSET",
        cap: 1 << 40,
        get: |l| l.max_delay_offset,
        put: |l, v| l.max_delay_offset = v,
    },
    Entry {
        key: "max_line_bytes",
        env: "RNTK_MAX_LINE_BYTES",
        cap: 1 << 44,
        get: |l| l.max_line_bytes,
        put: |l, v| l.max_line_bytes = v,
    },
    Entry {
        key: "max_stream_bytes",
        env: "RNTK_MAX_STREAM_BYTES",
        cap: 1 << 48,
        get: |l| l.max_stream_bytes,
        put: |l, v| l.max_stream_bytes = v,
    },
];

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Limits {
    /// The defaults: 2^30 elements per sample (4 GiB of float32), 2^24 one-hot classes,
    /// delays of up to 2^20 steps, CTF rows of up to 64 MiB, 1 GiB from a stream.
    pub const DEFAULT: Limits = Limits {
        max_sample_elements: 1 << 30,
        max_one_hot_classes: 1 << 24,
        max_delay_offset: 1 << 20,
        max_line_bytes: 64 << 20,
        max_stream_bytes: 1 << 30,
    };

    /// Every limit is at least 1 and at most the cap that keeps the arithmetic it
    /// guards from overflowing.
    pub fn validate(&self) -> Result<()> {
        for e in &ENTRIES {
            let v = (e.get)(self);
            if v == 0 || v > e.cap {
                return Err(Error::invalid(
                    format!("limits.{}", e.key),
                    format!("{v}: expected a number from 1 to {}", e.cap),
                ));
            }
        }
        Ok(())
    }

    /// [`Limits::DEFAULT`] with every `RNTK_MAX_*` environment variable that is set
    /// applied; an invalid value is an error naming the variable.
    pub fn from_env() -> Result<Limits> {
        let mut l = Limits::DEFAULT;
        for e in &ENTRIES {
            let Some(raw) = std::env::var_os(e.env) else {
                continue;
            };
            let text = raw.to_string_lossy();
            let v = parse_size(text.trim())
                .filter(|&v| v >= 1 && v <= e.cap)
                .ok_or_else(|| {
                    Error::invalid(
                        e.env,
                        format!(
                            "{:?}: expected a whole number from 1 to {} (e.g. 1073741824, 1_073_741_824 or 2^30)",
                            text.chars().take(40).collect::<String>(),
                            e.cap
                        ),
                    )
                })?;
            (e.put)(&mut l, v);
        }
        Ok(l)
    }

    /// The value of the limit named `key` (`"max_sample_elements"`, …).
    pub fn get(&self, key: &str) -> Option<usize> {
        ENTRIES.iter().find(|e| e.key == key).map(|e| (e.get)(self))
    }

    /// Set the limit named `key`; an unknown name or a value out of range is an error.
    pub fn with(mut self, key: &str, value: usize) -> Result<Limits> {
        let e = ENTRIES.iter().find(|e| e.key == key).ok_or_else(|| {
            Error::invalid(
                format!("limits.{key}"),
                format!("unknown limit (limits are {})", names().join(", ")),
            )
        })?;
        (e.put)(&mut self, value);
        self.validate()?;
        Ok(self)
    }
}

/// The names of the limits, in documentation order.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.key).collect()
}

/// `1073741824`, `1_073_741_824` or `2^30`.
fn parse_size(s: &str) -> Option<usize> {
    if let Some((b, e)) = s.split_once('^') {
        let b: usize = b.trim().parse().ok()?;
        let e: u32 = e.trim().parse().ok()?;
        return b.checked_pow(e);
    }
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn cell() -> &'static RwLock<Limits> {
    static CELL: OnceLock<RwLock<Limits>> = OnceLock::new();
    CELL.get_or_init(|| RwLock::new(from_env_lossy()))
}

/// The defaults with every valid `RNTK_MAX_*` variable applied (the library cannot
/// report an invalid one when it starts; `Limits::from_env` does).
fn from_env_lossy() -> Limits {
    let mut l = Limits::DEFAULT;
    for e in &ENTRIES {
        if let Some(v) = std::env::var(e.env)
            .ok()
            .and_then(|t| parse_size(t.trim()))
            .filter(|&v| v >= 1 && v <= e.cap)
        {
            (e.put)(&mut l, v);
        }
    }
    l
}

/// The limits in force.
pub fn current() -> Limits {
    *cell().read().unwrap_or_else(|p| p.into_inner())
}

/// Replace the limits in force (for the whole process).
pub fn set(l: Limits) -> Result<()> {
    l.validate()?;
    *cell().write().unwrap_or_else(|p| p.into_inner()) = l;
    Ok(())
}

/// How to raise the limit named `key`: appended to every message of a refused size.
pub fn how_to_raise(key: &str) -> String {
    let env = ENTRIES
        .iter()
        .find(|e| e.key == key)
        .map_or("RNTK_MAX_*", |e| e.env);
    format!("raise it with {env}=N or `{key} = N` in a config's [limits] (docs/limits.md)")
}

/// The element count of one sample of `shape` as far as limits go: every known
/// dimension multiplied, a zero counting as one (a zero-sized axis does not make the
/// other dimensions harmless). `None` when the product overflows.
pub fn sample_span(shape: &Shape) -> Option<usize> {
    shape
        .dims()
        .iter()
        .filter(|&&d| d != INFERRED)
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
}

/// `Ok` when one sample of `shape` is within `max_sample_elements`; otherwise what
/// is wrong and how to raise the limit (the caller names the variable).
pub fn check_sample_shape(shape: &Shape) -> std::result::Result<(), String> {
    let limit = current().max_sample_elements;
    match sample_span(shape) {
        Some(n) if n <= limit => Ok(()),
        Some(n) => Err(format!(
            "shape {shape} has {n} elements per sample, more than the limit of {limit} ({})",
            how_to_raise("max_sample_elements")
        )),
        None => Err(format!(
            "shape {shape} has more than 2^64 elements per sample: its element count overflows (the limit is {limit})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_zeros_as_one_and_never_wrap() {
        assert_eq!(sample_span(&Shape::from([3, 4])), Some(12));
        assert_eq!(sample_span(&Shape::from([0, 5])), Some(5));
        assert_eq!(sample_span(&Shape::from([0, 1 << 62, 1 << 62])), None);
        assert_eq!(sample_span(&Shape::from([3, 6148914691236517226])), None);
        assert_eq!(sample_span(&Shape::from([2, INFERRED])), Some(2));
        assert!(check_sample_shape(&Shape::from([1 << 20])).is_ok());
        let e = check_sample_shape(&Shape::from([1_000_000_000_000])).unwrap_err();
        assert!(e.contains("(1000000000000,)") && e.contains("RNTK_MAX_SAMPLE_ELEMENTS"));
        let e = check_sample_shape(&Shape::from([0, 1 << 62, 1 << 62])).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn sizes_parse_and_limits_validate() {
        assert_eq!(parse_size("1073741824"), Some(1 << 30));
        assert_eq!(parse_size("1_073_741_824"), Some(1 << 30));
        assert_eq!(parse_size("2^30"), Some(1 << 30));
        assert_eq!(parse_size("2^99"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1e9"), None);
        assert_eq!(parse_size(""), None);
        Limits::DEFAULT.validate().unwrap();
        assert!(Limits::DEFAULT.with("max_delay_offset", 0).is_err());
        assert!(Limits::DEFAULT
            .with("max_sample_elements", usize::MAX)
            .is_err());
        assert!(Limits::DEFAULT.with("max_colours", 3).is_err());
        let l = Limits::DEFAULT.with("max_line_bytes", 1 << 30).unwrap();
        assert_eq!(l.get("max_line_bytes"), Some(1 << 30));
        assert_eq!(names().len(), 5);
    }
}
