//! The fused LSTM cell on the CPU (the math is in `ops/lstm_cell.rs`): the activated
//! gates of every row, then `c = f ⊙ c_prev + i ⊙ g`, `h = tanh(c) ⊙ o`, computed as
//! the unfused graph computes them, in the same order, so the values are bit-identical
//! to it; one vectorized pass over all rows where the CPU has AVX-512 (the same bits),
//! else row by row.

use super::{lstm_backward_rows, lstm_forward_rows, lstm_scan, simd as cpu, Cpu};
use crate::backend::recurrent::{LstmStrides, Recurrent, ScanGeom, KEPT};
use crate::backend::Par;
use crate::tensor::Element;

/// Activated gates of `rows` rows into `kept` (the first 4N of each 5N block).
pub fn activate<T: Element>(pre: &[T], kept: &mut [T], n: usize, rows: usize) {
    for r in 0..rows {
        let p = &pre[r * 4 * n..(r + 1) * 4 * n];
        let g = &mut kept[r * KEPT * n..(r * KEPT + 4) * n];
        cpu::sigmoid(&p[..n], &mut g[..n]);
        cpu::tanh(&p[n..2 * n], &mut g[n..2 * n]);
        cpu::sigmoid(&p[2 * n..], &mut g[2 * n..]);
    }
}

/// The cell over `rows` rows: `pre` (rows × 4N) and `c_prev` (row stride
/// `cprev_stride`, 0 for one shared row) to `out = [h | c]` per row, keeping
/// `[i, g, f, o, tanh(c)]` per row in `kept`. One vectorized pass where the CPU has
/// one (the same bits), else per row.
pub fn rows_forward<T: Element>(
    pre: &[T],
    cprev: &[T],
    cprev_stride: usize,
    kept: &mut [T],
    out: &mut [T],
    n: usize,
    rows: usize,
) {
    if lstm_forward_rows(pre, cprev, cprev_stride, kept, out, (n, rows)) {
        return;
    }
    activate(pre, kept, n, rows);
    for r in 0..rows {
        row_forward(
            &mut kept[r * KEPT * n..(r + 1) * KEPT * n],
            &cprev[r * cprev_stride..r * cprev_stride + n],
            &mut out[r * 2 * n..(r + 1) * 2 * n],
            n,
        );
    }
}

/// The cell's vector-Jacobian product over `rows` rows (strides as in
/// `LstmStrides`, 0 for one shared row): adds into `dpre` (rows × 4N) and
/// `dcprev`.
#[allow(clippy::too_many_arguments)]
pub fn rows_backward<T: Element>(
    kept: &[T],
    cprev: &[T],
    dh: &[T],
    dc: &[T],
    mut dpre: Option<&mut [T]>,
    mut dcprev: Option<&mut [T]>,
    s: &LstmStrides,
    n: usize,
    rows: usize,
) {
    if lstm_backward_rows(
        kept,
        cprev,
        dh,
        dc,
        dpre.as_deref_mut(),
        dcprev.as_deref_mut(),
        s,
        (n, rows),
    ) {
        return;
    }
    for r in 0..rows {
        row_backward(
            &kept[r * KEPT * n..(r + 1) * KEPT * n],
            &cprev[r * s.cprev..r * s.cprev + n],
            &dh[r * s.dh..r * s.dh + n],
            &dc[r * s.dc..r * s.dc + n],
            dpre.as_deref_mut()
                .map(|d| &mut d[r * 4 * n..(r + 1) * 4 * n]),
            dcprev
                .as_deref_mut()
                .map(|d| &mut d[r * s.dcprev..r * s.dcprev + n]),
            n,
        );
    }
}

/// One row after `activate`: `c = f ⊙ c_prev + i ⊙ g`, `h = tanh(c) ⊙ o` into
/// `out = [h | c]`, keeping tanh(c) in the row's last N of `kept`.
#[inline]
pub fn row_forward<T: Element>(k: &mut [T], cprev: &[T], out: &mut [T], n: usize) {
    let (h, c) = out.split_at_mut(n);
    for j in 0..n {
        // f ⊙ c_prev + i ⊙ g, the unfused graph's order
        c[j] = k[2 * n + j] * cprev[j] + k[j] * k[n + j];
    }
    let (gates, tc) = k.split_at_mut(4 * n);
    cpu::tanh(c, &mut tc[..n]);
    for j in 0..n {
        h[j] = tc[j] * gates[3 * n + j];
    }
}

