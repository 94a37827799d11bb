//! The values of a sparse field: `index:value` entries, each row sorted by index
//! with repeated indices summed (readers.md §1.4).

use super::number::{digit_run, digits_value, load8, parse_number, plain_decimal, short_decimal};
use super::scan::is_blank;
use super::BlockParser;
use crate::error::Result;
use crate::io::buffer::{IoFloat, StreamBuffer};

impl<'a, 'c, T: IoFloat> BlockParser<'a, 'c, T> {
    #[inline]
    pub(super) fn sparse_values(&mut self, k: usize, mut p: usize, le: usize) -> Result<usize> {
        let bytes = self.ctx.bytes;
        let dim = self.ctx.fields[k].dim;
        let row_begin = self.set.streams[k].indices.len();
        loop {
            while p < le && is_blank(bytes[p]) {
                p += 1;
            }
            if p >= le || bytes[p] == b'|' || bytes[p] == b'\r' {
                break;
            }
            let idx_pos = p;
            let mut idx: u64 = 0;
            // up to seven digits and the ':' in one word (the usual case)
            if p + 8 <= le {
                let w = load8(bytes, p);
                let n = digit_run(w);
                if (1..8).contains(&n) && bytes[p + n as usize] == b':' {
                    idx = digits_value(w, n);
                    p += n as usize;
                }
            }
            while p < le && bytes[p].is_ascii_digit() {
                idx = match idx
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(bytes[p] - b'0')))
                {
                    Some(v) => v,
                    None => return Err(self.err(idx_pos, "a sparse index that fits in 64 bits")),
                };
                p += 1;
            }
            if p == idx_pos {
                return Err(self.err(
                    p,
                    "a sparse entry 'index:value' starting with an unsigned decimal index",
                ));
            }
            if p >= le || bytes[p] != b':' {
                return Err(self.err(idx_pos, format!("':' right after the sparse index {idx}")));
            }
            p += 1;
            let fast = match short_decimal::<T>(bytes, p) {
                Some(r) => Some(r),
                None => plain_decimal::<T>(&bytes[p..le]),
            };
            let (v, n) = match fast {
                Some(r) => r,
                None => match parse_number::<T>(bytes, p, le) {
                    Ok(r) => r,
                    Err((at, expected)) => return Err(self.err(at, expected)),
                },
            };
            if idx >= dim as u64 {
                let f = &self.ctx.fields[k];
                return Err(self.err(
                    idx_pos,
                    format!(
                        "a sparse index below {dim}, the dimension of stream '{}'",
                        f.name
                    ),
                ));
            }
            let buf = &mut self.set.streams[k];
            buf.indices.push(idx as u32);
            if let Some(vals) = T::view_mut(&mut buf.values) {
                vals.push(v);
            }
            p += n;
        }
        let buf = &mut self.set.streams[k];
        normalize_row::<T>(buf, row_begin);
        let nnz = buf.indices.len();
        buf.indptr.push(nnz);
        Ok(p)
    }
}

/// Sort the entries of the row starting at `begin` by index and sum duplicates
/// (CNTK sums repeated indices, readers.md §1.4).
fn normalize_row<T: IoFloat>(buf: &mut StreamBuffer, begin: usize) {
    let n = buf.indices.len() - begin;
    if n < 2 {
        return;
    }
    let Some(vals) = T::view_mut(&mut buf.values) else {
        return;
    };
    let idx = &mut buf.indices[begin..];
    let sorted_unique = idx.windows(2).all(|w| w[0] < w[1]);
    if sorted_unique {
        return;
    }
    let mut pairs: Vec<(u32, T)> = idx
        .iter()
        .copied()
        .zip(vals[begin..].iter().copied())
        .collect();
    pairs.sort_by_key(|e| e.0);
    buf.indices.truncate(begin);
    vals.truncate(begin);
    for (i, v) in pairs {
        if buf.indices.len() > begin && buf.indices.last() == Some(&i) {
            if let Some(last) = vals.last_mut() {
                *last += v;
            }
        } else {
            buf.indices.push(i);
            vals.push(v);
        }
    }
}
