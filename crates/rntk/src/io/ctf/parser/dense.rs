//! The values of a dense field: 64 bytes at a time where the buffer allows (value
//! ends from bitmasks, short numbers without a loop), then byte by byte; divisions
//! in one vectorized pass; a short row's missing tail is zero, with a warning.

use super::number::{parse_number, plain_decimal, short_decimal_parts, token_decimal_parts};
#[cfg(target_arch = "x86_64")]
use super::scan::fast_dense;
use super::scan::{classify64, is_blank};
use super::BlockParser;
use crate::error::{Error, Result};
use crate::io::buffer::IoFloat;
use crate::io::diagnostics::quote;

impl<'a, 'c, T: IoFloat> BlockParser<'a, 'c, T> {
    #[inline]
    pub(super) fn dense_values(&mut self, k: usize, mut p: usize, le: usize) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = self.ctx.fields[k].dim;
        let field_start = p;
        // Work on the typed vector directly (put back below, also on error).
        let mut vals = match T::view_mut(&mut self.set.streams[k].values) {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        };
        let mut divs = std::mem::take(&mut self.divs);
        // The row's slots exist up front, zero (CNTK's missing tail), so values
        // are stored without a capacity check each; a divisor of one stands for
        // a value already complete.
        let base = vals.len();
        vals.resize(base + dim, T::zero());
        divs.clear();
        divs.resize(dim, T::one());
        let r = self.dense_loop_dispatch(k, &mut p, le, &mut vals[base..], &mut divs);
        let count = match r {
            Ok(count) => {
                // One pass of divisions the compiler vectorizes: one per value
                // inside the parse loop stalls it on the divider's latency.
                for (v, d) in vals[base..base + count].iter_mut().zip(&divs[..count]) {
                    *v = *v / *d;
                }
                count
            }
            Err(_) => {
                vals.truncate(base);
                0
            }
        };
        if let Some(v) = T::view_mut(&mut self.set.streams[k].values) {
            *v = vals;
        }
        self.divs = divs;
        r?;
        if count < dim {
            // CNTK's "sparse suffix" warning: the missing tail is zero.
            let f = &self.ctx.fields[k];
            let w = self.loc().warning(
                field_start,
                quote(&bytes[field_start..p]),
                format!(
                    "dense stream '{}' has {count} of {dim} values; the missing tail is zero",
                    f.name
                ),
            );
            self.ctx.sink.warn(w);
        }
        Ok(p)
    }

    /// [`Self::dense_loop`], compiled for AVX2 and BMI1/2 (variable shifts
    /// without the count register, `tzcnt`) where the CPU has them.
    #[inline(always)]
    fn dense_loop_dispatch(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        #[cfg(target_arch = "x86_64")]
        if fast_dense() {
            // SAFETY: `fast_dense()` checked that this CPU has every feature
            // `dense_loop_avx2` is compiled for.
            return unsafe { self.dense_loop_avx2(k, p, le, slots, divs) };
        }
        self.dense_loop::<false>(k, p, le, slots, divs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn dense_loop_avx2(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        self.dense_loop::<true>(k, p, le, slots, divs)
    }

    /// Numerators into `slots`, their divisors into `divs` (both `dim` long);
    /// returns how many values the field has. `FAST`: see [`classify64`].
    #[inline(always)]
    fn dense_loop<const FAST: bool>(
        &self,
        k: usize,
        p: &mut usize,
        le: usize,
        slots: &mut [T],
        divs: &mut [T],
    ) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = slots.len().min(divs.len());
        let mut count = 0usize;
        let mut q = *p;
        // 64 bytes at a time while the window (and the 18 bytes a short number
        // may read beyond it) lies in the buffer: value ends come from bitmasks.
        while q + 64 + 18 <= bytes.len() {
            let Some(w) = bytes
                .get(q..q + 64)
                .and_then(|w| <&[u8; 64]>::try_from(w).ok())
            else {
                break;
            };
            let (blank, stop, dots) = classify64::<FAST>(w);
            // the field ends at the first stop byte or the line end
            let room = (le - q).min(64) as u32;
            let end = stop.trailing_zeros().min(room);
            let mut ends = if end < 64 {
                (blank & ((1u64 << end) - 1)) | (1u64 << end)
            } else {
                blank
            };
            let mut s = 0usize;
            while ends != 0 {
                let e = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                if e > s {
                    let at = q + s;
                    if count >= dim {
                        *p = at;
                        return Err(self.too_many(k, at, dim));
                    }
                    // e - s < 64: bits past the token read as "no point"
                    let dot = ((dots >> s) & ((1u64 << (e - s)) - 1)).trailing_zeros() as usize;
                    let parts = match token_decimal_parts::<T>(bytes, at, e - s, dot) {
                        Some(r) => Some(r),
                        None => match short_decimal_parts::<T>(bytes, at) {
                            Some((n, d, len)) if len == e - s => Some((n, d)),
                            _ => None,
                        },
                    };
                    match parts {
                        Some((n, d)) => {
                            slots[count] = n;
                            divs[count] = d;
                        }
                        None => match self.general_number(at, le) {
                            Ok(v) => slots[count] = v,
                            Err(e) => {
                                *p = at;
                                return Err(e);
                            }
                        },
                    }
                    count += 1;
                }
                s = e + 1;
            }
            if end < 64 {
                *p = q + end as usize;
                return Ok(count);
            }
            if s == 0 {
                break; // one value longer than the window: the byte loop below
            }
            q += s;
        }
        let r = loop {
            while q < le && is_blank(bytes[q]) {
                q += 1;
            }
            if q >= le || bytes[q] == b'|' || bytes[q] == b'\r' {
                break Ok(count);
            }
            if count >= dim {
                break Err(self.too_many(k, q, dim));
            }
            if let Some((n, d, len)) = short_decimal_parts::<T>(bytes, q) {
                slots[count] = n;
                divs[count] = d;
                count += 1;
                q += len;
                continue;
            }
            let v = match plain_decimal::<T>(&bytes[q..le]) {
                Some(r) => Ok(r),
                None => parse_number::<T>(bytes, q, le),
            };
            match v {
                Ok((v, n)) => {
                    slots[count] = v;
                    count += 1;
                    q += n;
                }
                Err((at, expected)) => break Err(self.err(at, expected)),
            }
        };
        *p = q;
        r
    }

    /// A value that is delimited (the window found its end) but not in the short
    /// form: the general parsers, or the error.
    #[inline(never)]
    fn general_number(&self, at: usize, le: usize) -> Result<T> {
        let bytes = self.ctx.bytes;
        let v = match plain_decimal::<T>(&bytes[at..le]) {
            Some(r) => Ok(r),
            None => parse_number::<T>(bytes, at, le),
        };
        v.map(|(v, _)| v)
            .map_err(|(pos, expected)| self.err(pos, expected))
    }

    #[cold]
    fn too_many(&self, k: usize, at: usize, dim: usize) -> Error {
        let f = &self.ctx.fields[k];
        self.err(
            at,
            format!(
                "at most {dim} values for dense stream '{}' (its dimension)",
                f.name
            ),
        )
    }
}