/// One row's vector-Jacobian product: adds `∂/∂pre` into `dpre` (4N) and
/// `∂/∂c_prev` into `dcprev` (N), from the gradients `dh`, `dc_out` of `[h | c]`.
#[inline]
pub fn row_backward<T: Element>(
    g: &[T],
    cprev: &[T],
    dh: &[T],
    dc_out: &[T],
    mut dpre: Option<&mut [T]>,
    mut dcprev: Option<&mut [T]>,
    n: usize,
) {
    let one = T::one();
    for j in 0..n {
        let (gi, gg, gf, go, tc) = (g[j], g[n + j], g[2 * n + j], g[3 * n + j], g[4 * n + j]);
        let dc = dc_out[j] + dh[j] * go * (one - tc * tc);
        if let Some(d) = dpre.as_deref_mut() {
            d[j] += dc * gg * gi * (one - gi);
            d[n + j] += dc * gi * (one - gg * gg);
            d[2 * n + j] += dc * cprev[j] * gf * (one - gf);
            d[3 * n + j] += dh[j] * tc * go * (one - go);
        }
        if let Some(d) = dcprev.as_deref_mut() {
            d[j] += dc * gf;
        }
    }
}

impl Recurrent for Cpu {
    fn lstm_cell<T: Element>(
        &self,
        pre: &[T],
        (cprev, stride): (&[T], usize),
        kept: &mut [T],
        out: &mut [T],
        (n, rows): (usize, usize),
    ) {
        rows_forward(pre, cprev, stride, kept, out, n, rows);
    }

    fn lstm_cell_backward<T: Element>(
        &self,
        kept: &[T],
        cprev: &[T],
        dh: &[T],
        dc: &[T],
        dpre: Option<&mut [T]>,
        dcprev: Option<&mut [T]>,
        strides: &LstmStrides,
        (n, rows): (usize, usize),
    ) {
        rows_backward(kept, cprev, dh, dc, dpre, dcprev, strides, n, rows);
    }

    fn lstm_scan<T: Element>(
        &self,
        g: &ScanGeom,
        args: [&[T]; 4],
        out: &mut [T],
        saved: &mut Vec<T>,
        work: &mut Vec<T>,
        par: Par,
    ) {
        lstm_scan::forward(g, args, out, (saved, work), par);
    }

    fn lstm_scan_backward<T: Element>(
        &self,
        g: &ScanGeom,
        h: &[T],
        init_lens: (usize, usize),
        dout: &[T],
        saved: &[T],
        grads: &mut Vec<T>,
        work: &mut Vec<T>,
        par: Par,
    ) {
        lstm_scan::backward(g, h, init_lens, dout, saved, (grads, work), par);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(len: usize, key: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 37 + key * 11) % 29) as f32 - 14.0) * 0.23)
            .collect()
    }

    /// The vectorized pass (where this CPU has one) gives the portable loop's bits,
    /// for widths around the vector length and shared or per-row c_prev.
    #[test]
    fn vectorized_rows_equal_the_portable_loop() {
        for n in [1, 3, 15, 16, 17, 33] {
            for shared in [false, true] {
                let rows = 5;
                let stride = if shared { 0 } else { n };
                let pre = vals(rows * 4 * n, 1);
                let cp = vals(rows * n, 2);
                let (mut k1, mut o1) = (vec![0.0; rows * 5 * n], vec![0.0; rows * 2 * n]);
                let (mut k2, mut o2) = (k1.clone(), o1.clone());
                rows_forward(&pre, &cp, stride, &mut k1, &mut o1, n, rows);
                activate(&pre, &mut k2, n, rows);
                for r in 0..rows {
                    row_forward(
                        &mut k2[r * 5 * n..(r + 1) * 5 * n],
                        &cp[r * stride..r * stride + n],
                        &mut o2[r * 2 * n..(r + 1) * 2 * n],
                        n,
                    );
                }
                assert_eq!((&k1, &o1), (&k2, &o2), "forward n={n} shared={shared}");
                let (dh, dc) = (vals(rows * n, 3), vals(rows * n, 4));
                let s = LstmStrides {
                    cprev: stride,
                    dh: n,
                    dc: n,
                    dcprev: stride,
                };
                let (mut dp1, mut dc1) = (vals(rows * 4 * n, 5), vals(rows * n, 6));
                let (mut dp2, mut dc2) = (dp1.clone(), dc1.clone());
                rows_backward(
                    &k1,
                    &cp,
                    &dh,
                    &dc,
                    Some(&mut dp1),
                    Some(&mut dc1),
                    &s,
                    n,
                    rows,
                );
                for r in 0..rows {
                    row_backward(
                        &k1[r * 5 * n..(r + 1) * 5 * n],
                        &cp[r * stride..r * stride + n],
                        &dh[r * n..(r + 1) * n],
                        &dc[r * n..(r + 1) * n],
                        Some(&mut dp2[r * 4 * n..(r + 1) * 4 * n]),
                        Some(&mut dc2[r * stride..r * stride + n]),
                        n,
                    );
                }
                assert_eq!((&dp1, &dc1), (&dp2, &dc2), "backward n={n} shared={shared}");
            }
        }
    }
}
