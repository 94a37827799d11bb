//! The fused LSTM scan on the CPU (the math is in `ops/lstm_scan.rs`): every step runs
//! the same kernels in the same order as the step-by-step loop, so values and
//! gradients are bit-identical to it. Wide f32 cells on AVX-512 multiply against H
//! packed once per scan (`packed.rs`), each step split between two threads by units
//! when `par` allows; narrow ones stay on the small-GEMM path.

use super::gemm::{gemm, gemm_with_transposed, Mat, MatMut, SMALL_FLOPS};
use super::lstm::{rows_backward, rows_forward};
use super::packed::{
    gates_packed_len, lstm_step_backward, lstm_step_forward, pack_gates, pack_rhs_par,
    packed_available, packed_gemm, packed_len,
};
use crate::backend::recurrent::{LstmStrides, ScanGeom, KEPT};
use crate::backend::Par;
use crate::tensor::{Element, PackedLayout};

/// The step a step's state comes from (the one before it, after it when going
/// backwards) and how many of its leading rows take their state from there; the
/// remaining rows start a sequence and take the initial state.
fn source(p: &PackedLayout, t: usize, reverse: bool) -> (usize, usize) {
    let b = p.batch_sizes();
    if reverse {
        if t + 1 < b.len() {
            (t + 1, b[t + 1].min(b[t]))
        } else {
            (t, 0)
        }
    } else if t > 0 {
        (t - 1, b[t])
    } else {
        (t, 0)
    }
}

/// Rows `0..rows` of the previous state (h when `part` is 0, c when 1) into `dst`:
/// the first `from_src` from the rows starting at `src_row0`, the rest `init`.
fn gather_state<T: Element>(
    out: &[T],
    (src_row0, from_src): (usize, usize),
    init: &[T],
    dst: &mut [T],
    rows: usize,
    part: usize,
    n: usize,
) {
    for j in 0..rows {
        let d = &mut dst[j * n..(j + 1) * n];
        if j < from_src {
            let o = (src_row0 + j) * 2 * n + part * n;
            d.copy_from_slice(&out[o..o + n]);
        } else if init.len() == 1 {
            d.iter_mut().for_each(|v| *v = init[0]);
        } else {
            d.copy_from_slice(&init[..n]);
        }
    }
}

/// `dst = rows × n` times `H` (`n × 4n`, row-major), as `times(h_prev, H)` computes it.
fn times_h<T: Element>(hprev: &[T], h: &[T], dst: &mut [T], (rows, n): (usize, usize), par: Par) {
    gemm(
        &row_major(hprev, rows, n),
        &row_major(h, n, 4 * n),
        &mut row_major_mut(dst, rows, 4 * n),
        false,
        par,
    );
}

/// Whether a cell of width `n` runs its per-step products on H packed once per time
/// loop (`packed_gemm`): wide cells in f32 on AVX-512 CPUs. Narrow ones (the seed's
/// 15) stay on the small-GEMM path, whose sums are bit-identical to the step loop's.
fn packed_step<T: Element>(n: usize) -> bool {
    4 * n * n > SMALL_FLOPS && packed_available::<T>()
}

