//! 1-bit gradient quantization with error feedback (Seide et al. 2014, CNTK's
//! `ColumnQuantizer` with a zero threshold): each column of `rows` consecutive elements
//! (CNTK's column-major column = the last axis of rntk's row-major shape) is sent as
//! one bit per element plus two reconstruction values, the means of its negative and
//! of its non-negative entries. What the bits cannot say stays in the worker's
//! residual and is added to the next minibatch's gradient, so no gradient is lost,
//! only delayed.
//!
//! ```text
//! v   = g + r                          (r: this worker's residual, starts at 0)
//! m0  = mean{v_i : v_i < 0},  m1 = mean{v_i : v_i ≥ 0}   (an empty side counts as 1 element)
//! q_i = [v_i ≥ 0],  v̂_i = q_i ? m1 : m0
//! r   = v − v̂
//! ```

use crate::tensor::Element;

/// Bytes of one quantized column of `rows` elements of `T`.
pub fn column_bytes<T: Element>(rows: usize) -> usize {
    2 * std::mem::size_of::<T>() + rows.div_ceil(8)
}

/// Bytes of a quantized gradient of `n` elements in columns of `rows`.
pub fn quantized_bytes<T: Element>(n: usize, rows: usize) -> usize {
    let rows = rows.max(1);
    (n / rows) * column_bytes::<T>(rows)
        + if !n.is_multiple_of(rows) {
            column_bytes::<T>(n % rows)
        } else {
            0
        }
}

fn put<T: Element>(out: &mut Vec<u8>, x: T) {
    match std::mem::size_of::<T>() {
        4 => out.extend_from_slice(&(x.as_f64() as f32).to_le_bytes()),
        _ => out.extend_from_slice(&x.as_f64().to_le_bytes()),
    }
}

fn get<T: Element>(b: &[u8]) -> T {
    match std::mem::size_of::<T>() {
        4 => T::from_f64(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        _ => T::from_f64(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
    }
}

/// Quantize `g + residual` column by column, appending the message to `out` and
/// leaving the new residual in `residual`.
pub fn quantize<T: Element>(g: &[T], residual: &mut [T], rows: usize, out: &mut Vec<u8>) {
    debug_assert_eq!(g.len(), residual.len());
    let rows = rows.max(1);
    for (gc, rc) in g.chunks(rows).zip(residual.chunks_mut(rows)) {
        let (mut s0, mut s1, mut n0, mut n1) = (T::zero(), T::zero(), 0u32, 0u32);
        for (&x, &r) in gc.iter().zip(rc.iter()) {
            let v = x + r;
            if v < T::zero() {
                s0 += v;
                n0 += 1;
            } else {
                s1 += v;
                n1 += 1;
            }
        }
        let m0 = s0 / T::from_f64(n0.max(1) as f64);
        let m1 = s1 / T::from_f64(n1.max(1) as f64);
        put(out, m0);
        put(out, m1);
        let mut byte = 0u8;
        for (i, (&x, r)) in gc.iter().zip(rc.iter_mut()).enumerate() {
            let v = x + *r;
            let bit = v >= T::zero();
            *r = v - if bit { m1 } else { m0 };
            byte |= (bit as u8) << (i % 8);
            if i % 8 == 7 || i + 1 == gc.len() {
                out.push(byte);
                byte = 0;
            }
        }
    }
}

/// Add the gradient a quantized message stands for to `acc`; returns the bytes read.
pub fn unquantize_add<T: Element>(msg: &[u8], rows: usize, acc: &mut [T]) -> usize {
    let rows = rows.max(1);
    let w = std::mem::size_of::<T>();
    let mut at = 0;
    for col in acc.chunks_mut(rows) {
        let m0: T = get(&msg[at..]);
        let m1: T = get(&msg[at + w..]);
        at += 2 * w;
        for (i, a) in col.iter_mut().enumerate() {
            let bit = msg[at + i / 8] >> (i % 8) & 1 == 1;
            *a += if bit { m1 } else { m0 };
        }
        at += col.len().div_ceil(8);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bit_reconstructs_column_means_and_keeps_the_rest() {
        let g = [
            1.0f32, 3.0, -2.0, -4.0, 0.0, /* column 2 */ 5.0, 5.0, 5.0, 5.0, 5.0,
        ];
        let mut r = [0.0f32; 10];
        let mut msg = Vec::new();
        quantize(&g, &mut r, 5, &mut msg);
        assert_eq!(msg.len(), quantized_bytes::<f32>(10, 5));
        let mut back = [0.0f32; 10];
        assert_eq!(unquantize_add(&msg, 5, &mut back), msg.len());
        // non-negative side: {1, 3, 0} → 4/3; negative: {-2, -4} → -3
        let m1 = 4.0f32 / 3.0;
        assert_eq!(&back[..5], &[m1, m1, -3.0, -3.0, m1]);
        assert_eq!(&back[5..], &[5.0; 5]);
        // error feedback: what was sent plus the residual is the gradient
        for i in 0..10 {
            assert!((back[i] + r[i] - g[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn residuals_carry_the_error_forward() {
        // a constant small gradient in a column with one large entry: over many
        // rounds the sum of what was sent tracks the sum of the gradients
        let g = [0.01f64, 0.02, -1.0, 0.03, 0.0, -0.05, 0.5];
        let mut r = [0.0f64; 7];
        let mut sent = [0.0f64; 7];
        for _ in 0..1000 {
            let mut msg = Vec::new();
            quantize(&g, &mut r, 7, &mut msg);
            unquantize_add(&msg, 7, &mut sent);
        }
        for i in 0..7 {
            assert!((sent[i] + r[i] - 1000.0 * g[i]).abs() < 1e-9, "{i}");
            assert!(r[i].abs() < 2.0, "residual {i} stays bounded: {}", r[i]);
        }
    }
}