/// `data` as a `rows × cols` row-major matrix.
fn row_major<T>(data: &[T], rows: usize, cols: usize) -> Mat<'_, T> {
    Mat {
        data,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

fn row_major_mut<T>(data: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut {
        data,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

/// Rows `a0..a0 + an` of `buf` (rows of n) to read and the disjoint rows
/// `b0..b0 + bn` to write.
fn split_rows<T>(
    buf: &mut [T],
    (a0, an): (usize, usize),
    (b0, bn): (usize, usize),
    n: usize,
) -> (&[T], &mut [T]) {
    if b0 >= a0 + an {
        let (lo, hi) = buf.split_at_mut(b0 * n);
        (&lo[a0 * n..(a0 + an) * n], &mut hi[..bn * n])
    } else {
        debug_assert!(b0 + bn <= a0);
        let (lo, hi) = buf.split_at_mut(a0 * n);
        (&hi[..an * n], &mut lo[b0 * n..(b0 + bn) * n])
    }
}

/// The scan forward (see [`crate::backend::Recurrent::lstm_scan`]): `aux` gets the
/// saved state, `work` is the per-step scratch.
pub(super) fn forward<T: Element>(
    g: &ScanGeom,
    [pre_x, h, h0, c0]: [&[T]; 4],
    out: &mut [T],
    (aux, work): (&mut Vec<T>, &mut Vec<T>),
    par: Par,
) {
    let (p, n, reverse) = (g.layout, g.n, g.reverse);
    let total = p.total();
    let widest = p.batch_sizes().first().copied().unwrap_or(0);
    // Per row, for the backward: the gates and tanh(c) (as lstm_cell keeps them), and
    // the previous h and c this step read (the lhs of the recurrent product and ∂/∂H).
    aux.resize(total * (KEPT + 2) * n, T::zero());
    let (kept_all, prev) = aux.split_at_mut(total * KEPT * n);
    let (hprev_all, cprev_all) = prev.split_at_mut(total * n);
    // Per-step scratch: the pre-activations; then, for wide cells, H packed once for
    // every step's product (see `packed_step`).
    let packed = packed_step::<T>(n);
    let hp_len = if packed { gates_packed_len(n) } else { 0 };
    work.resize(widest * 4 * n + hp_len, T::zero());
    let (pre_buf, hp) = work.split_at_mut(widest * 4 * n);
    if packed {
        pack_gates(h, n, hp, par);
    }
    let steps = p.max_len();
    let step_at = |k: usize| if reverse { steps - 1 - k } else { k };
    if packed {
        // Rows that start a sequence read the initial state; the others get theirs from
        // the step before, copied there by that step's threads (below).
        for t in 0..steps {
            let (rows, row0) = (p.batch_sizes()[t], p.offsets()[t]);
            let from_src = source(p, t, reverse).1;
            let h = &mut hprev_all[row0 * n..(row0 + rows) * n];
            gather_state(
                &[],
                (0, 0),
                h0,
                &mut h[from_src * n..],
                rows - from_src,
                0,
                n,
            );
            let c = &mut cprev_all[row0 * n..(row0 + rows) * n];
            gather_state(
                &[],
                (0, 0),
                c0,
                &mut c[from_src * n..],
                rows - from_src,
                1,
                n,
            );
        }
    }
    for k in 0..steps {
        let t = step_at(k);
        let (rows, row0) = (p.batch_sizes()[t], p.offsets()[t]);
        let pre = &mut pre_buf[..rows * 4 * n];
        let pre_x = &pre_x[row0 * 4 * n..(row0 + rows) * 4 * n];
        let kept = &mut kept_all[row0 * KEPT * n..(row0 + rows) * KEPT * n];
        if packed {
            let out_rows = &mut out[row0 * 2 * n..(row0 + rows) * 2 * n];
            // pre = pre_x + h_prev·H (summed from pre_x), then the cell, the units
            // split between threads, each also handing its units of h and c to the
            // rows of the next step that continue a sequence
            let (to_next, next0) = if k + 1 < steps {
                let tn = step_at(k + 1);
                (source(p, tn, reverse).1, p.offsets()[tn])
            } else {
                (0, row0 + rows)
            };
            let (hprev, hnext) = split_rows(hprev_all, (row0, rows), (next0, to_next), n);
            let (cprev, cnext) = split_rows(cprev_all, (row0, rows), (next0, to_next), n);
            let done = lstm_step_forward(
                (hprev, cprev),
                hp,
                pre_x,
                pre,
                kept,
                out_rows,
                (hnext, cnext),
                (n, rows),
                par,
            );
            debug_assert!(done);
        } else {
            let (src, from_src) = source(p, t, reverse);
            let from = (p.offsets()[src], from_src);
            let hprev = &mut hprev_all[row0 * n..(row0 + rows) * n];
            let cprev = &mut cprev_all[row0 * n..(row0 + rows) * n];
            gather_state(out, from, h0, hprev, rows, 0, n);
            gather_state(out, from, c0, cprev, rows, 1, n);
            times_h(hprev, h, pre, (rows, n), par);
            for (y, &a) in pre.iter_mut().zip(pre_x) {
                *y = a + *y;
            }
            let out_rows = &mut out[row0 * 2 * n..(row0 + rows) * 2 * n];
            rows_forward(pre, cprev, n, kept, out_rows, n, rows);
        }
    }
}

/// BPTT over every step, once per backward pass: `grad` gets `∂/∂pre` of every row
/// followed by `∂/∂h0` and `∂/∂c0`.
pub(super) fn backward<T: Element>(
    g: &ScanGeom,
    h: &[T],
    (nh0, nc0): (usize, usize),
    dout: &[T],
    aux: &[T],
    (grad, work): (&mut Vec<T>, &mut Vec<T>),
    par: Par,
) {
    let (p, n, reverse) = (g.layout, g.n, g.reverse);
    let total = p.total();
    assert!(
        aux.len() >= g.saved_len(),
        "LSTM scan backward without its forward"
    );
    let widest = p.batch_sizes().first().copied().unwrap_or(0);
    let packed = packed_step::<T>(n);
    // (the packed path writes every row's ∂/∂pre; the loop below adds into zeros)
    if !packed {
        grad.clear();
    }
    grad.resize(total * 4 * n + nh0 + nc0, T::zero());
    grad[total * 4 * n..]
        .iter_mut()
        .for_each(|v| *v = T::zero());
    // scratch: carried dh, carried dc (for the step processed next), dh, dc_out, and
    // H transposed (4N rows of np columns, zero-padded) for the per-step ∂/∂h_prev
    // (only products small enough for the small-GEMM path use the copy)
    let np = if 4 * n * n <= SMALL_FLOPS {
        n.div_ceil(16) * 16
    } else {
        0
    };
    // (or, for wide cells, Hᵀ packed for `packed_gemm`)
    let ht_len = if packed {
        packed_len(4 * n, n)
    } else {
        4 * n * np
    };
    // (the packed path writes every part before reading it; the small-GEMM copy of Hᵀ
    // relies on zero padding)
    if !packed {
        work.clear();
    }
    work.resize(widest * 4 * n + ht_len, T::zero());
    let (dpre_all, dinit) = grad.split_at_mut(total * 4 * n);
    let (dh0, dc0) = dinit.split_at_mut(nh0);
    let (carry_h, rest) = work.split_at_mut(widest * n);
    let (carry_c, rest) = rest.split_at_mut(widest * n);
    let (dh, rest) = rest.split_at_mut(widest * n);
    let (dc, ht_copy) = rest.split_at_mut(widest * n);
    let (kept_all, prev) = aux.split_at(total * KEPT * n);
    let cprev_all = &prev[total * n..];
    let strides = LstmStrides {
        cprev: n,
        dh: n,
        dc: n,
        dcprev: n,
    };
    if packed {
        pack_rhs_par(&row_major(h, n, 4 * n).t(), ht_copy, par);
    } else if np > 0 {
        for j in 0..n {
            for kk in 0..4 * n {
                ht_copy[kk * np + j] = h[j * 4 * n + kk];
            }
        }
    }
    let steps = p.max_len();
    let mut carried = 0;
    for k in 0..steps {
        // the opposite time order of the forward
        let t = if reverse { k } else { steps - 1 - k };
        let (rows, row0) = (p.batch_sizes()[t], p.offsets()[t]);
        let from_src = source(p, t, reverse).1;
        let cprev = &cprev_all[row0 * n..(row0 + rows) * n];
        let kept = &kept_all[row0 * KEPT * n..(row0 + rows) * KEPT * n];
        let dpre = &mut dpre_all[row0 * 4 * n..(row0 + rows) * 4 * n];
        let gout = &dout[row0 * 2 * n..(row0 + rows) * 2 * n];
        if packed {
            // the loops below, the units split between threads
            let done = lstm_step_backward(
                kept,
                cprev,
                gout,
                carry_h,
                carry_c,
                dh,
                dc,
                dpre,
                (n, rows, carried),
                par,
            );
            debug_assert!(done);
        } else {
            // Gradients of [h | c] at this step: from outside, plus what the step that
            // read this one's state sent back (in that order, as the loop adds them).
            for j in 0..rows {
                let o = j * 2 * n;
                let (gh, gc) = (&gout[o..o + n], &gout[o + n..o + 2 * n]);
                let (dhj, dcj) = (&mut dh[j * n..(j + 1) * n], &mut dc[j * n..(j + 1) * n]);
                if j < carried {
                    for q in 0..n {
                        dhj[q] = gh[q] + carry_h[j * n + q];
                        dcj[q] = gc[q] + carry_c[j * n + q];
                    }
                } else {
                    dhj.copy_from_slice(gh);
                    dcj.copy_from_slice(gc);
                }
            }
            // ∂/∂c_prev goes straight into the carry (already consumed above)
            carry_c[..rows * n].iter_mut().for_each(|v| *v = T::zero());
            rows_backward(
                kept,
                cprev,
                dh,
                dc,
                Some(&mut *dpre),
                Some(&mut carry_c[..rows * n]),
                &strides,
                n,
                rows,
            );
        }
        // ∂/∂h_prev = ∂/∂pre · Hᵀ
        let dst = &mut carry_h[..rows * n];
        if packed {
            let done = packed_gemm(
                &row_major(dpre, rows, 4 * n),
                ht_copy,
                None,
                &mut row_major_mut(dst, rows, n),
                par,
            );
            debug_assert!(done);
        } else {
            let ht = row_major(h, n, 4 * n).t();
            let g = row_major(dpre, rows, 4 * n);
            gemm_with_transposed(
                &g,
                &ht,
                ht_copy,
                np,
                &mut row_major_mut(dst, rows, n),
                false,
                par,
            );
        }
        // Rows that started a sequence send their gradient to the initial state.
        for j in from_src..rows {
            for (init, d, carry) in [(&mut *dh0, nh0, &*carry_h), (&mut *dc0, nc0, &*carry_c)] {
                let gj = &carry[j * n..(j + 1) * n];
                if d == 1 {
                    init[0] += gj.iter().copied().sum::<T>();
                } else {
                    for (a, &b) in init.iter_mut().zip(gj) {
                        *a += b;
                    }
                }
            }
        }
        carried = from_src;
    }
}
